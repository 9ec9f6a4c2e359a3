"""Grid search of hyper-parameters on a validation split carved out of the training input.

The answers of the task are never seen: the training listens are split again, the same way the
task hides songs (:func:`segue.data.split.split_listens`), every grid point is fitted on the
visible part and scored on the carved-out songs, and the best point is returned for a final
fit on all the training input (``segue train --params-file``).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from segue.data.interactions import Interactions
from segue.data.split import split_listens
from segue.exceptions import ParameterError
from segue.metrics.evaluate import evaluate_lists
from segue.models.base import BaseRecommender

__all__ = ["TuneResult", "expand_grid", "grid_search"]


@dataclass(frozen=True)
class TuneResult:
    """All grid points with their validation metrics, best first, and the winner."""

    table: pd.DataFrame
    best_params: dict[str, Any]
    metric: str
    split: dict[str, int]


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in a stable order (last name varies fastest)."""
    for name, values in grid.items():
        if len(values) == 0:
            raise ParameterError(f"grid for {name!r} has no values")
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def grid_search(
    data: Interactions,
    model: type[BaseRecommender],
    grid: Mapping[str, Sequence[Any]],
    *,
    fixed: Mapping[str, Any] | None = None,
    k: int = 100,
    metric: str = "ndcg@100",
    seed: int = 0,
    target_fraction: float = 0.2,
    holdout_fraction: float = 0.5,
    min_items: int = 10,
    progress: Callable[[int], None] | None = None,
) -> TuneResult:
    """Fit ``model`` at every grid point on a validation split of ``data``; best by ``metric``.

    Parameters
    ----------
    data
        The training input only (never the task's answers).
    model
        The model class; ``fixed`` parameters are set at every grid point.
    grid
        ``{name: [values]}``; names are checked against the model's parameters before fitting.
    metric
        A column of :class:`segue.metrics.evaluate.Evaluation`'s summary (``ndcg@100``,
        ``recall@100``, ``map@100``, ...); higher is better.
    seed, target_fraction, holdout_fraction, min_items
        The validation split (:func:`segue.data.split.split_listens`).
    """
    fixed = dict(fixed or {})
    points = expand_grid(grid)
    valid = set(model.param_names())
    unknown = sorted((set(grid) | set(fixed)) - valid)
    if unknown:
        raise ParameterError(
            f"{model.__name__} has no parameter(s) {unknown}; valid: {sorted(valid)}"
        )
    frame = data.to_frame().rename(columns={"weight": "count"})
    split = split_listens(
        frame,
        target_fraction=target_fraction,
        holdout_fraction=holdout_fraction,
        min_items=min_items,
        seed=seed,
    )
    train = Interactions.from_frame(split.listens, weight="count")
    answers = Interactions.from_frame(split.answers, weight="count")
    ks = sorted({10, k})
    rows = []
    for point in points:
        estimator = model(**{**fixed, **point})
        start = time.perf_counter()
        estimator.fit(train)
        fit_s = time.perf_counter() - start
        recs = estimator.recommend(split.targets, k)
        summary = evaluate_lists(dict(recs.lists()), answers, ks, train=train).summary
        if metric not in summary:
            choices = sorted(c for c in summary if "@" in c)
            raise ParameterError(f"unknown metric {metric!r}; choose one of {choices}")
        rows.append({**point, **{m: summary[m] for m in summary if "@" in m}, "fit_s": fit_s})
        if progress is not None:
            progress(1)
    table = pd.DataFrame(rows)
    score = table[metric].to_numpy(dtype=np.float64)
    order = np.argsort(-np.where(np.isnan(score), -math.inf, score), kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    best = {**fixed, **points[int(order[0])]}
    return TuneResult(
        table=table,
        best_params={name: _plain(value) for name, value in best.items()},
        metric=metric,
        split={
            "targets": len(split.targets),
            "visible_pairs": train.nnz,
            "held_out_pairs": answers.nnz,
        },
    )


def _plain(value: Any) -> Any:
    """NumPy scalars to Python ones, so the parameters serialise to JSON unchanged."""
    return value.item() if isinstance(value, np.generic) else value
