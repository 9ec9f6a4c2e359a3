"""``segue demo``: the system's jobs end to end on generated data, nothing downloaded.

Listen counts: generate -> split -> train -> recommend -> evaluate (NDCG, recall, ...).
MPD-format playlists: challenge split with the ten categories -> the single models and the
two-stage model -> submission CSVs -> the challenge's metrics per category, a plot and an
HTML report. Melon-format playlists: questions -> the two-stage model beside single models ->
song and tag nDCG per question type. Then ``segue serve`` on the two-stage model: one partial
playlist continued over HTTP, printed with its artists, and the server stopped (also on
Ctrl-C or an error). Every step calls the function behind its own command, so the demo runs
what a user runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from segue.cli._common import handle_errors, out
from segue.exceptions import SegueError

SINGLE_MODELS = ["popularity", "ease", "wrmf", "itemknn", "userknn"]
MELON_MODELS = ["popularity", "itemknn", "userknn"]

DEMO_TWO_STAGE = """\
# The demo's two-stage settings: fewer inner questions, candidates and boosting rounds than the
# defaults (segue.ranking.config), so that it trains in seconds on the demo's data.
# segue train --mpd DIR --model two-stage --config THIS_FILE
n = 200
folds = 1
per_category = 30
num_boost_round = 100
n_tags = 50
# LightGBM on one thread: on these ~60,000 candidate rows a second OpenMP thread saves
# little on an idle machine and, where other processes share the cores, spin-waits (7x
# the CPU time and 6x the wall time of one thread, measured on the 2-core reference VM)
num_threads = 1
"""


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _seconds(start: tuple[float, float]) -> str:
    """Wall and CPU seconds since ``start``: on a shared machine the CPU time is the steady one."""
    wall, cpu = _clock()
    return f"{wall - start[0]:.1f} s, {cpu - start[1]:.1f} s CPU"


def run_demo(
    workdir: Path,
    *,
    users: int,
    items: int,
    seed: int,
    models: list[str],
    k: int = 100,
) -> dict[str, dict[str, float]]:
    """Generate -> split -> train -> recommend -> evaluate, through the CLI's own functions."""
    from segue.cli.models import recommend_to_file, train_model
    from segue.data.readers.listens import read_listens, write_listens
    from segue.data.split import split_listens, write_listen_split
    from segue.data.synthetic.listens import generate_listens
    from segue.metrics.evaluate import evaluate_files

    raw = workdir / "listen_count.txt"
    write_listens(raw, generate_listens(users, items, seed=seed))
    split = split_listens(read_listens(raw), seed=seed)
    vdir = write_listen_split(split, workdir / "validation")
    results: dict[str, dict[str, float]] = {}
    for name in models:
        fit_s = train_model(vdir / "listen_count.txt", name, {}, workdir / "models" / name)
        start = time.perf_counter()
        recs_file = workdir / "recs" / f"{name}.txt"
        recommend_to_file(workdir / "models" / name, vdir / "target_users.txt", k, recs_file)
        rec_s = time.perf_counter() - start
        ev = evaluate_files(
            recs_file, vdir / "answers.txt", [10, k], listens_path=vdir / "listen_count.txt"
        )
        keep = [f"ndcg@{k}", f"recall@{k}", f"map@{k}", "ndcg@10", "hit_rate@10", f"coverage@{k}"]
        results[name] = {m: ev.summary[m] for m in keep} | {"fit_s": fit_s, "recommend_s": rec_s}
    return results


def _two_stage_config(workdir: Path) -> tuple[Path, dict[str, Any]]:
    """The demo's ``two-stage.toml``, written where the user can reuse it, and its contents."""
    from segue._atomic import atomic_open
    from segue.config import read_config

    path = workdir / "two-stage.toml"
    with atomic_open(path) as fh:
        fh.write(DEMO_TWO_STAGE)
    return path, read_config(path)


