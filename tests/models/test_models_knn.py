import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from contract import RecommenderContract

from segue import Interactions, ParameterError
from segue.data.split import split_listens
from segue.metrics.evaluate import evaluate_lists
from segue.models import knn as knn_module
from segue.models.knn import ItemKNN, UserKNN

SIMILARITIES = ["cosine", "bm25", "tfidf"]


# the contract, for several configurations -----------------------------------------------------
class TestItemKNNDefaults(RecommenderContract):
    def make_model(self) -> ItemKNN:
        return ItemKNN()


class TestItemKNNCosineFewNeighbors(RecommenderContract):
    def make_model(self) -> ItemKNN:
        return ItemKNN(similarity="cosine", neighbors=6, shrinkage=0.0, binarize=False)


class TestItemKNNBM25(RecommenderContract):
    def make_model(self) -> ItemKNN:
        return ItemKNN(similarity="bm25", neighbors=8, bm25_k1=1.5, bm25_b=0.6, binarize=False)


class TestItemKNNTFIDFShrunk(RecommenderContract):
    def make_model(self) -> ItemKNN:
        return ItemKNN(similarity="tfidf", neighbors=5, shrinkage=2.0)


class TestUserKNNDefaults(RecommenderContract):
    folds_in_exactly = False  # a training user is never its own neighbour; a newcomer is

    def make_model(self) -> UserKNN:
        return UserKNN()


class TestUserKNNCosineShrunk(RecommenderContract):
    folds_in_exactly = False

    def make_model(self) -> UserKNN:
        return UserKNN(similarity="cosine", neighbors=5, shrinkage=1.0)


class TestUserKNNTFIDFCounts(RecommenderContract):
    folds_in_exactly = False

    def make_model(self) -> UserKNN:
        return UserKNN(similarity="tfidf", neighbors=10, binarize=False)


