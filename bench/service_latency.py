"""Latency and throughput of ``segue serve`` on loopback, replaying MPD challenge playlists.

Why: the service promises a playlist continuation "in milliseconds" (issue 7: p99 under 10 ms
at concurrency 1 with the best single model on the MPD data). This measures it the way a
client sees it: a real ``segue serve`` process (uvicorn) on 127.0.0.1, and a load generator in
a second process that replays the seeds of a challenge split.

Steps:

1. **Split**: the real MPD sample ``../shared/data/spotify-mpd/mpd_followers10.jsonl.xz``
   (7,071 playlists) with ``split_mpd(n_playlists=1000, seed=0, unseen="drop")``, as in the
   README's MPD table; or, with ``--synthetic``, generated MPD slices
   (``segue.data.synthetic.mpd.generate_mpd``).
2. **Train** each model of ``--models`` on the training playlists (``playlist_interactions``)
   and save it: ``ease`` (``EASE(max_items=--ease-max-items)``, pruned with back-fill, so every
   track is still scored) and ``wrmf`` (``WRMF()`` defaults: dense retrieval, exact fold-in).
3. **In-process time**: ``Continuer.continue_playlist`` (the library call behind the endpoint)
   for every challenge playlist, without HTTP.
4. **Serve** each model with ``python -m segue serve MODEL --no-access-log`` and wait for
   ``/health``. For every concurrency level of ``--concurrency`` (default 1, 8, 32), a fresh load
   generator process (``--loadgen`` mode of this script: asyncio + one ``httpx.AsyncClient``
   with that many connections) sends ``POST /v1/continue`` bodies ``{"tracks": seeds, "title":
   name, "n": N}`` round-robin over the challenge playlists, from ``C`` concurrent workers,
   until ``--requests`` answers or ``--duration`` seconds, whichever comes first, after
   ``--warmup`` untimed requests. Latency is the client's wall time per request (send to last
   byte parsed); ``took_ms`` is the server's own computing time from the answer.
5. **Check**: the first ``--check`` answers of each model equal ``continue_playlists`` (the
   function behind ``segue recommend --challenge``) for the same seeds.

Both processes share the machine's cores; the load generator's own CPU time is part of the
latency at high concurrency (a Python client is not free), so the numbers are an upper bound
on the server's latency.

    .venv/bin/python bench/service_latency.py                      # real MPD sample, ease + wrmf
    .venv/bin/python bench/service_latency.py --synthetic --playlists 2000 --tracks 5000 \\
        --challenge-playlists 200 --ease-max-items 2000 --duration 3   # smoke run, seconds
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

MPD_SAMPLE = "spotify-mpd/mpd_followers10.jsonl.xz"
JSON_HEADERS = {"content-type": "application/json"}


# load generator (a separate process) -------------------------------------------------------------
async def _load(
    url: str,
    server_pid: int,
    bodies: list[bytes],
    concurrency: int,
    count: int,
    duration: float,
    warmup: int,
) -> dict[str, Any]:
    """Replay ``bodies`` from ``concurrency`` workers; latencies, took_ms and CPU seconds."""
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as client:
        for i in range(0, warmup, concurrency):  # open every connection, warm the server
            batch = [bodies[j % len(bodies)] for j in range(i, min(warmup, i + concurrency))]
            await asyncio.gather(
                *(client.post("/v1/continue", content=b, headers=JSON_HEADERS) for b in batch)
            )
        latencies: list[float] = []
        took: list[float] = []
        errors: dict[str, int] = {}
        next_index = 0
        cpu0, server0 = _own_cpu_seconds(), tree_cpu_seconds(server_pid)
        start = time.perf_counter()
        deadline = start + duration

        async def worker() -> None:
            nonlocal next_index
            while next_index < count and time.perf_counter() < deadline:
                body = bodies[(warmup + next_index) % len(bodies)]
                next_index += 1
                t0 = time.perf_counter()
                try:
                    res = await client.post("/v1/continue", content=body, headers=JSON_HEADERS)
                    payload = res.json()
                except Exception as exc:  # transport error: counted, the run goes on
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    continue
                elapsed = time.perf_counter() - t0
                if res.status_code != 200:
                    errors[str(res.status_code)] = errors.get(str(res.status_code), 0) + 1
                    continue
                latencies.append(elapsed * 1000.0)
                took.append(float(payload["took_ms"]))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
        cpu = _own_cpu_seconds() - cpu0
        server_cpu = tree_cpu_seconds(server_pid) - server0
    return {
        "latency_ms": latencies,
        "took_ms": took,
        "wall_s": wall,
        "client_cpu_s": cpu,
        "server_cpu_s": server_cpu,
        "errors": errors,
    }


def _own_cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in tree]
        tree.update(children)
        frontier += children
    return sum(ticks.get(p, 0) for p in tree) / os.sysconf("SC_CLK_TCK")


def loadgen_main(args: argparse.Namespace) -> None:
    bodies = [json.dumps(b).encode() for b in json.loads(Path(args.queries).read_text())]
    result = asyncio.run(
        _load(
            args.loadgen,
            args.server_pid,
            bodies,
            args.c,
            args.requests,
            args.duration,
            args.warmup,
        )
    )
    Path(args.result).write_text(json.dumps(result))


# helpers -----------------------------------------------------------------------------------------
def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {k: float("nan") for k in ("p50", "p95", "p99", "max", "mean")}
    arr = np.asarray(values)
    return {
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "p99": float(np.percentile(arr, 99)),
        "max": float(arr.max()),
        "mean": float(arr.mean()),
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m segue serve`` in a child process, stopped on exit."""

    def __init__(self, model_dir: Path, workers: int, blas_threads: int | None, log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "segue", "serve", str(model_dir), "--port", str(self.port)]
        cmd += ["--no-access-log", "--log-level", "warning", "--workers", str(workers)]
        if blas_threads is not None:
            cmd += ["--blas-threads", str(blas_threads)]
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)

    def __enter__(self) -> Server:
        import httpx

        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"segue serve exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("segue serve did not come up in 600 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# steps -------------------------------------------------------------------------------------------
