import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from contract import RecommenderContract

from segue import EASE, Interactions, ParameterError
from segue.models import ease as ease_module


class TestEASE(RecommenderContract):
    def make_model(self) -> EASE:
        return EASE(l2=10.0)


class TestEASEPrunedBackfilled(RecommenderContract):
    """Pruned items are back-filled: every item can still be recommended."""

    def make_model(self) -> EASE:
        return EASE(l2=10.0, max_items=20)


class TestEASEPruned(RecommenderContract):
    """Without back-fill, pruned items are never recommended."""

    recommends_every_item = False

    def make_model(self) -> EASE:
        return EASE(l2=10.0, max_items=20, backfill_neighbors=0)

    def test_k_larger_than_catalogue(self, fitted, data) -> None:
        recs = fitted.recommend(data.users.ids, data.n_items + 5)
        kept = set(fitted.kept_items_.tolist())
        for items in recs.items:
            listed = items[items >= 0].tolist()
            assert len(listed) == len(set(listed)) and set(listed) <= kept


def naive_ease(x: np.ndarray, l2: float) -> np.ndarray:
    """The textbook float64 closed form."""
    g = x.T @ x + l2 * np.eye(x.shape[1])
    p = np.linalg.inv(g)
    b = p / -np.diag(p)
    np.fill_diagonal(b, 0.0)
    return b


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_weights_match_textbook_closed_form(planted: Interactions, dtype: str) -> None:
    model = EASE(l2=5.0, dtype=dtype).fit(planted)
    x = (planted.matrix.toarray() > 0).astype(np.float64)
    expected = naive_ease(x, 5.0)
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(model.weights_, expected, atol=tol * np.abs(expected).max())
    assert (np.diag(model.weights_) == 0).all()
    assert model.gram_dtype_ == dtype


def test_auto_dtype_is_float32_for_binary_data_and_float64_for_huge_counts(planted) -> None:
    assert EASE(l2=100.0).fit(planted).gram_dtype_ == "float32"
    loud = Interactions(planted.users, planted.items, planted.matrix * np.float32(1e4))
    assert EASE(l2=1.0, binarize=False).fit(loud).gram_dtype_ == "float64"


def test_raw_counts_are_used_when_not_binarized(planted: Interactions) -> None:
    a = EASE(l2=5.0, binarize=True).fit(planted).weights_
    b = EASE(l2=5.0, binarize=False).fit(planted).weights_
    assert not np.allclose(a, b)


def test_recommends_the_users_own_taste_group(planted: Interactions) -> None:
    recs = EASE(l2=10.0).fit(planted).recommend(planted.users.ids, 5)
    parity_user = np.array([int(u[-3:]) % 2 for u in recs.users])
    parity_item = np.array([[int(s[-3:]) % 2 for s in items] for _, items in recs.lists()])
    assert (parity_item == parity_user[:, None]).mean() > 0.9


def test_max_items_keeps_the_most_listened(planted: Interactions) -> None:
    model = EASE(max_items=10).fit(planted)
    listeners = np.bincount(planted.matrix.indices, minlength=planted.n_items)
    assert len(model.kept_items_) == 10
    assert listeners[model.kept_items_].min() >= np.sort(listeners)[-10]
    assert model.weights_.shape == (10, 10)


def test_backfill_is_the_ridge_regression_on_kept_items(planted: Interactions) -> None:
    l2 = 5.0
    model = EASE(l2=l2, max_items=12, dtype="float64", backfill_neighbors=100).fit(planted)
    x = (planted.matrix.toarray() > 0).astype(np.float64)
    keep, pruned = model.kept_items_, model.backfill_items_
    assert len(keep) + len(pruned) == planted.n_items
    xk = x[:, keep]
    ridge = np.linalg.solve(xk.T @ xk + l2 * np.eye(len(keep)), xk.T @ x[:, pruned])
    np.testing.assert_allclose(model.backfill_.toarray(), ridge, atol=1e-5)


def test_backfill_keeps_the_largest_weights_per_pruned_item(planted: Interactions) -> None:
    full = EASE(l2=5.0, max_items=12, backfill_neighbors=100).fit(planted).backfill_.toarray()
    top = EASE(l2=5.0, max_items=12, backfill_neighbors=3).fit(planted).backfill_
    assert (np.diff(sp.csc_array(top).indptr) == 3).all()
    dense = top.toarray()
    for j in range(full.shape[1]):
        kept_rows = np.flatnonzero(dense[:, j])
        assert np.sort(full[:, j])[-3] <= dense[kept_rows, j].min() + 1e-6


