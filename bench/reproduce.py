"""Rerun the real-data figures of the README and check each against its published value.

Every :class:`Entry` is one command (a bench script with its options, run from the repository
root with this Python) and the README figures its output prints; a :class:`Figure` names the
figure, its README value, a regular expression that finds it in the output (group 1) and the
tolerance allowed. A figure drifts when ``|now - README| > tolerance``; the script exits 1 when
any figure drifts or cannot be found, or a command fails.

``--quick`` runs only the entries marked quick (about a minute on a quiet 2-core machine, going
by the scripts' published times; 40 minutes in a session where twenty other jobs shared the
cores); without it every entry runs (about 8 minutes quiet, mostly ``bench/two_stage.py``).
To add a figure, append a Figure to an existing Entry or a new Entry to ``ENTRIES``: the
command that prints the number, the pattern that finds it, the value the README shows.
Tolerances: popularity and every closed-form or seeded model are deterministic up to float32
sums on other BLAS builds (0.001 on NDCG-like values); LightGBM and ALS runs get 0.003.

    .venv/bin/python bench/reproduce.py [--quick] [--only NAME[,NAME]] [--list] [--outputs DIR]
                                       [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from segue._atomic import atomic_open

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Figure:
    """One published number: where the README shows it, its value and how to find it."""

    label: str
    readme: float
    pattern: str  # group 1 is the number, searched line by line (re.MULTILINE); ``|||``
    # separates patterns tried in turn (the first that matches gives the value)
    tolerance: float = 0.001


@dataclass(frozen=True)
class Entry:
    """One command and the README figures it prints."""

    name: str
    command: tuple[str, ...]  # arguments after the Python executable, from the repo root
    figures: tuple[Figure, ...]
    quick: bool = False
    where: str = ""  # the README section that shows these figures


def _row(*cells: str) -> str:
    """A pattern for a markdown table row starting with ``cells``; group 1: the next cell."""
    parts = [r"\|\s*" + re.escape(c) + r"\s*" for c in cells]
    return r"^" + "".join(parts) + r"\|\s*([0-9.]+)\s*\|"


def _last_cell(first: str) -> str:
    """A pattern for the markdown row starting with ``first``; group 1: its last cell."""
    return r"^\|\s*" + re.escape(first) + r"\s*\|.*\|\s*([0-9.]+)\s*\|\s*$"


def _wide(metric: str, column: int = 1) -> str:
    """bench/two_stage.py's ``-- metric`` table: the ``all`` row's ``column``-th value."""
    skip = r"\s+[0-9.]+" * (column - 1)
    return r"^-- " + metric + r"\n(?:.*\n){1,3}?^all" + skip + r"\s+([0-9.]+)"


def _listens(dataset: str, label: str, model: str, params: str, value: float) -> Figure:
    return Figure(f"{label}: {model} {params}, NDCG@100", value, _row(dataset, model, params))


def _category(metric: str, category: str, column: int) -> str:
    """bench/two_stage.py's ``-- metric`` table: one category row's ``column``-th value."""
    skip = r"\s+[0-9.]+" * (column - 1)
    return r"^-- " + metric + r"\n(?:.*\n){1,14}?^" + category + skip + r"\s+([0-9.]+)"


# bench/two_stage.py's final tables: column of each model
_TWO_STAGE_COLUMNS = {"two-stage": 1, "user-kNN": 2, "item-kNN": 3, "WRMF": 4, "popularity": 5}
_TWO_STAGE_COLUMNS["merge without ranker"] = 6
_TWO_STAGE_README = {  # (R-precision, NDCG, clicks) as the README shows them
    "two-stage": (0.2055, 0.3551, 5.05),
    "user-kNN": (0.1827, 0.3237, 6.28),
    "item-kNN": (0.1685, 0.2914, 7.82),
    "WRMF": (0.1823, 0.3260, 6.38),
    "popularity": (0.0392, 0.0830, 21.01),
    "merge without ranker": (0.1868, 0.3363, 5.96),
}


def _two_stage_figures() -> tuple[Figure, ...]:
    out = []
    for model, values in _TWO_STAGE_README.items():
        column = _TWO_STAGE_COLUMNS[model]
        lgbm = model == "two-stage" or model == "merge without ranker" or model == "WRMF"
        tol = 0.003 if lgbm else 0.001
        for metric, value in zip(("r_precision", "ndcg", "clicks"), values, strict=True):
            out.append(
                Figure(
                    f"MPD {model} {metric}", value, _wide(metric, column),
                    0.1 if metric == "clicks" else tol,
                )
            )  # fmt: skip
    out.append(Figure("MPD two-stage title-only NDCG", 0.1433, _category("ndcg", "1", 1), 0.003))
    out.append(Figure("MPD popularity title-only NDCG", 0.0684, _category("ndcg", "1", 5)))
    out.append(Figure("MPD user-kNN title-only NDCG", 0.1220, _category("ndcg", "1", 2)))
    out.append(Figure("MPD WRMF title-only NDCG", 0.1363, _category("ndcg", "1", 4), 0.003))
    out.append(Figure("MPD merge title-only NDCG", 0.1466, _category("ndcg", "1", 6), 0.003))
    for name, column, value in (("user-kNN", 1, 0.524), ("WRMF", 3, 0.534), ("merged", 5, 0.550)):
        out.append(Figure(f"MPD {name} candidate recall@1000", value, _recall(column), 0.003))
    return tuple(out)


def _recall(column: int) -> str:
    """bench/two_stage.py's candidate recall@1000 on the challenge queries, ``all`` row."""
    skip = r"\s+[0-9.]+" * (column - 1)
    head = r"^== candidate recall on the challenge queries[^\n]*\n(?:.*\n)*?^-- @1000\n.*\n"
    return head + r"^all" + skip + r"\s+([0-9.]+)"