def make_split(args: argparse.Namespace, work: Path) -> tuple[Path, str]:
    from segue.data.mpd_split import split_mpd

    split = work / "split"
    if (split / "challenge_set.json").is_file():
        return split, f"reused {split}"
    if args.synthetic:
        from segue.data.synthetic.mpd import generate_mpd

        source = work / "generated"
        generate_mpd(source, n_playlists=args.playlists, n_tracks=args.tracks, seed=0)
        what = f"synthetic MPD ({args.playlists:,} playlists, {args.tracks:,} tracks, seed 0)"
    else:
        source = common.require_file(args.data_dir, MPD_SAMPLE)
        what = str(source)
    info = split_mpd(source, split, n_playlists=args.challenge_playlists, seed=0, unseen="drop")
    return split, (
        f"{what}: split_mpd(n_playlists={args.challenge_playlists}, seed=0, unseen='drop'): "
        f"{info['train_playlists']:,} training playlists, "
        f"{info['challenge_playlists']:,} challenge playlists"
    )


def make_model(name: str, args: argparse.Namespace, split: Path, work: Path) -> tuple[Path, str]:
    from segue import EASE, WRMF, load_model, save_model
    from segue.data.readers.mpd import read_mpd
    from segue.inference import playlist_interactions

    out = work / "models" / name
    if name == "two-stage":
        from segue.ranking.two_stage import TwoStage

        if not (out / "manifest.json").is_file():
            start = time.perf_counter()
            save_model(TwoStage(n=args.two_stage_n).fit(read_mpd(split / "train")), out)
            return out, (
                f"TwoStage(n={args.two_stage_n}; UserKNN, ItemKNN, WRMF, popularity; LightGBM "
                f"lambdarank): fit {time.perf_counter() - start:.1f} s"
            )
        return out, f"TwoStage(n={args.two_stage_n}) (reused)"
    if (out / "manifest.json").is_file():
        model = load_model(out)
        return out, f"{model!r} (reused; fit {model.fit_seconds_:.1f} s)"
    train = playlist_interactions(read_mpd(split / "train"), with_titles=True)
    if name == "ease":
        model = EASE(max_items=args.ease_max_items)
    elif name == "wrmf":
        model = WRMF()
    else:
        raise SystemExit(f"unknown model {name!r}: choose ease, wrmf or two-stage")
    model.fit(train)
    save_model(model, out)
    return out, f"{model!r} on {train!r}: fit {model.fit_seconds_:.1f} s"


def challenge_bodies(split: Path, n: int) -> tuple[list[dict[str, Any]], Any]:
    from segue.data.readers.mpd import read_challenge_set

    queries = read_challenge_set(split / "challenge_set.json")
    seeds = queries.track_lists()
    names = dict(zip(queries.playlists["pid"], queries.playlists["name"], strict=True))
    bodies = []
    for pid in queries.playlists["pid"]:
        body: dict[str, Any] = {"tracks": list(seeds[pid]), "n": n}
        if isinstance(names[pid], str) and names[pid]:
            body["title"] = names[pid]
        bodies.append(body)
    return bodies, queries


