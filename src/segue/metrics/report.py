"""One self-contained HTML report of an evaluation: tables, plots, data, models, command.

Why a single file: a report is sent, attached and archived, and a folder of loose PNGs loses its
pictures on the way. The plots (the same matplotlib figures ``segue evaluate`` writes as PNGs)
are embedded as base64 ``data:`` URIs and the style sheet is inline, so the page opens offline
in any browser, with no JavaScript. The page is rendered by Jinja2 from the package's
``templates/report.html.j2`` with autoescaping on (run names and titles come from files), and
written atomically.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from segue._atomic import atomic_open
from segue._version import __version__
from segue.exceptions import DataFormatError, ParameterError
from segue.metrics.buckets import ALL_LABEL, bucket_metrics_png, bucket_table, length_buckets

if TYPE_CHECKING:
    from segue.data.interactions import Interactions
    from segue.metrics.evaluate import Evaluation
    from segue.metrics.playlist_eval import PlaylistEvaluation

__all__ = [
    "LOWER_IS_BETTER",
    "Report",
    "listens_report",
    "model_summary",
    "playlist_report",
    "playlist_split_summary",
    "render_report",
    "write_report",
]

LOWER_IS_BETTER = frozenset({"clicks", "seen_share", "missing_users"})
"""Metrics where the smallest value is the best (the MPD's clicks)."""

_COUNTS = ("users", "playlists", "missing_users", "extra_users")
_PARAMS_CHARS = 400


@dataclass
class Report:
    """What a report shows; every part but ``summary`` may be empty.

    ``summary`` is ``{run: {metric: value}}`` (runs side by side); ``buckets`` is
    ``{kind: {run: bucket table}}`` with :func:`~segue.metrics.buckets.bucket_table` frames,
    drawn for ``bucket_metrics``; ``ranked`` are the metrics whose best run is marked.
    """

    title: str
    summary: dict[str, dict[str, float]]
    buckets: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)
    bucket_metrics: list[str] = field(default_factory=list)
    ranked: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    command: str | None = None
    notes: list[str] = field(default_factory=list)