# reference implementations (dense, float64, loops) ---------------------------------------------
def random_counts(seed: int = 0, n_users: int = 60, n_items: int = 35) -> Interactions:
    """Random listen counts with a wide range, so that similarities are practically tie-free."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.25) * rng.integers(1, 500, (n_users, n_items))
    dense[np.arange(n_users), rng.integers(0, n_items, n_users)] += 1  # nobody empty
    dense[rng.integers(0, n_users, n_items), np.arange(n_items)] += 1  # no item unheard
    rows, cols = np.nonzero(dense)
    return Interactions.from_arrays(
        [f"u{r:03d}" for r in rows], [f"i{c:03d}" for c in cols], dense[rows, cols]
    )


def naive_weights(x, similarity, k1=1.2, b=0.75, idf=None, mean_length=None):
    """Rows of ``x`` (entities x features) weighted as the module docstring says."""
    held = x > 0
    if idf is None:
        idf = np.log(x.shape[0]) - np.log1p(held.sum(axis=0))
        mean_length = x.sum(axis=1).mean()
    if similarity == "bm25":
        length = (1 - b) + b * x.sum(axis=1) / mean_length
        w = x * (k1 + 1) / (k1 * length[:, None] + x) * idf[None, :]
    elif similarity == "tfidf":
        w = np.sqrt(x) * idf[None, :]
    else:
        w = x.astype(np.float64)
    return np.where(held, w, 0.0), idf, mean_length


def naive_similarity(wa, wb, similarity, shrinkage):
    dot = wa @ wb.T
    norms = np.linalg.norm(wa, axis=1)[:, None] * np.linalg.norm(wb, axis=1)[None, :]
    if similarity == "bm25":
        return dot * norms / (norms + shrinkage) if shrinkage else dot
    return np.divide(dot, norms + shrinkage, out=np.zeros_like(dot), where=norms + shrinkage > 0)


def naive_top(sim, candidates, k, exclude=None):
    """Keep the k largest candidate entries of each row (after removing ``exclude[r]``)."""
    out = np.zeros_like(sim)
    for r in range(sim.shape[0]):
        cand = np.flatnonzero(candidates[r])
        if exclude is not None:
            cand = cand[cand != exclude[r]]
        best = cand[np.argsort(-sim[r, cand], kind="stable")[:k]]
        out[r, best] = sim[r, best]
    return out


def naive_item_similarity(x, similarity, k, shrinkage=0.0, k1=1.2, b=0.75):
    w, _, _ = naive_weights(x.T, similarity, k1, b)
    sim = naive_similarity(w, w, similarity, shrinkage)
    held = (x > 0).astype(np.int64)
    top = naive_top(sim, held.T @ held > 0, k)  # the item itself is a candidate, as in implicit
    np.fill_diagonal(top, 0.0)
    return top


def naive_user_scores(x_train, x_rows, user_idx, similarity, k, shrinkage=0.0):
    w, idf, mean_length = naive_weights(x_train, similarity)
    wr, _, _ = naive_weights(x_rows, similarity, idf=idf, mean_length=mean_length)
    sim = naive_similarity(wr, w, similarity, shrinkage)
    shares = (x_rows > 0).astype(np.int64) @ (x_train > 0).T.astype(np.int64) > 0
    return naive_top(sim, shares, k, exclude=user_idx) @ w


# ItemKNN ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("similarity", SIMILARITIES)
@pytest.mark.parametrize("shrinkage", [0.0, 4.0])
def test_item_similarity_matches_the_definition(similarity: str, shrinkage: float) -> None:
    data = random_counts()
    x = data.matrix.toarray().astype(np.float64)
    for k in (1, 4, 12, 100):
        model = ItemKNN(similarity=similarity, neighbors=k, shrinkage=shrinkage, binarize=False)
        got = model.fit(data).similarity_
        expected = naive_item_similarity(x, similarity, k, shrinkage)
        np.testing.assert_allclose(got.toarray(), expected, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_item_scores_are_history_times_similarity(similarity: str) -> None:
    data = random_counts(seed=3)
    for binarize in (False, True):
        model = ItemKNN(similarity=similarity, neighbors=7, binarize=binarize).fit(data)
        x = data.matrix.toarray()
        h = (x > 0).astype(np.float64) if binarize else x
        idx = np.arange(data.n_users, dtype=np.int32)
        scores = model.score(idx, data.matrix)
        expected = h @ model.similarity_.toarray()
        np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("similarity", SIMILARITIES)
@pytest.mark.parametrize("k", [1, 3, 7])
def test_neighbors_bound_every_row_and_self_is_dropped(similarity: str, k: int) -> None:
    data = random_counts(seed=1)
    sim = ItemKNN(similarity=similarity, neighbors=k, shrinkage=0.0).fit(data).similarity_
    assert sim.shape == (data.n_items, data.n_items) and sim.dtype == np.float32
    assert (sim.diagonal() == 0).all()
    per_row = np.diff(sim.indptr)
    if similarity == "bm25":
        assert per_row.max() <= k
    else:  # a cosine is largest with itself: implicit's K holds the item and K - 1 others
        assert (per_row == k - 1).all()


def _implicit_recommender(similarity: str, k: int, **bm25):
    nn = pytest.importorskip("implicit.nearest_neighbours")
    if similarity == "bm25":
        return nn.BM25Recommender(K=k, num_threads=1, **bm25)
    cls = {"cosine": nn.CosineRecommender, "tfidf": nn.TFIDFRecommender}[similarity]
    return cls(K=k, num_threads=1)


def _tied(scores: np.ndarray, rtol: float = 1e-5) -> np.ndarray:
    """Positions whose score equals (within rtol) the score just before or after."""
    close = np.isclose(scores[:, 1:], scores[:, :-1], rtol=rtol, atol=0)
    tied = np.zeros(scores.shape, dtype=bool)
    tied[:, 1:] |= close
    tied[:, :-1] |= close
    return tied


@pytest.mark.parametrize("similarity", SIMILARITIES)
@pytest.mark.parametrize("k", [5, 12])
def test_item_knn_recommends_what_implicit_recommends(similarity: str, k: int) -> None:
    bm25 = {"K1": 1.5, "B": 0.6} if similarity == "bm25" else {}
    reference = _implicit_recommender(similarity, k, **bm25)
    data = random_counts(seed=2)
    user_items = sp.csr_matrix(data.matrix)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*expects CSR input")  # implicit's own .T
        reference.fit(user_items, show_progress=False)
    ref_items, ref_scores = reference.recommend(
        np.arange(data.n_users), user_items, N=10, filter_already_liked_items=True
    )
    model = ItemKNN(
        similarity=similarity,
        neighbors=k,
        shrinkage=0.0,
        bm25_k1=bm25.get("K1", 1.2),
        bm25_b=bm25.get("B", 0.75),
        binarize=False,
    ).fit(data)
    # the same similarity matrix, but for implicit's self entries
    expected = reference.similarity.toarray()
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(model.similarity_.toarray(), expected, rtol=1e-5, atol=1e-7)
    # the same top-10 lists: implicit pads a short list with seen items scored 0, segue with
    # unseen ones scored 0, so compare where implicit's score is positive and not tied
    recs = model.recommend(data.users.ids, 10)
    scored = ref_scores > 0
    np.testing.assert_allclose(recs.scores[scored], ref_scores[scored], rtol=1e-5)
    compare = scored & ~_tied(ref_scores)
    assert compare.mean() > 0.8
    np.testing.assert_array_equal(recs.items[compare], ref_items[compare])


def test_the_parity_groups_are_recommended(planted: Interactions) -> None:
    for model in (ItemKNN(), UserKNN(), ItemKNN(similarity="bm25", shrinkage=0.0)):
        recs = model.fit(planted).recommend(planted.users.ids, 5)
        parity_user = np.array([int(u[-3:]) % 2 for u in recs.users])
        parity_item = np.array([[int(s[-3:]) % 2 for s in items] for _, items in recs.lists()])
        assert (parity_item == parity_user[:, None]).mean() > 0.9, model


# UserKNN ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("similarity", SIMILARITIES)
@pytest.mark.parametrize("shrinkage", [0.0, 3.0])
def test_user_scores_match_the_definition(similarity: str, shrinkage: float) -> None:
    data = random_counts(seed=4)
    x = data.matrix.toarray().astype(np.float64)
    idx = np.arange(data.n_users, dtype=np.int32)
    for k in (1, 6, 500):
        model = UserKNN(similarity=similarity, neighbors=k, shrinkage=shrinkage, binarize=False)
        model.fit(data)
        # training users never count themselves among their neighbours
        got = model.score(idx, data.matrix)
        expected = naive_user_scores(x, x, idx, similarity, k, shrinkage)
        np.testing.assert_allclose(got, expected, rtol=2e-4, atol=1e-4 * np.abs(expected).max())
        # folded-in rows (-1) compare with every training user, on the training idf
        rng = np.random.default_rng(k)
        new = x[:7] * rng.integers(0, 2, x[:7].shape)
        new[:, 0] += 3.0  # no empty row
        folded = model.score(np.full(7, -1, dtype=np.int32), sp.csr_array(new))
        expected = naive_user_scores(x, new, np.full(7, -1), similarity, k, shrinkage)
        np.testing.assert_allclose(folded, expected, rtol=2e-4, atol=1e-4 * np.abs(expected).max())


def test_user_knn_fold_in_of_a_training_history_counts_that_user() -> None:
    data = random_counts(seed=5)
    params = {"similarity": "cosine", "shrinkage": 0.0}
    model = UserKNN(neighbors=4, **params).fit(data)
    row = data.matrix[[0]]
    as_user = model.score(np.array([0], dtype=np.int32), row)
    as_newcomer = model.score(np.array([-1], dtype=np.int32), row)
    # the newcomer's nearest user is user 0 itself (cosine 1), so it keeps only 3 others ...
    assert not np.allclose(as_user, as_newcomer)
    # ... and with one neighbour more it matches user 0 on every item user 0 has not heard
    model_more = UserKNN(neighbors=5, **params).fit(data)
    unseen = np.ones(data.n_items, dtype=bool)
    unseen[row.indices] = False
    newcomer_more = model_more.score(np.array([-1], dtype=np.int32), row)
    assert np.allclose(newcomer_more[0, unseen], as_user[0, unseen], rtol=1e-5)


# memory blocking ------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [ItemKNN, UserKNN])
def test_results_do_not_depend_on_the_block_size(cls, planted: Interactions, monkeypatch) -> None:
    # binary cosine on the planted data has many exact ties: they must be broken the same way
    params = {"similarity": "cosine", "neighbors": 3, "shrinkage": 0.0, "binarize": True}
    idx = np.arange(planted.n_users, dtype=np.int32)
    reference = cls(**params).fit(planted)
    ref_scores = reference.score(idx, planted.matrix)
    for block_pairs in (1, 2 * planted.n_items, 7 * planted.n_items):
        monkeypatch.setattr(knn_module, "_BLOCK_PAIRS", block_pairs)
        model = cls(**params).fit(planted)
        np.testing.assert_array_equal(model.score(idx, planted.matrix), ref_scores)
        if cls is ItemKNN:
            for part in ("data", "indices", "indptr"):
                got = getattr(model.similarity_, part)
                np.testing.assert_array_equal(got, getattr(reference.similarity_, part))


def test_row_blocks_bound_the_work_of_each_product_and_cover_every_row(monkeypatch) -> None:
    rng = np.random.default_rng(1)
    # long-tailed rows: a few rows share many columns, most share few
    tail = sp.random_array((297, 80), density=0.05, rng=rng, format="csr")
    left = sp.csr_array(sp.vstack([sp.csr_array(np.ones((3, 80))), tail], format="csr"))
    right = sp.csr_array(sp.random_array((80, 500), density=0.1, rng=rng, format="csr"))
    monkeypatch.setattr(knn_module, "_BLOCK_PAIRS", 2_000)
    ranges = knn_module._row_blocks(left, right)
    assert ranges[0][0] == 0 and ranges[-1][1] == left.shape[0]
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    work = (sp.csr_array(left != 0).astype(np.int64) @ np.diff(right.indptr)).astype(np.int64)
    for lo, hi in ranges:
        assert hi - lo == 1 or work[lo:hi].sum() <= 2_000  # a block is one row or within budget
        assert sp.csr_array(left[lo:hi] @ right).nnz <= max(2_000, work[lo:hi].sum())
    assert len(ranges) < left.shape[0] // 4  # cheap rows share blocks: not one row a block
    assert any(hi - lo == 1 and work[lo] > 2_000 for lo, hi in ranges)  # a heavy row alone


def test_top_per_row_dense_and_sparse_rows_match_a_naive_selection() -> None:
    rng = np.random.default_rng(0)
    n_rows, n_cols, k = 30, 40, 5
    # every third row more than half full (dense path), the others sparser (sorted path)
    density = np.where(np.arange(n_rows) % 3 == 0, 0.9, 0.4 * rng.random(n_rows))
    mask = rng.random((n_rows, n_cols)) < density[:, None]
    values = np.where(mask, rng.normal(size=(n_rows, n_cols)), 0.0).astype(np.float32)
    m = sp.csr_array(values)  # negative values included
    got = knn_module._top_per_row(sp.csr_array(m), k).toarray()
    expected = naive_top(m.toarray(), m.toarray() != 0, k)
    np.testing.assert_array_equal(got, expected)
    counts = np.diff(m.indptr)
    assert (counts > n_cols // 2).any() and ((counts > k) & (counts <= n_cols // 2)).any()


# parameters -----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [ItemKNN, UserKNN])
@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"similarity": "jaccard"}, "similarity"),
        ({"neighbors": 0}, "neighbors"),
        ({"neighbors": 2.5}, "neighbors"),
        ({"neighbors": True}, "neighbors"),
        ({"shrinkage": -1.0}, "shrinkage"),
        ({"shrinkage": float("nan")}, "shrinkage"),
        ({"bm25_k1": -0.5}, "bm25_k1"),
        ({"bm25_k1": "1.2"}, "bm25_k1"),
        ({"bm25_b": 1.5}, "bm25_b"),
        ({"binarize": "yes"}, "binarize"),
    ],
)
def test_invalid_parameters_raise(cls, planted: Interactions, params: dict, name: str) -> None:
    with pytest.raises(ParameterError, match=name):
        cls(**params).fit(planted)


def test_numpy_integers_and_zero_bm25_parameters_are_accepted(planted: Interactions) -> None:
    ItemKNN(neighbors=np.int64(4), bm25_k1=0, bm25_b=0.0, similarity="bm25").fit(planted)
    UserKNN(neighbors=np.int32(4), bm25_b=1).fit(planted)


# real data ------------------------------------------------------------------------------------
@pytest.mark.realdata
def test_lastfm_accuracy_floor(shared_data: Path) -> None:
    df = pd.read_csv(shared_data / "lastfm-hetrec2011-2k/user_artists.dat", sep="\t", dtype=str)
    df.columns = ["user_id", "item_id", "count"]
    split = split_listens(df.astype({"count": "int64"}), seed=0)
    train = Interactions.from_arrays(
        split.listens["user_id"], split.listens["item_id"], split.listens["count"]
    )
    answers = Interactions.from_arrays(split.answers["user_id"], split.answers["item_id"])
    for model in (ItemKNN(), UserKNN()):  # measured: 0.421 and 0.439 (popularity: 0.19)
        recs = model.fit(train).recommend(split.targets, 100)
        result = evaluate_lists(dict(recs.lists()), answers, [100], train=train)
        assert result.summary["seen_share"] == 0.0
        assert result.summary["ndcg@100"] >= 0.38, (model, result.summary["ndcg@100"])