def _models_report(report: Any, model_dirs: Mapping[str, Path], path: Path, command: str) -> Path:
    from segue.metrics.report import model_summary, write_report

    report.models = {name: model_summary(d) for name, d in model_dirs.items()}
    report.command = command
    return write_report(report, path)


def run_playlist_demo(
    workdir: Path, *, playlists: int, tracks: int, seed: int, models: list[str]
) -> dict[str, Any]:
    """MPD-format playlists: split, train every model and two-stage, score them per category.

    Returns the evaluation (``result``), the plot paths, the report path, the model
    directories and the training playlists (for the serving step's track names).
    """
    from segue.cli.models import train_model
    from segue.cli.playlists import playlist_training_data, write_mpd_continuations
    from segue.data.mpd_split import split_mpd
    from segue.data.synthetic.mpd import generate_mpd
    from segue.metrics.playlist_eval import evaluate_mpd
    from segue.metrics.report import playlist_report
    from segue.serialization import load

    generate_mpd(workdir / "mpd", n_playlists=playlists, n_tracks=tracks, seed=seed)
    vdir = workdir / "mpd-validation"
    split_mpd(workdir / "mpd", vdir, n_playlists=playlists // 6 // 10 * 10, seed=seed)
    train = playlist_training_data(vdir / "train", None)
    config_path, config = _two_stage_config(workdir)
    submissions, fit_s, dirs = {}, {}, {}
    for name in [*models, "two-stage"]:
        dirs[name] = workdir / "mpd-models" / name
        params = config if name == "two-stage" else {}
        fit_s[name] = train_model(train, name, params, dirs[name])

        path = workdir / "submissions" / f"{name}.csv"
        write_mpd_continuations(
            load(dirs[name]),
            vdir / "challenge_set.json",
            500,
            path,
            team_name="segue-demo",
            email="demo@example.org",
        )
        submissions[name] = path
    result = evaluate_mpd(submissions, vdir / "answers.json")
    for name in submissions:
        result.summary[name]["fit_s"] = fit_s[name]
    plots = result.plot(workdir / "submissions" / "mpd")
    report = _models_report(
        playlist_report(result, vdir / "answers.json"),
        dirs,
        workdir / "report-mpd.html",
        f"segue demo (segue evaluate {' '.join(str(p) for p in submissions.values())} "
        f"--answers {vdir / 'answers.json'} --report {workdir / 'report-mpd.html'}; "
        f"two-stage settings: {config_path})",
    )
    return {
        "result": result,
        "plots": plots,
        "report": report,
        "dirs": dirs,
        "validation": vdir,
        "playlists": train.playlists,
    }


def run_melon_demo(
    workdir: Path, *, playlists: int, songs: int, tags: int, seed: int, models: list[str]
) -> dict[str, Any]:
    """Melon-format playlists: questions, single models and two-stage, songs and tags scored."""
    from segue.cli.models import train_model
    from segue.cli.playlists import playlist_training_data, write_melon_continuations
    from segue.data.melon_split import split_melon
    from segue.data.synthetic.melon import generate_melon
    from segue.metrics.playlist_eval import evaluate_melon
    from segue.metrics.report import playlist_report
    from segue.serialization import load

    generate_melon(workdir / "melon", n_playlists=playlists, n_songs=songs, n_tags=tags, seed=seed)
    vdir = workdir / "melon-validation"
    split_melon(workdir / "melon" / "train.json", vdir, seed=seed)
    train = playlist_training_data(None, vdir)
    _, config = _two_stage_config(workdir)
    results, dirs = {}, {}
    for name in [*models, "two-stage"]:
        dirs[name] = workdir / "melon-models" / name
        train_model(train, name, config if name == "two-stage" else {}, dirs[name])
        results[name] = workdir / "submissions" / f"melon-{name}.json"
        write_melon_continuations(load(dirs[name]), vdir / "questions.json", results[name])
    result = evaluate_melon(results, vdir / "answers.json")
    report = _models_report(
        playlist_report(result, vdir / "answers.json"),
        dirs,
        workdir / "report-melon.html",
        f"segue demo (segue evaluate {' '.join(str(p) for p in results.values())} "
        f"--answers {vdir / 'answers.json'} --report {workdir / 'report-melon.html'})",
    )
    return {"result": result, "report": report}


# serving ------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    """Linux: the server gets SIGTERM if the demo dies, even by SIGKILL (no orphan server)."""
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _http(url: str, body: Any = None, timeout: float = 30.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback)
        return json.loads(response.read())


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it has not exited in 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def running_server(model_dir: Path, log_path: Path, *, timeout: float = 120.0) -> Iterator[str]:
    """``segue serve MODEL_DIR`` as a child process on a free port; yields its URL.

    The server is stopped when the block ends, whatever ends it (an error, Ctrl-C, SIGTERM:
    ``segue``'s entry point turns SIGTERM into an exception, so this ``finally`` runs).
    """
    for _attempt in range(3):  # a port taken between _free_port() and the bind: another one
        port = _free_port()
        cmd = [sys.executable, "-m", "segue", "serve", str(model_dir), "--port", str(port)]
        cmd += ["--host", "127.0.0.1", "--no-access-log", "--log-level", "warning"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        linux = sys.platform.startswith("linux")
        with open(log_path, "wb") as log:  # a file, not a pipe: the server never blocks on it
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=_die_with_parent if linux else None,  # noqa: PLW1509
            )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    _http(f"{url}/health", timeout=2.0)
                    break
                except (urllib.error.URLError, OSError, ValueError):
                    time.sleep(0.2)
            if proc.poll() is None and time.monotonic() < deadline:
                yield url
                return
        finally:
            _stop(proc)
    tail = log_path.read_text(errors="replace")[-2000:]
    raise SegueError(f"segue serve did not start (log: {log_path}): {tail.strip()[-300:]}")


def _pick_playlist(challenge: Path) -> dict[str, Any]:
    """A challenge playlist with a title and five seed tracks (category 3), else any with seeds."""
    with open(challenge, encoding="utf-8") as fh:
        playlists = json.load(fh)["playlists"]
    with_seeds = [p for p in playlists if p.get("tracks")]
    titled = [p for p in with_seeds if p.get("name") and len(p["tracks"]) == 5]
    return (titled or with_seeds)[0]


def serve_demo(
    model_dir: Path, validation: Path, names: Any, log_path: Path, *, n: int = 10
) -> dict[str, Any]:
    """Continue one challenge playlist through a real ``segue serve``; print it, stop the server."""
    playlist = _pick_playlist(validation / "challenge_set.json")
    seeds = [t["track_uri"] for t in playlist["tracks"]]
    with open(validation / "answers.json", encoding="utf-8") as fh:
        hidden = next(
            set(p["tracks"]) for p in json.load(fh)["playlists"] if p["pid"] == playlist["pid"]
        )
    label = names.drop_duplicates("track").set_index("track")
    start = time.perf_counter()
    with running_server(model_dir, log_path) as url:
        started = time.perf_counter() - start
        body = {"tracks": seeds, "title": playlist.get("name"), "n": n}
        answer = _http(f"{url}/v1/continue", body)
        model = _http(f"{url}/v1/model")
    stopped = time.perf_counter() - start

    def show(track: str) -> str:
        if track in label.index:
            row = label.loc[track]
            return f"{row['track_name']} - {row['artist_name']}  ({track})"
        return track

    out.print(
        f"\nsegue serve {model_dir} on {url} (up in {started:.1f} s; model: "
        f"{model['model']}, {model['training'].get('rows', '?')} training playlists)",
        highlight=False,
    )
    out.print(f"POST /v1/continue  title: {playlist.get('name')!r}, {len(seeds)} seed tracks:")
    for track in seeds:
        out.print(f"  seed  {show(track)}", highlight=False)
    hits = 0
    out.print(f"first {n} recommendations ({answer['took_ms']:.1f} ms on the server):")
    for rank, track in enumerate(answer["tracks"], start=1):
        mark = "*" if track in hidden else " "
        hits += track in hidden
        out.print(f"  {rank:2d}{mark} {show(track)}", highlight=False)
    out.print(
        f"* = in the playlist's hidden part ({hits} of {n}); server stopped "
        f"(up {stopped:.1f} s in all)",
        highlight=False,
    )
    return {"url": url, "answer": answer, "seeds": seeds, "hits": hits}


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the main app."""

    @app.command("demo")
    @handle_errors
    def demo_cmd(
        workdir: Annotated[Path, typer.Option("--out", help="Where the files go.")] = Path(
            "demo-out"
        ),
        users: Annotated[int, typer.Option(help="Synthetic users.")] = 3000,
        items: Annotated[int, typer.Option(help="Synthetic songs.")] = 5000,
        seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
        playlists: Annotated[int, typer.Option(help="Synthetic playlists (MPD format).")] = 6000,
        tracks: Annotated[int, typer.Option(help="Synthetic track catalogue.")] = 8000,
        melon_playlists: Annotated[
            int, typer.Option(help="Synthetic playlists (Melon format).")
        ] = 3000,
        serve: Annotated[
            bool, typer.Option(help="End with segue serve on the two-stage model.")
        ] = True,
    ) -> None:
        """The system end to end on generated data: listens, MPD and Melon, then the service."""
        from segue.cli.evaluate import bucket_metrics_table, metrics_table

        begin = start = _clock()
        out.print(
            f"segue demo: {users} synthetic users x {items} songs, 20% of eligible users are "
            f"targets with half their songs hidden; files in {workdir}/",
            highlight=False,
        )
        models = SINGLE_MODELS
        results = run_demo(workdir, users=users, items=items, seed=seed, models=models)
        out.print(metrics_table(results, title="Held-out listens, top-100 per target user"))
        base = results["popularity"]["ndcg@100"]
        best = max(models, key=lambda m: results[m]["ndcg@100"])
        out.print(
            f"Best: {best}, NDCG@100 {results[best]['ndcg@100'] / base:.2f}x popularity's. "
            f"[{_seconds(start)}]",
            highlight=False,
        )

        start = _clock()
        out.print(
            f"\nPlaylist continuation: {playlists} synthetic playlists in the MPD format, a "
            "challenge split with the RecSys Challenge 2018's ten categories, 500 tracks each; "
            "the two-stage model (candidates from the single models, LightGBM re-ranking) "
            "beside the single models",
            highlight=False,
        )
        mpd = run_playlist_demo(
            workdir, playlists=playlists, tracks=tracks, seed=seed, models=models
        )
        result = mpd["result"]
        out.print(
            metrics_table(result.summary, title="Challenge metrics (clicks: lower is better)")
        )
        out.print(bucket_metrics_table("category", result.buckets["category"], ["ndcg"]))
        for path in mpd["plots"]:
            out.print(f"per-bucket plot -> {path}", highlight=False)
        out.print(f"HTML report -> {mpd['report']}  [{_seconds(start)}]", highlight=False)

        start = _clock()
        out.print(
            f"\nMelon playlist continuation: {melon_playlists} synthetic playlists in the Kakao "
            "Arena format; questions with songs, tags and titles hidden; 100 songs and 10 tags "
            "per answer",
            highlight=False,
        )
        melon = run_melon_demo(
            workdir,
            playlists=melon_playlists,
            songs=5000,
            tags=300,
            seed=seed,
            models=MELON_MODELS,
        )
        out.print(metrics_table(melon["result"].summary, title="Melon metrics"))
        out.print(f"HTML report -> {melon['report']}  [{_seconds(start)}]", highlight=False)

        if serve:
            start = _clock()
            serve_demo(
                mpd["dirs"]["two-stage"],
                mpd["validation"],
                mpd["playlists"].tracks,
                workdir / "serve.log",
            )
            out.print(f"[{_seconds(start)}; the server's own CPU not counted]", highlight=False)
        out.print(f"\ndemo done in {_seconds(begin)}; files in {workdir}/", highlight=False)
