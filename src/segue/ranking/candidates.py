"""First stage: per-source top-N candidates, merged into one de-duplicated columnar set.

Why: the re-ranker can only promote tracks some first-stage model retrieved, so this stage is
about recall. Every first-stage model is fit on the same ``Interactions`` and shares one item
vocabulary (``items_``), so candidates from different sources are merged by item index, and
each source's score and rank become features (NaN where the source did not retrieve the item).

Merging: each source returns its top ``n_per_source`` tracks (seeds and title/tag columns
excluded). The union is ordered by weighted reciprocal rank fusion (``sum_s w_s / (60 +
rank_s)``, so items several sources agree on come first; ties go to the best single rank, then
the item index) and cut to ``n`` per query, so recall@N of the merged set is comparable with one
model's recall@N. With equal weights (the default) this is plain RRF, which lets a weak source
(popularity) push out items of a strong one; :func:`fit_fusion_weights` picks per-source
weights that maximise the merged recall@N instead, and :meth:`CandidateSet.reorder` applies
them. The weights must be fitted on training-side queries (the two-stage model's inner split),
never on evaluation answers; that is the caller's job. A weight of 0 mutes a source: an item
only it retrieved gets fused score 0 and sorts after every other candidate of its query.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue.data.interactions import Interactions
from segue.data.kinds import ItemKind
from segue.data.playlists import Playlists
from segue.data.vocab import IdMap
from segue.exceptions import ParameterError
from segue.inference.encode import QueryEncoder
from segue.models.base import BaseRecommender, Target

__all__ = [
    "RRF_K",
    "CandidateSet",
    "answer_matrix",
    "candidate_recall",
    "fit_fusion_weights",
    "fusion_recall",
    "merge_candidates",
    "pair_labels",
    "query_history",
    "retrieve_candidate_sets",
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
    n
        Candidates per query kept by :meth:`top` (the cut is recorded, not applied).
    weights
        ``(n_sources,)`` float64 fusion weights the pairs are ordered by (module docstring);
        None for a set not built by :func:`merge_candidates` or :meth:`reorder`.
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
    weights: np.ndarray | None = None

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
            self.weights,
        )

    def reorder(self, weights: Sequence[float] | None = None) -> CandidateSet:
        """The same pairs, re-sorted within each query by weighted fusion (module docstring).

        Why: applying fitted weights needs no new retrieval. Only the pairs held are
        re-sorted, so reorder the uncut set (before :meth:`top`) for a cut that can promote
        pairs from beyond the current one.
        """
        w = _check_weights(weights, len(self.sources))
        order = _fusion_order(
            self.query,
            _fused(_inverse_ranks(self.rank), w),
            _tiebreak(self.query, self.item, self.rank),
        )
        return CandidateSet(
            self.pids,
            self.query[order],
            self.item[order],
            self.sources,
            self.score[order],
            self.rank[order],
            self.items,
            self.history,
            dict(self.seconds),
            self.n,
            w,
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
    return QueryEncoder(items).playlists(queries)


def retrieve_candidates(
    models: Mapping[str, BaseRecommender],
    queries: Playlists,
    n: int = 1000,
    *,
    n_per_source: int | None = None,
    batch_size: int = 256,
) -> CandidateSet:
    """Top-``n_per_source`` tracks per source, merged; ``.top()`` cuts to ``n``.

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
    items = _shared_items(models)
    targets = {"tracks": (items.columns(ItemKind.TRACK), n, n_per_source or n)}
    history = query_history(items, queries)
    return retrieve_candidate_sets(
        models,
        history.matrix,
        history.users.ids,
        targets,
        batch_size=batch_size,
        playlists=queries,
    )["tracks"]


def retrieve_candidate_sets(
    models: Mapping[str, BaseRecommender],
    history: sp.csr_array,
    pids: np.ndarray,
    targets: Mapping[str, tuple[np.ndarray, int, int]],
    *,
    exclude: sp.csr_array | None = None,
    exclude_seen: bool = True,
    batch_size: int = 256,
    playlists: Playlists | None = None,
) -> dict[str, CandidateSet]:
    """One merged candidate set per target, from one scoring pass of each source.

    ``history`` holds the queries' rows over the sources' shared items (ids ``pids``).
    ``targets`` maps a name to ``(allowed columns, n, items per source)``: Melon asks for
    tracks and tags, which every source retrieves in the same pass of
    :meth:`~segue.models.base.BaseRecommender.retrieve` (scoring is the expensive part; the
    top-N selections are cheap). Seeds (with ``exclude_seen``) and ``exclude``'s items are
    never candidates. ``playlists`` (the queries, one per row) reach the sources that read
    them (the order of the seeds, for ``tcn``).
    """
    for name, (_, n, k) in targets.items():
        if n < 1 or k < 1:
            raise ParameterError(f"{name}: n and items per source must be at least 1")
    items = _shared_items(models)
    matrix = sp.csr_array(history)
    n_q = matrix.shape[0]
    names = list(models)
    wanted = {t: Target(k, allow) for t, (allow, _, k) in targets.items()}
    found: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {t: ([], []) for t in targets}
    seconds: dict[str, float] = {}
    for name in names:
        start = time.perf_counter()
        tops = models[name].retrieve(
            np.full(n_q, -1, dtype=np.int32),
            matrix,
            wanted,
            exclude_seen=exclude_seen,
            exclude=exclude,
            batch_size=batch_size,
            playlists=playlists,
        )
        seconds[name] = time.perf_counter() - start
        for t in targets:
            found[t][0].append(tops[t][0])
            found[t][1].append(tops[t][1])
    return {
        t: merge_candidates(names, found[t][0], found[t][1], n, items, matrix, pids, seconds)
        for t, (_, n, _) in targets.items()
    }


