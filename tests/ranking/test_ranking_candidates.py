"""Candidates: per-source top-N merged by item index; recall per source and merged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from segue.data.kinds import ItemKind
from segue.data.playlists import Playlists
from segue.data.vocab import IdMap
from segue.exceptions import ParameterError
from segue.inference import continue_playlists, playlist_interactions
from segue.models.knn import ItemKNN
from segue.models.popularity import MostPopular
from segue.ranking.candidates import (
    RRF_K,
    _fusion_order,
    answer_matrix,
    candidate_recall,
    fit_fusion_weights,
    fusion_recall,
    merge_candidates,
    pair_labels,
    retrieve_candidates,
)


def _playlists(rows: dict, names: dict) -> Playlists:
    entries = pd.DataFrame(
        [(pid, pos, t) for pid, ts in rows.items() for pos, t in enumerate(ts)],
        columns=["pid", "pos", "track"],
    )
    tracks = pd.DataFrame({"track": sorted(set(entries["track"]))})
    table = pd.DataFrame({"pid": list(names), "name": list(names.values())})
    return Playlists(playlists=table, entries=entries, tracks=tracks)


@pytest.fixture
def fitted():
    rng = np.random.default_rng(0)
    rows = {p: [f"t{i}" for i in rng.choice(40, 8, replace=False)] for p in range(60)}
    train = _playlists(rows, {p: f"mix {p % 3}" for p in range(60)})
    inter = playlist_interactions(train, with_titles=True)
    models = {"itemknn": ItemKNN().fit(inter), "pop": MostPopular().fit(inter)}
    queries = _playlists(
        {100: ["t1", "t2"], 101: ["t3"]}, {100: "mix 1", 101: "mix 2", 102: "mix 0"}
    )
    return models, queries


def test_sources_match_continue_playlists_and_exclude_seeds_and_titles(fitted):
    models, queries = fitted
    cands = retrieve_candidates(models, queries, 10)
    items = models["pop"].items_
    titles = set(items.columns(ItemKind.TITLE_WORD, ItemKind.TITLE).tolist())
    for j, name in enumerate(cands.sources):
        batch = next(continue_playlists(models[name], queries, 10))
        for row in range(len(cands.pids)):
            sel = (cands.query == row) & ~np.isnan(cands.rank[:, j])
            order = np.argsort(cands.rank[sel, j])
            got = items.ids[cands.item[sel][order]].tolist()
            assert got == batch.tracks[row]
    assert not titles & set(cands.item.tolist())
    seeds = {0: {"t1", "t2"}, 1: {"t3"}}
    for row, bad in seeds.items():
        assert not bad & set(items.ids[cands.item[cands.query == row]].tolist())
    # de-duplicated, sorted by query, each query cut to n by top()
    keys = cands.query.astype(np.int64) * len(items) + cands.item
    assert len(np.unique(keys)) == len(keys) and np.all(np.diff(cands.query) >= 0)
    assert cands.top(5).group_sizes().tolist() == [5, 5, 5]


def test_merge_and_recall_by_hand():
    items = IdMap(np.array(list("abcdef"), dtype=object), kind="item")
    hist = sp.csr_array((2, 6), dtype=np.float32)
    top_a = np.array([[0, 1, 2], [3, -1, -1]], dtype=np.int32)
    top_b = np.array([[2, 4, 5], [3, 5, 0]], dtype=np.int32)
    score = np.ones((2, 3), dtype=np.float32)
    c = merge_candidates(
        ["A", "B"], [top_a, top_b], [score, score], 3, items, hist, np.array([7, 8])
    )
    # query 0: c (A3, B1) first by fusion; union a b c e f
    assert c.group_sizes().tolist() == [5, 3]
    assert items.ids[c.item[c.query == 0]][0] == "c"
    answers = {7: ["a", "f", "zzz"], 8: ["b"]}
    truth = answer_matrix(answers, c.pids, items)
    assert truth.nnz == 3  # the unknown track is dropped
    labels = pair_labels(c, truth)
    assert labels.sum() == 2  # a and f for query 0; b was retrieved by nobody for query 1
    recall = candidate_recall(c, answers, pd.Series({7: 1, 8: 2}), cutoffs=(1, 3))
    # query 0: A@1 = {a} -> 1/2; B@3 = {c, e, f} -> 1/2; query 1 recall 0
    assert recall.loc["1", "A@1"] == 0.5 and recall.loc["1", "B@3"] == 0.5
    assert recall.loc["all", "A@1"] == 0.25 and recall.loc["2", "merged@3"] == 0.0
    assert recall.loc["1", "merged@3"] == 0.5  # c, a, ... the merged top 3 hold a only


def test_needs_models_sharing_items(fitted):
    models, queries = fitted
    with pytest.raises(ParameterError):
        retrieve_candidates({}, queries)
    other = _playlists({0: ["x", "y"], 1: ["y", "z"]}, {0: "a", 1: "b"})
    stranger = MostPopular().fit(playlist_interactions(other))
    with pytest.raises(ParameterError):
        retrieve_candidates({**models, "stranger": stranger}, queries)


# --- weighted fusion -------------------------------------------------------------------------


def _random_lists(rng: np.random.Generator, n_q: int, n_src: int, k: int, n_items: int):
    """Per-source (n_q, k) top lists with -1 padding, and unit-free scores."""
    tops, scores = [], []
    for _ in range(n_src):
        top = np.full((n_q, k), -1, dtype=np.int32)
        for q in range(n_q):
            m = int(rng.integers(0, k + 1))
            top[q, :m] = rng.choice(n_items, m, replace=False)
        tops.append(top)
        scores.append(rng.random((n_q, k)).astype(np.float32))
    return tops, scores


def _merge(tops, scores, n_items, n=3, weights=None, seconds=None):
    items = IdMap(np.array([f"t{i}" for i in range(n_items)], dtype=object), kind="item")
    n_q = tops[0].shape[0]
    hist = sp.csr_array((n_q, n_items), dtype=np.float32)
    names = [f"s{j}" for j in range(len(tops))]
    pids = np.arange(100, 100 + n_q)
    return merge_candidates(names, tops, scores, n, items, hist, pids, seconds, weights)


def _plain_rrf_order(c) -> np.ndarray:
    """The pre-weights ordering rule, verbatim, applied to a set's pairs."""
    best = np.nanmin(c.rank, axis=1)
    fused = np.nansum(1.0 / (RRF_K + c.rank), axis=1)
    return np.lexsort((c.item, best, -fused, c.query))


