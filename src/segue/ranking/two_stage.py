"""The two-stage playlist continuation model: first-stage candidates, LightGBM re-ranking.

Why: see :mod:`segue.ranking`. ``fit`` never sees evaluation answers: it carves challenge-style
queries out of the training playlists (:func:`~segue.ranking.inner_split.inner_split`), fits
the first-stage models on the rest, learns the ranker on those queries' candidates (early
stopping on a held-out part of them), then refits the first-stage models on all the playlists
so that recommendations use every training playlist.

Saved layout (:meth:`TwoStage.save`, written atomically)::

    DIR/config.json          parameters, source names and classes, feature names, timings
    DIR/first_stage/NAME/    each first-stage model (segue.save_model: manifest + arrays.npz)
    DIR/ranker.txt           the LightGBM booster, in LightGBM's text format
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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segue._atomic import atomic_dir
from segue.continuation import playlist_interactions
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
    pair_labels,
    retrieve_candidates,
)
from segue.ranking.features import FeatureContext, build_features
from segue.ranking.inner_split import inner_split
from segue.ranking.lambdarank import LambdaRanker
from segue.serialization import load_model, save_model

__all__ = ["TwoStage", "default_first_stage", "is_two_stage_dir", "rank_candidates"]

FORMAT = "segue.two_stage"
FORMAT_VERSION = 1


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
    valid_fraction
        Share of the inner queries used for early stopping.
    last_k
        Seeds counted as "last" by the co-occurrence feature.
    with_titles
        Train the first stage with title columns (title-only queries need them).
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
        valid_fraction: float = 0.2,
        last_k: int = 5,
        with_titles: bool = True,
        refit: bool = True,
        seed: int = 0,
        num_threads: int = 2,
        num_boost_round: int = 500,
        early_stopping_rounds: int = 30,
        ranker_params: dict[str, Any] | None = None,
    ) -> None:
        if n < 1:
            raise ParameterError(f"n must be at least 1, got {n}")
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
        self.valid_fraction = valid_fraction
        self.last_k = last_k
        self.with_titles = with_titles
        self.refit = refit
        self.seed = seed
        self.num_threads = num_threads
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.ranker_params = dict(ranker_params or {})
        self.models_: dict[str, BaseRecommender] = {}
        self.ranker_: LambdaRanker | None = None
        self.context_: FeatureContext | None = None
        self.feature_names_: list[str] = []
        self.timings_: dict[str, float] = {}
        self.inner_recall_: pd.DataFrame | None = None

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
            "valid_fraction": self.valid_fraction,
            "last_k": self.last_k,
            "with_titles": self.with_titles,
            "refit": self.refit,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "num_boost_round": self.num_boost_round,
            "early_stopping_rounds": self.early_stopping_rounds,
            "ranker_params": self.ranker_params,
        }

    # fitting ---------------------------------------------------------------------------------
    def _fit_first_stage(
        self, playlists: Playlists
    ) -> tuple[Any, dict[str, BaseRecommender], dict[str, float]]:
        inter = playlist_interactions(playlists, with_titles=self.with_titles)
        models, seconds = {}, {}
        for name, model in self.first_stage.items():
            start = time.perf_counter()
            models[name] = model.clone().fit(inter)
            seconds[name] = time.perf_counter() - start
        return inter, models, seconds

    def fit(self, playlists: Playlists) -> TwoStage:
        """Learn from training playlists (module docstring); never from evaluation answers."""
        timings: dict[str, float] = {}
        start = time.perf_counter()
        split = inner_split(playlists, self.per_category, seed=self.seed)
        if not split.answers:
            raise ParameterError("no playlist is eligible for any challenge category")
        timings["inner_split"] = time.perf_counter() - start

        inter, models, seconds = self._fit_first_stage(split.train)
        timings.update({f"inner_fit:{k}": v for k, v in seconds.items()})
        start = time.perf_counter()
        everything = retrieve_candidates(
            models, split.queries, self.n, n_per_source=self.n_per_source
        )
        self.inner_recall_ = candidate_recall(everything, split.answers, split.categories)
        cands = everything.top()
        timings["inner_candidates"] = time.perf_counter() - start

        start = time.perf_counter()
        context = FeatureContext.build(split.train, inter.matrix, inter.items)
        feats = build_features(cands, split.queries, context, last_k=self.last_k)
        labels = pair_labels(cands, answer_matrix(split.answers, cands.pids, inter.items))
        timings["inner_features"] = time.perf_counter() - start

        # validation queries for early stopping; queries without a positive teach nothing
        n_q = len(cands.pids)
        rng = np.random.default_rng(self.seed)
        is_valid = rng.random(n_q) < self.valid_fraction
        if is_valid.all() or not is_valid.any():
            is_valid[:] = False
            is_valid[rng.permutation(n_q)[: max(1, int(n_q * self.valid_fraction))]] = True
        positives = np.bincount(cands.query[labels], minlength=n_q) > 0
        use = positives[cands.query]
        tr = use & ~is_valid[cands.query]
        va = use & is_valid[cands.query]
        if not tr.any() or not va.any():
            raise ParameterError("too few inner queries with a held-out track among candidates")
        y = labels.astype(np.float32)
        start = time.perf_counter()
        ranker = LambdaRanker(
            self.num_boost_round,
            self.early_stopping_rounds,
            seed=self.seed,
            num_threads=self.num_threads,
            params=self.ranker_params,
        )
        ranker.fit(
            feats.values[tr],
            y[tr],
            cands.query[tr],
            feature_names=feats.names,
            valid=(feats.values[va], y[va], cands.query[va]),
        )
        timings["ranker"] = time.perf_counter() - start

        if self.refit:
            inter, models, seconds = self._fit_first_stage(playlists)
            timings.update({f"refit:{k}": v for k, v in seconds.items()})
            start = time.perf_counter()
            context = FeatureContext.build(playlists, inter.matrix, inter.items)
            timings["refit:context"] = time.perf_counter() - start
        self.models_ = models
        self.context_ = context
        self.ranker_ = ranker
        self.feature_names_ = feats.names
        self.timings_ = timings
        return self

    # recommending ----------------------------------------------------------------------------
    def _check_fitted(self) -> LambdaRanker:
        if self.ranker_ is None or self.context_ is None or not self.models_:
            raise NotFittedError("TwoStage is not fitted: call fit() or load()")
        return self.ranker_

    def recommend_idx(
        self, queries: Playlists, n: int = 500
    ) -> tuple[np.ndarray, np.ndarray, CandidateSet, dict[str, float]]:
        """``(pids, (n_queries, n) item indices, candidates, seconds per step)``.

        Item indices refer to :attr:`items_`; ``-1`` pads a list shorter than ``n``.
        """
        ranker = self._check_fitted()
        if n < 1:
            raise ParameterError(f"n must be at least 1, got {n}")
        seconds: dict[str, float] = {}
        start = time.perf_counter()
        per_source = max(self.n_per_source or self.n, n)
        everything = retrieve_candidates(self.models_, queries, self.n, n_per_source=per_source)
        seconds["first_stage"] = time.perf_counter() - start
        start = time.perf_counter()
        top = everything.positions() <= self.n
        feats = build_features(everything.take(top), queries, self.context_, last_k=self.last_k)
        seconds["features"] = time.perf_counter() - start
        start = time.perf_counter()
        scores = np.full(len(everything), np.nan)
        scores[top] = ranker.predict(feats.values)
        lists = rank_candidates(everything, scores, n)
        seconds["ranker"] = time.perf_counter() - start
        return everything.pids, lists, everything, seconds

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
            np.savez(tmp / "context.npz", **self.context_.to_arrays())
            doc = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "config": self.config(),
                "sources": list(self.models_),
                "feature_names": self.feature_names_,
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
        with np.load(root / "context.npz", allow_pickle=False) as npz:
            model.context_ = FeatureContext.from_arrays({k: npz[k] for k in npz.files})
        model.feature_names_ = list(doc["feature_names"])
        model.timings_ = dict(doc.get("timings", {}))
        return model
