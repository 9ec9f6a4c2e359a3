import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from contract import RecommenderContract
from threadpoolctl import threadpool_limits

from conftest import planted_interactions
from segue import Interactions, ModelFitError, ParameterError, load_model, save_model
from segue.models import wrmf as wrmf_module
from segue.models.registry import model_class
from segue.models.wrmf import WRMF

SMALL = {"factors": 4, "iterations": 30, "alpha": 1.0, "regularization": 1.0}


class TestWRMF(RecommenderContract):
    """Stored user factors are implicit's; fold-in solves them again, so lists match closely
    (see test_folded_in_training_users_match_the_learned_ones), not exactly."""

    folds_in_exactly = False

    def make_model(self) -> WRMF:
        return WRMF(**SMALL, confidence="linear")


class TestWRMFLog(RecommenderContract):
    folds_in_exactly = False

    def make_model(self) -> WRMF:
        return WRMF(**SMALL, confidence="log", eps=2.0)


class TestWRMFFaissExact(RecommenderContract):
    folds_in_exactly = False

    def make_model(self) -> WRMF:
        return WRMF(**SMALL, retrieval="faiss-exact")


class TestWRMFFaissIVF(RecommenderContract):
    """30 items give a single inverted list: IVF is exact here, so the contract holds."""

    folds_in_exactly = False

    def make_model(self) -> WRMF:
        return WRMF(**SMALL, retrieval="faiss-ivf", nprobe=4)


