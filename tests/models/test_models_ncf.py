import numpy as np
import pytest
from contract import RecommenderContract
from planted import held_out_ndcg, planted_holdout

from segue import Interactions, MostPopular, ParameterError, load_model, save_model
from segue.models.ncf import NCF
from segue.models.registry import model_class

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks: one thread is several times faster than two on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(**params) -> NCF:
    base = dict(factors=4, mlp_factors=4, hidden=[8, 4], epochs=2, batch_size=64)
    return NCF(**{**base, "validation_rows": 0, "fold_in_steps": 5, **params})


class TestNCF(RecommenderContract):
    # a folded-in user gets vectors from a few gradient steps with the items frozen, not the
    # vectors training gave that user beside all the others: close lists, not identical ones
    folds_in_exactly = False

    def make_model(self) -> NCF:
        return tiny()


def test_registered_as_ncf() -> None:
    assert model_class("ncf") is NCF


def _learner(**params) -> NCF:
    base = dict(factors=16, mlp_factors=16, hidden=[32, 16], epochs=25, batch_size=128, lr=0.01)
    return NCF(**{**base, "validation_rows": 60, "patience": 4, **params})


@pytest.fixture(scope="module")
def learned():
    train, truth = planted_holdout()
    return train, truth, _learner().fit(train)


def test_learns_the_planted_groups(learned) -> None:
    train, truth, model = learned
    pop = held_out_ndcg(MostPopular().fit(train), train, truth)
    got = held_out_ndcg(model, train, truth)
    assert got > 3 * pop + 0.05, (got, pop)
    assert 1 <= model.epochs_trained_ <= 25


def test_fold_in_finds_the_users_group(learned) -> None:
    """Training users given again as unseen histories: folded-in lists still find their group."""
    train, truth, model = learned
    rows = train.matrix[:40]
    coo = rows.tocoo()
    ids = np.array([f"new{r:03d}" for r in coo.row], dtype=object)
    history = Interactions.from_arrays(ids, train.items.ids[coo.col], coo.data)
    users = [f"new{r:03d}" for r in range(40)]
    folded = model.recommend(users, 10, history=history)
    trained = model.recommend(train.users.ids[:40], 10)
    # held-out NDCG of the folded-in lists, scored on the same users' answers
    from segue.metrics.ranking import ndcg_at_k

    got = float(np.nanmean(ndcg_at_k(folded.items, truth[:40], 10)))
    pop = held_out_ndcg(MostPopular().fit(train), train, truth)
    assert got > 3 * pop + 0.05, (got, pop)
    overlap = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(folded.items, trained.items, strict=True)]
    )
    assert overlap > 0.3, overlap


def test_gmf_tower_alone_and_pair_scores_match_full_scores(learned) -> None:
    train, _, model = learned
    idx = np.arange(5, dtype=np.int32)
    full = model.score(idx, train.rows(idx))
    query = np.repeat(np.arange(5), 3)
    item = np.tile([0, 7, 11], 5)
    pairs = model.score_pairs(idx, train.rows(idx), query, item)
    np.testing.assert_allclose(pairs, full[query, item], rtol=1e-4, atol=1e-5)
    gmf = tiny(towers="gmf").fit(train)
    assert "item_mlp.weight" not in gmf.weights_ and "item_gmf.weight" in gmf.weights_
    assert gmf.score(idx, train.rows(idx)).shape == (5, train.n_items)


def test_same_seed_same_model_and_saved_as_safetensors(tmp_path) -> None:
    train, _ = planted_holdout(n_users=60, n_items=40)
    a, b = tiny(seed=3).fit(train), tiny(seed=3).fit(train)
    c = tiny(seed=4).fit(train)
    for name, value in a.weights_.items():
        np.testing.assert_array_equal(value, b.weights_[name])
    assert any(not np.array_equal(v, c.weights_[n]) for n, v in a.weights_.items())
    save_model(a, tmp_path / "m")
    assert (tmp_path / "m" / "weights_.safetensors").is_file()
    loaded = load_model(tmp_path / "m")
    idx = np.arange(4, dtype=np.int32)
    np.testing.assert_array_equal(loaded.score(idx, train.rows(idx)), a.score(idx, train.rows(idx)))


@pytest.mark.parametrize(
    "params",
    [
        {"factors": 0},
        {"hidden": []},
        {"hidden": "64"},
        {"towers": "both"},
        {"negatives": 0},
        {"l2": -1.0},
        {"lr": float("nan")},
        {"epochs": 0},
        {"fold_in_steps": -1},
        {"device": "gpu"},
    ],
)
def test_bad_parameters_are_refused(params) -> None:
    with pytest.raises(ParameterError):
        NCF(**params).validate_params()
