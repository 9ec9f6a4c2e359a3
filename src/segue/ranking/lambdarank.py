"""A LightGBM lambdarank re-ranker: query groups, early stopping, importance, text format.

Why: the RecSys Challenge 2018 winners re-ranked candidates with gradient-boosted trees
trained for a ranking objective; LightGBM's ``lambdarank`` optimises NDCG directly over query
groups and handles missing features (a source that did not retrieve a pair) natively. The
booster is stored in LightGBM's own text format (``save_model``), never pickled, so a saved
model is readable and loadable by any LightGBM.

Determinism: ``seed`` fixes every random choice LightGBM makes and ``deterministic=True`` with
a fixed ``num_threads`` makes training reproducible on one machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segue._extras import require
from segue.exceptions import NotFittedError, ParameterError
from segue.serialization import Codec, checked_file, register_codec, saved_file

__all__ = ["LambdaRanker"]

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [100, 500],
    "learning_rate": 0.05,
    "num_leaves": 63,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.9,
    "bagging_freq": 1,
    "lambdarank_truncation_level": 500,
    "verbosity": -1,
}


def _group_sizes(query: np.ndarray) -> np.ndarray:
    """Sizes of the runs of equal, contiguous query ids (LightGBM's ``group``)."""
    query = np.asarray(query)
    if len(query) == 0:
        return np.zeros(0, dtype=np.int64)
    if np.any(np.diff(query) < 0):
        raise ParameterError("rows must be sorted by query (contiguous query groups)")
    _, sizes = np.unique(query, return_counts=True)
    return sizes


class LambdaRanker:
    """LightGBM ``lambdarank`` over query groups.

    Parameters
    ----------
    num_boost_round
        Most boosting rounds.
    early_stopping_rounds
        Stop when the first validation metric has not improved for this many rounds.
    seed
        LightGBM ``seed`` (and the derived bagging / feature-fraction seeds).
    num_threads
        Threads LightGBM uses (fixed, for reproducibility).
    params
        Overrides of :data:`DEFAULT_PARAMS`.
    """

    def __init__(
        self,
        num_boost_round: int = 500,
        early_stopping_rounds: int = 30,
        *,
        seed: int = 0,
        num_threads: int = 2,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.seed = seed
        self.num_threads = num_threads
        self.params = dict(params or {})
        self.booster_: Any = None
        self.evals_result_: dict[str, dict[str, list[float]]] = {}

    def _params(self) -> dict[str, Any]:
        return {
            **DEFAULT_PARAMS,
            **self.params,
            "seed": self.seed,
            "num_threads": self.num_threads,
            "deterministic": True,
            "force_row_wise": True,
        }

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        query: np.ndarray,
        *,
        feature_names: list[str],
        valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> LambdaRanker:
        """Train on ``(x, y)`` grouped by ``query`` (sorted), early stopping on ``valid``.

        Parameters
        ----------
        x
            ``(n_rows, n_features)`` float32 features (NaN = missing).
        y
            ``(n_rows,)`` relevance labels (0/1).
        query
            ``(n_rows,)`` query id of each row, non-decreasing.
        feature_names
            Column names of ``x``.
        valid
            ``(x, y, query)`` of the validation queries; without it, no early stopping.
        """
        lgb = require("lightgbm", "the two-stage ranker")
        train = lgb.Dataset(
            x,
            label=y,
            group=_group_sizes(query),
            feature_name=list(feature_names),
            free_raw_data=False,
        )
        sets, names = [train], ["train"]
        if valid is not None:
            vx, vy, vq = valid
            sets.append(lgb.Dataset(vx, label=vy, group=_group_sizes(vq), reference=train))
            names.append("valid")
        self.evals_result_ = {}
        callbacks = [lgb.record_evaluation(self.evals_result_)]
        if valid is not None and self.early_stopping_rounds:
            callbacks.append(
                lgb.early_stopping(
                    self.early_stopping_rounds, first_metric_only=True, verbose=False
                )
            )
        self.booster_ = lgb.train(
            self._params(),
            train,
            num_boost_round=self.num_boost_round,
            valid_sets=sets,
            valid_names=names,
            callbacks=callbacks,
        )
        return self

    def _check(self) -> Any:
        if self.booster_ is None:
            raise NotFittedError("LambdaRanker is not fitted: call fit() or load()")
        return self.booster_

    @property
    def best_iteration(self) -> int:
        """Boosting round kept by early stopping (all rounds when it did not stop early)."""
        booster = self._check()
        return int(booster.best_iteration or booster.current_iteration())

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Scores of rows of features (higher: better), with the best iteration's trees."""
        booster = self._check()
        return np.asarray(
            booster.predict(x, num_iteration=self.best_iteration, num_threads=self.num_threads),
            dtype=np.float64,
        )

    def feature_importance(self) -> pd.DataFrame:
        """``gain`` and ``split`` importance per feature, by gain, largest first."""
        booster = self._check()
        frame = pd.DataFrame(
            {
                "feature": booster.feature_name(),
                "gain": booster.feature_importance("gain", iteration=self.best_iteration),
                "split": booster.feature_importance("split", iteration=self.best_iteration),
            }
        )
        return frame.sort_values("gain", ascending=False, ignore_index=True)

    def learning_curve(self) -> pd.DataFrame:
        """Metric per boosting round, one column per ``set:metric`` (from the training log)."""
        columns = {
            f"{name}:{metric}": values
            for name, metrics in self.evals_result_.items()
            for metric, values in metrics.items()
        }
        frame = pd.DataFrame(columns)
        frame.index = pd.RangeIndex(1, len(frame) + 1, name="round")
        return frame

    def num_features(self) -> int:
        """How many features the booster takes."""
        return int(self._check().num_feature())

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the booster in LightGBM's text format (best iteration only)."""
        booster = self._check()
        path = Path(path)
        booster.save_model(str(path), num_iteration=self.best_iteration)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, num_threads: int = 2) -> LambdaRanker:
        """Read a booster written by :meth:`save` (or by LightGBM's ``save_model``)."""
        ranker = cls(num_threads=num_threads)
        lgb = require("lightgbm", "the two-stage ranker")
        ranker.booster_ = lgb.Booster(model_file=str(path))
        return ranker


def _save_ranker(ranker: LambdaRanker, name: str, writer: Any) -> dict[str, Any]:
    file = f"{name}.txt"
    ranker.save(writer.root / file)
    ranker.feature_importance().to_csv(writer.root / f"{name}.importance.csv", index=False)
    writer.libraries.add("lightgbm")
    return saved_file(writer.root, file)


def _load_ranker(entry: dict[str, Any], reader: Any) -> LambdaRanker:
    # the checksum first: LightGBM aborts the process on a damaged model file
    return LambdaRanker.load(checked_file(reader.root, entry))


register_codec(Codec("lightgbm", lambda v: isinstance(v, LambdaRanker), _save_ranker, _load_ranker))
"""Saved models store a :class:`LambdaRanker` in LightGBM's text format (with a feature
importance table beside it, for people)."""
