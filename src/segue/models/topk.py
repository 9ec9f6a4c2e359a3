"""The one top-k kernel: mask excluded items through CSR indices, argpartition, sort the k."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from segue._types import IdxArray, ScoreMatrix
from segue.exceptions import ModelFitError, ParameterError

__all__ = ["topk"]


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
        ``(n, k)`` int32 item indices and float32 scores. Ties inside the top k are ordered
        by the lower index.
    """
    if k < 1:
        raise ParameterError(f"k must be at least 1, got {k}")
    scores = np.array(scores, dtype=np.float32, copy=True if copy else None)  # None: if needed
    if scores.ndim != 2:
        raise ParameterError(f"scores must be 2-D, got shape {scores.shape}")
    n, n_items = scores.shape
    if np.isnan(scores).any():
        raise ModelFitError("the model produced NaN scores")
    if allow is not None:
        keep = np.zeros(n_items, dtype=bool)
        keep[np.asarray(allow)] = True
        scores[:, ~keep] = -np.inf
    if exclude is not None:
        if exclude.shape[0] != n:
            raise ParameterError(f"exclude has {exclude.shape[0]} rows, scores {n}")
        rows = np.repeat(np.arange(n), np.diff(exclude.indptr))
        scores[rows, exclude.indices] = -np.inf
    kk = min(k, n_items)
    if kk < n_items:
        # select the kk smallest of -scores: numpy's introselect is up to 30x slower selecting
        # the largest (kth = n - kk) when many scores tie (zeros of pruned or unseen items)
        np.negative(scores, out=scores)
        part = np.argpartition(scores, kk - 1, axis=1)[:, :kk]
        top = -np.take_along_axis(scores, part, axis=1)
    else:
        part = np.broadcast_to(np.arange(n_items), (n, n_items))
        top = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -top), axis=1)  # score descending, then index ascending
    items = np.take_along_axis(part, order, axis=1).astype(np.int32)
    top = np.take_along_axis(top, order, axis=1)
    items[np.isneginf(top)] = -1
    if kk < k:
        items = np.pad(items, ((0, 0), (0, k - kk)), constant_values=-1)
        top = np.pad(top, ((0, 0), (0, k - kk)), constant_values=-np.inf)
    return items, top