def test_backfilled_items_score_with_their_kept_neighbours(planted: Interactions) -> None:
    # the parity structure holds for pruned items too: own-parity pruned songs score higher
    model = EASE(l2=10.0, max_items=14).fit(planted)
    scores = model.score(np.full(planted.n_users, -1, np.int32), planted.matrix)
    pruned = model.backfill_items_
    parity_item = np.array([int(s[-3:]) % 2 for s in planted.items.ids[pruned]])
    parity_user = np.array([int(u[-3:]) % 2 for u in planted.users.ids])
    own = parity_item[None, :] == parity_user[:, None]
    assert scores[:, pruned][own].mean() > scores[:, pruned][~own].mean()


def test_history_of_only_pruned_items_gets_the_cold_start_list(planted: Interactions) -> None:
    model = EASE(max_items=10, backfill_neighbors=0).fit(planted)
    pruned = np.setdiff1d(np.arange(planted.n_items), model.kept_items_)[:2]
    history = Interactions.from_arrays(["x", "x"], planted.items.ids[pruned], [1, 1])
    recs = model.recommend(["x"], 3, history=history)
    cold = model.kept_items_[np.argsort(-model.fallback_scores_[model.kept_items_], kind="stable")]
    assert set(recs.items[0].tolist()) == set(cold[:3].tolist())


def test_prunes_automatically_when_the_matrix_does_not_fit(planted, monkeypatch) -> None:
    # pretend only enough memory for a 12 x 12 float32 matrix (after the 70% share)
    monkeypatch.setattr(ease_module, "available_memory", lambda: int(12 * 12 * 4 / 0.7) + 1)
    with pytest.warns(RuntimeWarning, match="does not fit"):
        model = EASE().fit(planted)
    assert len(model.kept_items_) == 12
    with pytest.raises(ParameterError, match="at most 12 items fit"):
        EASE(max_items=25).fit(planted)


@pytest.mark.parametrize(
    "params",
    [
        {"l2": 0},
        {"l2": -1.0},
        {"l2": float("nan")},
        {"dtype": "float16"},
        {"max_items": 0},
        {"backfill_neighbors": -1},
    ],
)
def test_invalid_parameters_raise(planted: Interactions, params: dict) -> None:
    with pytest.raises(ParameterError):
        EASE(**params).fit(planted)


def test_spd_inverse_in_place_matches_numpy() -> None:
    rng = np.random.default_rng(1)
    for n in (1, 7, 2100):  # 2100 crosses the 1024-row mirroring blocks
        x = rng.random((n + 3, n))
        g = x.T @ x + np.eye(n)
        ref = np.linalg.inv(g)
        work = g.copy()
        out = ease_module._spd_inverse_inplace(work)
        assert np.shares_memory(out, work)
        np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-9 * np.abs(ref).max())


def test_no_warning_on_normal_fit(planted: Interactions) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EASE().fit(planted)
    assert sp.issparse(planted.matrix)


# large catalogues (issue 13, item 1: SIGSEGV in OpenBLAS's potrf with 64,641 MPD items) ------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("n", "block"), [(300, 64), (257, 64), (130, 128), (129, 200)])
def test_blocked_inverse_matches_numpy(n: int, block: int, dtype) -> None:
    rng = np.random.default_rng(n)
    x = (rng.random((2 * n, n)) < 0.05).astype(dtype)
    g = x.T @ x + 5.0 * np.eye(n, dtype=dtype)
    ref = np.linalg.inv(g.astype(np.float64))
    work = g.copy()
    out = ease_module._spd_inverse_inplace(work, direct_max=block - 1, block=block)
    assert out is work and out.dtype == dtype
    np.testing.assert_array_equal(out, out.T)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, ref, rtol=0, atol=tol * np.abs(ref).max())


def test_blocked_inverse_rejects_what_is_not_positive_definite() -> None:
    from segue.exceptions import ModelFitError

    g = np.eye(200, dtype=np.float32)
    g[150, 150] = -1.0  # the fourth 50-block's pivot is not positive definite
    with pytest.raises(ModelFitError, match=r"not positive definite \(potrf info=151\)"):
        ease_module._spd_inverse_inplace(g, direct_max=10, block=50)


def test_blocked_fit_equals_the_direct_fit(planted: Interactions, monkeypatch) -> None:
    direct = EASE(l2=10.0).fit(planted).weights_
    monkeypatch.setattr(ease_module, "_DIRECT_MAX", 7)
    monkeypatch.setattr(ease_module, "_SWEEP_BLOCK", 8)
    blocked = EASE(l2=10.0).fit(planted).weights_
    np.testing.assert_allclose(blocked, direct, rtol=0, atol=1e-5 * np.abs(direct).max())


