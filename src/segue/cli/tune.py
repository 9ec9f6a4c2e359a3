"""``segue tune``: grid search on a validation split of the training input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from segue.cli._common import (
    FormatOption,
    ItemColOption,
    UserColOption,
    WeightColOption,
    handle_errors,
    load_interactions_arg,
    out,
    parse_params,
    parse_value,
    progress_bar,
)
from segue.exceptions import ParameterError
from segue.models.registry import model_names


def parse_grid(specs: list[str] | None) -> dict[str, list[Any]]:
    """``["l2=100,500", "binarize=true,false"]`` -> ``{"l2": [100, 500], ...}``."""
    grid: dict[str, list[Any]] = {}
    for spec in specs or []:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name or not values.strip():
            raise ParameterError(f"--grid expects NAME=V1,V2,..., got {spec!r}")
        if name in grid:
            raise ParameterError(f"--grid {name} given twice")
        grid[name] = [parse_value(v) for v in values.split(",")]
    if not grid:
        raise ParameterError("give at least one --grid NAME=V1,V2,...")
    return grid


def _result_table(table, grid_names: list[str], metric: str, n: int) -> Table:
    """Grid parameters, then the chosen metric and a few companions, one row per point."""
    wanted = [metric, f"ndcg@{n}", f"recall@{n}", "ndcg@10", f"coverage@{n}", "fit_s"]
    shown = grid_names + [c for c in dict.fromkeys(wanted) if c in table.columns]
    rich_table = Table(title=f"validation split, best {metric} first")
    for col in shown:
        rich_table.add_column(col, justify="right", style="bold" if col == metric else None)
    for _, row in table.iterrows():
        rich_table.add_row(*(_fmt(row[c]) for c in shown))
    return rich_table


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def register(app: typer.Typer) -> None:
    """Add ``tune`` to the main app."""

    @app.command("tune")
    @handle_errors
    def tune_cmd(
        listens: Annotated[
            Path, typer.Option(help="Training input (never the answers): listens, CSV, Parquet.")
        ],
        model: Annotated[str, typer.Option(help=f"Model to tune: {', '.join(model_names())}.")],
        grid: Annotated[
            list[str] | None,
            typer.Option("--grid", help="NAME=V1,V2,... values to try (repeat per parameter)."),
        ] = None,
        param: Annotated[
            list[str] | None, typer.Option("--param", help="Fixed hyper-parameter NAME=VALUE.")
        ] = None,
        metric: Annotated[str, typer.Option(help="Validation metric to maximise.")] = "ndcg@100",
        n: Annotated[int, typer.Option(help="List length scored on the validation split.")] = 100,
        seed: Annotated[int, typer.Option(help="Seed of the validation split.")] = 0,
        out_file: Annotated[
            Path | None,
            typer.Option("--out", help="Write the best parameters here (for --params-file)."),
        ] = None,
        fmt: Annotated[str, FormatOption] = "auto",
        user_col: Annotated[str, UserColOption] = "user_id",
        item_col: Annotated[str, ItemColOption] = "item_id",
        weight_col: Annotated[str | None, WeightColOption] = None,
    ) -> None:
        """Fit every grid point on a split of the training input; print and save the best."""
        from segue._atomic import atomic_open
        from segue.models.registry import model_class
        from segue.tuning import expand_grid, grid_search

        cls = model_class(model)
        values = parse_grid(grid)
        n_points = len(expand_grid(values))
        data = load_interactions_arg(
            listens, user_col=user_col, item_col=item_col, weight_col=weight_col, fmt=fmt
        )
        with progress_bar(f"tuning {model}", n_points, unit="fits") as advance:
            result = grid_search(
                data,
                cls,
                values,
                fixed=parse_params(param),
                k=n,
                metric=metric,
                seed=seed,
                progress=advance,
            )
        out.print(_result_table(result.table, list(values), metric, n))
        split = result.split
        out.print(
            f"validation split (seed {seed}): {split['targets']} targets, "
            f"{split['held_out_pairs']} held-out pairs; best {metric} "
            f"{result.table[metric].iloc[0]:.4f} with {json.dumps(result.best_params)}",
            highlight=False,
        )
        if out_file is not None:
            with atomic_open(out_file) as fh:
                fh.write(json.dumps({"model": model, **result.best_params}, indent=2) + "\n")
            out.print(f"best parameters -> {out_file} (segue train --params-file)", highlight=False)
