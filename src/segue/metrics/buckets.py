"""Per-bucket metric tables and their bar charts.

A mean over all playlists hides where a model wins: the challenges' own scenarios (title only,
1 seed track, 100 seed tracks...) behave very differently, and so do short and long listening
histories. These helpers cut a per-item metric frame (one row per playlist or user, as
:func:`segue.metrics.challenges.mpd_metrics` and :func:`segue.metrics.evaluate.evaluate_lists`
return) into buckets, and draw one run against another.

Plots are drawn on a :class:`matplotlib.figure.Figure` with the Agg canvas attached directly,
never through :mod:`matplotlib.pyplot`: this works whatever backend pyplot has already
selected (a notebook's inline backend, a GUI), changes no global state, and leaves no figure in
pyplot's registry. matplotlib is imported inside the plotting functions only, so importing this
module stays cheap. PNG files are written through :func:`segue._atomic.atomic_open`, so a
failure never leaves half an image behind.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segue._atomic import atomic_open
from segue.exceptions import ParameterError

__all__ = [
    "ALL_LABEL",
    "DEFAULT_LENGTH_EDGES",
    "bucket_metrics_png",
    "bucket_table",
    "length_buckets",
    "plot_bucket_metrics",
    "plot_buckets",
]

ALL_LABEL = "all"
"""Index label of the row that summarises every item."""

DEFAULT_LENGTH_EDGES: tuple[float, ...] = (0, 1, 5, 10, 25, 100, math.inf)
"""Default bucket edges: 0, 1-4, 5-9, 10-24, 25-99, 100+ (the MPD seed-count scenarios)."""


def _edge_label(lo: float, hi: float) -> str:
    if math.isinf(hi):
        return f"{lo:g}+"
    if hi - lo == 1:
        return f"{lo:g}"
    return f"{lo:g}-{hi - 1:g}"


def length_buckets(
    lengths: Sequence[float] | np.ndarray | pd.Series,
    edges: Sequence[float] = DEFAULT_LENGTH_EDGES,
) -> pd.Categorical:
    """Bucket integer lengths (seed tracks, history size) into readable, ordered labels.

    Parameters
    ----------
    lengths
        Non-negative integer counts, one per item.
    edges
        Strictly increasing integer bucket edges; bucket ``j`` holds ``edges[j] <= x <
        edges[j+1]``. The last edge may be ``math.inf``. The default gives the labels
        ``"0"``, ``"1-4"``, ``"5-9"``, ``"10-24"``, ``"25-99"`` and ``"100+"``.

    Returns
    -------
    pandas.Categorical
        Ordered, with every bucket as a category (in edge order) even when it is empty, so
        tables and plots keep the natural order instead of the alphabetical one.

    Raises
    ------
    ParameterError
        Fewer than two edges, edges not strictly increasing or not integers, or a length
        that is missing, not an integer, or outside ``[edges[0], edges[-1])``.

    Examples
    --------
    >>> list(length_buckets([0, 1, 4, 5, 30, 250]))
    ['0', '1-4', '1-4', '5-9', '25-99', '100+']
    """
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or len(e) < 2:
        raise ParameterError(f"edges needs at least two values, got {list(edges)}")
    if np.any(np.diff(e) <= 0) or np.isnan(e).any():
        raise ParameterError(f"edges must be strictly increasing, got {list(edges)}")
    finite = e[np.isfinite(e)]
    if np.any(finite != np.round(finite)) or math.isinf(e[0]):
        raise ParameterError(f"edges must be integers (the last may be inf), got {list(edges)}")
    x = np.asarray(lengths, dtype=np.float64)
    if x.ndim != 1:
        raise ParameterError(f"lengths must be one-dimensional, got shape {x.shape}")
    bad = np.isnan(x) | (x != np.round(x)) | (x < e[0]) | (x >= e[-1])
    if bad.any():
        raise ParameterError(
            f"{int(bad.sum())} length(s) are not integers in [{e[0]:g}, {e[-1]:g}), "
            f"e.g. {x[bad][:3].tolist()}"
        )
    labels = [_edge_label(lo, hi) for lo, hi in zip(e[:-1], e[1:], strict=True)]
    codes = np.searchsorted(e, x, side="right") - 1
    return pd.Categorical.from_codes(codes, categories=labels, ordered=True)


def bucket_table(
    per_item: pd.DataFrame,
    by: str | Sequence[str],
    metrics: Sequence[str],
) -> pd.DataFrame:
    """Mean of each metric and the number of items, per bucket, plus an ``"all"`` row.

    Parameters
    ----------
    per_item
        One row per item (playlist, user) with the bucket column(s) and the metric columns.
    by
        The bucket column, or several (the index is then a MultiIndex and the summary row is
        ``("all", "all", ...)``). A categorical column keeps its category order; empty
        categories are left out.
    metrics
        The metric columns to average.

    Returns
    -------
    pandas.DataFrame
        Indexed by bucket (then ``"all"`` last); the metric columns hold means that skip
        ``NaN`` (an item with no answers has no value), and ``count`` holds the number of items
        (rows) in the bucket, ``NaN`` or not.

    Raises
    ------
    ParameterError
        A named column is missing, ``metrics`` is empty, or a bucket value is missing.
    """
    keys = [by] if isinstance(by, str) else list(by)
    metrics = list(metrics)
    if not keys:
        raise ParameterError("by must name at least one column")
    if not metrics:
        raise ParameterError("metrics must name at least one column")
    missing = [c for c in keys + metrics if c not in per_item.columns]
    if missing:
        raise ParameterError(
            f"per_item has no column(s) {missing}; it has {list(per_item.columns)}"
        )
    if per_item[keys].isna().any().any():
        raise ParameterError(f"bucket column(s) {keys} hold missing values")
    grouped = per_item.groupby(keys, observed=True, sort=True)
    table = grouped[metrics].mean()
    table["count"] = grouped.size()
    overall = per_item[metrics].mean().to_frame().T
    overall["count"] = len(per_item)
    if len(keys) == 1:
        table.index = pd.Index([*table.index], dtype=object, name=keys[0])
        overall.index = pd.Index([ALL_LABEL], dtype=object, name=keys[0])
    else:
        overall.index = pd.MultiIndex.from_tuples([(ALL_LABEL,) * len(keys)], names=keys)
        table.index = pd.MultiIndex.from_tuples(list(table.index), names=keys)
    out = pd.concat([table, overall])
    out["count"] = out["count"].astype(np.int64)
    return out


def _label(key: Any) -> str:
    return " / ".join(str(k) for k in key) if isinstance(key, tuple) else str(key)


def _bucket_order(tables: Mapping[str, pd.DataFrame]) -> list[Hashable]:
    """Buckets in the order of the first table, then any the others add."""
    order: list[Hashable] = []
    seen: set[Hashable] = set()
    for table in tables.values():
        for key in table.index:
            if key not in seen:
                seen.add(key)
                order.append(key)
    return order


def _check_tables(tables: Mapping[str, pd.DataFrame], metrics: Sequence[str]) -> None:
    if not tables:
        raise ParameterError("tables is empty: nothing to plot")
    if not metrics:
        raise ParameterError("metrics must name at least one column")
    for run, table in tables.items():
        absent = [m for m in metrics if m not in table.columns]
        if absent:
            raise ParameterError(f"the table of run {run!r} has no column(s) {absent}")


def _tick_labels(tables: Mapping[str, pd.DataFrame], order: list[Hashable]) -> list[str]:
    """Bucket names, with ``n=COUNT`` under each when every run agrees on the counts."""
    labels = [_label(k) for k in order]
    counts = [t["count"].reindex(order) for t in tables.values() if "count" in t.columns]
    if len(counts) != len(tables) or any(not c.equals(counts[0]) for c in counts[1:]):
        return labels
    return [
        label if pd.isna(n) else f"{label}\nn={int(n)}"
        for label, n in zip(labels, counts[0], strict=True)
    ]


def _draw(ax: Any, tables: Mapping[str, pd.DataFrame], metric: str, legend: bool) -> None:
    """One group of bars per bucket, one bar per run, on ``ax``."""
    order = _bucket_order(tables)
    x = np.arange(len(order), dtype=np.float64)
    n_runs = len(tables)
    width = 0.8 / n_runs
    for j, (run, table) in enumerate(tables.items()):
        values = table[metric].reindex(order).to_numpy(dtype=np.float64)
        ax.bar(x - 0.4 + width * (j + 0.5), values, width, label=str(run))
    ax.set_xticks(x)
    ax.set_xticklabels(_tick_labels(tables, order), rotation=30, ha="right")
    names = [n for n in next(iter(tables.values())).index.names if n is not None]
    ax.set_xlabel(" / ".join(str(n) for n in names) if names else "bucket")
    ax.set_ylabel(metric)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    if legend:
        # outside the axes, on the right: it never hides a bar
        ax.legend(title="run", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _png(fig: Any, dpi: int) -> bytes:
    """Render ``fig`` to PNG bytes in memory."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def _save_png(fig: Any, path: str | os.PathLike[str], dpi: int) -> Path:
    """Render ``fig`` to PNG in memory, then write it atomically (nothing half-written)."""
    data = _png(fig, dpi)
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return path