def random_interactions(n_users: int, n_items: int, per_user: int, seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    users = np.repeat([f"u{u}" for u in range(n_users)], per_user)
    items = np.concatenate(
        [rng.choice(n_items, size=per_user, replace=False) for _ in range(n_users)]
    )
    counts = rng.integers(1, 200, size=len(users))
    ids = np.array([f"i{i}" for i in range(n_items)], dtype=object)
    return Interactions.from_arrays(users, ids[items], counts)


def implicit_direct(conf: sp.csr_array, **params) -> object:
    from implicit.cpu.als import AlternatingLeastSquares

    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(**params)
        als.fit(sp.csr_matrix(conf), show_progress=False)
    return als


def naive_fold_in(y: np.ndarray, conf: np.ndarray, reg: float) -> np.ndarray:
    """The textbook user step, one user at a time, in float64 (conf dense, 0 = unobserved)."""
    y = y.astype(np.float64)
    out = np.zeros((conf.shape[0], y.shape[1]))
    for u, row in enumerate(conf):
        seen = row > 0
        if not seen.any():
            continue
        c = np.where(seen, row, 1.0)  # confidence 1 where unobserved
        p = seen.astype(np.float64)
        a = (y.T * c) @ y + reg * np.eye(y.shape[1])
        out[u] = np.linalg.solve(a, (y.T * c) @ p)
    return out


def test_registered_under_wrmf() -> None:
    assert model_class("wrmf") is WRMF


# confidence ---------------------------------------------------------------------------------
def test_linear_and_log_confidence_on_a_tiny_matrix() -> None:
    counts = sp.csr_array(np.array([[0, 3, 0, 1], [10, 0, 0, 0]], dtype=np.float32))
    lin = WRMF(confidence="linear", alpha=2.0).confidence_matrix(counts)
    np.testing.assert_allclose(lin.toarray(), [[0, 7, 0, 3], [21, 0, 0, 0]])
    log = WRMF(confidence="log", alpha=2.0, eps=0.5).confidence_matrix(counts)
    expected = np.where(counts.toarray() > 0, 1 + 2.0 * np.log(1 + counts.toarray() / 0.5), 0)
    np.testing.assert_allclose(log.toarray(), expected, rtol=1e-6)
    assert lin.dtype == log.dtype == np.float32
    np.testing.assert_array_equal(lin.indices, counts.indices)  # same pattern: c = 1 elsewhere


def test_confidence_drops_stored_zeros_and_sums_duplicates() -> None:
    raw = sp.csr_array(
        (np.array([2.0, 0.0, 3.0], dtype=np.float32), np.array([1, 2, 1]), np.array([0, 3])),
        shape=(1, 4),
    )
    conf = WRMF(confidence="linear", alpha=1.0).confidence_matrix(raw)
    assert conf.nnz == 1 and conf[0, 1] == 6.0  # 1 + (2 + 3); the stored zero is no listen
    assert raw.nnz == 3  # the input is left alone


# training is implicit's, unchanged ----------------------------------------------------------
@pytest.mark.parametrize("confidence", ["linear", "log"])
def test_factors_equal_implicit_run_directly(planted: Interactions, confidence: str) -> None:
    model = WRMF(
        factors=6, alpha=3.0, regularization=0.5, iterations=7, confidence=confidence, seed=11
    ).fit(planted)
    als = implicit_direct(
        model.confidence_matrix(planted.matrix),
        factors=6,
        regularization=0.5,
        iterations=7,
        random_state=11,
    )
    np.testing.assert_array_equal(model.item_factors_, als.item_factors)
    np.testing.assert_array_equal(model.user_factors_, als.user_factors)
    assert model.item_factors_.dtype == model.user_factors_.dtype == np.float32
    assert model.item_factors_.flags.c_contiguous


def test_same_seed_same_factors_other_seed_other_factors(planted: Interactions) -> None:
    a = WRMF(**SMALL, seed=3).fit(planted).item_factors_
    b = WRMF(**SMALL, seed=3).fit(planted).item_factors_
    c = WRMF(**SMALL, seed=4).fit(planted).item_factors_
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_no_blas_thread_warning_from_implicit(planted: Interactions, monkeypatch) -> None:
    import implicit.utils

    monkeypatch.setattr(implicit.utils, "_checked_blas_config", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        WRMF(**SMALL).fit(planted)


def test_divergence_is_a_segue_error(planted: Interactions, monkeypatch) -> None:
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.recommender_base import ModelFitError as ImplicitFitError

    def broken(self, *args, **kwargs):
        raise ImplicitFitError("NaN encountered in factors")

    monkeypatch.setattr(AlternatingLeastSquares, "fit", broken)
    with pytest.raises(ModelFitError, match="regularization"):
        WRMF(**SMALL).fit(planted)


def test_recommends_the_users_own_taste_group(planted: Interactions) -> None:
    recs = WRMF(**SMALL).fit(planted).recommend(planted.users.ids, 5)
    parity_user = np.array([int(u[-3:]) % 2 for u in recs.users])
    parity_item = np.array([[int(s[-3:]) % 2 for s in items] for _, items in recs.lists()])
    assert (parity_item == parity_user[:, None]).mean() > 0.9


# fold-in ------------------------------------------------------------------------------------
@pytest.mark.parametrize("confidence", ["linear", "log"])
def test_fold_in_is_the_exact_als_user_step(planted: Interactions, confidence: str) -> None:
    model = WRMF(factors=6, alpha=3.0, regularization=0.5, confidence=confidence).fit(planted)
    folded = model.fold_in(planted.matrix)
    conf = model.confidence_matrix(planted.matrix)
    naive = naive_fold_in(model.item_factors_, conf.toarray(), 0.5)
    np.testing.assert_allclose(folded, naive, rtol=1e-4, atol=1e-5 * np.abs(naive).max())
    # implicit's own (Cholesky) user step on the same item factors: lambda is not rescaled
    als = implicit_direct(conf, factors=6, regularization=0.5, iterations=1, random_state=0)
    als.item_factors = model.item_factors_.copy()
    with threadpool_limits(1, "blas"):
        theirs = als.recalculate_user(np.arange(planted.n_users), sp.csr_matrix(conf))
    np.testing.assert_allclose(folded, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())
    assert folded.dtype == np.float32


def test_folded_in_training_users_match_the_learned_ones(planted: Interactions) -> None:
    model = WRMF(factors=4, alpha=1.0, regularization=1.0, iterations=60).fit(planted)
    folded = model.fold_in(planted.matrix)
    learned = model.user_factors_
    cosine = (folded * learned).sum(1) / np.linalg.norm(folded, axis=1)
    cosine /= np.linalg.norm(learned, axis=1)
    assert cosine.min() > 0.99
    stored = model.recommend(planted.users.ids, 10).items
    # the same rows given as history are new information: folded in, not looked up
    new = model.recommend(planted.users.ids, 10, history=planted).items
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(stored, new, strict=True)])
    assert overlap >= 0.95


