import numpy as np
import pytest
from contract import RecommenderContract
from planted import held_out_ndcg, planted_holdout
from sequences import query_playlists, ring_playlists

from segue import MostPopular, ParameterError, load_model, save_model
from segue.inference import continue_playlists, playlist_interactions
from segue.metrics.ranking import ndcg_at_k
from segue.models.registry import model_class
from segue.models.tcn import TCN

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks: one thread is several times faster than two on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(**params) -> TCN:
    base = dict(dim=8, blocks=1, window=6, epochs=2, batch_size=16, validation_rows=0)
    return TCN(**{**base, **params})


class TestTCN(RecommenderContract):
    def make_model(self) -> TCN:
        return tiny()


@pytest.fixture(scope="module")
def ring():
    playlists, lists = ring_playlists(400, seed=0)
    model = TCN(dim=24, kernel=3, blocks=2, window=8, epochs=25, batch_size=32, lr=1e-2)
    model.set_params(validation_rows=60, patience=4)
    return model.fit(playlist_interactions(playlists)), lists


def test_registered_as_tcn() -> None:
    assert model_class("tcn") is TCN


def test_learns_the_planted_groups() -> None:
    train, truth = planted_holdout()
    # fixed epochs: a holdout carved from these rows hides the popular songs too, which the
    # planted truth never holds, so stopping on it would favour the popularity prior
    model = TCN(dim=16, blocks=1, window=20, epochs=10, batch_size=16, lr=1e-2)
    model.set_params(validation_rows=0).fit(train)
    pop = held_out_ndcg(MostPopular().fit(train), train, truth)
    got = held_out_ndcg(model, train, truth)
    assert got > 3 * pop + 0.05, (got, pop)
    assert model.epochs_trained_ == 10 and model.seconds_per_epoch_ > 0


def test_permuting_the_seeds_changes_the_scores(ring) -> None:
    model, lists = ring
    seeds = lists[0][:6]
    queries = query_playlists([seeds, seeds[::-1], [seeds[i] for i in (3, 0, 5, 1, 4, 2)]])
    rows = playlist_interactions(queries, items=model.items_).matrix
    assert (rows[[0]] != rows[[1]]).nnz == 0  # the same songs
    vectors = model.query_vectors(rows, queries)
    assert not np.allclose(vectors[0], vectors[1], atol=1e-4)
    assert not np.allclose(vectors[0], vectors[2], atol=1e-4)
    # without playlists the seeds are read in column order: one vector for all three
    plain = model.query_vectors(rows)
    np.testing.assert_allclose(plain[0], plain[1], rtol=1e-5, atol=1e-6)


def test_real_order_finds_the_continuation_better_than_shuffled(ring) -> None:
    model, _ = ring
    _, fresh = ring_playlists(120, seed=5)
    rng = np.random.default_rng(1)
    seeds = [songs[:8] for songs in fresh]
    shuffled = [list(rng.permutation(s)) for s in seeds]
    truth_ids = [songs[8:] for songs in fresh]

    def ndcg(lists) -> float:
        found = next(iter(continue_playlists(model, query_playlists(lists), 10, batch_size=500)))
        items = model.items_.numbers(np.array(sum(found.tracks, []), dtype=object))
        items = items.reshape(len(lists), 10)
        rows = np.repeat(np.arange(len(lists)), 4)
        cols = model.items_.numbers(np.array(sum(truth_ids, []), dtype=object))
        import scipy.sparse as sp

        truth = sp.csr_array(
            (np.ones(len(rows)), (rows, cols)), shape=(len(lists), len(model.items_))
        )
        return float(np.mean(ndcg_at_k(items.astype(np.int32), truth, 10)))

    real, mixed = ndcg(seeds), ndcg(shuffled)
    print(f"ndcg@10 real order {real:.3f}, shuffled {mixed:.3f}")
    assert real > 0.7 and real > mixed + 0.15, (real, mixed)


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
    np.testing.assert_array_equal(loaded.item_vectors(), a.item_vectors())
    from safetensors.numpy import load_file, save_file

    from segue.exceptions import ModelFormatError

    weights = load_file(str(tmp_path / "m" / "weights_.safetensors"))
    weights["emb.weight"] = weights["emb.weight"][:-1].copy()  # one song short
    save_file(weights, str(tmp_path / "m" / "weights_.safetensors"))
    with pytest.raises(ModelFormatError):
        load_model(tmp_path / "m")


@pytest.mark.parametrize(
    "params",
    [
        {"dim": 0},
        {"kernel": 0},
        {"blocks": -1},
        {"window": 0},
        {"kernel": 9, "window": 2},
        {"lr": 0},
        {"dropout": 1.0},
        {"negatives": 0},
        {"samples": 0},
        {"init": "zeros"},
        {"sample_power": -1.0},
        {"device": "tpu"},
        {"batch_size": 1.5},
    ],
)
def test_bad_parameters_are_refused(params) -> None:
    with pytest.raises(ParameterError):
        TCN(**params).validate_params()
