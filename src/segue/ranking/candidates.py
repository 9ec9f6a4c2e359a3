"""First stage: per-source top-N candidates, merged into one de-duplicated columnar set.

Why: the re-ranker can only promote tracks some first-stage model retrieved, so this stage is
about recall. Every first-stage model is fit on the same ``Interactions`` and shares one item
vocabulary (``items_``), so candidates from different sources are merged by item index, and
each source's score and rank become features (NaN where the source did not retrieve the item).

Merging: each source returns its top ``n_per_source`` tracks (seeds and title/tag columns
excluded). The union is ordered by reciprocal rank fusion (``sum_s 1 / (60 + rank_s)``, so items
several sources agree on come first) and cut to ``n`` per query, so recall@N of the merged set
is comparable with one model's recall@N.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue.continuation import playlist_interactions, tag_columns, title_columns, track_columns
from segue.data.interactions import Interactions
from segue.data.playlists import Playlists
from segue.data.vocab import IdMap
from segue.exceptions import ParameterError
from segue.models.base import BaseRecommender
from segue.models.topk import topk

__all__ = [
    "RRF_K",
    "CandidateSet",
    "answer_matrix",
    "candidate_recall",
    "merge_candidates",
    "pair_labels",
    "query_history",
    "retrieve_candidates",
]

RRF_K = 60.0
"""Constant of reciprocal rank fusion (Cormack et al. 2009), used to order the merged set."""


@dataclass
class CandidateSet:
    """Candidates of a batch of queries, one row per (query, item) pair, sorted by query.

    Attributes
    ----------
    pids
        External ids of the queries; ``query`` indexes into it.
    query
        ``(n_pairs,)`` int32 query row.
    item
        ``(n_pairs,)`` int32 item index into ``items``.
    sources
        Names of the first-stage models, in column order.
    score, rank
        ``(n_pairs, n_sources)`` float32: each source's raw score and 1-based rank; NaN where
        the source did not retrieve the pair.
    items
        The shared item vocabulary.
    history
        ``(n_queries, n_items)`` CSR of the queries' folded-in rows (seeds and title columns).
    seconds
        Time spent per source (scoring and top-N), for the benchmark.
    """

    pids: np.ndarray
    query: np.ndarray
    item: np.ndarray
    sources: list[str]
    score: np.ndarray
    rank: np.ndarray
    items: IdMap
    history: sp.csr_array
    seconds: dict[str, float] = field(default_factory=dict)
    n: int | None = None

    def __len__(self) -> int:
        return len(self.query)

    def group_sizes(self) -> np.ndarray:
        """Candidates per query, in query order (the LightGBM groups)."""
        return np.bincount(self.query, minlength=len(self.pids))

    def positions(self) -> np.ndarray:
        """1-based position of each pair in its query's merged order."""
        starts = np.searchsorted(self.query, np.arange(len(self.pids)))
        return np.arange(len(self.query)) - starts[self.query] + 1

    def top(self, n: int | None = None) -> CandidateSet:
        """The first ``n`` (default: the ``n`` given at retrieval) merged candidates per query."""
        n = n or self.n
        if n is None:
            return self
        out = self.take(self.positions() <= n)
        out.n = n
        return out

    def take(self, mask: np.ndarray) -> CandidateSet:
        """The pairs where ``mask`` is true (queries and their order unchanged)."""
        return CandidateSet(
            self.pids,
            self.query[mask],
            self.item[mask],
            self.sources,
            self.score[mask],
            self.rank[mask],
            self.items,
            self.history,
            dict(self.seconds),
            self.n,
        )


def _shared_items(models: Mapping[str, BaseRecommender]) -> IdMap:
    if not models:
        raise ParameterError("at least one first-stage model is needed")
    names = list(models)
    items = models[names[0]].items_
    for name in names[1:]:
        other = models[name].items_
        if other != items:  # IdMap equality: identity first, then the ids
            raise ParameterError(
                f"first-stage models {names[0]!r} and {name!r} do not share their items"
            )
    return items