def _check_weights(weights: Sequence[float] | None, n_sources: int) -> np.ndarray:
    """Fusion weights as float64, one per source; None means plain RRF (all 1.0)."""
    if weights is None:
        return np.ones(n_sources, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n_sources,):
        raise ParameterError(f"need one fusion weight per source ({n_sources}), got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
        raise ParameterError(f"fusion weights must be finite, >= 0 and not all 0, got {w}")
    return w


def _inverse_ranks(rank: np.ndarray) -> np.ndarray:
    """``1 / (RRF_K + rank)`` in float32, 0 where the source did not retrieve the pair."""
    inv = 1.0 / (RRF_K + rank.astype(np.float32, copy=False))
    inv[np.isnan(inv)] = 0.0
    return inv


def _fused(inv: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted RRF score per pair, in float32.

    Why float32 and this exact expression: with all weights 1.0 the product is exact, so the
    order is bit-identical to plain RRF; every caller goes through here so that the fitted
    objective and the applied order agree to the last bit.
    """
    return np.sum(inv * weights.astype(np.float32), axis=1)


def _float_key(values: np.ndarray) -> np.ndarray:
    """Non-negative float32 values as int64 below 2**31 that sort the same way (their bits)."""
    return values.astype(np.float32, copy=False).view(np.int32).astype(np.int64)


def _sort_by(query: np.ndarray, middle: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Permutation sorting by ``query``, then ``middle`` (< 2**31), then ``low`` (all >= 0).

    Why one packed int64 key: a single argsort is several times faster than ``np.lexsort`` on
    millions of pairs, which :func:`fit_fusion_weights` pays per evaluation; the lexsort
    fallback covers keys too wide for 63 bits.
    """
    if not len(query):
        return np.zeros(0, dtype=np.int64)
    q_bits = max(1, int(query.max()).bit_length())
    l_bits = max(1, int(low.max()).bit_length())
    if q_bits + 31 + l_bits > 63:
        return np.lexsort((low, middle, query))
    key = (query.astype(np.int64) << (31 + l_bits)) | (middle << l_bits) | low
    return np.argsort(key)


def _tiebreak(query: np.ndarray, item: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Position of each pair within its query when sorted by best source rank, then item.

    Why: the tie-break does not depend on the weights, so it is computed once and packed into
    the sort key of every fusion order.
    """
    best = np.fmin.reduce(rank, axis=1)  # ranks are >= 1; NaN (not retrieved) ignored
    perm = _sort_by(query, _float_key(best), item.astype(np.int64))
    counts = np.bincount(query, minlength=int(query.max()) + 1 if len(query) else 0)
    starts = np.cumsum(counts) - counts
    out = np.empty(len(query), dtype=np.int64)
    out[perm] = np.arange(len(query)) - starts[query[perm]]
    return out


def _fusion_order(query: np.ndarray, fused: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """Permutation sorting pairs by query, then fused score descending, then ``tiebreak``.

    Fused scores are >= 0, so their float32 bit patterns sort like the values.
    """
    return _sort_by(query, np.int64(2**31 - 1) - _float_key(fused), tiebreak)


def merge_candidates(
    names: list[str],
    top_items: list[np.ndarray],
    top_scores: list[np.ndarray],
    n: int,
    items: IdMap,
    history: sp.csr_array,
    pids: np.ndarray,
    seconds: dict[str, float] | None = None,
    weights: Sequence[float] | None = None,
) -> CandidateSet:
    """Merge per-source ``(n_queries, k)`` top lists (``-1`` padding) into a candidate set.

    Every pair of the union is kept, in fused order per query; :meth:`CandidateSet.top` cuts it
    to ``n`` per query (the cut is recorded, not applied, so that each source's recall can still
    be measured on its whole list). ``weights`` (one per source, default all 1.0: plain RRF)
    scale each source's reciprocal rank.
    """
    w = _check_weights(weights, len(names))
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
    order = _fusion_order(query, _fused(_inverse_ranks(rank), w), _tiebreak(query, item, rank))
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
        weights=w,
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


def _mean_recall(hit: np.ndarray, query: np.ndarray, n_truth: np.ndarray) -> float:
    """Mean over queries with answers of the share of their answers among ``hit`` pairs.

    Same number as :func:`candidate_recall`'s ``"all"`` row, without the table.
    """
    known = n_truth > 0
    if not known.any():
        return 0.0
    hits = np.bincount(query[hit], minlength=len(n_truth))
    return float(np.mean(hits[known] / n_truth[known]))


class _FusionObjective:
    """Mean recall@``n`` of the merged order under given weights, for one candidate set.

    Why a class: labels, inverse ranks, tie-breaks and the top-``n`` slots do not depend on the
    weights, so they are computed once and each evaluation is one weighted sum and one argsort
    (no loop over queries).
    """

    def __init__(self, candidates: CandidateSet, truth: sp.csr_array, n: int) -> None:
        self.n_truth = np.diff(truth.indptr).astype(np.float64)
        self.label = pair_labels(candidates, truth)
        self.query = candidates.query
        self.inv = _inverse_ranks(candidates.rank)
        self.tiebreak = _tiebreak(candidates.query, candidates.item, candidates.rank)
        # query is the primary sort key, so each sorted slot has a fixed query and position
        sorted_query = np.sort(candidates.query)
        counts = np.bincount(sorted_query, minlength=len(self.n_truth))
        starts = np.cumsum(counts) - counts
        self.in_top = np.arange(len(sorted_query)) - starts[sorted_query] < n
        self.top_query = sorted_query[self.in_top]

    def __call__(self, weights: np.ndarray) -> float:
        order = _fusion_order(self.query, _fused(self.inv, weights), self.tiebreak)
        return _mean_recall(self.label[order[self.in_top]], self.top_query, self.n_truth)


def _fusion_objective(
    candidates: CandidateSet, answers: Mapping[Any, list[Any]], n: int
) -> _FusionObjective | None:
    """The objective of ``candidates``, or None where no query has a known answer."""
    if n < 1:
        raise ParameterError(f"n must be at least 1, got {n}")
    truth = answer_matrix(answers, candidates.pids, candidates.items)
    if not len(candidates) or truth.nnz == 0:
        return None
    return _FusionObjective(candidates, truth, n)


def fusion_recall(
    candidates: CandidateSet,
    answers: Mapping[Any, list[Any]],
    n: int,
    weights: Sequence[float] | None = None,
) -> float:
    """Mean recall@``n`` the merged set would have under ``weights`` (default all 1.0).

    Equals ``candidate_recall(candidates.reorder(weights), answers, cutoffs=(n,))`` at
    ``["all", f"merged@{n}"]`` (0.0 where no query has a known answer), without building it.
    """
    w = _check_weights(weights, len(candidates.sources))
    objective = _fusion_objective(candidates, answers, n)
    return 0.0 if objective is None else objective(w)


def fit_fusion_weights(
    candidates: CandidateSet,
    answers: Mapping[Any, list[Any]],
    n: int,
    *,
    grid: Sequence[float] = (0.0, 0.25, 0.5, 1.0, 2.0),
    rounds: int = 2,
) -> np.ndarray:
    """Per-source fusion weights maximising the merged recall@``n`` (coordinate ascent).

    Why: plain RRF weighs every source alike, so a weak source can cost the merged set recall
    that the best source alone would have had. The source with the highest own recall@``n`` is
    fixed at 1.0 (fusion is scale-invariant, and it keeps one weight > 0); each other source in
    turn tries every ``grid`` value, and a change is kept only if it strictly improves the
    objective, so the result is never worse than all ones and ties keep the earlier value.
    Fit on training-side queries only (module docstring), on the uncut set (every retrieved
    pair, before :meth:`CandidateSet.top`), so that weights can promote pairs past the cut.

    Parameters
    ----------
    candidates
        Candidates of the fitting queries.
    answers
        ``{pid: held-out tracks}``; queries with no known answer are left out of the mean.
    n
        Cut whose mean recall is maximised.
    grid
        Weights tried for each source but the best one (finite, >= 0).
    rounds
        Passes over the sources.

    Returns
    -------
    numpy.ndarray
        ``(n_sources,)`` float64 weights, for :meth:`CandidateSet.reorder` or
        :func:`merge_candidates`.
    """
    if rounds < 0:
        raise ParameterError(f"rounds must be >= 0, got {rounds}")
    values = np.asarray(grid, dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ParameterError(f"grid weights must be finite and >= 0, got {values}")
    n_src = len(candidates.sources)
    weights = np.ones(n_src, dtype=np.float64)
    objective = _fusion_objective(candidates, answers, n)
    if objective is None:
        return weights
    label, n_truth = objective.label, objective.n_truth
    query = candidates.query
    own = [_mean_recall(label & (candidates.rank[:, j] <= n), query, n_truth) for j in range(n_src)]
    fixed = int(np.argmax(own))
    seen = {weights.tobytes(): objective(weights)}
    best = seen[weights.tobytes()]
    for _ in range(rounds):
        changed = False
        for j in range(n_src):
            if j == fixed:
                continue
            for value in values:
                if value == weights[j]:
                    continue
                trial = weights.copy()
                trial[j] = value
                key = trial.tobytes()
                if key not in seen:
                    seen[key] = objective(trial)
                if seen[key] > best:
                    best, weights, changed = seen[key], trial, True
        if not changed:
            break
    return weights