def _new_figure(width: float, height: float) -> Any:
    # Figure + Agg canvas: no pyplot, so no backend switch and no global figure registry
    from segue._extras import require

    FigureCanvasAgg = require("matplotlib.backends.backend_agg", "plots").FigureCanvasAgg
    Figure = require("matplotlib.figure", "plots").Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_buckets(
    tables: Mapping[str, pd.DataFrame],
    metric: str,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Write a grouped bar chart of one metric per bucket, one bar per run, as a PNG.

    Parameters
    ----------
    tables
        Run name -> bucket table (:func:`bucket_table` output, or any frame indexed by bucket
        with a ``metric`` column). Buckets are drawn in the order of the first table; a bucket
        a run lacks has no bar for that run.
    metric
        The column to draw.
    path
        The PNG file to write (its folder is created).
    title
        Figure title; default ``"<metric> per bucket"``.
    dpi
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    _check_tables(tables, [metric])
    n_buckets = len(_bucket_order(tables))
    fig = _new_figure(max(6.0, 1.0 + 0.35 * n_buckets * max(len(tables), 2)), 4.5)
    ax = fig.add_subplot()
    _draw(ax, tables, metric, legend=True)
    ax.set_title(title if title is not None else f"{metric} per bucket")
    return _save_png(fig, path, dpi)


def bucket_metrics_png(
    tables: Mapping[str, pd.DataFrame],
    metrics: Sequence[str],
    *,
    title: str | None = None,
    dpi: int = 120,
) -> bytes:
    """The figure of :func:`plot_bucket_metrics` as PNG bytes (for a report that embeds it)."""
    metrics = list(metrics)
    _check_tables(tables, metrics)
    n_buckets = len(_bucket_order(tables))
    width = max(6.0, 1.0 + 0.35 * n_buckets * max(len(tables), 2))
    fig = _new_figure(width, 3.2 * len(metrics) + 0.6)
    axes = fig.subplots(len(metrics), 1, squeeze=False)[:, 0]
    for i, (ax, metric) in enumerate(zip(axes, metrics, strict=True)):
        _draw(ax, tables, metric, legend=i == 0)
        ax.set_title(metric)
    fig.suptitle(title if title is not None else "metrics per bucket")
    return _png(fig, dpi)


def plot_bucket_metrics(
    tables: Mapping[str, pd.DataFrame],
    metrics: Sequence[str],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    dpi: int = 120,
) -> Path:
    """Write one PNG with a grouped bar chart per metric (one subplot each, stacked).

    Parameters
    ----------
    tables
        Run name -> bucket table, as for :func:`plot_buckets`.
    metrics
        The columns to draw, one subplot each, top to bottom.
    path
        The PNG file to write.
    title
        Figure title; default ``"metrics per bucket"``.
    dpi
        Resolution of the PNG.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    data = bucket_metrics_png(tables, metrics, title=title, dpi=dpi)
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        fh.write(data)
    return path