def query_history(items: IdMap, queries: Playlists) -> Interactions:
    """The queries' rows over ``items``: seeds, plus title (and tag) columns the items have."""
    return playlist_interactions(
        queries,
        with_tags=len(tag_columns(items)) > 0,
        with_titles=len(title_columns(items)) > 0,
        items=items,
    )


def retrieve_candidates(
    models: Mapping[str, BaseRecommender],
    queries: Playlists,
    n: int = 1000,
    *,
    n_per_source: int | None = None,
    batch_size: int = 256,
) -> CandidateSet:
    """Top-``n_per_source`` per source, merged; ``.top()`` cuts to ``n`` (module docstring).

    Parameters
    ----------
    models
        ``{name: fitted model}``, all sharing ``items_``.
    queries
        Playlists to continue (seeds as entries, titles in ``name``); not in training.
    n
        Candidates per query after merging (applied by :meth:`CandidateSet.top`).
    n_per_source
        Items each source retrieves (default ``n``).
    batch_size
        Queries scored at once.
    """
    if n < 1:
        raise ParameterError(f"n must be at least 1, got {n}")
    k = n_per_source or n
    items = _shared_items(models)
    history = query_history(items, queries)
    matrix = sp.csr_array(history.matrix)
    allow = track_columns(items)
    n_q = matrix.shape[0]
    names = list(models)
    per_source_items, per_source_scores, seconds = [], [], {}
    for name in names:
        model = models[name]
        start = time.perf_counter()
        top_items = np.full((n_q, k), -1, dtype=np.int32)
        top_scores = np.full((n_q, k), -np.inf, dtype=np.float32)
        for lo in range(0, n_q, batch_size):
            hi = min(n_q, lo + batch_size)
            rows = sp.csr_array(matrix[lo:hi])
            raw = model.score(np.full(hi - lo, -1, dtype=np.int32), rows)
            top_items[lo:hi], top_scores[lo:hi] = topk(raw, k, exclude=rows, allow=allow)
        seconds[name] = time.perf_counter() - start
        per_source_items.append(top_items)
        per_source_scores.append(top_scores)
    return merge_candidates(
        names, per_source_items, per_source_scores, n, items, matrix, history.users.ids, seconds
    )


