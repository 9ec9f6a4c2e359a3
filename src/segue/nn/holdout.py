"""A validation split carved from the training rows, for early stopping without the answers.

Some training rows become validation queries: part of their items is hidden from training and
must be found again. Playlists (when the order of their songs is known) hide their last songs,
as a continuation question does; listen histories hide a random part. Only the training data is
ever read, so a stopping epoch chosen here never saw an evaluation answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from segue._types import IdxArray, ScoreMatrix
from segue.metrics.ranking import ndcg_at_k
from segue.models.topk import topk

__all__ = ["Holdout", "carve_holdout", "holdout_ndcg"]


@dataclass(frozen=True)
class Holdout:
    """Training rows with some entries hidden, and the hidden entries.

    Attributes
    ----------
    train
        The training matrix without the hidden entries (fit on this).
    rows
        The rows that are validation queries.
    answers
        ``(len(rows), n_items)`` CSR of each query's hidden entries.
    """

    train: sp.csr_array
    rows: IdxArray
    answers: sp.csr_array


def carve_holdout(
    matrix: sp.csr_array,
    *,
    n_rows: int = 1000,
    fraction: float = 0.2,
    seed: int = 0,
    order: sp.csr_array | None = None,
    min_items: int = 5,
) -> Holdout | None:
    """Hide ``fraction`` of the items of up to ``n_rows`` random rows with ``min_items`` or more.

    With ``order`` (1-based song positions, as :meth:`FitData.order` gives), a row hides its
    last songs; other columns (tags, title words) stay in the query. Returns None when fewer than
    ten rows qualify (too little to stop on).
    """
    matrix = sp.csr_array(matrix)
    matrix.sort_indices()
    counts = np.diff(matrix.indptr)
    if order is not None:
        order = sp.csr_array(order)
        order.sort_indices()
        counts = np.diff(order.indptr)
    eligible = np.flatnonzero(counts >= max(2, min_items))
    if len(eligible) < 10:
        return None
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(eligible, size=min(n_rows, len(eligible)), replace=False))
    hidden_rows: list[np.ndarray] = []
    hidden_cols: list[np.ndarray] = []
    for row in rows:
        if order is not None:
            start, stop = order.indptr[row], order.indptr[row + 1]
            cols, pos = order.indices[start:stop], order.data[start:stop]
            n_hide = max(1, int(round(fraction * len(cols))))
            hide = cols[np.argsort(-pos, kind="stable")[:n_hide]]
        else:
            start, stop = matrix.indptr[row], matrix.indptr[row + 1]
            cols = matrix.indices[start:stop]
            n_hide = max(1, int(round(fraction * len(cols))))
            hide = rng.choice(cols, size=n_hide, replace=False)
        hidden_rows.append(np.full(len(hide), row, dtype=np.int64))
        hidden_cols.append(np.asarray(hide, dtype=np.int64))
    hr, hc = np.concatenate(hidden_rows), np.concatenate(hidden_cols)
    hidden = sp.csr_array(
        (np.ones(len(hr), dtype=np.float32), (hr, hc)), shape=matrix.shape, dtype=np.float32
    )
    keep = sp.csr_array(matrix - matrix.multiply(hidden))
    keep.eliminate_zeros()
    answers = sp.csr_array(hidden[rows])
    return Holdout(train=keep, rows=rows.astype(np.int32), answers=answers)


def holdout_ndcg(
    score: Callable[[IdxArray, sp.csr_array], ScoreMatrix],
    holdout: Holdout,
    *,
    k: int = 100,
    batch_size: int = 256,
    allow: IdxArray | None = None,
) -> float:
    """Mean NDCG@k of ``score(rows, queries)`` on the hidden entries, query items excluded.

    ``allow`` limits the lists to the columns a question asks for (the tracks, when tags and
    title words are columns too: they are never hidden, so they would only take places).
    """
    values = []
    for start in range(0, len(holdout.rows), batch_size):
        rows = holdout.rows[start : start + batch_size]
        queries = sp.csr_array(holdout.train[rows])
        scores = np.asarray(score(rows, queries), dtype=np.float32)
        items, _ = topk(scores, k, exclude=queries, allow=allow)
        values.append(ndcg_at_k(items, holdout.answers[start : start + batch_size], k))
    return float(np.nanmean(np.concatenate(values)))