def test_fold_in_handles_empty_rows_and_is_chunk_independent(monkeypatch) -> None:
    data = random_interactions(60, 80, 12, seed=2)
    model = WRMF(factors=5, alpha=2.0, regularization=1.0, iterations=5).fit(data)
    rng = np.random.default_rng(0)
    dense = data.matrix.toarray()[:30]
    dense[rng.random(dense.shape) < 0.5] = 0  # rows of many different lengths
    dense[[3, 17]] = 0  # and two empty ones
    history = sp.csr_array(dense)
    whole = model.fold_in(history)
    assert (whole[[3, 17]] == 0).all()
    monkeypatch.setattr(wrmf_module, "_FOLD_FLOATS", 1)  # one row per chunk
    single = model.fold_in(history)
    np.testing.assert_allclose(whole, single, rtol=1e-6, atol=1e-7)
    conf = model.confidence_matrix(history).toarray()
    np.testing.assert_allclose(
        whole, naive_fold_in(model.item_factors_, conf, 1.0), rtol=1e-4, atol=1e-5
    )


def test_new_user_is_scored_with_the_folded_in_vector(planted: Interactions) -> None:
    model = WRMF(**SMALL).fit(planted)
    row = planted.matrix[[5]]
    songs = planted.items.ids[row.indices]
    history = Interactions.from_arrays(["new"] * len(songs), songs, row.data)
    recs = model.recommend(["new"], 8, history=history)
    scores = model.fold_in(row) @ model.item_factors_.T
    scores[0, row.indices] = -np.inf
    np.testing.assert_array_equal(recs.items[0], np.argsort(-scores[0], kind="stable")[:8])


def test_fold_in_rejects_a_history_of_the_wrong_width(planted: Interactions) -> None:
    model = WRMF(**SMALL).fit(planted)
    with pytest.raises(ParameterError, match="columns"):
        model.fold_in(sp.csr_array((2, planted.n_items + 1), dtype=np.float32))


# faiss retrieval ----------------------------------------------------------------------------
def test_faiss_exact_top_k_equals_dense_top_k() -> None:
    data = random_interactions(150, 400, 15, seed=1)
    dense = WRMF(factors=16, alpha=2.0, regularization=1.0, iterations=5).fit(data)
    exact = dense.clone().set_params(retrieval="faiss-exact")
    exact.__dict__.update(dense.learned_state())  # the very same factors
    a = dense.recommend(data.users.ids, 20)
    b = exact.recommend(data.users.ids, 20)
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-4, atol=1e-5)
    # with an extra exclusion matrix and new (folded-in) users, at the index level
    idx = np.arange(40, dtype=np.int32)
    rows = data.rows(idx)
    extra = sp.csr_array(
        sp.random(40, data.n_items, density=0.05, random_state=0, dtype=np.float32)
    )
    new = np.full(40, -1, dtype=np.int32)
    for user_idx in (idx, new):
        da, ds = dense.recommend_idx(user_idx, rows, 15, exclude=extra, batch_size=7)
        fa, fs = exact.recommend_idx(user_idx, rows, 15, exclude=extra, batch_size=7)
        np.testing.assert_array_equal(da, fa)
        np.testing.assert_allclose(ds, fs, rtol=1e-4, atol=1e-5)
        banned = (rows + extra).toarray() > 0
        assert not banned[np.arange(40)[:, None], fa].any()


def test_faiss_ivf_recall_against_exact_with_many_probes() -> None:
    data = random_interactions(300, 4000, 10, seed=3)
    model = WRMF(factors=8, iterations=1, retrieval="faiss-exact").fit(data)
    rng = np.random.default_rng(0)
    model.item_factors_ = rng.standard_normal((4000, 32)).astype(np.float32)
    model.user_factors_ = rng.standard_normal((300, 32)).astype(np.float32)
    exact = model.recommend(data.users.ids, 10).items
    model.set_params(retrieval="faiss-ivf", nprobe=40)
    index = model.faiss_index()
    assert index.nlist == min(round(4 * np.sqrt(4000)), 4000 // 39)
    approx = model.recommend(data.users.ids, 10).items
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approx, strict=True)])
    assert recall >= 0.9, recall
    model.set_params(nprobe=1)
    low = model.recommend(data.users.ids, 10).items
    low_recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, low, strict=True)])
    assert low_recall < recall  # nprobe reaches the index without a rebuild
    assert model.faiss_index() is index