def _cf(dataset: str, label: str, model: str, how: str, value: float) -> Figure:
    """bench/cf_quality.py's log line of segue's ``model`` on ``dataset``: ``how`` is "defaults"
    or "tuned" (a tuned run equal to the defaults prints only the defaults line)."""
    block = r"(?:(?!- )[^\n]*\n)*?"  # lines of the dataset's block (the next starts "- ")
    start = r"^- " + re.escape(dataset) + r":[^\n]*\n" + block + r"\s+segue " + re.escape(model)
    start += " "
    line = r"\((?:{})[^)]*\): test ndcg@100 ([0-9.]+)"
    patterns = [start + line.format(how)] + ([start + line.format("defaults")] * (how == "tuned"))
    return Figure(f"{label}: segue {model} ({how}), NDCG@100", value, "|||".join(patterns))


_CF_README = {  # README "Every model against implicit": (model, how) -> (Last.fm, MSD)
    ("EASE", "tuned"): (0.4271, 0.2260),
    ("WRMF", "defaults"): (0.3975, 0.2210),
    ("WRMF", "tuned"): (0.4466, 0.2025),
    ("ItemKNN", "tuned"): (0.4294, 0.2091),
    ("UserKNN", "tuned"): (0.4387, 0.2325),
}


def _cf_figures() -> tuple[Figure, ...]:
    out = []
    for (model, how), values in _CF_README.items():
        for (dataset, label), value in zip(
            (("lastfm-hetrec-2k", "Last.fm"), ("msd-taste-42k", "MSD")), values, strict=True
        ):
            figure = _cf(dataset, label, model, how, value)
            tol = 0.003 if model == "WRMF" else 0.001  # ALS
            out.append(Figure(figure.label, figure.readme, figure.pattern, tol))
    return tuple(out)


