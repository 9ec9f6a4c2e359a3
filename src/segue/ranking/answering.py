"""Answering with a fitted two-stage model: candidates, features, the ranker, cold start.

:func:`rank` is what :meth:`TwoStage._retrieve <segue.ranking.two_stage.TwoStage._retrieve>`
runs for a batch of query rows: every first-stage source retrieves its top ``n_per_source``
(one scoring pass for tracks and, for Melon, tags), the merged set is ordered by the fitted
fusion weights, the first ``n`` are re-ranked by the LightGBM ranker, and a query with nothing
known (no seed, tag or title column) gets the recency-weighted cold-start list.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from segue.data.kinds import ItemKind
from segue.data.playlists import Playlists
from segue.ranking.candidates import CandidateSet, retrieve_candidate_sets
from segue.ranking.features import FeatureContext, build_features
from segue.ranking.lambdarank import LambdaRanker

if TYPE_CHECKING:
    from segue.ranking.two_stage import TwoStage

__all__ = ["RankedLists", "cold_list", "rank", "rank_candidates", "rank_targets", "rerank"]


@dataclass(frozen=True)
class RankedLists:
    """What :meth:`TwoStage.rank` returns.

    Attributes
    ----------
    pids
        The queries' ids, in order.
    tracks
        ``(n_queries, n)`` item indices, best first, ``-1`` padded.
    tags
        ``(n_queries, n_tags)`` tag item indices (Melon), or None when no tags were asked for.
    candidates
        The merged track candidates (for recall tables and per-source comparisons).
    seconds
        Time per step: ``first_stage``, ``features``, ``ranker`` (and ``tag_features``,
        ``tag_ranker``).
    """

    pids: np.ndarray
    tracks: np.ndarray
    tags: np.ndarray | None
    candidates: CandidateSet
    seconds: dict[str, float]


def rank_candidates(candidates: CandidateSet, scores: np.ndarray, n: int) -> np.ndarray:
    """``(n_queries, n)`` item indices: candidates by ``scores``, best first, ``-1`` padded.

    Pairs with a NaN score (not re-ranked) follow the scored ones in merged order, which pads a
    list with the first-stage order when the re-ranked candidates are fewer than ``n``.
    """
    n_q = len(candidates.pids)
    q = candidates.query
    s = np.where(np.isnan(scores), -np.inf, scores)
    merged = candidates.positions()
    order = np.lexsort((merged, -s, q))
    q_sorted = q[order]
    starts = np.searchsorted(q_sorted, np.arange(n_q))
    pos = np.arange(len(order)) - starts[q_sorted]
    keep = pos < n
    out = np.full((n_q, n), -1, dtype=np.int32)
    out[q_sorted[keep], pos[keep]] = candidates.item[order][keep]
    return out


def rank_targets(
    model: TwoStage, items: Any, n: int, n_tags: int = 0
) -> dict[str, tuple[np.ndarray, int, int]]:
    """``{name: (allowed columns, merged n, items per source)}``: tracks, and Melon's tags."""
    per_source = max(model.n_per_source or model.n, n)
    targets = {"tracks": (items.columns(ItemKind.TRACK), model.n, per_source)}
    if n_tags:
        targets["tags"] = (items.columns(ItemKind.TAG), model.n_tags, model.n_tags)
    return targets


def cold_list(context: FeatureContext, allow: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` of ``allow`` by recency-weighted popularity (``-1`` padded)."""
    pop = context.item_recent_pop[allow]
    top = allow[np.argsort(-pop, kind="stable")[:n]]
    out = np.full(n, -1, dtype=np.int32)
    out[: len(top)] = top
    return out


def rerank(
    ranker: LambdaRanker,
    cands: CandidateSet,
    queries: Playlists,
    context: FeatureContext,
    last_k: int,
    allow: np.ndarray,
    n: int,
    seconds: dict[str, float],
    prefix: str = "",
) -> np.ndarray:
    """The ``n`` best of ``cands`` by ``ranker`` (its first ``cands.n`` re-ranked), per query.

    A query with nothing known (no seed, tag or title column) gets the cold-start list of
    the ``allow`` columns instead. Adds ``features`` and ``ranker`` times (named with
    ``prefix``) to ``seconds``.
    """
    start = time.perf_counter()
    top = cands.positions() <= cands.n  # the merged cut made at retrieval
    feats = build_features(cands.take(top), queries, context, last_k=last_k)
    seconds[f"{prefix}features"] = time.perf_counter() - start
    start = time.perf_counter()
    scores = np.full(len(cands), np.nan)
    scores[top] = ranker.predict(feats.values)
    lists = rank_candidates(cands, scores, n)
    empty = np.diff(sp.csr_array(cands.history).indptr) == 0
    if empty.any():
        lists[empty] = cold_list(context, allow, n)
    seconds[f"{prefix}ranker"] = time.perf_counter() - start
    return lists


def rank(
    model: TwoStage,
    rows: sp.csr_array,
    queries: Playlists,
    n: int,
    n_tags: int = 0,
    exclude: sp.csr_array | None = None,
) -> RankedLists:
    """Tracks (and ``n_tags`` tags) of every query row, best first, ``-1`` padded.

    ``rows`` are the queries encoded over the model's items and ``queries`` the same queries
    as playlists (one per row, same order); ``exclude`` (default: the rows themselves) holds
    the items no source may retrieve.
    """
    ranker = model.ranker_
    context = model.context_
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    targets = rank_targets(model, model.items_, n, n_tags)
    sets = retrieve_candidate_sets(
        model.models_,
        rows,
        queries.playlist_ids().ids,
        targets,
        exclude=rows if exclude is None else exclude,
        exclude_seen=False,
        playlists=queries,
    )
    cands = sets["tracks"]
    if model.fusion_weights_ is not None:
        cands = cands.reorder(model.fusion_weights_)
    seconds["first_stage"] = time.perf_counter() - start
    lists = rerank(ranker, cands, queries, context, model.last_k, targets["tracks"][0], n, seconds)
    tags = None
    if n_tags:
        tags = rerank(
            model.tag_ranker_,
            sets["tags"],
            queries,
            context,
            model.last_k,
            targets["tags"][0],
            n_tags,
            seconds,
            "tag_",
        )
    return RankedLists(cands.pids, lists, tags, cands, seconds)