def test_index_is_lazy_cached_rebuilt_and_never_saved(planted: Interactions, tmp_path) -> None:
    model = WRMF(**SMALL, retrieval="faiss-exact").fit(planted)
    assert not model.__dict__.get("_caches")  # nothing built by fit
    first = model.faiss_index()
    assert model.faiss_index() is first
    assert not any("index" in name for name in model.learned_state())
    save_model(model, tmp_path / "m")
    with np.load(tmp_path / "m" / "arrays.npz", allow_pickle=False) as npz:
        stored = set(npz.files)
    assert {"user_factors_", "item_factors_"} <= stored
    assert not any("index" in name or "cache" in name for name in stored)
    loaded = load_model(tmp_path / "m")
    assert loaded.retrieval == "faiss-exact"
    a = model.recommend(planted.users.ids, 10)
    b = loaded.recommend(planted.users.ids, 10)
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert loaded.faiss_index() is not first  # rebuilt after loading
    model.set_params(retrieval="faiss-ivf")
    assert type(model.faiss_index()) is not type(first)
    model.fit(planted)  # a refit drops the old index
    model.set_params(retrieval="faiss-exact")
    assert model.faiss_index() is not first


@pytest.mark.parametrize("retrieval", ["dense", "faiss-exact"])
def test_empty_history_rows_get_the_cold_start_list(planted: Interactions, retrieval) -> None:
    model = WRMF(**SMALL, retrieval=retrieval).fit(planted)
    rows = sp.csr_array((3, planted.n_items), dtype=np.float32)
    top = int(np.argmax(model.fallback_scores_))
    extra = sp.csr_array(([1.0], ([1], [top])), shape=rows.shape)
    items, scores = model.recommend_idx(np.full(3, -1, np.int32), rows, 4, exclude=extra)
    best = np.sort(model.fallback_scores_)[::-1]  # ties at the cut may pick either item
    np.testing.assert_array_equal(scores[0], best[:4])
    np.testing.assert_array_equal(model.fallback_scores_[items[0]], best[:4])
    assert top not in items[1] and items[1][0] != items[0][0]
    np.testing.assert_array_equal(scores[1], best[1:5])


def test_dense_index_request_and_bad_retrieval_after_fit(planted: Interactions) -> None:
    model = WRMF(**SMALL).fit(planted)
    with pytest.raises(ParameterError, match="dense"):
        model.faiss_index()
    model.set_params(retrieval="annoy")
    with pytest.raises(ParameterError, match="retrieval"):
        model.recommend(planted.users.ids[:2], 3)
    model.set_params(retrieval="faiss-exact")
    with pytest.raises(ParameterError, match="k must be"):
        model.recommend(planted.users.ids[:2], 0)


# parameters ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {"factors": 0},
        {"factors": 2.5},
        {"factors": True},
        {"alpha": -1.0},
        {"alpha": float("nan")},
        {"regularization": 0.0},
        {"regularization": float("inf")},
        {"iterations": 0},
        {"confidence": "sqrt"},
        {"eps": 0.0},
        {"seed": -1},
        {"seed": "zero"},
        {"retrieval": "annoy"},
        {"nprobe": 0},
        {"nlist": 0},
    ],
)
def test_invalid_parameters_raise(planted: Interactions, params: dict) -> None:
    with pytest.raises(ParameterError):
        WRMF(**params).fit(planted)


def test_defaults_and_explicit_nlist() -> None:
    model = WRMF()
    assert model.get_params() == {
        "factors": 256,
        "alpha": 8.0,
        "regularization": 30.0,
        "iterations": 15,
        "confidence": "log",
        "eps": 1.0,
        "seed": 0,
        "retrieval": "dense",
        "nprobe": 16,
        "nlist": None,
    }
    data = planted_interactions(n_users=20, n_items=100)
    model = WRMF(**SMALL, retrieval="faiss-ivf", nlist=3, nprobe=2).fit(data)
    assert model.faiss_index().nlist == 3
    assert model.recommend(data.users.ids, 5).items.shape == (20, 5)
