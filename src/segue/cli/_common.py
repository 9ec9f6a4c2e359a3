"""Shared pieces of the CLI: error handling, progress bars, input loading, ``--param`` parsing."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from segue.data.interactions import Interactions
from segue.exceptions import ParameterError, SegueError

console = Console(stderr=True, soft_wrap=True)
# tables printed to a file or a pipe are not cut to 80 columns (a terminal keeps its width)
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = ("auto", "listens", "csv", "tsv", "parquet")
"""Input formats every command that reads interactions accepts (``--format``)."""


def refuse_input_as_output(out_file: Path, *inputs: Path | None) -> None:
    """Raise :class:`ParameterError` when ``out_file`` is one of the inputs or inside one.

    Checked before any work, so that a mistyped ``--out`` never replaces what is read.
    """
    target = os.path.realpath(out_file)
    for given in inputs:
        if given is None:
            continue
        source = os.path.realpath(given)
        if target == source or target.startswith(source.rstrip(os.sep) + os.sep):
            raise ParameterError(f"--out {out_file} would replace the input {given}")


def handle_errors(func: F) -> F:
    """Turn segue's errors into one red line on stderr and exit code 1, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = _show_warning
            try:
                return func(*args, **kwargs)
            except SegueError as exc:
                console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
                raise typer.Exit(1) from None
            except MemoryError as exc:  # NumPy, Arrow, SciPy: an allocation the machine refused
                _plain_error(out_of_memory(exc))
                raise typer.Exit(1) from None
            except _arrow_errors() as exc:  # Arrow wraps a failed allocation in its own errors
                _plain_error(out_of_memory(exc))
                raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _arrow_errors() -> tuple[type[BaseException], ...]:
    arrow = sys.modules.get("pyarrow")
    return (arrow.ArrowException,) if arrow is not None else ()


def _plain_error(message: str) -> None:
    """One line on stderr without rich: with memory short, rendering must not need any."""
    try:
        sys.stderr.write(f"error: {message}\n")
        sys.stderr.flush()
    except (MemoryError, OSError):  # pragma: no cover - nothing more can be said
        pass


def out_of_memory(exc: BaseException) -> str:
    """One line for a refused allocation: what failed, and the process's peak memory.

    Arrow reports a failed allocation inside a conversion as an error of its own (``Wrapping
    ... failed``), so its errors get the same line, worded as a likely cause.
    """
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    peak = ""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            kib = next((line.split()[1] for line in fh if line.startswith("VmHWM:")), None)
        if kib is not None:
            peak = f" after a peak of {int(kib) / 2**20:.1f} GiB"
    except OSError:  # not Linux
        pass
    if isinstance(exc, MemoryError):
        return (
            f"out of memory{peak} ({detail}); this input needs more memory than the machine "
            "allows: use a smaller input or a machine with more memory"
        )
    return (
        f"Arrow failed{peak} ({detail}); when memory runs short this is how Arrow says so: "
        "use a smaller input or a machine with more memory"
    )


def _show_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    console.print(f"[yellow]warning:[/] {message}", highlight=False)


@contextlib.contextmanager
def progress_bar(
    description: str, total: float | None, *, unit: str = "items"
) -> Iterator[Callable[[float], None]]:
    """A rich progress bar on stderr; yields ``advance(n)``. Transient: gone when done."""
    columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
    if unit == "bytes":
        columns += [TransferSpeedColumn()]
    else:
        columns += [MofNCompleteColumn()]
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    quiet = not console.is_terminal  # no redraws (and no blank lines) in logs and pipes
    with Progress(*columns, console=console, transient=True, disable=quiet) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


@contextlib.contextmanager
def status(description: str) -> Iterator[None]:
    """A spinner for a step with no measurable progress (a matrix inverse); prints the time."""
    start = time.perf_counter()
    if console.is_terminal:
        with console.status(description):
            yield
    else:
        yield
    console.print(f"{description} [dim]({time.perf_counter() - start:.1f} s)[/]", highlight=False)


def input_format(path: Path, fmt: str = "auto") -> str:
    """The concrete format of an input: ``dataset``, ``listens``, ``csv``, ``tsv`` or ``parquet``.

    ``fmt="auto"`` decides by the path: a directory is a dataset, ``.csv``/``.tsv``/``.parquet``
    a table, anything else a ``uid sid count`` listens file.
    """
    from segue.data.readers.tabular import TABLE_SUFFIXES

    if fmt not in FORMATS:
        raise ParameterError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt != "auto":
        return fmt
    if path.is_dir():
        return "dataset"
    suffix = path.suffix.lower()
    return "tsv" if suffix == ".tsv" else TABLE_SUFFIXES.get(suffix, "listens")


def load_interactions_arg(
    path: Path,
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    weight_col: str | None = None,
    fmt: str = "auto",
) -> Interactions:
    """Load interactions from a listens file, a CSV/TSV/Parquet table or a dataset directory."""
    from segue.data.io import is_dataset_dir, load_interactions
    from segue.data.readers.listens import read_listen_interactions
    from segue.data.readers.tabular import read_table_interactions

    kind = input_format(path, fmt)
    if kind in ("csv", "tsv", "parquet"):
        return read_table_interactions(
            path, user_col=user_col, item_col=item_col, weight_col=weight_col, kind=kind
        )
    if kind == "dataset":
        if not is_dataset_dir(path):
            raise ParameterError(f"{path} is a directory but not a segue dataset (no schema.json)")
        return load_interactions(path)
    size = path.stat().st_size if path.is_file() else None
    with progress_bar(f"reading {path.name}", size, unit="bytes") as advance:
        return read_listen_interactions(path, progress=advance)


FormatOption = typer.Option(
    "--format",
    help="Input format: auto (by suffix; a directory is a dataset), listens, csv, tsv, parquet.",
)
UserColOption = typer.Option(help="User column of a CSV/TSV/Parquet input.")
ItemColOption = typer.Option(help="Item column of a CSV/TSV/Parquet input.")
WeightColOption = typer.Option(help="Weight column of a table (default: each row counts 1).")


def parse_value(text: str) -> Any:
    """A ``--param`` value: JSON (numbers, true/false/null, lists) or else a plain string."""
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """``["l2=500", "binarize=false"]`` -> ``{"l2": 500, "binarize": False}``."""
    params: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ParameterError(f"--param expects NAME=VALUE, got {pair!r}")
        params[name.strip()] = parse_value(value)
    return params


def ensure_parent(path: Path) -> None:
    """Create the parent directory of an output file."""
    os.makedirs(path.parent, exist_ok=True)
