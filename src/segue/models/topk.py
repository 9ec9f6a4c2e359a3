"""The one top-k kernel: mask excluded items through CSR indices, select the k best, sort them.

The selection is faiss's C++ heap (``faiss.ResultHeap``, one heap per row, rows spread over
OpenMP threads) when faiss is installed: one pass over each row, where numpy's
``argpartition`` took about 0.7 ms per 20K-item row; with it WRMF's recommend-for-all runs 2x
as fast as implicit's own batched ``recommend`` on the same factors (``bench/cf_speed.py
--parts b``). Without faiss it is ``argpartition``; both give the same lists, ties included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from segue._types import IdxArray, ScoreMatrix
from segue.exceptions import ModelFitError, ParameterError

__all__ = ["topk"]

_faiss: Any = None  # the faiss module once imported, False when it is not installed


def _heap_library() -> Any:
    global _faiss
    if _faiss is None:
        try:
            import faiss

            _faiss = faiss if hasattr(faiss, "ResultHeap") else False
        except ImportError:
            _faiss = False
    return _faiss


def topk(
    scores: ScoreMatrix,
    k: int,
    *,
    exclude: sp.csr_array | None = None,
    allow: IdxArray | None = None,
    copy: bool = False,
) -> tuple[IdxArray, ScoreMatrix]:
    """Best ``k`` items per row, best first.

    Parameters
    ----------
    scores
        ``(n, n_items)`` float32 scores. Overwritten (masked and negated) unless ``copy=True``.
    k
        Items per row. Rows with fewer than ``k`` recommendable items are padded with item
        ``-1`` and score ``-inf``; an item scored ``-inf`` is never returned.
    exclude
        ``(n, n_items)`` CSR whose stored entries are removed (the already-seen items).
    allow
        Only these item indices may be returned (a candidate list shared by all rows).
    copy
        Work on a copy of ``scores`` instead of overwriting it.

    Returns
    -------
    items, scores
        ``(n, k)`` int32 item indices and float32 scores. Ties are ordered by the lower
        index, also at the k-th place.
    """
    if k < 1:
        raise ParameterError(f"k must be at least 1, got {k}")
    scores = np.array(scores, dtype=np.float32, copy=True if copy else None)  # None: if needed
    if scores.ndim != 2:
        raise ParameterError(f"scores must be 2-D, got shape {scores.shape}")
    n, n_items = scores.shape
    if np.isnan(scores).any():
        raise ModelFitError("the model produced NaN scores")
    if exclude is not None:
        if exclude.shape[0] != n:
            raise ParameterError(f"exclude has {exclude.shape[0]} rows, scores {n}")
        rows = np.repeat(np.arange(n), np.diff(exclude.indptr))
        scores[rows, exclude.indices] = -np.inf
    columns = None if allow is None else _sorted_unique(allow)
    width = n_items if columns is None else len(columns)
    kk = min(k, width)
    faiss = _heap_library() if kk < width and n else False
    if faiss:
        items, top = _heap_select(faiss, scores, columns, kk)
    else:
        items, top = _partition_select(scores, columns, kk)
    order = np.lexsort((items, -top), axis=1)  # score descending, then index ascending
    items = np.take_along_axis(items, order, axis=1).astype(np.int32)
    top = np.take_along_axis(top, order, axis=1)
    items[np.isneginf(top)] = -1
    if kk < k:
        items = np.pad(items, ((0, 0), (0, k - kk)), constant_values=-1)
        top = np.pad(top, ((0, 0), (0, k - kk)), constant_values=-np.inf)
    return items, top


def _sorted_unique(allow: IdxArray) -> np.ndarray:
    """``allow`` as ascending unique int64 indices, without a sort when it already is one.

    Callers pass the same column array for every batch (``IdMap.columns`` is ascending), so
    the per-batch cost is one linear check instead of ``np.unique``'s sort of the catalogue.
    """
    columns = np.asarray(allow, dtype=np.int64)
    if columns.ndim == 1 and (len(columns) < 2 or bool(np.all(columns[1:] > columns[:-1]))):
        return columns
    return np.unique(columns)


def _heap_select(
    faiss: Any, scores: np.ndarray, columns: np.ndarray | None, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of each row by faiss's heaps over the negated scores, unsorted.

    A max-heap of the k smallest negated scores admits a value only when it is strictly below
    the heap's top and evicts the highest index among tied tops, so the lower index wins
    every tie, as in :func:`_partition_select`. Unfilled places come back as index -1.
    """
    if columns is None:
        neg = np.negative(scores, out=scores)
        ids = np.arange(scores.shape[1], dtype=np.int64)
    else:
        neg = np.negative(scores[:, columns])
        ids = columns
    heap = faiss.ResultHeap(len(neg), k, keep_max=False)
    heap.add_result_subset(np.arange(len(neg), dtype=np.int64), neg, ids)
    items = heap.I
    top = -heap.D
    top[items < 0] = -np.inf
    return items, top


def _partition_select(
    scores: np.ndarray, columns: np.ndarray | None, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of each row by ``argpartition``, unsorted (no faiss)."""
    n, n_items = scores.shape
    if columns is not None:
        keep = np.zeros(n_items, dtype=bool)
        keep[columns] = True
        scores[:, ~keep] = -np.inf
    if k < n_items:
        # select the k smallest of -scores: numpy's introselect is up to 30x slower selecting
        # the largest (kth = n - k) when many scores tie (zeros of pruned or unseen items)
        neg = np.negative(scores, out=scores)
        part = np.argpartition(neg, k - 1, axis=1)[:, :k]
        kth = np.take_along_axis(neg, part, axis=1).max(axis=1)
        # rows whose k-th value ties with one left out: a stable sort keeps the lower indices
        tied = np.flatnonzero(
            (np.count_nonzero(neg <= kth[:, None], axis=1) > k) & np.isfinite(kth)
        )
        if len(tied):
            part[tied] = np.argsort(neg[tied], axis=1, kind="stable")[:, :k]
        top = -np.take_along_axis(neg, part, axis=1)
    else:
        part = np.broadcast_to(np.arange(n_items), (n, n_items))
        top = np.take_along_axis(scores, part, axis=1)
    return part, top