def merge_candidates(
    names: list[str],
    top_items: list[np.ndarray],
    top_scores: list[np.ndarray],
    n: int,
    items: IdMap,
    history: sp.csr_array,
    pids: np.ndarray,
    seconds: dict[str, float] | None = None,
) -> CandidateSet:
    """Merge per-source ``(n_queries, k)`` top lists (``-1`` padding) into a candidate set.

    Every pair of the union is kept, in fused order per query; :meth:`CandidateSet.top` cuts it
    to ``n`` per query (the cut is recorded, not applied, so that each source's recall can still
    be measured on its whole list).
    """
    n_items = len(items)
    n_src = len(names)
    q_all, i_all, s_all, src_all, r_all = [], [], [], [], []
    for j, (ti, ts) in enumerate(zip(top_items, top_scores, strict=True)):
        valid = ti >= 0
        q_all.append(np.nonzero(valid)[0].astype(np.int64))
        i_all.append(ti[valid].astype(np.int64))
        s_all.append(ts[valid])
        r_all.append((np.nonzero(valid)[1] + 1).astype(np.float32))
        src_all.append(np.full(int(valid.sum()), j, dtype=np.int64))
    q = np.concatenate(q_all)
    it = np.concatenate(i_all)
    key = q * n_items + it
    uniq, pair = np.unique(key, return_inverse=True)
    src = np.concatenate(src_all)
    score = np.full((len(uniq), n_src), np.nan, dtype=np.float32)
    rank = np.full((len(uniq), n_src), np.nan, dtype=np.float32)
    score[pair, src] = np.concatenate(s_all)
    rank[pair, src] = np.concatenate(r_all)
    query = (uniq // n_items).astype(np.int32)
    item = (uniq % n_items).astype(np.int32)
    # order within query: reciprocal rank fusion, sum of 1 / (RRF_K + rank), then best rank
    best = np.nanmin(rank, axis=1)
    fused = np.nansum(1.0 / (RRF_K + rank), axis=1)
    order = np.lexsort((item, best, -fused, query))
    query, item, score, rank = query[order], item[order], score[order], rank[order]
    return CandidateSet(
        pids=np.asarray(pids),
        query=query,
        item=item,
        sources=list(names),
        score=score,
        rank=rank,
        items=items,
        history=history,
        seconds=dict(seconds or {}),
        n=n,
    )


def answer_matrix(answers: Mapping[Any, list[Any]], pids: np.ndarray, items: IdMap) -> sp.csr_array:
    """``(n_queries, n_items)`` binary CSR of the held-out tracks (unknown tracks dropped)."""
    rows = np.repeat(np.arange(len(pids)), [len(set(answers.get(p, []))) for p in pids])
    tracks = [t for p in pids for t in dict.fromkeys(answers.get(p, []))]
    cols = items.numbers(np.asarray(tracks, dtype=object), missing="negative")
    keep = cols >= 0
    m = sp.csr_array(
        (np.ones(int(keep.sum()), dtype=np.float32), (rows[keep], cols[keep])),
        shape=(len(pids), len(items)),
    )
    m.sum_duplicates()
    return m


def pair_labels(candidates: CandidateSet, truth: sp.csr_array) -> np.ndarray:
    """True where the candidate is a held-out track of its query."""
    n_items = truth.shape[1]
    rows = np.repeat(np.arange(truth.shape[0]), np.diff(truth.indptr)).astype(np.int64)
    keys = np.sort(rows * n_items + truth.indices)
    cand = candidates.query.astype(np.int64) * n_items + candidates.item
    if not len(keys):
        return np.zeros(len(cand), dtype=bool)
    pos = np.minimum(np.searchsorted(keys, cand), len(keys) - 1)
    return keys[pos] == cand


def candidate_recall(
    candidates: CandidateSet,
    answers: Mapping[Any, list[Any]],
    categories: pd.Series | None = None,
    *,
    cutoffs: tuple[int, ...] = (),
) -> pd.DataFrame:
    """Recall of the held-out tracks by each source and by the merged set, per category.

    Recall of a query is the share of its distinct held-out tracks (known to the models) that
    the candidates hold; the table averages it over queries. ``cutoffs`` adds columns for the
    top-N of each source and of the merged order (``merged@N``); without them, each source
    counts everything it retrieved.

    Returns
    -------
    pandas.DataFrame
        Rows: categories (``"all"`` first), columns: ``source@N`` and ``merged@N``.
    """
    truth = answer_matrix(answers, candidates.pids, candidates.items)
    n_truth = np.diff(truth.indptr).astype(np.float64)
    hit = pair_labels(candidates, truth)
    n_q = len(candidates.pids)
    merged_pos = candidates.positions()
    columns: dict[str, np.ndarray] = {}
    cuts = cutoffs or (int(np.nanmax(candidates.rank)) if len(candidates) else 0,)
    for cut in cuts:
        for j, name in enumerate(candidates.sources):
            sel = hit & (candidates.rank[:, j] <= cut)
            columns[f"{name}@{cut}"] = np.bincount(candidates.query[sel], minlength=n_q)
        sel = hit & (merged_pos <= cut)
        columns[f"merged@{cut}"] = np.bincount(candidates.query[sel], minlength=n_q)
    with np.errstate(invalid="ignore", divide="ignore"):
        frame = pd.DataFrame({k: v / n_truth for k, v in columns.items()})
    frame = frame[n_truth > 0]
    out = {"all": frame.mean()}
    if categories is not None:
        cat = categories.reindex(candidates.pids).to_numpy()[n_truth > 0]
        for c in sorted(pd.unique(cat)):
            out[str(c)] = frame[cat == c].mean()
    return pd.DataFrame(out).T