def _wide(n_items: int, seed: int = 0) -> sp.csr_array:
    rng = np.random.default_rng(seed)
    cols = rng.integers(0, n_items, 200_000)
    return sp.csr_array(
        (np.ones(cols.size, np.float32), (np.arange(cols.size) % 500, cols)), shape=(500, n_items)
    )


def test_automatic_size_is_capped(monkeypatch) -> None:
    # the real MPD split: 191,817 columns, 64,641 of which fitted in 70% of the memory
    monkeypatch.setattr(ease_module, "available_memory", lambda: int(64641**2 * 4 / 0.7) + 8)
    n_items = 191_817
    matrix = _wide(n_items)
    cap = ease_module.AUTO_MAX_ITEMS
    assert cap == 32_768
    with pytest.warns(RuntimeWarning, match=f"keeping the {cap} most-listened") as record:
        keep = EASE()._choose_items(matrix, 4)
    assert "above the default size" in str(record[0].message)
    assert len(keep) == cap and (np.diff(keep) > 0).all()
    listeners = np.bincount(matrix.indices, minlength=n_items)  # rows holding each item
    dropped = np.setdiff1d(np.arange(n_items), keep)
    assert listeners[keep].min() >= listeners[dropped].max()
    # an explicit size goes beyond the default, up to what memory holds
    assert len(EASE(max_items=50_000)._choose_items(matrix, 4)) == 50_000
    with pytest.raises(ParameterError, match="at most 64641 items fit"):
        EASE(max_items=70_000)._choose_items(matrix, 4)
    # memory is the bound when it is the smaller one
    monkeypatch.setattr(ease_module, "available_memory", lambda: int(1000 * 1000 * 4 / 0.7) + 1)
    with pytest.warns(RuntimeWarning, match="does not fit in memory; keeping the 1000"):
        assert len(EASE()._choose_items(matrix, 4)) == 1000


def test_catalogue_at_the_default_size_is_kept_whole(monkeypatch) -> None:
    import warnings as w

    monkeypatch.setattr(ease_module, "available_memory", lambda: 1 << 40)
    matrix = _wide(ease_module.AUTO_MAX_ITEMS)
    with w.catch_warnings():
        w.simplefilter("error")
        assert len(EASE()._choose_items(matrix, 4)) == ease_module.AUTO_MAX_ITEMS


def test_fit_keeps_the_default_size(planted, monkeypatch) -> None:
    monkeypatch.setattr(ease_module, "AUTO_MAX_ITEMS", 12)
    with pytest.warns(RuntimeWarning, match="above the default size, 12 items"):
        model = EASE().fit(planted)
    assert len(model.kept_items_) == 12 and hasattr(model, "backfill_")
    assert len(EASE(max_items=25).fit(planted).kept_items_) == 25


def test_max_items_must_not_be_a_bool(planted) -> None:
    with pytest.raises(ParameterError, match="max_items"):
        EASE(max_items=True).fit(planted)


class TestEASEGradientDescent(RecommenderContract):
    """EASE's objective minimised by mini-batch gradient descent (solver="gd")."""

    def make_model(self) -> EASE:
        return EASE(l2=10.0, solver="gd", epochs=3, batch_size=16, lr=1e-2)


def test_gradient_descent_matches_the_closed_form_within_one_percent() -> None:
    pytest.importorskip("torch")
    from planted import held_out_ndcg, planted_holdout

    train, truth = planted_holdout(n_users=300, n_items=200, seed=2)
    closed = EASE(l2=20.0).fit(train)
    gd = EASE(l2=20.0, solver="gd", epochs=200, batch_size=300, lr=1e-2).fit(train)
    want, got = held_out_ndcg(closed, train, truth, 20), held_out_ndcg(gd, train, truth, 20)
    assert abs(got - want) <= 0.01 * want, (got, want)
    # the weights themselves approach the closed form's (zero diagonal kept)
    assert np.all(np.diag(gd.weights_) == 0)
    cos = np.sum(gd.weights_ * closed.weights_) / (
        np.linalg.norm(gd.weights_) * np.linalg.norm(closed.weights_)
    )
    assert cos > 0.99, cos


def test_gradient_descent_epochs_chosen_on_carved_questions() -> None:
    pytest.importorskip("torch")
    from planted import planted_holdout

    train, _ = planted_holdout(n_users=200, n_items=120, seed=3)
    model = EASE(l2=20.0, solver="gd", epochs=8, batch_size=64, lr=1e-2, validation_rows=50)
    model.fit(train)
    assert 1 <= model.epochs_trained_ <= 8


@pytest.mark.parametrize(
    "params", [{"solver": "sgd"}, {"solver": "gd", "lr": 0}, {"solver": "gd", "device": "x"}]
)
def test_gradient_descent_parameters_checked(params) -> None:
    with pytest.raises(ParameterError):
        EASE(**params).validate_params()
