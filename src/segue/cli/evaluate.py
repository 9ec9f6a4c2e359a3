"""``segue evaluate``: metrics of a recommendations file against held-out answers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from segue.cli._common import handle_errors, out
from segue.exceptions import ParameterError


def _cell(metric: str, value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if metric.endswith("users"):
        return f"{int(value)}"
    if metric.endswith("_s"):
        return f"{value:.2f}"
    return f"{value:.4f}"


def metrics_table(rows: dict[str, dict[str, float]], title: str | None = None) -> Table:
    """One column per run (model), one row per metric, so many metrics still fit a terminal."""
    metrics: list[str] = []
    for summary in rows.values():
        metrics += [m for m in summary if m not in metrics]
    table = Table(title=title)
    table.add_column("metric")
    for name in rows:
        table.add_column(name, justify="right")
    for m in metrics:
        table.add_row(m, *(_cell(m, rows[name].get(m, float("nan"))) for name in rows))
    return table


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` to the main app."""

    @app.command("evaluate")
    @handle_errors
    def evaluate_cmd(
        recs: Annotated[
            list[Path],
            typer.Argument(
                help="Recommendations (uid sid_1 ... sid_n), MPD submission CSV(s) or Melon "
                "results.json file(s); several are compared side by side."
            ),
        ],
        answers: Annotated[
            Path,
            typer.Option(
                help="Held-out listens (uid sid count), or the answers.json of segue split "
                "mpd / melon."
            ),
        ],
        k: Annotated[list[int] | None, typer.Option("--k", help="Cut-off (repeat).")] = None,
        listens: Annotated[
            Path | None,
            typer.Option(help="The training input, for catalogue coverage and the seen check."),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print JSON instead of a table.")
        ] = False,
        per_user: Annotated[
            Path | None, typer.Option(help="Also write per-user (per-playlist) values to CSV.")
        ] = None,
        plots: Annotated[
            Path | None,
            typer.Option(
                help="Playlist tasks: stem of the per-bucket PNGs (default: next to the first "
                "submission)."
            ),
        ] = None,
    ) -> None:
        """Score recommendations: NDCG, recall, MAP... or the challenges' official metrics.

        With an MPD answers.json: R-precision, NDCG and clicks, overall, per challenge category
        and per seed length, with PNG plots. With Melon answers: song nDCG, tag nDCG and score,
        per question type.
        """
        from segue._atomic import atomic_open

        if answers.suffix.lower() == ".json":
            _evaluate_playlists(recs, answers, as_json=as_json, per_user=per_user, plots=plots)
            return
        from segue.metrics.evaluate import evaluate_files

        if len(recs) != 1:
            raise ParameterError("listen-count evaluation takes one recommendations file")
        result = evaluate_files(recs[0], answers, k or [100], listens_path=listens)
        if per_user is not None:
            with atomic_open(per_user) as fh:
                result.per_user.to_csv(fh, index=False)
        if as_json:
            print(json.dumps(result.summary, indent=2))
        else:
            out.print(metrics_table({recs[0].name: result.summary}))


def _run_names(paths: list[Path]) -> dict[str, Path]:
    names: dict[str, Path] = {}
    for path in paths:
        name = path.stem if path.stem not in names else str(path)
        names[name] = path
    return names


def _evaluate_playlists(
    recs: list[Path], answers: Path, *, as_json: bool, per_user: Path | None, plots: Path | None
) -> None:
    import pandas as pd

    from segue._atomic import atomic_open
    from segue.metrics.playlist_eval import evaluate_melon, evaluate_mpd, is_mpd_answers

    runs = _run_names(recs)
    if is_mpd_answers(answers):
        result = evaluate_mpd(runs, answers)
    else:
        result = evaluate_melon(runs, answers)
    if per_user is not None:
        frame = pd.concat(
            [per.assign(run=name) for name, per in result.per_playlist.items()],
            names=["playlist"],
        ).reset_index()
        with atomic_open(per_user) as fh:
            frame.to_csv(fh, index=False)
    stem = plots if plots is not None else recs[0].with_suffix("")
    written = result.plot(stem)
    if as_json:
        doc = {
            "summary": result.summary,
            "buckets": {
                kind: {name: t.reset_index().to_dict("records") for name, t in tables.items()}
                for kind, tables in result.buckets.items()
            },
            "plots": [str(p) for p in written],
        }
        print(json.dumps(doc, indent=2, default=str))
        return
    out.print(metrics_table(result.summary, title="overall"))
    for kind, tables in result.buckets.items():
        if len(tables) == 1:
            out.print(_bucket_table(kind, tables, result.metrics))
        else:  # one table per metric keeps the runs side by side within a terminal's width
            for metric in result.metrics:
                out.print(_bucket_table(kind, tables, [metric]))
    for path in written:
        out.print(f"plot -> {path}", highlight=False)


def _bucket_table(kind: str, tables: dict, metrics: list[str]) -> Table:
    """One row per bucket; a column per metric (per metric and run when runs are compared)."""
    first = next(iter(tables.values()))
    title = f"{metrics[0]} by {kind}" if len(metrics) == 1 else f"by {kind}"
    table = Table(title=title)
    table.add_column(kind, no_wrap=True)
    table.add_column("playlists", justify="right")
    columns = [(m, name) for m in metrics for name in tables]
    for metric, name in columns:
        table.add_column(metric if len(tables) == 1 else name, justify="right")
    for bucket in first.index:
        cells = []
        for metric, name in columns:
            frame = tables[name]
            cells.append(f"{frame.loc[bucket, metric]:.4f}" if bucket in frame.index else "-")
        table.add_row(str(bucket), str(int(first.loc[bucket, "count"])), *cells)
    return table
