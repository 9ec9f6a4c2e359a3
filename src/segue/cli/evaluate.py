"""``segue evaluate``: metrics of a recommendations file against held-out answers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from segue.cli._common import handle_errors, out


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
        recs: Annotated[Path, typer.Argument(help="Recommendations file (uid sid_1 ... sid_n).")],
        answers: Annotated[Path, typer.Option(help="Held-out listens (uid sid count).")],
        k: Annotated[list[int] | None, typer.Option("--k", help="Cut-off (repeat).")] = None,
        listens: Annotated[
            Path | None,
            typer.Option(help="The training input, for catalogue coverage and the seen check."),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print JSON instead of a table.")
        ] = False,
        per_user: Annotated[
            Path | None, typer.Option(help="Also write per-user values to this CSV.")
        ] = None,
    ) -> None:
        """Print NDCG, recall, precision, MAP, hit rate (and coverage) at each k."""
        from segue._atomic import atomic_open
        from segue.metrics.evaluate import evaluate_files

        result = evaluate_files(recs, answers, k or [100], listens_path=listens)
        if per_user is not None:
            with atomic_open(per_user) as fh:
                result.per_user.to_csv(fh, index=False)
        if as_json:
            print(json.dumps(result.summary, indent=2))
        else:
            out.print(metrics_table({recs.name: result.summary}))
