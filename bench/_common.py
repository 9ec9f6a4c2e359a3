"""Shared helpers of the benchmark scripts: data location, loaders, memory, hardware, tables.

Not part of the segue package; the scripts import it as a sibling module.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"

LASTFM = "lastfm-hetrec2011-2k/user_artists.dat"
MSD = "msd-taste-profile/10000.head42739.txt"


# data -----------------------------------------------------------------------------------------
def add_data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"folder of the shared public datasets (default: {DEFAULT_DATA_DIR})",
    )


def add_split_options(parser: argparse.ArgumentParser, datasets: Sequence[str]) -> None:
    """``--val-seed`` and ``--datasets``, shared by the scripts that tune on a validation split."""
    parser.add_argument(
        "--val-seed",
        type=int,
        default=0,
        help="seed of the validation split carved out of the visible listens",
    )
    parser.add_argument(
        "--datasets", default=",".join(datasets), help=f"comma-separated subset of {list(datasets)}"
    )


def chosen_datasets(
    parser: argparse.ArgumentParser, args: argparse.Namespace, datasets: dict[str, tuple]
) -> list[str]:
    """The ``--datasets`` names, checked, and their files required before any work starts."""
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in datasets]
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; choose from {list(datasets)}")
    for n in names:  # fail before any work when a file is missing
        require_file(args.data_dir, datasets[n][0])
    return names


def require_file(data_dir: Path, relative: str) -> Path:
    """The data file, or exit with a message that says what is missing and how to fix it."""
    path = Path(data_dir) / relative
    if not path.is_file():
        sys.exit(
            f"error: data file not found: {path}\n"
            f"The benchmarks need the shared public datasets (see shared/data/README.md). "
            f"Pass --data-dir DIR pointing at the folder that holds '{relative}'."
        )
    return path


def load_lastfm(data_dir: Path) -> pd.DataFrame:
    """Last.fm hetrec-2k ``user_artists.dat`` as ``user_id``/``item_id`` (str), ``count`` (int)."""
    raw = pd.read_csv(require_file(data_dir, LASTFM), sep="\t")
    return pd.DataFrame(
        {
            "user_id": raw["userID"].astype(str),
            "item_id": raw["artistID"].astype(str),
            "count": raw["weight"].astype(np.int64),
        }
    )


def load_msd(data_dir: Path) -> pd.DataFrame:
    """MSD Taste Profile ``10000.head42739.txt`` (user, song, play count; no header)."""
    raw = pd.read_csv(
        require_file(data_dir, MSD),
        sep="\t",
        header=None,
        names=["user_id", "item_id", "count"],
        dtype={"user_id": str, "item_id": str, "count": np.int64},
    )
    return raw


def task_split(df: pd.DataFrame) -> tuple[Any, Any, Any]:
    """The listen-count task's split, ``split_listens(df, seed=0)``, with its visible listens
    and its answers as ``Interactions`` (counts kept): ``(split, train, answers)``."""
    from segue.data.interactions import Interactions
    from segue.data.split import split_listens

    split = split_listens(df, seed=0)
    train = Interactions.from_frame(split.listens, weight="count")
    answers = Interactions.from_frame(split.answers, weight="count")
    return split, train, answers


# memory ---------------------------------------------------------------------------------------
def continuations(
    model: Any, queries: Any, n: int, *, batch_size: int | None = None
) -> dict[Any, list[Any]]:
    """``{pid: [track, ...]}``: the model's top ``n`` for every query, seeds in order."""
    from segue.inference import continue_playlists

    out: dict[Any, list[Any]] = {}
    for batch in continue_playlists(model, queries, n, batch_size=batch_size):
        out.update(zip(batch.pids.tolist(), batch.tracks, strict=True))
    return out


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def rss_mib() -> float:
    """Current resident set size of this process (MiB)."""
    return _status_kib("VmRSS") / 1024


def peak_rss_mib() -> float:
    """Peak resident set size since start or the last :func:`reset_peak_rss` (MiB).

    The kernel's RSS high-water mark (``VmHWM``), so it counts memory that BLAS/LAPACK allocate
    outside Python too. Not ``getrusage``'s ``ru_maxrss``: that one is never reset, and a child
    started by ``subprocess`` inherits its parent's value.
    """
    return _status_kib("VmHWM") / 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark to the current RSS (Linux ``clear_refs`` 5).

    Returns False when the kernel refuses; then the peaks are cumulative since process start.
    """
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


# hardware -------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas_summary() -> str:
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        text = f"{blas.get('name')} {blas.get('version')}"
        conf = blas.get("openblas configuration")
        if conf:
            text += f" ({conf})"
    except Exception as exc:  # older numpy: no dicts mode
        text = f"unknown ({exc})"
    threads = {
        k: os.environ[k]
        for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
        if k in os.environ
    }
    try:
        from threadpoolctl import threadpool_info

        pools = [f"{p['internal_api']}:{p['num_threads']} threads" for p in threadpool_info()]
        text += "; threadpools " + ", ".join(pools)
    except ImportError:
        pass
    if threads:
        text += f"; env {threads}"
    return text


def environment_lines() -> list[str]:
    import scipy

    import segue

    mem_gib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return [
        f"CPU: {cpu_model()}, {os.cpu_count()} logical cores ({usable} usable), "
        f"{mem_gib:.1f} GiB RAM",
        f"BLAS: {blas_summary()}",
        f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"pandas {pd.__version__}, segue {getattr(segue, '__version__', '?')}, "
        f"{platform.system()} {platform.release()}",
    ]


# output ---------------------------------------------------------------------------------------
def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(cells[0], widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    return "\n".join(lines)