def in_process(
    model_dir: Path, bodies: list[dict[str, Any]], n: int, queries: Any, check: int
) -> dict[str, Any]:
    """Library time per query (no HTTP), and the equality check against continue_playlists."""
    from segue import load_model
    from segue.inference import continue_playlists
    from segue.inference.continuer import Continuer

    model = load_model(model_dir)
    cont = Continuer(model)
    cont.warm_up()
    times, got = [], []
    steps: dict[str, list[float]] = {}
    for body in bodies:
        t0 = time.perf_counter()
        res = cont.continue_playlist(body["tracks"], title=body.get("title"), n=n)
        times.append((time.perf_counter() - t0) * 1000.0)
        got.append(res.tracks)
        for step, seconds in cont.last_seconds.items():
            steps.setdefault(step, []).append(seconds * 1000.0)
    expected = []
    for batch in continue_playlists(model, queries, n):
        expected += batch.tracks
    return {
        "ms": times,
        "steps": steps,
        "expected": expected,
        "library_equal": sum(a == b for a, b in zip(got[:check], expected[:check], strict=True)),
    }


def run_level(
    url: str, server_pid: int, queries_file: Path, c: int, args: argparse.Namespace, work: Path
) -> dict[str, Any]:
    result = work / f"load-{c}.json"
    cmd = [
        sys.executable,
        __file__,
        "--loadgen",
        url,
        "--server-pid",
        str(server_pid),
        "--queries",
        str(queries_file),
        "--c",
        str(c),
        "--requests",
        str(args.requests),
        "--duration",
        str(args.duration),
        "--warmup",
        str(max(args.warmup, c)),
        "--result",
        str(result),
    ]
    subprocess.run(cmd, check=True, timeout=args.duration + 300)
    return json.loads(result.read_text())


def check_answers(url: str, bodies: list[dict[str, Any]], expected: list, check: int) -> int:
    import httpx

    same = 0
    with httpx.Client(base_url=url, timeout=60.0) as client:
        for body, exp in zip(bodies[:check], expected[:check], strict=True):
            same += client.post("/v1/continue", json=body).json()["tracks"] == exp
    return same


