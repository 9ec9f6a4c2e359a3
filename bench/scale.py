"""The RecSys Challenge 2018 path at growing sizes, every step in a fresh process (issue 16).

For each size N (generated playlists, ``--sizes``), through the real CLI:

1. ``segue generate mpd --playlists N --challenge 10000`` (slices + challenge set + answers);
2. ``segue data import-mpd`` (slices -> Parquet);
3. ``segue train --mpd IMPORTED --model M`` for popularity, UserKNN, ItemKNN, WRMF and the
   two-stage model (its inner questions sampled: ``per_category=50, folds=1``, so its training
   stays bounded);
4. ``segue recommend M --challenge challenge_set.json`` (500 tracks each), then
   ``segue evaluate`` of the submission (its NDCG is printed beside the step, to show the lists
   are real; the evaluation's own time is not in the table);
5. the streaming check: the same recommend with a 1,000-playlist challenge (the first 100 of
   each category), whose peak must be the 10,000-playlist peak, not a tenth of it; for WRMF by
   default, for the models of ``--small``, scored on those playlists' answers. ``--skip-full``
   leaves out a model's 10,000-playlist recommend (a step too long for one session at 1M).

``two-stage-lean`` is the two-stage model without its ItemKNN source (UserKNN, WRMF and
popularity), the variant that fits beside the rest at 1M.

Each step is one child process; its wall time is measured around it and its peak RSS is the
kernel's high-water mark of that child (``ru_maxrss`` from ``os.wait4``, the same counter as
``VmHWM``). A step that fails prints its one-line error in the table; one that runs past
``--timeout`` is killed and says so; the steps that need it are skipped, with the reason. The
growth exponent of a step between two sizes is ``log(v2 / v1) / log(N2 / N1)`` (1.0: linear).

Steps are plain data (:class:`Step`: a name, the engine, the command and what it needs), so
another engine's steps (Spark) are more rows of the same table, measured the same way.

A model may carry parameters after ``@`` (``--models wrmf@factors=64``, several as
``wrmf@factors=64@iterations=10``): they become ``--param`` options of its train step, and the
spec is the step's name, so rows at different parameters sit side by side.

Results go to ``WORKDIR/results.json`` after every step; ``--resume`` reuses the steps of a
size that already succeeded (so a long 1M run can be continued). The table is printed as
Markdown; ``--table-from DIR ...`` prints it again from one or more workdirs (merged).

    .venv/bin/python bench/scale.py                          # 10K and 100K (about 1 h here)
    .venv/bin/python bench/scale.py --sizes 10000,100000,1000000 --resume   # the full MPD size
    .venv/bin/python bench/scale.py --sizes 10000 --models popularity,wrmf  # a quick look
    .venv/bin/python bench/scale.py --engines single,spark --models wrmf@factors=64,itemknn
    .venv/bin/python bench/scale.py --sizes 1000000 --models two-stage-lean --resume \
        --small two-stage-lean --skip-full two-stage-lean      # the two-stage model at 1M
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEGUE = [sys.executable, "-m", "segue"]
MODELS = ("popularity", "userknn", "itemknn", "wrmf", "two-stage")
MODEL_PARAMS = {"two-stage": ["per_category=50", "folds=1"]}
# named variants: (model, its parameters); "two-stage-lean" leaves out the ItemKNN source, whose
# item-item matrix (about 1.5 GB at 100K playlists) would sit beside the others at 1M
VARIANTS = {
    "two-stage-lean": (
        "two-stage",
        [*MODEL_PARAMS["two-stage"], "first_stage=" + json.dumps({
            "userknn": {"model": "userknn"}, "wrmf": {"model": "wrmf"},
            "pop": {"model": "popularity"},
        })],
    ),
}  # fmt: skip
STREAM_MODEL = "wrmf"  # the streaming check's model (default of --small)
SMALL_CHALLENGE = 1000


def model_spec(spec: str) -> tuple[str, list[str]]:
    """``"wrmf@factors=64"`` -> ``("wrmf", ["--param", "factors=64"])`` plus MODEL_PARAMS
    (or a VARIANTS name's model and parameters)."""
    model, *given = spec.split("@")
    model, params = VARIANTS.get(model, (model, MODEL_PARAMS.get(model, [])))
    params = params + given
    return model, [x for p in params for x in ("--param", p)]


@dataclass
class Step:
    """One measured child process: ``command(size_dir)`` after the steps in ``needs``."""

    name: str
    command: Callable[[Path], list[str]]
    needs: tuple[str, ...] = ()
    engine: str = "single machine"
    after: Callable[[Path], str] | None = None  # a note computed after success (NDCG)


@dataclass
class Result:
    engine: str
    step: str
    size: int
    status: str  # ok, failed: ..., timeout ..., skipped: ...
    seconds: float | None = None
    peak_gib: float | None = None
    note: str = ""
    load: list[float] = field(default_factory=list)  # 1-min load average before and after


def single_machine_steps(
    models: list[str],
    challenge: int,
    small: tuple[str, ...] = (STREAM_MODEL,),
    skip_full: tuple[str, ...] = (),
) -> list[Step]:
    """The single-machine path as steps (another engine appends its own).

    ``small``: models also recommended for the 1,000-playlist challenge (the streaming check,
    scored on those playlists' answers); ``skip_full``: models not recommended for the whole
    challenge set (a step too long for a session at 1M).
    """

    def gen(d: Path) -> list[str]:
        size = int(d.name)
        return [*SEGUE, "generate", "mpd", "--out", str(d / "mpd"), "--playlists", str(size),
                "--challenge", str(challenge)]  # fmt: skip

    steps = [
        Step("generate", gen),
        Step(
            "import",
            lambda d: [*SEGUE, "data", "import-mpd", str(d / "mpd"), "--out", str(d / "imported")],
            needs=("generate",),
        ),
    ]
    for model in models:  # a spec: name[@param=value...]; its directories carry the spec
        base, params = model_spec(model)
        steps.append(
            Step(
                f"train {model}",
                lambda d, m=model, b=base, p=params: [
                    *SEGUE,
                    "train",
                    "--mpd",
                    str(d / "imported"),
                    "--model",
                    b,
                    "--out",
                    str(d / "models" / m),
                    *p,
                ],  # fmt: skip
                needs=("import",),
            )
        )
        if model in skip_full:
            continue
        steps.append(
            Step(
                f"recommend {model}",
                lambda d, m=model: [
                    *SEGUE,
                    "recommend",
                    str(d / "models" / m),
                    "--challenge",
                    str(d / "mpd" / "challenge_set.json"),
                    "--out",
                    str(d / f"sub-{m}.csv"),
                ],  # fmt: skip
                needs=(f"train {model}",),
                after=lambda d, m=model: _ndcg(d / f"sub-{m}.csv", d / "mpd" / "answers.json"),
            )
        )
    for model in [m for m in models if m in small]:
        steps.append(
            Step(
                f"recommend {model} ({SMALL_CHALLENGE:,} playlists)",
                lambda d, m=model: [
                    *SEGUE,
                    "recommend",
                    str(d / "models" / m),
                    "--challenge",
                    str(_small_challenge(d)),
                    "--out",
                    str(d / f"sub-{m}-small.csv"),
                ],  # fmt: skip
                needs=(f"train {model}",),
                after=lambda d, m=model: _ndcg(d / f"sub-{m}-small.csv", _small_answers(d)),
            )
        )
    return steps


def _small_challenge(d: Path) -> Path:
    """The first ``SMALL_CHALLENGE // 10`` playlists of each category, as a challenge file."""
    out = d / f"challenge_{SMALL_CHALLENGE}.json"
    if not out.exists():
        doc = json.loads((d / "mpd" / "challenge_set.json").read_text())
        answers = json.loads((d / "mpd" / "answers.json").read_text())["playlists"]
        category = {a["pid"]: a["category"] for a in answers}
        taken: dict[int, int] = {}
        keep = []
        for p in doc["playlists"]:
            c = category[p["pid"]]
            if taken.get(c, 0) < SMALL_CHALLENGE // 10:
                taken[c] = taken.get(c, 0) + 1
                keep.append(p)
        doc["playlists"] = keep
        out.write_text(json.dumps(doc))
    return out


def _small_answers(d: Path) -> Path:
    """The answers of :func:`_small_challenge`'s playlists, in the answers file's format."""
    out = d / f"answers_{SMALL_CHALLENGE}.json"
    if not out.exists():
        pids = {p["pid"] for p in json.loads(_small_challenge(d).read_text())["playlists"]}
        doc = json.loads((d / "mpd" / "answers.json").read_text())
        doc["playlists"] = [a for a in doc["playlists"] if a["pid"] in pids]
        out.write_text(json.dumps(doc))
    return out


def _ndcg(submission: Path, answers: Path) -> str:
    run = subprocess.run(
        [*SEGUE, "evaluate", str(submission), "--answers", str(answers), "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if run.returncode != 0:
        return f"evaluate failed: {_last_line(run.stderr)}"
    summary = next(iter(json.loads(run.stdout)["summary"].values()))
    return f"NDCG {summary['ndcg']:.4f}, R-prec {summary['r_precision']:.4f}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no message)"


def run_step(argv: list[str], log: Path, timeout: float) -> tuple[str, float, float]:
    """Run one child; (status, seconds, peak GiB). Its peak is its own ``ru_maxrss``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "160"}
    with open(log, "w") as fh:
        fh.write("$ " + shlex.join(argv) + "\n")
        fh.flush()
        start = time.perf_counter()
        child = subprocess.Popen(
            argv, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT, env=env, start_new_session=True
        )
        status = None
        while True:
            pid, code, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                os.killpg(child.pid, signal.SIGKILL)
                pid, code, usage = os.wait4(child.pid, 0)
                status = f"timeout: killed after {timeout:.0f} s"
                break
            time.sleep(0.2)
        seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(code)  # already reaped: keep Popen quiet
    peak = usage.ru_maxrss / 2**20  # KiB -> GiB
    if status is None:
        rc = child.returncode
        if rc == 0:
            status = "ok"
        elif rc < 0:
            status = f"killed by signal {-rc} (the OOM killer sends 9)"
        else:
            status = "failed: " + _last_line(log.read_text(errors="replace"))
    return status, seconds, peak


def exponent(a: float | None, b: float | None, n1: int, n2: int) -> str:
    if not a or not b or a <= 0 or b <= 0:
        return ""
    return f"{math.log(b / a) / math.log(n2 / n1):.2f}"


def table(results: list[Result], sizes: list[int]) -> str:
    by = {(r.engine, r.step, r.size): r for r in results}
    first = {"generate": 0, "import": 1}  # then each engine's steps in the order they ran
    rows = sorted(
        dict.fromkeys((r.engine, r.step) for r in results),
        key=lambda row: (row[0] != "single machine", first.get(row[1], 2)),
    )
    head = ["engine", "step"]
    for n in sizes:
        head += [f"{n:,} s", f"{n:,} GiB"]
    for n1, n2 in zip(sizes, sizes[1:], strict=False):
        head += [f"exp. s {n1 // 1000}K->{n2 // 1000}K", f"exp. GiB {n1 // 1000}K->{n2 // 1000}K"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for engine, step in rows:
        cells = [engine, step]
        for n in sizes:
            r = by.get((engine, step, n))
            if r is None:
                cells += ["", ""]
            elif r.status == "ok":
                cells += [f"{r.seconds:,.1f}", f"{r.peak_gib:.2f}"]
                if r.note:
                    notes.append(f"- {step} at {n:,}: {r.note}")
            else:
                cells += ["stopped", ""]
                notes.append(f"- {step} at {n:,}: {r.status}")
        for n1, n2 in zip(sizes, sizes[1:], strict=False):
            a, b = by.get((engine, step, n1)), by.get((engine, step, n2))
            ok = a is not None and b is not None and a.status == b.status == "ok"
            cells += [
                exponent(a.seconds, b.seconds, n1, n2) if ok else "",
                exponent(a.peak_gib, b.peak_gib, n1, n2) if ok else "",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + [""] + notes)


def _names(text: str) -> list[str]:
    """The names of a comma-separated option, blanks dropped."""
    return [name.strip() for name in text.split(",") if name.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="playlists, comma-separated")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--challenge", type=int, default=10_000, help="challenge playlists")
    parser.add_argument(
        "--small",
        default=STREAM_MODEL,
        help=f"models also recommended for {SMALL_CHALLENGE:,} challenge playlists (comma list)",
    )
    parser.add_argument(
        "--skip-full",
        default="",
        help="models not recommended for the whole challenge set, comma-separated",
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/segue-scale"))
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds per step")
    parser.add_argument("--resume", action="store_true", help="reuse steps that succeeded")
    parser.add_argument(
        "--engines",
        default="single",
        help="single and/or spark (bench/scale_spark.py: Spark rows on local[2]), comma-separated",
    )
    parser.add_argument(
        "--table-from",
        type=Path,
        nargs="+",
        help="print the table of these workdirs' results.json (merged), run nothing",
    )
    args = parser.parse_args(argv)
    if args.table_from:
        merged = [
            Result(**r)
            for d in args.table_from
            for r in json.loads((d / "results.json").read_text())["results"]
        ]
        print(table(merged, sorted({r.size for r in merged})))
        return 0
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    models = _names(args.models)
    unknown = [m for m in models if model_spec(m)[0] not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {[*MODELS, *VARIANTS]}")
    engines = set(_names(args.engines))
    steps = single_machine_steps(
        models if "single" in engines else [],
        args.challenge,
        small=tuple(_names(args.small)),
        skip_full=tuple(_names(args.skip_full)),
    )
    if "spark" in engines:  # Spark rows: bench/scale_spark.py
        from scale_spark import spark_steps

        steps += spark_steps(models)
    args.workdir.mkdir(parents=True, exist_ok=True)
    store = args.workdir / "results.json"
    old = json.loads(store.read_text())["results"] if args.resume and store.exists() else []
    done = {(r["engine"], r["step"], r["size"]): Result(**r) for r in old if r["status"] == "ok"}
    # kept as they are: other sizes, and steps of this run's sizes that this run does not repeat
    planned = {(s.engine, s.name) for s in steps}
    results: list[Result] = [
        r for r in done.values() if r.size not in sizes or (r.engine, r.step) not in planned
    ]
    print(
        f"# scale: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        f", sizes {sizes}, challenge {args.challenge:,}, workdir {args.workdir}",
        flush=True,
    )
    for size in sizes:
        d = args.workdir / str(size)
        status_of: dict[str, str] = {}
        for step in steps:
            key = (step.engine, step.name, size)
            if key in done:
                results.append(done[key])
                status_of[step.name] = "ok"
                continue
            missing = [n for n in step.needs if status_of.get(n) != "ok"]
            if missing:
                r = Result(step.engine, step.name, size, f"skipped: needs {missing[0]}")
            else:
                load0 = os.getloadavg()[0]
                log = d / "logs" / (step.name.replace(" ", "_").replace("(", "").replace(")", "")
                                    .replace(",", "") + ".log")  # fmt: skip
                status, seconds, peak = run_step(step.command(d), log, args.timeout)
                r = Result(step.engine, step.name, size, status, seconds, peak,
                           load=[load0, os.getloadavg()[0]])  # fmt: skip
                if status == "ok" and step.after is not None:
                    r.note = step.after(d)
            status_of[step.name] = r.status
            results.append(r)
            shown = f"{r.seconds:.1f} s, {r.peak_gib:.2f} GiB" if r.seconds is not None else ""
            print(f"{size:>9,} {step.name:<34} {r.status[:60]:<8} {shown} {r.note}", flush=True)
            doc = {"sizes": sizes, "results": [asdict(x) for x in results]}
            store.write_text(json.dumps(doc, indent=1))
    all_sizes = sorted({r.size for r in results})
    print()
    print(table(results, all_sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