def _pairs(c) -> list[tuple[int, int]]:
    return list(zip(c.query.tolist(), c.item.tolist(), strict=True))


def _random_answers(rng, c, n_items):
    return {
        p: [f"t{i}" for i in rng.choice(n_items, int(rng.integers(0, 4)), replace=False)] + ["zzz"]
        for p in c.pids
    }


sizes = st.tuples(
    st.integers(0, 2**32 - 1),  # seed
    st.integers(1, 4),  # queries
    st.integers(1, 3),  # sources
    st.integers(1, 6),  # per-source k
    st.integers(6, 14),  # items
)


@settings(max_examples=40, deadline=None)
@given(sizes)
def test_weights_none_equal_all_ones_equal_plain_rrf(size):
    seed, n_q, n_src, k, n_items = size
    rng = np.random.default_rng(seed)
    tops, scores = _random_lists(rng, n_q, n_src, k, n_items)
    plain = _merge(tops, scores, n_items)
    ones = _merge(tops, scores, n_items, weights=[1.0] * n_src)
    assert _pairs(plain) == _pairs(ones)
    assert np.array_equal(_plain_rrf_order(plain), np.arange(len(plain)))
    assert plain.weights.dtype == np.float64 and plain.weights.tolist() == [1.0] * n_src


@settings(max_examples=40, deadline=None)
@given(sizes, st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 3.7]), min_size=3, max_size=3))
def test_reorder_equals_merge_with_the_same_weights(size, raw):
    seed, n_q, n_src, k, n_items = size
    w = raw[:n_src]
    if not any(w):
        w[0] = 1.0
    rng = np.random.default_rng(seed)
    tops, scores = _random_lists(rng, n_q, n_src, k, n_items)
    plain = _merge(tops, scores, n_items, seconds={"s0": 1.5})
    merged = _merge(tops, scores, n_items, weights=w)
    again = plain.reorder(w)
    assert _pairs(again) == _pairs(merged)
    np.testing.assert_array_equal(again.rank, merged.rank)
    np.testing.assert_array_equal(again.score, merged.score)
    assert again.weights.tolist() == w and again.n == plain.n and again.sources == plain.sources
    assert again.history is plain.history and again.seconds == {"s0": 1.5}
    assert _pairs(again.reorder()) == _pairs(plain)  # and back to plain RRF
    assert again.top(2).weights.tolist() == w  # take() keeps the weights


