"""The two-stage playlist continuation model: first-stage candidates, LightGBM re-ranking.

Why: see :mod:`segue.ranking`. ``fit`` never sees evaluation answers: it carves challenge-style
queries out of the training playlists (the MPD's ten categories with
:func:`~segue.ranking.inner_split.inner_split`, Melon's question types with
:func:`~segue.ranking.inner_split.inner_split_melon`), fits the first-stage models on the rest,
fits the fusion weights of the candidate merge and learns the ranker on those queries'
candidates (early stopping on a held-out part of them), then refits the first-stage models on
all the playlists so that recommendations use every training playlist.

Melon (``task="melon"``, or ``"auto"`` on playlists with tags): tags are item columns of every
first-stage model, and a second ranker, learned the same way on tag candidates, picks the tags
to return. Song metadata (genre, release date against the playlist's update date) are features.

Cold start with nothing at all (no known seed, tag or title word): the recency-weighted
popularity list, whose half-life is picked on the inner queries (plain popularity when the
playlists have no dates or recency does not help there).

Saved layout (:meth:`TwoStage.save`, written atomically)::

    DIR/config.json          parameters, source names and classes, feature names, timings,
                             fusion weights, the cold-start half-life
    DIR/first_stage/NAME/    each first-stage model (segue.save_model: manifest + arrays.npz)
    DIR/ranker.txt           the LightGBM booster, in LightGBM's text format
    DIR/tag_ranker.txt       Melon: the tag ranker, same format
    DIR/context.npz          the feature context arrays (read with allow_pickle=False)
    DIR/importance.csv       feature importance (gain, split), for people

Known limitation: the ranker learns on scores of models fit on the inner training part and is
applied to models refit on all playlists (slightly more data, so slightly larger kNN scores);
the relative features (``score_rel``, ranks) are the ones that transfer unchanged.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue._atomic import atomic_dir
from segue.continuation import (
    TAG_PREFIX,
    playlist_interactions,
    tag_columns,
    tag_names,
    track_columns,
)
from segue.data.playlists import Playlists
from segue.exceptions import NotFittedError, ParameterError
from segue.models.base import BaseRecommender
from segue.models.knn import ItemKNN, UserKNN
from segue.models.popularity import MostPopular
from segue.models.wrmf import WRMF
from segue.ranking.candidates import (
    CandidateSet,
    answer_matrix,
    candidate_recall,
    fit_fusion_weights,
    pair_labels,
    retrieve_candidate_sets,
)
from segue.ranking.features import FeatureContext, build_features, recent_popularity
from segue.ranking.inner_split import InnerSplit, inner_split, inner_split_melon
from segue.ranking.lambdarank import LambdaRanker
from segue.serialization import load_model, save_model

__all__ = [
    "RankedLists",
    "TwoStage",
    "default_first_stage",
    "is_two_stage_dir",
    "rank_candidates",
]

FORMAT = "segue.two_stage"
FORMAT_VERSION = 2

COLD_HALF_LIVES = (30.0, 90.0, 365.0, 1095.0)
"""Half-lives (days) of the recency-weighted cold-start list tried on the inner queries."""


def is_two_stage_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a directory written by :meth:`TwoStage.save`."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("format") == FORMAT
    except (ValueError, UnicodeDecodeError):
        return False


def default_first_stage() -> dict[str, BaseRecommender]:
    """UserKNN, ItemKNN, WRMF and popularity with their defaults (EASE: add it yourself)."""
    return {"userknn": UserKNN(), "itemknn": ItemKNN(), "wrmf": WRMF(), "pop": MostPopular()}


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


class TwoStage:
    """Two-stage continuation (module docstring).

    Parameters
    ----------
    first_stage
        ``{name: unfitted model}`` (default :func:`default_first_stage`); cloned by ``fit``.
    n
        Merged candidates re-ranked per query.
    n_per_source
        Items each source retrieves (default ``n``).
    per_category
        Inner queries per challenge category.
    folds
        Inner splits with disjoint queries (each fits the first stage once more): more
        questions for the ranker without taking more playlists out of any first-stage fit.
    valid_fraction
        Share of the inner queries used for early stopping.
    last_k
        Seeds counted as "last" by the co-occurrence feature.
    with_titles
        Train the first stage with title columns (title-only queries need them).
    task
        ``"mpd"``, ``"melon"`` (tags as items, a tag ranker, Melon-style inner questions:
        ``4 * per_category`` of them, in the official question-type mix) or ``"auto"``
        (``"melon"`` when the training playlists have tags).
    n_tags
        Melon: tag candidates each source retrieves for the tag ranker.
    fusion
        Fit per-source fusion weights on the inner queries (else plain reciprocal rank fusion).
    refit
        Refit the first-stage models on all playlists after the ranker is trained.
    seed
        Seed of the inner split, of the validation queries and of LightGBM.
    num_threads
        LightGBM threads.
    num_boost_round, early_stopping_rounds, ranker_params
        See :class:`~segue.ranking.lambdarank.LambdaRanker`.
    """

    def __init__(
        self,
        first_stage: dict[str, BaseRecommender] | None = None,
        *,
        n: int = 1000,
        n_per_source: int | None = None,
        per_category: int = 100,
        folds: int = 3,
        valid_fraction: float = 0.2,
        last_k: int = 5,
        with_titles: bool = True,
        task: str = "auto",
        n_tags: int = 100,
        fusion: bool = True,
        refit: bool = True,
        seed: int = 0,
        num_threads: int = 2,
        num_boost_round: int = 500,
        early_stopping_rounds: int = 30,
        ranker_params: dict[str, Any] | None = None,
    ) -> None:
        if n < 1:
            raise ParameterError(f"n must be at least 1, got {n}")
        if folds < 1:
            raise ParameterError(f"folds must be at least 1, got {folds}")
        if task not in ("auto", "mpd", "melon"):
            raise ParameterError(f"task must be 'auto', 'mpd' or 'melon', got {task!r}")
        if n_tags < 1:
            raise ParameterError(f"n_tags must be at least 1, got {n_tags}")
        if not 0.0 < valid_fraction < 1.0:
            raise ParameterError(f"valid_fraction must be in (0, 1), got {valid_fraction}")
        self.first_stage = first_stage if first_stage is not None else default_first_stage()
        bad = [name for name in self.first_stage if not re.fullmatch(r"[A-Za-z0-9_]+", name)]
        if bad or not self.first_stage:
            raise ParameterError(
                f"first-stage names must be letters, digits and '_' (feature names), got {bad}"
            )
        self.n = n
        self.n_per_source = n_per_source
        self.per_category = per_category
        self.folds = folds
        self.valid_fraction = valid_fraction
        self.last_k = last_k
        self.with_titles = with_titles
        self.task = task
        self.n_tags = n_tags
        self.fusion = fusion
        self.refit = refit
        self.seed = seed
        self.num_threads = num_threads
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.ranker_params = dict(ranker_params or {})
        self.models_: dict[str, BaseRecommender] = {}
        self.ranker_: LambdaRanker | None = None
        self.tag_ranker_: LambdaRanker | None = None
        self.context_: FeatureContext | None = None
        self.feature_names_: list[str] = []
        self.timings_: dict[str, float] = {}
        self.inner_recall_: pd.DataFrame | None = None
        self.inner_tag_recall_: pd.DataFrame | None = None
        self.task_: str | None = None
        self.fusion_weights_: np.ndarray | None = None
        self.cold_half_life_: float | None = None
        self.cold_scores_: dict[str, float] = {}

    def config(self) -> dict[str, Any]:
        """Parameters as JSON-able values (first-stage models by class and parameters)."""
        return {
            "first_stage": {
                name: {"class": type(m).__name__, "params": m.get_params()}
                for name, m in self.first_stage.items()
            },
            "n": self.n,
            "n_per_source": self.n_per_source,
            "per_category": self.per_category,
            "folds": self.folds,
            "valid_fraction": self.valid_fraction,
            "last_k": self.last_k,
            "with_titles": self.with_titles,
            "task": self.task,
            "n_tags": self.n_tags,
            "fusion": self.fusion,
            "refit": self.refit,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "num_boost_round": self.num_boost_round,
            "early_stopping_rounds": self.early_stopping_rounds,
            "ranker_params": self.ranker_params,
        }

    # fitting ---------------------------------------------------------------------------------
    def _task(self, playlists: Playlists) -> str:
        if self.task != "auto":
            return self.task
        table = playlists.playlists
        has_tags = "tags" in table.columns and bool(
            table["tags"].map(len, na_action="ignore").gt(0).any()
        )
        return "melon" if has_tags else "mpd"

    def _fit_first_stage(
        self, playlists: Playlists
    ) -> tuple[Any, dict[str, BaseRecommender], dict[str, float]]:
        inter = playlist_interactions(
            playlists, with_tags=self.task_ == "melon", with_titles=self.with_titles
        )
        models, seconds = {}, {}
        for name, model in self.first_stage.items():
            start = time.perf_counter()
            models[name] = model.clone().fit(inter)
            seconds[name] = time.perf_counter() - start
        return inter, models, seconds

    def _inner_split(self, playlists: Playlists, fold: int, exclude: np.ndarray) -> InnerSplit:
        seed = self.seed + fold
        if self.task_ == "melon":
            return inner_split_melon(playlists, 4 * self.per_category, seed=seed, exclude=exclude)
        return inner_split(playlists, self.per_category, seed=seed, exclude=exclude)

    def _targets(self, items: Any, n: int) -> dict[str, tuple[np.ndarray, int, int]]:
        """``{name: (allowed columns, merged n, items per source)}``: tracks, and Melon's tags."""
        per_source = max(self.n_per_source or self.n, n)
        targets = {"tracks": (track_columns(items), self.n, per_source)}
        if self.task_ == "melon":
            targets["tags"] = (tag_columns(items), self.n_tags, self.n_tags)
        return targets

    def _pick_cold_half_life(self, split: InnerSplit, matrix: Any, items: Any) -> None:
        """The half-life whose recency-weighted top 100 recalls most inner answers."""
        truth = answer_matrix(split.answers, np.asarray(list(split.answers)), items)
        n_truth = np.diff(truth.indptr)
        ok = n_truth > 0
        allow = track_columns(items)
        scores: dict[str, float] = {}
        best, best_score = None, -1.0
        for half_life in (None, *COLD_HALF_LIVES):
            pop = recent_popularity(split.train, matrix, half_life)[allow]
            top = allow[np.argsort(-pop, kind="stable")[:100]]
            hits = np.asarray(truth[:, top].sum(axis=1)).ravel()
            score = float(np.mean(hits[ok] / n_truth[ok])) if ok.any() else 0.0
            scores["all-time" if half_life is None else f"{half_life:g} days"] = score
            if score > best_score + 1e-12:
                best, best_score = half_life, score
        self.cold_half_life_ = best
        self.cold_scores_ = scores

    def _labelled_features(
        self,
        cands: CandidateSet,
        queries: Playlists,
        context: FeatureContext,
        answers: dict[Any, list[Any]],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """``(features, labels, query row, feature names)`` of one fold's candidates."""
        feats = build_features(cands, queries, context, last_k=self.last_k)
        labels = pair_labels(cands, answer_matrix(answers, cands.pids, cands.items))
        return feats.values, labels, cands.query, feats.names

    def _train_ranker(
        self,
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]],
        params: dict[str, Any],
    ) -> LambdaRanker:
        """A lambdarank ranker on the folds' pairs, early stopping on held-out queries."""
        offsets = np.cumsum([0] + [int(q.max()) + 1 if len(q) else 0 for _, _, q, _ in parts])
        x = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        labels = np.concatenate([p[1] for p in parts])
        query = np.concatenate(
            [p[2].astype(np.int64) + off for p, off in zip(parts, offsets[:-1], strict=True)]
        )
        # validation queries for early stopping; queries without a positive teach nothing
        n_q = int(offsets[-1])
        rng = np.random.default_rng(self.seed)
        is_valid = rng.random(n_q) < self.valid_fraction
        if is_valid.all() or not is_valid.any():
            is_valid[:] = False
            is_valid[rng.permutation(n_q)[: max(1, int(n_q * self.valid_fraction))]] = True
        positives = np.bincount(query[labels], minlength=n_q) > 0
        use = positives[query]
        tr = use & ~is_valid[query]
        va = use & is_valid[query]
        if not tr.any() or not va.any():
            raise ParameterError("too few inner queries with a held-out item among candidates")
        y = labels.astype(np.float32)
        ranker = LambdaRanker(
            self.num_boost_round,
            self.early_stopping_rounds,
            seed=self.seed,
            num_threads=self.num_threads,
            params=params,
        )
        ranker.fit(
            x[tr], y[tr], query[tr], feature_names=parts[0][3], valid=(x[va], y[va], query[va])
        )
        return ranker

    def fit(self, playlists: Playlists) -> TwoStage:
        """Learn from training playlists (module docstring); never from evaluation answers."""
        self.task_ = self._task(playlists)
        timings: dict[str, float] = {}

        def clock(key: str, start: float) -> None:
            timings[key] = timings.get(key, 0.0) + time.perf_counter() - start

        melon = self.task_ == "melon"
        track_parts, tag_parts = [], []
        asked = np.empty(0, dtype=playlists.playlists["pid"].dtype)
        for fold in range(self.folds):
            start = time.perf_counter()
            split = self._inner_split(playlists, fold, asked)
            clock("inner_split", start)
            if not split.answers:
                if fold == 0:
                    raise ParameterError("no playlist is eligible for any inner question")
                break  # too few playlists left for another fold
            asked = np.concatenate([asked, split.queries.playlists["pid"].to_numpy()])

            inter, models, seconds = self._fit_first_stage(split.train)
            for key, value in seconds.items():
                timings[f"inner_fit:{key}"] = timings.get(f"inner_fit:{key}", 0.0) + value
            start = time.perf_counter()
            targets = self._targets(inter.items, self.n)
            sets = retrieve_candidate_sets(models, split.queries, targets)
            tracks = sets["tracks"]
            if fold == 0:  # the merge's weights and the cold-start list, from the first fold
                self.fusion_weights_ = (
                    fit_fusion_weights(tracks, split.answers, self.n) if self.fusion else None
                )
                self._pick_cold_half_life(split, inter.matrix, inter.items)
            if self.fusion_weights_ is not None:
                tracks = tracks.reorder(self.fusion_weights_)
            if fold == 0:
                self.inner_recall_ = candidate_recall(
                    tracks, split.answers, split.categories, cutoffs=(self.n,)
                )
            clock("inner_candidates", start)

            start = time.perf_counter()
            context = FeatureContext.build(
                split.train, inter.matrix, inter.items, half_life_days=self.cold_half_life_
            )
            track_parts.append(
                self._labelled_features(tracks.top(), split.queries, context, split.answers)
            )
            if melon:
                assert split.tag_answers is not None
                tag_answers = {
                    p: [TAG_PREFIX + t for t in ts] for p, ts in split.tag_answers.items()
                }
                if fold == 0:
                    self.inner_tag_recall_ = candidate_recall(
                        sets["tags"], tag_answers, split.categories, cutoffs=(10, self.n_tags)
                    )
                tag_parts.append(
                    self._labelled_features(sets["tags"], split.queries, context, tag_answers)
                )
            clock("inner_features", start)

        start = time.perf_counter()
        ranker = self._train_ranker(track_parts, self.ranker_params)
        clock("ranker", start)
        tag_ranker = None
        if melon:
            start = time.perf_counter()
            tag_ranker = self._train_ranker(tag_parts, {"eval_at": [10], **self.ranker_params})
            clock("tag_ranker", start)
        names = track_parts[0][3]
        del track_parts, tag_parts

        if self.refit:
            inter, models, seconds = self._fit_first_stage(playlists)
            timings.update({f"refit:{k}": v for k, v in seconds.items()})
            start = time.perf_counter()
            context = FeatureContext.build(
                playlists, inter.matrix, inter.items, half_life_days=self.cold_half_life_
            )
            clock("refit:context", start)
        self.models_ = models
        self.context_ = context
        self.ranker_ = ranker
        self.tag_ranker_ = tag_ranker
        self.feature_names_ = names
        self.timings_ = timings
        return self

    # recommending ----------------------------------------------------------------------------
    def _check_fitted(self) -> LambdaRanker:
        if self.ranker_ is None or self.context_ is None or not self.models_:
            raise NotFittedError("TwoStage is not fitted: call fit() or load()")
        return self.ranker_

    def _cold_list(self, allow: np.ndarray, n: int) -> np.ndarray:
        """The first ``n`` of ``allow`` by recency-weighted popularity (``-1`` padded)."""
        assert self.context_ is not None
        pop = self.context_.item_recent_pop[allow]
        top = allow[np.argsort(-pop, kind="stable")[:n]]
        out = np.full(n, -1, dtype=np.int32)
        out[: len(top)] = top
        return out

    def _rerank(
        self,
        ranker: LambdaRanker,
        cands: CandidateSet,
        queries: Playlists,
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
        assert self.context_ is not None
        start = time.perf_counter()
        top = cands.positions() <= cands.n  # the merged cut made at retrieval
        feats = build_features(cands.take(top), queries, self.context_, last_k=self.last_k)
        seconds[f"{prefix}features"] = time.perf_counter() - start
        start = time.perf_counter()
        scores = np.full(len(cands), np.nan)
        scores[top] = ranker.predict(feats.values)
        lists = rank_candidates(cands, scores, n)
        empty = np.diff(sp.csr_array(cands.history).indptr) == 0
        if empty.any():
            lists[empty] = self._cold_list(allow, n)
        seconds[f"{prefix}ranker"] = time.perf_counter() - start
        return lists

    def recommend_idx(
        self, queries: Playlists, n: int = 500
    ) -> tuple[np.ndarray, np.ndarray, CandidateSet, dict[str, float]]:
        """``(pids, (n_queries, n) item indices, candidates, seconds per step)``.

        Item indices refer to :attr:`items_`; ``-1`` pads a list shorter than ``n``.
        """
        ranked = self.rank(queries, n)
        return ranked.pids, ranked.tracks, ranked.candidates, ranked.seconds

    def rank(self, queries: Playlists, n: int = 500, n_tags: int = 0) -> RankedLists:
        """Tracks (and, for a Melon model, ``n_tags`` tags) of every query, from one scoring pass.

        Lists hold item indices into :attr:`items_`, best first, ``-1`` padded.
        """
        ranker = self._check_fitted()
        if n < 1:
            raise ParameterError(f"n must be at least 1, got {n}")
        if n_tags and self.tag_ranker_ is None:
            raise ParameterError("this two-stage model was trained without tags (not Melon)")
        seconds: dict[str, float] = {}
        start = time.perf_counter()
        targets = self._targets(self.items_, n)
        if not n_tags:
            targets.pop("tags", None)
        sets = retrieve_candidate_sets(self.models_, queries, targets)
        cands = sets["tracks"]
        if self.fusion_weights_ is not None:
            cands = cands.reorder(self.fusion_weights_)
        seconds["first_stage"] = time.perf_counter() - start
        lists = self._rerank(ranker, cands, queries, targets["tracks"][0], n, seconds)
        tags = None
        if n_tags:
            assert self.tag_ranker_ is not None
            tag_cols = targets["tags"][0]
            tags = self._rerank(
                self.tag_ranker_, sets["tags"], queries, tag_cols, n_tags, seconds, "tag_"
            )
        return RankedLists(cands.pids, lists, tags, cands, seconds)

    @property
    def items_(self) -> Any:
        """The item vocabulary shared by the first-stage models."""
        self._check_fitted()
        return next(iter(self.models_.values())).items_

    def continue_playlists(self, queries: Playlists, n: int = 500) -> dict[Any, list[Any]]:
        """``{pid: [track, ...]}``: ``n`` tracks per query, best first, no seed repeated."""
        pids, lists, _, _ = self.recommend_idx(queries, n)
        ids = self.items_.ids
        return {pid: ids[row[row >= 0]].tolist() for pid, row in zip(pids, lists, strict=True)}

    def answer_questions(
        self, queries: Playlists, n_songs: int = 100, n_tags: int = 10
    ) -> list[dict[str, Any]]:
        """Melon results: ``[{"id", "songs", "tags"}]``, no given song or tag repeated."""
        ranked = self.rank(queries, n_songs, n_tags)
        pids, lists, tags = ranked.pids, ranked.tracks, ranked.tags
        assert tags is not None
        ids = self.items_.ids
        return [
            {
                "id": pid,
                "songs": ids[songs[songs >= 0]].tolist(),
                "tags": tag_names(ids[row[row >= 0]]),
            }
            for pid, songs, row in zip(pids.tolist(), lists, tags, strict=True)
        ]

    # storage ---------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model to the directory ``path`` (module docstring)."""
        ranker = self._check_fitted()
        assert self.context_ is not None
        with atomic_dir(path) as tmp:
            for name, model in self.models_.items():
                save_model(model, tmp / "first_stage" / name)
            ranker.save(tmp / "ranker.txt")
            ranker.feature_importance().to_csv(tmp / "importance.csv", index=False)
            if self.tag_ranker_ is not None:
                self.tag_ranker_.save(tmp / "tag_ranker.txt")
            arrays = self.context_.to_arrays()
            # the playlists x items matrix is every first-stage model's history_: keep one copy
            shared = self._history_source()
            if shared is not None:
                arrays = {k: v for k, v in arrays.items() if not k.startswith("matrix.")}
            np.savez(tmp / "context.npz", **arrays)
            doc = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "config": self.config(),
                "task": self.task_,
                "sources": list(self.models_),
                "feature_names": self.feature_names_,
                "fusion_weights": (
                    None if self.fusion_weights_ is None else self.fusion_weights_.tolist()
                ),
                "cold_half_life": self.cold_half_life_,
                "context_matrix_from": shared,
                "timings": self.timings_,
            }
            (tmp / "config.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TwoStage:
        """Read a directory written by :meth:`save`."""
        root = Path(path)
        doc = json.loads((root / "config.json").read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT or doc.get("format_version") != FORMAT_VERSION:
            raise ParameterError(f"{root}: not a {FORMAT} v{FORMAT_VERSION} directory")
        models = {name: load_model(root / "first_stage" / name) for name in doc["sources"]}
        # one shared vocabulary object: every query checks that the sources share their items,
        # and an identity test is free where comparing 200K ids is not
        first = next(iter(models.values()))
        for other in models.values():
            if other.items_ == first.items_:
                other.items_ = first.items_
        config = dict(doc["config"])
        config.pop("first_stage")
        model = cls({name: m.clone() for name, m in models.items()}, **config)
        model.models_ = models
        model.ranker_ = LambdaRanker.load(root / "ranker.txt", num_threads=model.num_threads)
        if (root / "tag_ranker.txt").is_file():
            model.tag_ranker_ = LambdaRanker.load(
                root / "tag_ranker.txt", num_threads=model.num_threads
            )
        with np.load(root / "context.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        shared = doc.get("context_matrix_from")
        if shared is not None:
            history = sp.csr_array(models[shared].history_)
            arrays["matrix.data"] = np.ones(history.nnz, dtype=np.float32)
            arrays["matrix.indices"] = history.indices
            arrays["matrix.indptr"] = history.indptr
            arrays["matrix.shape"] = np.asarray(history.shape, dtype=np.int64)
        model.context_ = FeatureContext.from_arrays(arrays)
        model.task_ = doc["task"]
        model.feature_names_ = list(doc["feature_names"])
        weights = doc.get("fusion_weights")
        model.fusion_weights_ = None if weights is None else np.asarray(weights, dtype=np.float64)
        model.cold_half_life_ = doc.get("cold_half_life")
        model.timings_ = dict(doc.get("timings", {}))
        return model

    def _history_source(self) -> str | None:
        """A first-stage model whose ``history_`` has the context matrix's entries, if any."""
        assert self.context_ is not None
        m = self.context_.matrix
        for name, model in self.models_.items():
            history = getattr(model, "history_", None)
            if history is None:
                continue
            h = sp.csr_array(history)
            if (
                h.shape == m.shape
                and h.nnz == m.nnz
                and np.array_equal(h.indptr, m.indptr)
                and np.array_equal(h.indices, m.indices)
                and np.all(m.data == 1.0)
            ):
                return name
        return None
