"""``segue evaluate``: metrics of a recommendations file against held-out answers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from segue.cli._common import handle_errors, out, refuse_input_as_output
from segue.cli._spark import EngineOption, SparkMasterOption, use_spark
from segue.exceptions import ParameterError


def _cell(metric: str, value: float) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if metric.endswith("users") or metric == "playlists":
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
        ctx: typer.Context,
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
        report: Annotated[
            Path | None,
            typer.Option(
                help="Also write one self-contained HTML report (tables, embedded plots, data, "
                "models, this command)."
            ),
        ] = None,
        model_dir: Annotated[
            list[Path] | None,
            typer.Option(
                "--model-dir",
                help="The model directory of each run, in the order of the files (repeat): its "
                "class, parameters and training time go into the report.",
            ),
        ] = None,
        title: Annotated[str | None, typer.Option(help="Title of the HTML report.")] = None,
        engine: Annotated[str, EngineOption] = "local",
        spark_master: Annotated[str, SparkMasterOption] = "local[*]",
    ) -> None:
        """Score recommendations: NDCG, recall, MAP... or the challenges' official metrics.

        With an MPD answers.json: R-precision, NDCG and clicks, overall, per challenge category
        and per seed length, with PNG plots. With Melon answers: song nDCG, tag nDCG and score,
        per question type.
        """
        if model_dir and len(model_dir) != len(recs):
            raise ParameterError(
                f"--model-dir was given {len(model_dir)} times for {len(recs)} runs: give one "
                "per recommendations file, in the same order"
            )
        if use_spark(engine):  # Spark computes the overall means only
            local_only = {"--report": report, "--per-user": per_user, "--plots": plots}
            given = [name for name, value in local_only.items() if value is not None]
            if given or model_dir:
                names = ", ".join(given + (["--model-dir"] if model_dir else []))
                raise ParameterError(
                    f"{names}: not computed on Spark (--engine spark prints the overall means "
                    "only); drop these options or use --engine local"
                )
        if report is not None:
            refuse_input_as_output(report, *recs, answers, listens)
            from segue._extras import require

            require("jinja2", "--report")  # before any work, not after scoring
        if use_spark(engine):
            from segue.spark.engine import evaluate_spark

            means = evaluate_spark(recs, answers, ks=k, master=spark_master)
            if as_json:
                out.print_json(json.dumps(means))
            else:
                out.print(metrics_table(means, title="computed on Spark"))
            return
        runs = _run_names(recs)
        options = {"as_json": as_json, "per_user": per_user}
        if answers.suffix.lower() == ".json":
            found = _evaluate_playlists(runs, answers, plots=plots, **options)
        else:
            found = _evaluate_listens(runs, answers, k or [100], listens, **options)
        if report is not None:
            _write_report(report, found, runs, model_dir, title=title, command=command_line(ctx))
            out.print(f"report -> {report}", highlight=False)


def _run_names(paths: list[Path]) -> dict[str, Path]:
    names: dict[str, Path] = {}
    for path in paths:
        name = path.stem if path.stem not in names else str(path)
        names[name] = path
    return names


def _write_per_user(path: Path, frames: dict) -> None:
    """Per-user (per-playlist) values of every run, with a ``run`` column when several."""
    import pandas as pd

    from segue._atomic import atomic_open

    if len(frames) == 1:
        frame = next(iter(frames.values()))
    else:
        frame = pd.concat([f.assign(run=name) for name, f in frames.items()], ignore_index=True)
    with atomic_open(path) as fh:
        frame.to_csv(fh, index=False)


def _evaluate_listens(
    runs: dict[str, Path],
    answers: Path,
    ks: list[int],
    listens: Path | None,
    *,
    as_json: bool,
    per_user: Path | None,
):
    """Listen counts: every run against the same answers (read once), buckets by history."""
    from segue.data.interactions import Interactions
    from segue.data.readers.listens import read_listen_interactions, read_listens
    from segue.metrics.evaluate import evaluate_lists, read_recommendations
    from segue.metrics.report import listens_report

    df = read_listens(answers)
    truth = Interactions.from_arrays(df["user_id"].to_numpy(), df["item_id"].to_numpy())
    train = read_listen_interactions(listens) if listens is not None else None
    results = {
        name: evaluate_lists(read_recommendations(path), truth, ks, train=train)
        for name, path in runs.items()
    }
    summaries = {name: r.summary for name, r in results.items()}
    if per_user is not None:
        _write_per_user(per_user, {name: r.per_user for name, r in results.items()})
    if as_json:
        doc = next(iter(summaries.values())) if len(runs) == 1 else summaries
        print(json.dumps(doc, indent=2))
    else:
        out.print(metrics_table(summaries))
    return listens_report(results, truth, train, answers=answers, listens=listens)


def command_line(ctx: typer.Context) -> str:
    """The running command as the user could type it again, from the parsed parameters.

    Rebuilt rather than read from ``sys.argv``, which holds the caller's arguments when the
    command runs inside another program (a test runner, a notebook).
    """
    import shlex

    words = ["segue", str(ctx.info_name)]
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        values = list(value) if isinstance(value, list | tuple) else [value]
        if param.param_type_name == "argument":
            words += [str(v) for v in values]
        elif value not in (None, param.default, (), []):
            if getattr(param, "is_flag", False):
                words.append(param.opts[0] if value else param.secondary_opts[0])
            else:
                for v in values:
                    words += [param.opts[0], str(v)]
    return shlex.join(words)


def _write_report(
    path: Path,
    report,
    runs: dict[str, Path],
    model_dirs: list[Path] | None,
    *,
    title: str | None,
    command: str,
) -> None:
    from segue.metrics.report import model_summary, write_report

    report.data = {"recommendations": ", ".join(map(str, runs.values())), **report.data}
    if model_dirs:
        report.models = {name: model_summary(d) for name, d in zip(runs, model_dirs, strict=True)}
    report.command = command
    if title:
        report.title = title
    write_report(report, path)


def _evaluate_playlists(
    runs: dict[str, Path],
    answers: Path,
    *,
    as_json: bool,
    per_user: Path | None,
    plots: Path | None,
):
    import pandas as pd

    from segue._atomic import atomic_open
    from segue.metrics.playlist_eval import evaluate_melon, evaluate_mpd, is_mpd_answers
    from segue.metrics.report import playlist_report

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
    stem = plots if plots is not None else next(iter(runs.values())).with_suffix("")
    written = result.plot(stem)
    found = playlist_report(result, answers)
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
        return found
    out.print(metrics_table(result.summary, title="overall"))
    for kind, tables in result.buckets.items():
        if len(tables) == 1:
            out.print(bucket_metrics_table(kind, tables, result.metrics))
        else:  # one table per metric keeps the runs side by side within a terminal's width
            for metric in result.metrics:
                out.print(bucket_metrics_table(kind, tables, [metric]))
    for path in written:
        out.print(f"plot -> {path}", highlight=False)
    return found


def bucket_metrics_table(kind: str, tables: dict, metrics: list[str]) -> Table:
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