def test_zero_weight_demotes_items_only_that_source_retrieved():
    # query 0: A retrieves a b, B retrieves c d a; with B muted, c and d sort last
    tops = [np.array([[0, 1, -1]], dtype=np.int32), np.array([[2, 3, 0]], dtype=np.int32)]
    scores = [np.ones((1, 3), dtype=np.float32)] * 2
    plain = _merge(tops, scores, 6)
    assert plain.item.tolist() == [0, 2, 1, 3]  # a (A1 + B3), c (B1 beats b A2 by item), b, d
    muted = _merge(tops, scores, 6, weights=[1.0, 0.0])
    assert muted.item.tolist() == [0, 1, 2, 3]  # c and d: fused 0, then best rank, then item
    assert muted.top(2).item.tolist() == [0, 1]
    with pytest.raises(ParameterError):
        _merge(tops, scores, 6, weights=[0.0, 0.0])
    with pytest.raises(ParameterError):
        _merge(tops, scores, 6, weights=[1.0, -1.0])
    with pytest.raises(ParameterError):
        plain.reorder([1.0])


def test_fusion_order_lexsort_fallback_matches_packed_key():
    rng = np.random.default_rng(3)
    query = np.sort(rng.integers(0, 5, 200)).astype(np.int32)
    fused = rng.choice(np.array([0.0, 0.01, 0.02, 0.5], dtype=np.float32), 200)
    tiebreak = rng.permutation(200).astype(np.int64)
    packed = _fusion_order(query, fused, tiebreak)
    wide = _fusion_order(query, fused, tiebreak + (1 << 40))  # too wide for one int64 key
    assert np.array_equal(packed, wide)
    assert np.array_equal(packed, np.lexsort((tiebreak, -fused, query)))


def test_fit_mutes_a_noise_source():
    # 12 queries over 100 items: "good" ranks each query's 4 answers first, "noise" retrieves
    # other items only, so plain RRF lets noise take half of the top 4
    rng = np.random.default_rng(1)
    n_q, n_items, k = 12, 100, 8
    noise = np.empty((n_q, k), dtype=np.int32)
    good = np.empty((n_q, k), dtype=np.int32)
    answers = {}
    for q in range(n_q):
        perm = rng.permutation(n_items)
        good[q], noise[q] = perm[:k], perm[k : 2 * k]
        answers[100 + q] = [f"t{i}" for i in perm[:4]]
    scores = [np.ones((n_q, k), dtype=np.float32)] * 2
    c = _merge([noise, good], scores, n_items, n=4)
    w = fit_fusion_weights(c, answers, 4)
    assert w.tolist() == [0.0, 1.0]  # the best source is fixed at 1, noise gets the grid minimum
    assert fusion_recall(c, answers, 4, w) == 1.0 > fusion_recall(c, answers, 4)
    assert candidate_recall(c.reorder(w), answers, cutoffs=(4,)).loc["all", "merged@4"] == 1.0
    assert fit_fusion_weights(c, answers, 4, rounds=0).tolist() == [1.0, 1.0]
    assert fit_fusion_weights(c, {}, 4).tolist() == [1.0, 1.0]  # nothing to fit on


@settings(max_examples=30, deadline=None)
@given(sizes, st.integers(1, 5))
def test_fitted_weights_never_lose_to_all_ones(size, n):
    seed, n_q, n_src, k, n_items = size
    rng = np.random.default_rng(seed)
    tops, scores = _random_lists(rng, n_q, n_src, k, n_items)
    c = _merge(tops, scores, n_items, n=n)
    answers = _random_answers(rng, c, n_items)
    w = fit_fusion_weights(c, answers, n)
    assert w.dtype == np.float64 and w.shape == (n_src,) and (w == 1.0).any()
    fitted, ones = fusion_recall(c, answers, n, w), fusion_recall(c, answers, n)
    assert fitted >= ones
    # the fast objective is the merged recall of the reordered set
    table = candidate_recall(c.reorder(w), answers, cutoffs=(n,))
    expected = table.loc["all", f"merged@{n}"] if len(table.columns) else 0.0
    assert fitted == pytest.approx(0.0 if np.isnan(expected) else expected)
