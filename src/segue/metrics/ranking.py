"""Top-k ranking metrics as pure per-user functions; aggregation is the caller's choice.

Every function takes ``recs``, an ``(n_users, >=k)`` int array of recommended item indices
(best first, ``-1`` as padding) and ``truth``, an ``(n_users, n_items)`` sparse matrix whose
stored entries are the relevant items (binary relevance: weights are ignored). It returns a
float64 array with one value per user, ``NaN`` for users with no relevant item (they carry no
signal; the mean should skip them, which :func:`numpy.nanmean` does). Results do not depend on
how users are batched: row ``u`` of the output depends only on row ``u`` of the inputs.

Definitions, with ``hits_i`` = 1 when the item at rank ``i`` (1-based) is relevant and
``R`` = number of relevant items:

- ``ndcg@k``      = sum_i hits_i / log2(i + 1), divided by the same sum over ``min(R, k)`` hits;
- ``recall@k``    = sum_i hits_i / R;
- ``precision@k`` = sum_i hits_i / k;
- ``ap@k``        = sum_i precision@i * hits_i / min(R, k)  (its mean is MAP@k);
- ``hit_rate@k``  = 1 if any hit, else 0.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from segue._types import IdxArray
from segue.exceptions import ParameterError

__all__ = [
    "all_metrics",
    "average_precision_at_k",
    "catalog_coverage",
    "hit_matrix",
    "hit_rate_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
]


def _check(
    recs: IdxArray, truth: sp.sparray | sp.spmatrix, k: int
) -> tuple[np.ndarray, sp.csr_array]:
    recs = np.asarray(recs)
    if recs.ndim != 2:
        raise ParameterError(f"recs must be 2-D (users x ranks), got shape {recs.shape}")
    if k < 1:
        raise ParameterError(f"k must be at least 1, got {k}")
    truth = sp.csr_array(truth)
    if truth.shape[0] != recs.shape[0]:
        raise ParameterError(f"recs has {recs.shape[0]} rows but truth has {truth.shape[0]}")
    return recs[:, :k], truth


def hit_matrix(recs: IdxArray, truth: sp.sparray | sp.spmatrix) -> np.ndarray:
    """``(n_users, n_ranks)`` bool: whether each recommended item is relevant to its user.

    Vectorised: (row, item) pairs are encoded as one int64 key and looked up with a binary
    search in the sorted keys of ``truth``.
    """
    recs = np.asarray(recs)
    truth = sp.csr_array(truth)
    truth.sum_duplicates()
    truth.sort_indices()
    n_items = np.int64(truth.shape[1])
    rows = np.repeat(np.arange(truth.shape[0], dtype=np.int64), np.diff(truth.indptr))
    keys = rows * n_items + truth.indices.astype(np.int64)  # sorted: row-major, sorted indices
    query = np.arange(recs.shape[0], dtype=np.int64)[:, None] * n_items + recs.astype(np.int64)
    if len(keys) == 0:
        return np.zeros(recs.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return (keys[pos] == query) & (recs >= 0) & (recs < n_items)


def _n_relevant(truth: sp.csr_array) -> np.ndarray:
    t = sp.csr_array(truth)
    t.sum_duplicates()
    return np.diff(t.indptr).astype(np.float64)


def _ndcg(hits: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    k = hits.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits @ discounts
    ideal = np.concatenate([[0.0], np.cumsum(discounts)])[np.minimum(n_rel, k).astype(int)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_rel > 0, dcg / ideal, np.nan)


def _recall(hits: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_rel > 0, hits.sum(axis=1) / n_rel, np.nan)


def _precision(hits: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    return np.where(n_rel > 0, hits.sum(axis=1) / k, np.nan)


def _average_precision(hits: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    k = hits.shape[1]
    prec_at_i = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_rel > 0, (prec_at_i * hits).sum(axis=1) / np.minimum(n_rel, k), np.nan)


def _hit_rate(hits: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    return np.where(n_rel > 0, hits.any(axis=1).astype(np.float64), np.nan)


def _padded_hits(recs: np.ndarray, truth: sp.csr_array, k: int) -> np.ndarray:
    hits = hit_matrix(recs, truth).astype(np.float64)
    if hits.shape[1] < k:  # shorter lists count as padded with misses
        hits = np.pad(hits, ((0, 0), (0, k - hits.shape[1])))
    return hits


def ndcg_at_k(recs: IdxArray, truth: sp.sparray | sp.spmatrix, k: int) -> np.ndarray:
    """Per-user binary NDCG@k (see the module docstring)."""
    recs, truth = _check(recs, truth, k)
    return _ndcg(_padded_hits(recs, truth, k), _n_relevant(truth))


def recall_at_k(recs: IdxArray, truth: sp.sparray | sp.spmatrix, k: int) -> np.ndarray:
    """Per-user recall@k: share of the relevant items found in the top k."""
    recs, truth = _check(recs, truth, k)
    return _recall(_padded_hits(recs, truth, k), _n_relevant(truth))


def precision_at_k(recs: IdxArray, truth: sp.sparray | sp.spmatrix, k: int) -> np.ndarray:
    """Per-user precision@k: share of the k slots holding a relevant item."""
    recs, truth = _check(recs, truth, k)
    return _precision(_padded_hits(recs, truth, k), _n_relevant(truth), k)


def average_precision_at_k(recs: IdxArray, truth: sp.sparray | sp.spmatrix, k: int) -> np.ndarray:
    """Per-user AP@k, normalised by ``min(R, k)``; its mean over users is MAP@k."""
    recs, truth = _check(recs, truth, k)
    return _average_precision(_padded_hits(recs, truth, k), _n_relevant(truth))


def hit_rate_at_k(recs: IdxArray, truth: sp.sparray | sp.spmatrix, k: int) -> np.ndarray:
    """Per-user 1.0 when at least one relevant item is in the top k, else 0.0."""
    recs, truth = _check(recs, truth, k)
    return _hit_rate(_padded_hits(recs, truth, k), _n_relevant(truth))


def catalog_coverage(recs: IdxArray, n_items: int, k: int | None = None) -> float:
    """Share of the ``n_items`` catalogue that appears in at least one top-k list."""
    if n_items < 1:
        raise ParameterError(f"n_items must be at least 1, got {n_items}")
    recs = np.asarray(recs)
    if k is not None:
        recs = recs[:, :k]
    shown = np.unique(recs[(recs >= 0) & (recs < n_items)])
    return len(shown) / n_items


def all_metrics(recs: IdxArray, truth: sp.sparray | sp.spmatrix, k: int) -> dict[str, np.ndarray]:
    """Every per-user metric at ``k`` from one hit matrix (what evaluation reports)."""
    recs, truth = _check(recs, truth, k)
    hits = _padded_hits(recs, truth, k)
    n_rel = _n_relevant(truth)
    return {
        f"ndcg@{k}": _ndcg(hits, n_rel),
        f"recall@{k}": _recall(hits, n_rel),
        f"precision@{k}": _precision(hits, n_rel, k),
        f"map@{k}": _average_precision(hits, n_rel),
        f"hit_rate@{k}": _hit_rate(hits, n_rel),
    }