# main --------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_data_dir_option(parser)
    parser.add_argument("--synthetic", action="store_true", help="generate MPD data instead")
    parser.add_argument("--playlists", type=int, default=10_000, help="synthetic playlists")
    parser.add_argument("--tracks", type=int, default=20_000, help="synthetic tracks")
    parser.add_argument("--challenge-playlists", type=int, default=1000)
    parser.add_argument(
        "--models", default="ease,wrmf,two-stage", help="comma-separated: ease, wrmf, two-stage"
    )
    parser.add_argument("--two-stage-n", type=int, default=1000, help="candidates re-ranked")
    parser.add_argument("--ease-max-items", type=int, default=10_000)
    parser.add_argument("--n", type=int, default=100, help="tracks per answer")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--requests", type=int, default=3000, help="max requests per level")
    parser.add_argument("--duration", type=float, default=20.0, help="max seconds per level")
    parser.add_argument("--warmup", type=int, default=50, help="untimed requests per level")
    parser.add_argument("--workers", type=int, default=1, help="segue serve --workers")
    parser.add_argument("--blas-threads", type=int, default=None, help="segue serve option")
    parser.add_argument("--check", type=int, default=100, help="answers compared to the CLI's")
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="folder for split, models and logs (reused when present)",
    )
    # load generator mode (internal)
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    parser.add_argument("--queries", help=argparse.SUPPRESS)
    parser.add_argument("--c", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        loadgen_main(args)
        return
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]

    tmp = None
    if args.work is None:
        tmp = tempfile.TemporaryDirectory(prefix="segue-service-bench-")
        work = Path(tmp.name)
    else:
        work = args.work
        work.mkdir(parents=True, exist_ok=True)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    t_all = time.perf_counter()
    log("splitting ...")
    split, split_info = make_split(args, work)
    bodies, queries = challenge_bodies(split, args.n)
    queries_file = work / "queries.json"
    queries_file.write_text(json.dumps(bodies))
    seed_counts = [len(b["tracks"]) for b in bodies]
    lines = [
        "# segue serve: latency and throughput on loopback\n",
        *(f"- {line}" for line in common.environment_lines()),
        f"- data: {split_info}",
        f"- requests: POST /v1/continue with the {len(bodies):,} challenge playlists' seeds "
        f"(0 to {max(seed_counts)} tracks, mean {statistics.mean(seed_counts):.1f}) and titles, "
        f"n={args.n}, round-robin; up to {args.requests:,} requests or {args.duration:g} s per "
        f"level after {args.warmup} untimed ones",
        f"- server: python -m segue serve --workers {args.workers} --no-access-log"
        + (f" --blas-threads {args.blas_threads}" if args.blas_threads else "")
        + f" (uvicorn {_version('uvicorn')}, fastapi {_version('fastapi')}); "
        f"load generator: a second process, asyncio + httpx {_version('httpx')}",
    ]
    table: list[list[object]] = []
    inproc_rows: list[list[object]] = []
    checks: list[str] = []
    for name in models:
        log(f"training {name} ...")
        model_dir, model_info = make_model(name, args, split, work)
        lines.append(f"- {name}: {model_info}")
        log(f"in-process {name} ...")
        lib = in_process(model_dir, bodies, args.n, queries, args.check)
        p = percentiles(lib["ms"])
        inproc_rows.append(
            [
                name,
                len(lib["ms"]),
                f"{p['p50']:.2f}",
                f"{p['p95']:.2f}",
                f"{p['p99']:.2f}",
                f"{p['max']:.2f}",
            ]
        )
        for step, values in lib["steps"].items():  # the two-stage model's own split
            q = percentiles(values)
            inproc_rows.append(
                [
                    f"  {name}: {step}",
                    len(values),
                    f"{q['p50']:.2f}",
                    f"{q['p95']:.2f}",
                    f"{q['p99']:.2f}",
                    f"{q['max']:.2f}",
                ]
            )
        with Server(model_dir, args.workers, args.blas_threads, work / f"server-{name}.log") as srv:
            same = check_answers(srv.url, bodies, lib["expected"], args.check)
            checks.append(
                f"{name}: {same}/{min(args.check, len(bodies))} answers over HTTP equal "
                f"continue_playlists (segue recommend --challenge); "
                f"library route {lib['library_equal']}/{min(args.check, len(bodies))}"
            )
            for c in levels:
                log(f"load {name} c={c} ...")
                res = run_level(srv.url, srv.proc.pid, queries_file, c, args, work)
                server_share = res["server_cpu_s"] / res["wall_s"]
                lat, took = percentiles(res["latency_ms"]), percentiles(res["took_ms"])
                done = len(res["latency_ms"])
                errors = ", ".join(f"{k}: {v}" for k, v in res["errors"].items()) or "0"
                table.append(
                    [
                        name,
                        c,
                        done,
                        f"{done / res['wall_s']:.0f}",
                        f"{lat['p50']:.2f}",
                        f"{lat['p95']:.2f}",
                        f"{lat['p99']:.2f}",
                        f"{lat['max']:.1f}",
                        f"{took['p50']:.2f}",
                        f"{took['p99']:.2f}",
                        f"{100 * server_share:.0f}%",
                        f"{100 * res['client_cpu_s'] / res['wall_s']:.0f}%",
                        errors,
                    ]
                )
    print("\n".join(lines))
    print("\n## Client latency over HTTP (ms) and server-side took_ms\n")
    print(
        common.markdown_table(
            [
                "model",
                "concurrency",
                "requests",
                "req/s",
                "p50",
                "p95",
                "p99",
                "max",
                "took_ms p50",
                "took_ms p99",
                "server CPU",
                "client CPU",
                "errors",
            ],
            table,
        )
    )
    print("\n## In-process: Continuer.continue_playlist, no HTTP (ms)\n")
    print(common.markdown_table(["model", "queries", "p50", "p95", "p99", "max"], inproc_rows))
    print("\n## Checks\n")
    for line in checks:
        print(f"- {line}")
    for row in table:
        if row[1] == 1:
            limit = 50.0 if row[0] == "two-stage" else 10.0  # the two targets
            verdict = "met" if float(row[6]) < limit else "NOT met"
            print(
                f"- target p99 < {limit:g} ms at concurrency 1, {row[0]}: {row[6]} ms ({verdict})"
            )
    print(f"\n(total {time.perf_counter() - t_all:.0f} s)")
    if tmp is not None:
        tmp.cleanup()


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except Exception:
        return "?"


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
