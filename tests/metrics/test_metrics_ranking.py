"""Ranking metrics: hand-computed values, edge cases and batching invariance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from segue.exceptions import ParameterError
from segue.metrics.ranking import (
    all_metrics,
    average_precision_at_k,
    catalog_coverage,
    hit_matrix,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

N_ITEMS = 10
L2 = 1 / math.log2(2)  # 1.0: discount at rank 1
L3 = 1 / math.log2(3)  # 0.6309...: rank 2
L4 = 1 / math.log2(4)  # 0.5: rank 3


def truth_of(relevant: list[list[int]], n_items: int = N_ITEMS) -> sp.csr_array:
    rows = [u for u, items in enumerate(relevant) for _ in items]
    cols = [i for items in relevant for i in items]
    data = np.full(len(rows), 7.0)  # weights are ignored: binary relevance
    return sp.csr_array((data, (rows, cols)), shape=(len(relevant), n_items))


# user 0: relevant {1, 4, 7} (R=3); top-3 = 4 (hit), 2, 1 (hit)         -> hits 1 0 1
# user 1: relevant {5}       (R=1 < k); top-3 = 0, 5 (hit), 3            -> hits 0 1 0
# user 2: nothing relevant                                               -> NaN everywhere
# user 3: relevant {0, 9}    (R=2); top-3 = pad, 9 (hit), pad             -> hits 0 1 0
# user 4: relevant {3, 8};   top-3 = 6, 2, 0                              -> no hit
# user 5: relevant {1,2,3,4} (R=4 > k); list has 2 items: 5, 1 (hit)      -> hits 0 1 (0 pad)
RECS = np.array(
    [
        [4, 2, 1, 7, 9],
        [0, 5, 3, -1, -1],
        [1, 2, 3, -1, -1],
        [-1, 9, -1, 0, -1],
        [6, 2, 0, 3, 8],
        [5, 1, -1, -1, -1],
    ]
)
TRUTH = truth_of([[1, 4, 7], [5], [], [0, 9], [3, 8], [1, 2, 3, 4]])
NAN = math.nan

EXPECTED_AT_3 = {
    # DCG / IDCG, IDCG over min(R, 3) hits
    "ndcg": [
        (L2 + L4) / (L2 + L3 + L4),  # 1.5 / 2.1309 = 0.7039
        L3 / L2,  # R=1: ideal is one hit at rank 1 -> 0.6309
        NAN,
        L3 / (L2 + L3),  # 0.6309 / 1.6309 = 0.3869
        0.0,
        L3 / (L2 + L3 + L4),  # R=4 -> min(4, 3)=3 ideal hits: 0.6309 / 2.1309 = 0.2961
    ],
    # hits / R
    "recall": [2 / 3, 1 / 1, NAN, 1 / 2, 0 / 2, 1 / 4],
    # hits / k (short lists are padded with misses, still divided by k=3)
    "precision": [2 / 3, 1 / 3, NAN, 1 / 3, 0.0, 1 / 3],
    # sum of precision@i at the hits / min(R, k)
    "map": [
        (1 / 1 + 2 / 3) / 3,  # hits at ranks 1 and 3: (1 + 2/3) / 3 = 5/9
        (1 / 2) / 1,  # hit at rank 2, R=1
        NAN,
        (1 / 2) / 2,  # hit at rank 2, R=2
        0.0,
        (1 / 2) / 3,  # hit at rank 2, min(R=4, k=3) = 3
    ],
    "hit_rate": [1.0, 1.0, NAN, 1.0, 0.0, 1.0],
}

FUNCS = {
    "ndcg": ndcg_at_k,
    "recall": recall_at_k,
    "precision": precision_at_k,
    "map": average_precision_at_k,
    "hit_rate": hit_rate_at_k,
}


@pytest.mark.parametrize("name", list(FUNCS))
def test_hand_computed_at_3(name: str) -> None:
    got = FUNCS[name](RECS, TRUTH, 3)
    assert got.dtype == np.float64 and got.shape == (6,)
    np.testing.assert_allclose(got, EXPECTED_AT_3[name], rtol=1e-12, equal_nan=True)


def test_hand_computed_numbers_spelled_out() -> None:
    # guard against a wrong formula in EXPECTED_AT_3 itself
    ndcg = ndcg_at_k(RECS, TRUTH, 3)
    assert ndcg[0] == pytest.approx(1.5 / 2.1309297535714578)
    assert ndcg[1] == pytest.approx(0.6309297535714575)
    assert ndcg[3] == pytest.approx(0.38685280723454163)
    assert average_precision_at_k(RECS, TRUTH, 3)[0] == pytest.approx(5 / 9)


def test_at_1() -> None:
    # top-1: user 0 -> 4 (hit); user 1 -> 0; user 3 -> pad; user 4 -> 6; user 5 -> 5
    np.testing.assert_allclose(
        ndcg_at_k(RECS, TRUTH, 1), [1, 0, NAN, 0, 0, 0], equal_nan=True
    )  # ideal with min(R, 1) = 1 hit at rank 1
    np.testing.assert_allclose(
        recall_at_k(RECS, TRUTH, 1), [1 / 3, 0, NAN, 0, 0, 0], equal_nan=True
    )
    np.testing.assert_allclose(
        average_precision_at_k(RECS, TRUTH, 1), [1, 0, NAN, 0, 0, 0], equal_nan=True
    )  # 1 / min(3, 1)


def test_at_5_all_columns() -> None:
    # user 0: 4 h, 2, 1 h, 7 h, 9 -> hits at 1, 3, 4; R=3
    #   DCG = 1 + 1/log2(4) + 1/log2(5); IDCG = 1 + 1/log2(3) + 1/log2(4)
    #   AP = (1/1 + 2/3 + 3/4) / min(3, 5)
    # user 4: 6, 2, 0, 3 h, 8 h -> hits at 4, 5; R=2
    #   DCG = 1/log2(5) + 1/log2(6); IDCG = 1 + 1/log2(3); AP = (1/4 + 2/5) / 2
    ndcg = ndcg_at_k(RECS, TRUTH, 5)
    assert ndcg[0] == pytest.approx((1 + 0.5 + 1 / math.log2(5)) / (1 + L3 + 0.5))
    assert ndcg[4] == pytest.approx((1 / math.log2(5) + 1 / math.log2(6)) / (1 + L3))
    ap = average_precision_at_k(RECS, TRUTH, 5)
    assert ap[0] == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    assert ap[4] == pytest.approx((1 / 4 + 2 / 5) / 2)
    assert recall_at_k(RECS, TRUTH, 5)[0] == 1.0
    assert precision_at_k(RECS, TRUTH, 5)[4] == pytest.approx(2 / 5)


def test_k_larger_than_list_width() -> None:
    # recs has 5 columns; k=8 pads with misses: precision divides by 8
    # user 0 has 3 hits in 5 slots; ideal DCG over min(3, 8) = 3 hits
    assert precision_at_k(RECS, TRUTH, 8)[0] == pytest.approx(3 / 8)
    np.testing.assert_allclose(ndcg_at_k(RECS, TRUTH, 8), ndcg_at_k(RECS, TRUTH, 5), equal_nan=True)
    np.testing.assert_allclose(
        recall_at_k(RECS, TRUTH, 8), recall_at_k(RECS, TRUTH, 5), equal_nan=True
    )


def test_perfect_ranking_scores_one() -> None:
    truth = truth_of([[3, 1], [0, 2, 4, 6]])
    recs = np.array([[1, 3, 5, 7], [6, 4, 2, 0]])
    for k in (1, 2, 3, 4):
        np.testing.assert_allclose(ndcg_at_k(recs, truth, k), 1.0)
        np.testing.assert_allclose(average_precision_at_k(recs, truth, k), 1.0)


def test_weights_and_duplicate_truth_entries_ignored() -> None:
    # the same (user, item) stored twice is one relevant item, whatever the weights
    truth = sp.coo_array(
        (np.array([1.0, 3.0, 0.5]), (np.array([0, 0, 0]), np.array([2, 2, 4]))), shape=(1, 6)
    )
    recs = np.array([[2, 0, 1]])
    # R = 2, hit at rank 1: recall 1/2, ndcg = 1 / (1 + 1/log2(3))
    assert recall_at_k(recs, truth, 3)[0] == pytest.approx(0.5)
    assert ndcg_at_k(recs, truth, 3)[0] == pytest.approx(1 / (1 + L3))


def test_out_of_range_items_are_misses() -> None:
    truth = truth_of([[9], [0]])
    # 10 == n_items would alias user 1's item 0 in a naive row * n_items + item key
    recs = np.array([[10, 9], [-1, 10]])
    np.testing.assert_array_equal(hit_matrix(recs, truth), [[False, True], [False, False]])


def test_all_metrics_matches_single_functions() -> None:
    for k in (1, 2, 3, 5, 7):
        got = all_metrics(RECS, TRUTH, k)
        assert list(got) == [f"{name}@{k}" for name in FUNCS]
        for name, func in FUNCS.items():
            np.testing.assert_array_equal(got[f"{name}@{k}"], func(RECS, TRUTH, k))


def random_case(seed: int, n_users: int = 600, n_items: int = 300, width: int = 25):
    rng = np.random.default_rng(seed)
    truth = sp.random(n_users, n_items, density=0.03, random_state=seed, format="csr")
    truth.data[:] = 1.0
    recs = np.stack([rng.permutation(n_items)[:width] for _ in range(n_users)])
    pad = rng.random(recs.shape) < 0.1
    recs[pad] = -1
    # make ~half the users rank their own relevant items early so hits are common
    for u in range(0, n_users, 2):
        rel = truth.indices[truth.indptr[u] : truth.indptr[u + 1]][:5]
        row = [i for i in recs[u] if i not in set(rel)]
        recs[u] = np.array((list(rel) + row)[:width])
    return recs, truth


def test_batching_invariance() -> None:
    recs, truth = random_case(0)
    assert np.isnan(ndcg_at_k(recs, truth, 10)).any()  # some users have no relevant items
    for k in (1, 10, 25, 40):
        whole = all_metrics(recs, truth, k)
        bounds = [0, 1, 137, 300, 599, 600]
        parts = [
            all_metrics(recs[a:b], truth[a:b], k)
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        for name, values in whole.items():
            np.testing.assert_array_equal(values, np.concatenate([p[name] for p in parts]))
        assert np.nanmean(whole[f"hit_rate@{k}"]) > 0.3


def test_hit_matrix_brute_force() -> None:
    for seed in range(4):
        recs, truth = random_case(seed, n_users=200, n_items=50, width=12)
        rng = np.random.default_rng(seed)
        recs[rng.random(recs.shape) < 0.05] = 50 + seed  # out of range
        dense = truth.toarray() != 0
        got = hit_matrix(recs, truth)
        assert got.dtype == bool and got.shape == recs.shape
        expected = [[0 <= i < 50 and bool(dense[u, i]) for i in recs[u]] for u in range(len(recs))]
        np.testing.assert_array_equal(got, expected)
        assert got.any()


def test_hit_matrix_empty_truth() -> None:
    got = hit_matrix(np.array([[0, 1], [-1, 2]]), sp.csr_array((2, 3)))
    assert got.dtype == bool and not got.any()


def test_empty_truth_gives_nan() -> None:
    got = all_metrics(np.array([[0, 1]]), sp.csr_array((1, 3)), 2)
    assert all(np.isnan(v).all() for v in got.values())


def test_catalog_coverage() -> None:
    recs = np.array([[0, 1, -1], [1, 5, 12], [5, -1, 7]])
    # valid items shown: {0, 1, 5, 7} of 10 (12 is out of range, -1 is padding)
    assert catalog_coverage(recs, 10) == pytest.approx(0.4)
    # top-1 only: {0, 1, 5}
    assert catalog_coverage(recs, 10, k=1) == pytest.approx(0.3)
    assert catalog_coverage(np.full((2, 3), -1), 4) == 0.0
    with pytest.raises(ParameterError):
        catalog_coverage(recs, 0)


def test_parameter_errors() -> None:
    with pytest.raises(ParameterError, match="2-D"):
        ndcg_at_k(np.array([1, 2]), TRUTH[:1], 2)
    with pytest.raises(ParameterError, match="k"):
        recall_at_k(RECS, TRUTH, 0)
    with pytest.raises(ParameterError, match="rows"):
        all_metrics(RECS[:3], TRUTH, 3)
