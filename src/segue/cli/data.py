"""``segue split``, ``segue generate`` and ``segue data``: make and inspect input files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from segue.cli._common import (
    FormatOption,
    ItemColOption,
    UserColOption,
    WeightColOption,
    handle_errors,
    input_format,
    load_interactions_arg,
    out,
    status,
)

split_app = typer.Typer(help="Hide part of the data, writing files in the task's own format.")
generate_app = typer.Typer(help="Generate synthetic data (no download needed).")
data_app = typer.Typer(help="Convert and describe interaction data.")

UserCol = Annotated[str, UserColOption]
ItemCol = Annotated[str, ItemColOption]
WeightCol = Annotated[str | None, WeightColOption]
Format = Annotated[str, FormatOption]


@split_app.command("listens")
@handle_errors
def split_listens_cmd(
    listens: Annotated[
        Path, typer.Argument(help="listen_count.txt (uid sid count lines) or another input.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for the three files.")],
    target_fraction: Annotated[
        float, typer.Option(help="Share of eligible users made targets.")
    ] = 0.2,
    holdout_fraction: Annotated[
        float, typer.Option(help="Share of a target's songs hidden.")
    ] = 0.5,
    min_items: Annotated[int, typer.Option(help="Targets need at least this many songs.")] = 10,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    fmt: Format = "auto",
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    weight_col: WeightCol = None,
) -> None:
    """Write DIR/listen_count.txt, DIR/target_users.txt and DIR/answers.txt."""
    from segue._atomic import check_output_dir
    from segue.data.readers.listens import read_listens
    from segue.data.split import split_listens, write_listen_split
    from segue.exceptions import DataFormatError

    check_output_dir(out_dir, keep=[listens])

    if input_format(listens, fmt) == "listens":  # keep file order: read the frame directly
        with status(f"reading {listens}"):
            df = read_listens(listens)
    else:
        frame = load_interactions_arg(
            listens, user_col=user_col, item_col=item_col, weight_col=weight_col, fmt=fmt
        ).to_frame()
        if (frame["weight"] != frame["weight"].round()).any():
            raise DataFormatError(
                "weights must be whole listen counts to write listen_count files", path=listens
            )
        df = frame.rename(columns={"weight": "count"}).astype({"count": "int64"})
    result = split_listens(
        df,
        target_fraction=target_fraction,
        holdout_fraction=holdout_fraction,
        min_items=min_items,
        seed=seed,
    )
    write_listen_split(result, out_dir, source=listens)
    out.print(
        f"{len(result.targets)} target users, {len(result.answers)} held-out listens, "
        f"{len(result.listens)} visible listens -> {out_dir}",
        highlight=False,
    )


@generate_app.command("listens")
@handle_errors
def generate_listens_cmd(
    out_file: Annotated[Path, typer.Option("--out", help="listen_count.txt to write.")],
    users: Annotated[int, typer.Option(help="Number of users.")] = 3000,
    items: Annotated[int, typer.Option(help="Number of songs.")] = 5000,
    clusters: Annotated[int, typer.Option(help="Number of taste clusters.")] = 25,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Synthetic listen counts with taste clusters, a long tail and heavy-tailed counts."""
    from segue.data.readers.listens import write_listens
    from segue.data.synthetic.listens import generate_listens

    df = generate_listens(users, items, n_clusters=clusters, seed=seed)
    write_listens(out_file, df)
    out.print(f"{len(df)} listens of {users} users on {items} songs -> {out_file}", highlight=False)


@data_app.command("convert")
@handle_errors
def convert_cmd(
    source: Annotated[Path, typer.Argument(help="listen_count.txt, CSV/TSV or Parquet.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Dataset directory to write.")],
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    weight_col: WeightCol = None,
    fmt: Format = "auto",
) -> None:
    """Store interactions as a dataset directory (schema.json + Parquet) for fast reloads."""
    from segue._atomic import check_output_dir
    from segue.data.io import save_interactions

    check_output_dir(out_dir, keep=[source])
    data = load_interactions_arg(
        source, user_col=user_col, item_col=item_col, weight_col=weight_col, fmt=fmt
    )
    save_interactions(data, out_dir)
    out.print(f"{data!r} -> {out_dir}", highlight=False)


@data_app.command("describe")
@handle_errors
def describe_cmd(
    source: Annotated[
        Path, typer.Argument(help="listen_count.txt, CSV/TSV, Parquet or dataset dir.")
    ],
    user_col: UserCol = "user_id",
    item_col: ItemCol = "item_id",
    weight_col: WeightCol = None,
    fmt: Format = "auto",
) -> None:
    """Print sizes and density as JSON."""
    data = load_interactions_arg(
        source, user_col=user_col, item_col=item_col, weight_col=weight_col, fmt=fmt
    )
    out.print_json(json.dumps(data.describe()))