def model_summary(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Class, parameters, training time and date of a saved model, from its manifest only."""
    from segue.serialization import read_manifest

    manifest = read_manifest(model_dir)
    fit = manifest["state"].get("fit_seconds_", {})
    params = json.dumps(manifest["params"], sort_keys=True, default=str)
    if len(params) > _PARAMS_CHARS:
        params = params[: _PARAMS_CHARS - 1] + "…"
    state = manifest["state"]
    sizes = [
        f"{len(entry['ids']):,} {entry.get('kind', key.rstrip('s_'))}s"
        for key in ("users_", "items_")
        if isinstance(entry := state.get(key), dict) and isinstance(entry.get("ids"), list)
    ]
    return {
        "directory": str(model_dir),
        "class": manifest["class"].rpartition(":")[2],
        "parameters": params,
        "trained on": " x ".join(sizes) or "-",
        "trained": str(manifest.get("created", ""))[:19].replace("T", " "),
        "fit_s": fit.get("value") if isinstance(fit, dict) else None,
    }


def playlist_split_summary(answers: str | os.PathLike[str]) -> dict[str, Any]:
    """What a playlist split holds, from its answers and the files beside them (cheap reads)."""
    from segue.metrics.playlist_eval import is_mpd_answers

    answers = Path(answers)
    folder = answers.parent
    try:
        with open(answers, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:  # evaluate_* has named the problem already
        raise DataFormatError(f"cannot read the answers ({exc})", path=answers) from None
    if is_mpd_answers(answers):
        rows = doc["playlists"]
        info: dict[str, Any] = {
            "task": "MPD challenge (RecSys Challenge 2018)",
            "answers": str(answers),
            "challenge playlists": len(rows),
            "categories": len({r.get("category") for r in rows}),
            "hidden tracks": sum(len(r.get("tracks", [])) for r in rows),
            "split seed": doc.get("seed", "-"),
            "unseen hidden tracks": doc.get("unseen", "-"),
        }
        tracks = folder / "tracks.parquet"
        if tracks.is_file():
            import pyarrow.parquet as pq

            info["track catalogue"] = pq.ParquetFile(tracks).metadata.num_rows
        if (folder / "train").is_dir():
            info["training playlists"] = str(folder / "train")
        return info
    info = {
        "task": "Melon playlist continuation (Kakao Arena)",
        "answers": str(answers),
        "questions": len(doc),
        "songs in the answers": sum(len(p.get("songs", [])) for p in doc),
        "tags in the answers": sum(len(p.get("tags", [])) for p in doc),
    }
    if (folder / "train.json").is_file():
        info["training playlists"] = str(folder / "train.json")
    return info


def playlist_report(result: PlaylistEvaluation, answers: str | os.PathLike[str]) -> Report:
    """The report of :func:`~segue.metrics.playlist_eval.evaluate_mpd` or ``evaluate_melon``."""
    data = playlist_split_summary(answers)
    task = "MPD challenge" if data["task"].startswith("MPD") else "Melon"
    return Report(
        title=f"segue evaluation: {task}",
        summary=result.summary,
        buckets=result.buckets,
        bucket_metrics=result.metrics,
        ranked=result.metrics,
        data=data,
    )


def listens_report(
    results: Mapping[str, Evaluation],
    truth: Interactions,
    train: Interactions | None = None,
    *,
    answers: str | os.PathLike[str] | None = None,
    listens: str | os.PathLike[str] | None = None,
) -> Report:
    """The report of listen-count runs (:func:`~segue.metrics.evaluate.evaluate_lists` each).

    With the training listens, NDCG and recall at the largest cut-off are also shown by the
    number of songs each user had heard (the history length).
    """
    summaries = {name: dict(r.summary) for name, r in results.items()}
    first = next(iter(summaries.values()))
    data: dict[str, Any] = {"task": "listen counts"}
    if answers is not None:
        data["answers"] = str(answers)
    data |= {"users with answers": truth.n_users, "held-out listens": truth.matrix.nnz}
    report = Report(
        title="segue evaluation: listen counts",
        summary=summaries,
        ranked=[m for m in first if "@" in m],
        data=data,
    )
    cutoffs = [int(m.partition("@")[2]) for m in first if m.startswith("ndcg@")]
    if train is None or not cutoffs:
        return report
    if listens is not None:
        data["training listens"] = str(listens)
    data |= {
        "training users": train.n_users,
        "training songs": train.n_items,
        "training pairs": train.matrix.nnz,
    }
    heard = np.diff(train.matrix.indptr)
    rows = train.users.numbers(truth.users.ids, missing="negative")
    bucketed = length_buckets(np.where(rows >= 0, heard[np.maximum(rows, 0)], 0))
    k = max(cutoffs)
    report.bucket_metrics = [f"ndcg@{k}", f"recall@{k}"]
    report.buckets["history length"] = {
        name: bucket_table(
            r.per_user.assign(**{"history length": bucketed}),
            "history length",
            report.bucket_metrics,
        )
        for name, r in results.items()
    }
    return report


def _fmt(value: Any, metric: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if (
        metric.endswith(_COUNTS)
        or metric == "count"
        or float(value).is_integer()
        and (abs(value) >= 1000 or isinstance(value, int))
    ):
        return f"{int(value):,}"
    if metric.endswith("_s"):
        return f"{value:.2f}"
    return f"{value:.4f}"


def _best(values: Mapping[str, float], metric: str) -> set[str]:
    """The run(s) with the best value of ``metric`` (none when fewer than two runs)."""
    finite = {r: v for r, v in values.items() if isinstance(v, int | float) and not math.isnan(v)}
    if len(finite) < 2:
        return set()
    pick = min if metric in LOWER_IS_BETTER else max
    top = pick(finite.values())
    return {r for r, v in finite.items() if v == top}


def _overall(report: Report) -> dict[str, Any]:
    """A row per metric and a column per run, so that many metrics still fit the page."""
    runs = list(report.summary)
    metrics: list[str] = []
    for row in report.summary.values():
        metrics += [m for m in row if m not in metrics]
    rows = []
    for m in metrics:
        values = {r: report.summary[r].get(m, math.nan) for r in runs}
        best = _best(values, m) if m in report.ranked else set()
        rows.append(
            {
                "metric": m,
                "lower": m in LOWER_IS_BETTER,
                "cells": [{"text": _fmt(values[r], m), "best": r in best} for r in runs],
            }
        )
    return {"runs": runs, "rows": rows}


def _bucket_rows(
    tables: Mapping[str, pd.DataFrame], columns: Sequence[tuple[str, str]], ranked: Sequence[str]
) -> list[dict[str, Any]]:
    """One row per bucket (``"all"`` last) with a cell per ``(metric, run)`` column."""
    order: list[Any] = []
    for table in tables.values():
        order += [b for b in table.index if b not in order]
    rows = []
    for bucket in order:
        counts = [int(t.loc[bucket, "count"]) for t in tables.values() if bucket in t.index]
        values = {
            (m, r): float(tables[r].loc[bucket, m]) if bucket in tables[r].index else math.nan
            for m, r in columns
        }
        best: set[tuple[str, str]] = set()
        for m in dict.fromkeys(m for m, _ in columns):
            if m in ranked:
                best |= {
                    (m, r) for r in _best({r: values[(m, r)] for mm, r in columns if mm == m}, m)
                }
        label = " / ".join(map(str, bucket)) if isinstance(bucket, tuple) else str(bucket)
        rows.append(
            {
                "bucket": label,
                "count": f"{max(counts):,}" if counts else "-",
                "cells": [{"text": _fmt(values[c], c[0]), "best": c in best} for c in columns],
                "total": label == ALL_LABEL,
            }
        )
    return rows


def _bucket_section(
    kind: str, tables: Mapping[str, pd.DataFrame], metrics: Sequence[str], ranked: Sequence[str]
) -> dict[str, Any]:
    """The plot and the tables of one bucket kind: one table per metric when runs are compared.

    A table per metric, with a column per run, keeps runs side by side at any number of runs
    (one table with a column per metric and run grows too wide past three runs).
    """
    runs = list(tables)
    if len(runs) == 1:
        run = runs[0]
        parts = [(None, [(m, m) for m in metrics], [(m, run) for m in metrics])]
    else:
        parts = [(m, runs, [(m, r) for r in runs]) for m in metrics]
    png = bucket_metrics_png(tables, metrics, title=f"by {kind}")
    return {
        "kind": kind,
        "metrics": list(metrics),
        "tables": [
            {
                "metric": metric,
                "lower": metric in LOWER_IS_BETTER,
                "headers": [
                    {"name": h, "lower": h in LOWER_IS_BETTER and metric is None} for h in heads
                ],
                "rows": _bucket_rows(tables, columns, ranked),
            }
            for metric, heads, columns in parts
        ],
        "image": base64.b64encode(png).decode("ascii"),
    }


def render_report(report: Report) -> str:
    """The report as one HTML document (module docstring)."""
    from segue._extras import require

    jinja2 = require("jinja2", "the HTML report (segue evaluate --report)")
    if not report.summary:
        raise ParameterError("a report needs at least one run")
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("segue.metrics", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name in the template fails loudly
        trim_blocks=True,
        lstrip_blocks=True,
    )
    sections = [
        _bucket_section(kind, tables, report.bucket_metrics, report.ranked)
        for kind, tables in report.buckets.items()
        if tables
    ]
    return env.get_template("report.html.j2").render(
        title=report.title,
        version=__version__,
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        command=report.command,
        data=[(k, _fmt(v, k)) for k, v in report.data.items()],
        models=[
            {"run": run, **{k: _fmt(v, k) for k, v in info.items()}}
            for run, info in report.models.items()
        ],
        overall=_overall(report),
        sections=sections,
        notes=report.notes,
    )


def write_report(report: Report, path: str | os.PathLike[str]) -> Path:
    """Render ``report`` and write it to ``path`` atomically (never a half-written page)."""
    html = render_report(report)
    path = Path(path)
    with atomic_open(path, "w") as fh:
        fh.write(html)
    return path