ENTRIES: list[Entry] = [
    Entry(
        "listens-msd",
        ("bench/listens_quality.py", "--datasets", "msd-taste-42k"),
        (
            _listens("msd-taste-42k", "MSD", "MostPopular", "weighting=users", 0.0922),
            _listens("msd-taste-42k", "MSD", "EASE", "l2=250 (default)", 0.2204),
            _listens("msd-taste-42k", "MSD", "EASE", "l2=100 (validation pick)", 0.2260),
        ),
        quick=True,
        where="README.md, Results: the listen-count table",
    ),
    Entry(
        "ease-pruning",
        ("bench/ease_pruning.py", "--repeat", "1"),
        (
            Figure(
                "Last.fm EASE, 4,000 items kept, no back-fill, NDCG@100",
                0.4169,
                _last_cell("max_items=4000, no back-fill"),
            ),
            Figure(
                "Last.fm EASE, 4,000 items kept, back-fill, NDCG@100",
                0.4183,
                _last_cell("max_items=4000, back-fill (default 200)"),
            ),
        ),
        quick=True,
        where="README.md, EASE on large catalogues",
    ),
    Entry(
        "listens-lastfm",
        ("bench/listens_quality.py", "--datasets", "lastfm-hetrec-2k"),
        (
            _listens("lastfm-hetrec-2k", "Last.fm", "MostPopular", "weighting=users", 0.1946),
            _listens("lastfm-hetrec-2k", "Last.fm", "EASE", "l2=250 (default)", 0.4271),
        ),
        where="README.md, Results: the listen-count table",
    ),
    Entry(
        "cf-quality",
        ("bench/cf_quality.py",),
        _cf_figures(),
        where="README.md, Every model against implicit",
    ),
    Entry(
        "two-stage-mpd",
        ("bench/two_stage.py",),
        _two_stage_figures(),
        where="README.md, Playlist continuation on real MPD playlists (both tables)",
    ),
]


def run_entry(
    entry: Entry, outputs: Path | None = None, data_dir: Path | None = None
) -> tuple[list[tuple[Figure, float | None]], str, float]:
    """Run one entry's command; every figure with the value found (``None``: not found)."""
    t0 = time.perf_counter()
    extra = [] if data_dir is None else ["--data-dir", str(data_dir)]
    proc = subprocess.run(
        [sys.executable, *entry.command, *extra], cwd=ROOT, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    if outputs is not None:  # the whole output, for the tables around the checked figures
        outputs.mkdir(parents=True, exist_ok=True)
        with atomic_open(outputs / f"{entry.name}.txt", "w") as fh:
            fh.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return [(f, None) for f in entry.figures], f"exit {proc.returncode}: {tail}", seconds
    found = []
    for fig in entry.figures:
        value = None
        for pattern in fig.pattern.split("|||"):
            match = re.search(pattern, proc.stdout, re.MULTILINE)
            if match:
                value = float(match.group(1))
                break
        found.append((fig, value))
    return found, "", seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the entries marked quick")
    parser.add_argument("--only", default=None, help="comma-separated entry names")
    parser.add_argument("--list", action="store_true", help="list the entries and exit")
    parser.add_argument(
        "--outputs", type=Path, default=None, help="write each command's full output here"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="passed to every command (default: theirs, <repo>/../shared/data)",
    )
    args = parser.parse_args()
    names = {e.name for e in ENTRIES}
    chosen = ENTRIES
    if args.only:
        wanted = {n.strip() for n in args.only.split(",") if n.strip()}
        if wanted - names:
            parser.error(f"unknown entries {sorted(wanted - names)}; known: {sorted(names)}")
        chosen = [e for e in ENTRIES if e.name in wanted]
    elif args.quick:
        chosen = [e for e in ENTRIES if e.quick]
    if args.list:
        for e in ENTRIES:
            print(f"{e.name}{' (quick)' if e.quick else ''}: {' '.join(e.command)}")
            for f in e.figures:
                print(f"    {f.label}: README {f.readme:g} +- {f.tolerance:g}")
        return 0

    ok = True
    t_all = time.perf_counter()
    print("| entry | figure | README | now | tolerance | status |")
    print("|---|---|---|---|---|---|")
    for entry in chosen:
        found, error, seconds = run_entry(entry, args.outputs, args.data_dir)
        for fig, value in found:
            if value is None:
                status, now = f"MISSING {error}".strip(), "-"
                ok = False
            else:
                drift = abs(value - fig.readme)
                status = "ok" if drift <= fig.tolerance else f"DRIFT {value - fig.readme:+.4f}"
                ok &= drift <= fig.tolerance
                now = f"{value:g}"
            print(
                f"| {entry.name} | {fig.label} | {fig.readme:g} | {now} | {fig.tolerance:g} "
                f"| {status} |",
                flush=True,
            )
        print(f"<!-- {entry.name}: `{' '.join(entry.command)}` took {seconds:.0f} s -->")
    print(f"\ntotal {time.perf_counter() - t_all:.0f} s")
    print("OK: every figure within its tolerance" if ok else "FAIL: see DRIFT / MISSING above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
