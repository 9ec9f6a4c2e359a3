"""Same recommendation lists before and after a refactor, through segue's external interfaces.

Runs a reference commit (default ``598030d``, checked out as a detached ``git worktree`` in a
temporary folder) and the current working tree (``src/`` of this checkout) side by side, with
the same Python (this script's) and only ``PYTHONPATH`` telling them apart, and compares what
they answer through the interfaces a refactor must not change:

- the CLI: ``python -m segue train`` then ``python -m segue recommend`` (``--users`` for listen
  counts, ``--challenge`` for the MPD, ``--questions`` for Melon); the output files are compared
  list by list (same ids, same order) and byte for byte (formatting);
- the HTTP service: ``python -m segue serve MODEL --port P`` on 127.0.0.1, then
  ``POST /v1/continue`` (challenge playlists / Melon questions / listeners' histories, plus
  title-only, tags-only, empty, ``exclude``, unknown-id and ``n`` edge cases) and
  ``POST /v1/recommend`` (training users, and an unknown one), compared field by field (tracks,
  scores to exact float equality, tags, unknown ids, cold_start, status codes); ``GET /health``
  and ``GET /v1/model`` (without versions, class path and timings) as "service info".

Nothing of segue is imported here: its internals are what the refactor moves.

Data, made once with the reference CLI and shared by both sides (under the cache): generated
listen counts (2,000 users x 3,000 songs) split by ``segue split listens``; the real MPD sample
``spotify-mpd/mpd_followers10.jsonl.xz`` split by ``segue split mpd --playlists 1000 --unseen
drop``; generated Melon files split by ``segue split melon``.

The reference side's results are cached under ``--cache`` (default
``/tmp/segue-equivalence/<ref commit>``): a second run after more refactoring reruns only the new
side (``--rerun-ref`` forces it). ``--self-check`` runs the reference source as the "new" side
too, so every list must come out identical (which also checks that each model is
deterministic across processes). Exit status 0 when everything is identical, 1 otherwise.

    .venv/bin/python bench/api_equivalence.py [--ref 598030d] [--tasks listens,mpd,melon]
        [--models ease,two-stage] [--two-stage-config quick|default] [--self-check]
        [--rerun-ref] [--determinism] [--compare-only] [--cache DIR] [--new-src DIR]
        [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
DEFAULT_REF = "598030d"
MPD_SOURCE = "spotify-mpd/mpd_followers10.jsonl.xz"
CACHE_VERSION = 1  # bump when what is stored per entry changes

TASKS = ("listens", "mpd", "melon")
# entry name -> (segue train --model, --param values)
MODELS: dict[str, tuple[str, list[str]]] = {
    "popularity": ("popularity", []),
    "ease": ("ease", []),
    "wrmf": ("wrmf", []),
    "wrmf-faiss-exact": ("wrmf", ["retrieval=faiss-exact"]),
    "wrmf-faiss-ivf": ("wrmf", ["retrieval=faiss-ivf"]),
    "itemknn": ("itemknn", []),
    "userknn": ("userknn", []),
    "two-stage": ("two-stage", []),
}
TASK_PARAMS = {("mpd", "ease"): ["max_items=6000"]}  # 192K tracks: no dense EASE on 2 cores
PLAYLIST_ONLY = {"two-stage"}

QUICK_TOML = """\
# bench/api_equivalence.py --two-stage-config quick: a small two-stage model (same code paths)
n = 300
per_category = 30
folds = 1
seed = 0
num_threads = 2
"""

STEP_TIMEOUT = 3600.0
SERVE_TIMEOUT = 600.0
HTTP_TIMEOUT = 300.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def tail(text: str, lines: int = 3) -> str:
    kept = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(kept[-lines:])[-400:]


def short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


# one side: a source tree run with this Python ----------------------------------------------
class Side:
    """``python -m segue ...`` with ``PYTHONPATH=src`` (the editable install comes after it)."""

    def __init__(
        self, name: str, python: str, src: Path | None = None, tree: RefTree | None = None
    ):
        self.name = name
        self.python = python
        self._src = src.resolve() if src is not None else None
        self.tree = tree  # the reference worktree, made when this side first runs something
        self.checked = False
        self.import_error: str | None = None
        self.segue_file: str | None = None

    @property
    def src(self) -> Path:
        if self._src is None:
            assert self.tree is not None
            self._src = self.tree.src.resolve()
        return self._src

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = str(self.src)
        for key in ("SEGUE_MODEL_DIR", "SEGUE_BLAS_THREADS", "PYTHONSTARTUP"):
            env.pop(key, None)
        env["PYTHONUNBUFFERED"] = "1"
        env["NO_COLOR"] = "1"
        env["COLUMNS"] = "200"
        return env

    def check_import(self, cwd: Path) -> bool:
        """Print ``segue.__file__`` once and require it to be under this side's ``src``."""
        if self.checked:
            return self.import_error is None
        self.checked = True
        proc = subprocess.run(
            [self.python, "-c", "import segue; print(segue.__file__)"],
            cwd=cwd,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            self.import_error = f"import segue failed: {tail(proc.stderr)}"
            log(f"[{self.name}] {self.import_error}")
            return False
        found = Path(proc.stdout.strip().splitlines()[-1]).resolve()
        self.segue_file = str(found)
        log(f"[{self.name}] segue.__file__ = {found}")
        if not found.is_relative_to(self.src):
            raise SystemExit(
                f"[{self.name}] import segue resolved to {found}, not under {self.src}: "
                "the comparison would not test the intended source"
            )
        return True

    def cli(self, args: list[str], cwd: Path, logfile: Path) -> tuple[bool, float, str]:
        """Run ``python -m segue ARGS``; (ok, seconds, the tail of its output)."""
        start = time.perf_counter()
        with open(logfile, "a", encoding="utf-8") as fh:
            fh.write(f"$ python -m segue {' '.join(args)}\n")
            fh.flush()
            try:
                proc = subprocess.run(
                    [self.python, "-m", "segue", *args],
                    cwd=cwd,
                    env=self.env(),
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    timeout=STEP_TIMEOUT,
                )
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                rc = -999
        seconds = time.perf_counter() - start
        text = logfile.read_text(encoding="utf-8", errors="replace")
        last = text.rsplit("$ python -m segue", 1)[-1].partition("\n")[2]  # without the command
        if rc != 0:
            why = "timed out" if rc == -999 else f"exit {rc}"
            return False, seconds, f"{args[0]} {why}: {tail(last)}"
        return True, seconds, tail(last, 1)


# the HTTP service ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, {"_raw": raw.decode("utf-8", errors="replace")}


class Server:
    """``segue serve MODEL --port P`` on loopback; started, waited for, stopped."""

    def __init__(self, side: Side, model_dir: Path, cwd: Path, logfile: Path) -> None:
        self.side, self.model_dir, self.cwd, self.logfile = side, model_dir, cwd, logfile
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        for _attempt in range(3):
            self.port = free_port()
            fh = open(self.logfile, "ab")
            self.proc = subprocess.Popen(
                [self.side.python, "-m", "segue", "serve", str(self.model_dir)]
                + ["--host", "127.0.0.1", "--port", str(self.port)]
                + ["--no-access-log", "--log-level", "warning"],
                cwd=self.cwd,
                env=self.side.env(),
                stdout=fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            fh.close()
            deadline = time.monotonic() + SERVE_TIMEOUT
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                try:
                    status, _ = http("GET", f"{self.url}/health")
                    # /health answers while the model loads; /ready (404 on older sides) once
                    # it is loaded, so the first "service info" query sees the model
                    if status == 200 and http("GET", f"{self.url}/ready")[0] in (200, 404):
                        return
                except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                    pass
                time.sleep(0.25)
            else:
                self.stop()
                raise RuntimeError(f"serve: no /health within {SERVE_TIMEOUT:.0f} s")
            text = self.logfile.read_text(encoding="utf-8", errors="replace")
            if "address already in use" not in text.lower():
                raise RuntimeError(f"serve exited {self.proc.returncode}: {tail(text)}")
        raise RuntimeError("serve: no free port after 3 attempts")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)


# data ----------------------------------------------------------------------------------------
def data_steps(source_mpd: Path) -> dict[str, list[list[str]]]:
    """The ``segue`` commands (run in the data folder) that make each task's inputs."""
    return {
        "listens": [
            ["generate", "listens", "--out", "listens/gen.txt"]
            + ["--users", "2000", "--items", "3000", "--seed", "0"],
            ["split", "listens", "listens/gen.txt", "--out", "listens/val", "--seed", "0"],
        ],
        "mpd": [
            ["split", "mpd", str(source_mpd), "--out", "mpd/val"]
            + ["--playlists", "1000", "--seed", "0", "--unseen", "drop"],
        ],
        "melon": [
            ["generate", "melon", "--out", "melon/melon"]
            + ["--playlists", "2000", "--songs", "5000", "--tags", "300", "--seed", "0"],
            ["split", "melon", "melon/melon/train.json", "--out", "melon/mval", "--seed", "0"],
        ],
    }


def make_data(side: Side, data: Path, source_mpd: Path, tasks: list[str]) -> dict[str, float]:
    """The shared inputs, made with the reference CLI (each task once, then kept)."""
    data.mkdir(parents=True, exist_ok=True)
    (data / "two-stage-quick.toml").write_text(QUICK_TOML, encoding="utf-8")
    steps = data_steps(source_mpd)
    seconds: dict[str, float] = {}
    for task in tasks:
        stamp = data / task / "done.json"
        if stamp.exists() and json.loads(stamp.read_text())["steps"] == steps[task]:
            seconds[task] = json.loads(stamp.read_text())["seconds"]
            continue
        shutil.rmtree(data / task, ignore_errors=True)
        (data / task).mkdir(parents=True)
        if not side.check_import(data):
            raise SystemExit(f"the reference side cannot import segue: {side.import_error}")
        total = 0.0
        for args in steps[task]:
            ok, sec, msg = side.cli(args, data, data / task / "make.log")
            total += sec
            log(f"[data] {task}: segue {' '.join(args[:2])} {sec:.1f} s")
            if not ok:
                raise SystemExit(f"making the {task} data failed: {msg}")
        stamp.write_text(json.dumps({"steps": steps[task], "seconds": total}))
        seconds[task] = total
    return seconds


def train_input(task: str, data: Path) -> list[str]:
    return {
        "listens": ["--listens", str(data / "listens/val/listen_count.txt")],
        "mpd": ["--mpd", str(data / "mpd/val/train")],
        "melon": ["--melon", str(data / "melon/mval")],
    }[task]


def recommend_input(task: str, data: Path) -> tuple[list[str], str]:
    return {
        "listens": (["--users", str(data / "listens/val/target_users.txt")], "recs.txt"),
        "mpd": (["--challenge", str(data / "mpd/val/challenge_set.json")], "recs.csv"),
        "melon": (["--questions", str(data / "melon/mval/questions.json")], "results.json"),
    }[task]


def spread(items: list[Any], k: int) -> list[Any]:
    """``k`` items evenly spaced over ``items`` (all of them when fewer)."""
    if len(items) <= k:
        return list(items)
    return [items[(i * len(items)) // k] for i in range(k)]


def most_common(lists: list[list[Any]], k: int) -> list[Any]:
    counts = Counter(x for row in lists for x in row)
    return [x for x, _ in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:k]]


def queries_for(task: str, data: Path) -> list[dict[str, Any]]:
    """The HTTP requests of a task (``id``, ``method``, ``path``, ``body``), for both sides."""
    out: list[dict[str, Any]] = [
        {"id": "health", "method": "GET", "path": "/health", "body": None},
        {"id": "model", "method": "GET", "path": "/v1/model", "body": None},
    ]

    def cont(qid: str, body: dict[str, Any]) -> None:
        out.append({"id": qid, "method": "POST", "path": "/v1/continue", "body": body})

    def user(qid: str, body: dict[str, Any]) -> None:
        out.append({"id": qid, "method": "POST", "path": "/v1/recommend", "body": body})

    if task == "listens":
        history: dict[str, list[str]] = {}
        with open(data / "listens/val/listen_count.txt", encoding="utf-8") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) == 3:
                    history.setdefault(parts[0], []).append(parts[1])
        targets = (data / "listens/val/target_users.txt").read_text().split()
        picked = spread(targets, 20)
        for uid in picked[:15]:
            cont(f"history[{uid}]", {"tracks": history.get(uid, []), "n": 100})
        for uid in picked[15:]:
            cont(f"first3[{uid}]", {"tracks": history.get(uid, [])[:3], "n": 50})
        popular = most_common(list(history.values()), 30)
        seeds = history.get(picked[0], [])
        cont("exclude", {"tracks": seeds, "exclude": popular, "n": 100})
        cont("unknown+dup", {"tracks": [*seeds[:4], "no-such-song", 12345, seeds[0]], "n": 20})
        cont("empty", {})
        cont("empty+exclude", {"exclude": popular[:10], "n": 30})
        cont("title-only", {"title": "rock classics", "n": 10})
        cont("tags-only", {"tags": ["rock", "chill"], "n": 10})
        cont("n=1", {"tracks": seeds, "n": 1})
        cont("n=1000", {"tracks": seeds, "n": 1000})
        for uid in picked:
            user(f"user[{uid}]", {"user": uid, "n": 100})
        others = [u for u in spread(sorted(history), 40) if u not in set(targets)][:3]
        for uid in others:
            user(f"user[{uid}] n=10", {"user": uid, "n": 10})
        user("unknown user", {"user": "no-such-user", "n": 10})
        return out

    if task == "mpd":
        doc = json.loads((data / "mpd/val/challenge_set.json").read_text(encoding="utf-8"))
        playlists = doc["playlists"]
        seeds_of = {p["pid"]: [t["track_uri"] for t in p["tracks"]] for p in playlists}
        for p in spread(playlists, 30):
            body: dict[str, Any] = {"tracks": seeds_of[p["pid"]], "n": 500}
            if p.get("name") is not None:
                body["title"] = p["name"]
            cont(f"challenge[{p['pid']}]", body)
        popular = most_common(list(seeds_of.values()), 50)
        long = max(playlists, key=lambda p: (len(p["tracks"]), -p["pid"]))
        short_ = next(p for p in playlists if 0 < len(p["tracks"]) <= 5)
        cont("title-only", {"title": "Road Trip", "n": 500})
        cont("title-only emoji", {"title": "chill vibes \U0001f334!!", "n": 100})
        cont("title unknown words", {"title": "zzqx qqzz", "n": 100})
        cont("tags-only", {"tags": ["rock", "chill"], "n": 100})
        cont("empty", {})
        cont("exclude", {"tracks": seeds_of[long["pid"]], "exclude": popular, "n": 500})
        cont("empty+exclude", {"exclude": popular, "n": 100})
        cont(
            "unknown+dup",
            {
                "tracks": [*seeds_of[short_["pid"]], "spotify:track:nosuchtrack", 12345]
                + seeds_of[short_["pid"]][:1],
                "title": "party",
                "n": 50,
            },
        )
        cont("n=1", {"tracks": seeds_of[long["pid"]], "n": 1})
        cont("n=1000", {"tracks": seeds_of[long["pid"]], "title": "workout", "n": 1000})
        train = sorted((data / "mpd/val/train").glob("*.json"))
        pids = [p["pid"] for p in json.loads(train[0].read_text(encoding="utf-8"))["playlists"]]
        for pid in spread(pids, 5):
            user(f"pid[{pid}]", {"user": pid, "n": 100})
        user(f"pid[{pids[0]}] as str", {"user": str(pids[0]), "n": 10})
        user("unknown pid", {"user": 987654321, "n": 10})
        return out

    questions = json.loads((data / "melon/mval/questions.json").read_text(encoding="utf-8"))
    for q in spread(questions, 30):
        body = {"tracks": q["songs"], "tags": q["tags"], "n": 100, "n_tags": 10}
        if q.get("plylst_title"):
            body["title"] = q["plylst_title"]
        cont(f"question[{q['id']}]", body)
    popular = most_common([q["songs"] for q in questions], 30)
    with_songs = [q for q in questions if len(q["songs"]) >= 5]
    with_tags = [q for q in questions if q["tags"]]
    titled = [q for q in questions if q.get("plylst_title")]
    base = with_songs[0]
    cont("title-only", {"title": titled[-1]["plylst_title"], "n": 100, "n_tags": 10})
    cont("tags-only", {"tags": with_tags[-1]["tags"], "n": 100, "n_tags": 10})
    cont("empty", {})
    cont("exclude", {"tracks": base["songs"], "exclude": popular, "n": 100, "n_tags": 10})
    cont("empty+exclude", {"exclude": popular, "n": 100, "n_tags": 5})
    cont(
        "unknown+dup",
        {
            "tracks": [*base["songs"][:3], 99999999, "not-a-song", base["songs"][0]],
            "tags": ["no-such-tag", *with_tags[0]["tags"]],
            "n": 50,
            "n_tags": 10,
        },
    )
    cont("n_tags=0", {"tracks": base["songs"], "n": 100, "n_tags": 0})
    cont("n=1000 n_tags=100", {"tracks": base["songs"], "n": 1000, "n_tags": 100})
    train = json.loads((data / "melon/mval/train.json").read_text(encoding="utf-8"))
    ids = [p["id"] for p in train]
    for pid in spread(ids, 5):
        user(f"id[{pid}]", {"user": pid, "n": 100, "n_tags": 10})
    user("unknown id", {"user": 987654321, "n": 10})
    return out


# one (task, model) on one side ---------------------------------------------------------------
def entry_name(model: str, ts_config: str) -> str:
    return f"two-stage-{ts_config}" if model == "two-stage" else model


def entry_spec(
    task: str, model: str, ts_config: str, queries: list[dict[str, Any]], source_mpd: Path
) -> dict:
    """What a cached reference result was made from; a different spec means run it again."""
    cli_model, params = MODELS[model]
    params = params + TASK_PARAMS.get((task, model), [])
    train = ["--model", cli_model] + [x for p in params for x in ("--param", p)]
    if model == "two-stage" and ts_config == "quick":
        train += ["--config", "two-stage-quick.toml"]
    return {
        "version": CACHE_VERSION,
        "task": task,
        "model": model,
        "train": train,
        "recommend": recommend_input(task, Path("DATA"))[0],
        "queries": sha(queries),
        "data": sha(data_steps(source_mpd)[task]),
        "config": sha(QUICK_TOML) if model == "two-stage" and ts_config == "quick" else None,
    }


def run_entry(
    side: Side,
    task: str,
    model: str,
    spec: dict,
    data: Path,
    out: Path,
    queries: list[dict[str, Any]],
) -> dict[str, Any]:
    """Train, recommend, serve and query one model on one side; results saved under ``out``."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    result: dict[str, Any] = {"spec": spec, "errors": {}, "seconds": {}, "segue_file": None}
    logfile = out / "cli.log"
    if not side.check_import(data):
        for step in ("train", "recommend", "serve"):
            result["errors"][step] = side.import_error
        (out / "result.json").write_text(json.dumps(result, indent=1))
        return result
    result["segue_file"] = side.segue_file
    model_dir = out / "model"
    train = spec["train"]
    if "--config" in train:
        i = train.index("--config") + 1
        train = [*train[:i], str(data / train[i]), *train[i + 1 :]]
    args = ["train", *train_input(task, data), *train, "--out", str(model_dir)]
    ok, sec, msg = side.cli(args, data, logfile)
    result["seconds"]["train"] = round(sec, 2)
    log(f"[{side.name}] {task}/{model}: train {sec:.1f} s{'' if ok else ' FAILED: ' + msg}")
    if not ok:
        for step in ("train", "recommend", "serve"):
            result["errors"][step] = msg
        (out / "result.json").write_text(json.dumps(result, indent=1))
        return result

    rec_args, rec_file = recommend_input(task, data)
    ok, sec, msg = side.cli(
        ["recommend", str(model_dir), *rec_args, "--out", str(out / rec_file)], data, logfile
    )
    result["seconds"]["recommend"] = round(sec, 2)
    result["recommend_file"] = rec_file
    log(f"[{side.name}] {task}/{model}: recommend {sec:.1f} s{'' if ok else ' FAILED: ' + msg}")
    if not ok:
        result["errors"]["recommend"] = msg

    server = Server(side, model_dir, data, out / "serve.log")
    responses = []
    try:
        start = time.perf_counter()
        server.start()
        result["seconds"]["serve_start"] = round(time.perf_counter() - start, 2)
        start = time.perf_counter()
        for q in queries:
            status, body = http(q["method"], server.url + q["path"], q["body"])
            took = body.pop("took_ms", None) if isinstance(body, dict) else None
            responses.append({"id": q["id"], "path": q["path"], "status": status, "body": body})
            if took is not None:
                responses[-1]["took_ms"] = took
        result["seconds"]["http"] = round(time.perf_counter() - start, 2)
        log(
            f"[{side.name}] {task}/{model}: serve start {result['seconds']['serve_start']:.1f} s,"
            f" {len(queries)} requests {result['seconds']['http']:.1f} s"
        )
    except Exception as exc:  # noqa: BLE001 - a failure is a result here
        result["errors"]["serve"] = f"{type(exc).__name__}: {exc}"
        log(f"[{side.name}] {task}/{model}: serve FAILED: {exc}")
    finally:
        start = time.perf_counter()
        server.stop()
        result["seconds"]["serve_stop"] = round(time.perf_counter() - start, 2)
    (out / "http.json").write_text(json.dumps(responses, indent=0, ensure_ascii=False))
    shutil.rmtree(model_dir, ignore_errors=True)
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return result


# comparing -----------------------------------------------------------------------------------
def parse_recs(path: Path) -> tuple[str | None, list[tuple[str, dict[str, list]]]]:
    """(header line, [(row key, {field: ids})]) of a recommend output, in file order."""
    if path.suffix == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
        return None, [(str(r["id"]), {k: v for k, v in r.items() if k != "id"}) for r in rows]
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".csv":
        header, body = lines[0], [ln for ln in lines[1:] if ln.strip()]
        rows = [ln.split(",") for ln in body]
        return header, [(r[0].strip(), {"tracks": [x.strip() for x in r[1:]]}) for r in rows]
    rows = [ln.split() for ln in lines if ln.strip()]
    return None, [(r[0], {"items": r[1:]}) for r in rows]


def list_diff(a: list, b: list) -> str | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"position {i}: ref {short(x, 40)}, new {short(y, 40)}"
    if len(a) != len(b):
        return f"length ref {len(a)}, new {len(b)}"
    return None


def compare_recommend(ref_dir: Path, new_dir: Path, name: str) -> tuple[str, str, str]:
    """(result, differing, first difference) of two recommend output files."""
    ref_path, new_path = ref_dir / name, new_dir / name
    try:
        ref_head, ref_rows = parse_recs(ref_path)
        new_head, new_rows = parse_recs(new_path)
    except (OSError, ValueError, KeyError, IndexError) as exc:
        return "DIFFERENT: lists", "-", f"unreadable output: {type(exc).__name__}: {exc}"
    ref_map, new_map = dict(ref_rows), dict(new_rows)
    total = sum(len(f) for _, f in ref_rows)
    differing, first = 0, None
    for key, fields in ref_rows:
        other = new_map.get(key)
        for field, ids in fields.items():
            got = None if other is None else other.get(field)
            diff = "missing in new" if got is None else list_diff(ids, got)
            if diff:
                differing += 1
                first = first or f"{key} {field}: {diff}"
    extra = [k for k in new_map if k not in ref_map]
    if extra:
        differing += len(extra)
        first = first or f"{extra[0]}: only in new ({len(extra)} extra rows)"
    notes = []
    if ref_head != new_head:
        notes.append(f"header ref {short(ref_head)}, new {short(new_head)}")
    if [k for k, _ in ref_rows] != [k for k, _ in new_rows] and not differing:
        notes.append("row order differs")
    same_bytes = ref_path.read_bytes() == new_path.read_bytes()
    if differing or notes:
        result = "DIFFERENT: lists" if differing else "DIFFERENT: format"
        return result, f"{differing}/{total} lists", "; ".join(filter(None, [first, *notes]))
    if not same_bytes:
        a, b = ref_path.read_bytes().splitlines(), new_path.read_bytes().splitlines()
        line = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
        where = f"line {line + 1}" if line is not None else f"line count {len(a)} vs {len(b)}"
        return "DIFFERENT: format", f"0/{total} lists", f"same lists, bytes differ ({where})"
    return "identical", f"0/{total} lists", "byte-identical file"


def compare_fields(a: Any, b: Any) -> list[tuple[str, str]]:
    """(field, description) for each top-level field that differs (``took_ms`` is dropped)."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [] if a == b else [("body", f"ref {short(a)}, new {short(b)}")]
    out = []
    for key in list(a) + [k for k in b if k not in a]:
        if key not in b or key not in a:
            out.append((key, f"only in {'ref' if key in a else 'new'}"))
        elif a[key] != b[key] or type(a[key]) is not type(b[key]):
            if isinstance(a[key], list) and isinstance(b[key], list):
                what = list_diff(a[key], b[key]) or "element types differ (e.g. 1 vs '1')"
                if key == "scores" and len(a[key]) == len(b[key]):
                    gap = max(abs(x - y) for x, y in zip(a[key], b[key], strict=True))
                    what += f" (max |ref - new| {gap:.2g})"
                out.append((key, what))
            else:
                out.append((key, f"ref {short(a[key])}, new {short(b[key])}"))
    return out


MODEL_INFO_DROP = ("version", "class_path")
# what a difference is called, by the fields that differ (the first group that matches)
LIST_FIELDS = ("status", "body", "tracks", "tags", "user")
SCORE_FIELDS = ("scores",)


def model_info_view(body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    view = {k: v for k, v in body.items() if k not in MODEL_INFO_DROP}
    if isinstance(view.get("training"), dict):
        view["training"] = {k: v for k, v in view["training"].items() if k != "fit_seconds"}
    return view


def kind_of(fields: set[str] | Counter) -> str:
    if any(f in fields for f in LIST_FIELDS):
        return "DIFFERENT: lists"
    if any(f in fields for f in SCORE_FIELDS):
        return "DIFFERENT: scores"
    return "DIFFERENT: other fields"


def compare_http(ref: list[dict], new: list[dict], paths: tuple[str, ...]) -> tuple[str, str, str]:
    """(result, differing, first difference) of the responses to the requests on ``paths``.

    The first difference shown is the first one of the most important field that differs
    (status, then the lists, then scores, then the rest).
    """
    ref_by = {r["id"]: r for r in ref if r["path"] in paths}
    new_by = {r["id"]: r for r in new if r["path"] in paths}
    differing, fields = 0, Counter()
    example: dict[str, str] = {}
    statuses = Counter()
    for qid, r in ref_by.items():
        n = new_by.get(qid)
        statuses[r["status"]] += 1
        if n is None:
            diffs = [("status", "no answer from new")]
        else:
            a, b = r["body"], n["body"]
            if r["path"] == "/v1/model":
                a, b = model_info_view(a), model_info_view(b)
            diffs = compare_fields(a, b)
            if r["status"] != n["status"]:
                diffs.insert(0, ("status", f"ref {r['status']}, new {n['status']}"))
        if diffs:
            differing += 1
            for field, what in diffs:
                fields[field] += 1
                example.setdefault(field, f"{qid}: {field}: {what}")
    total = len(ref_by)
    codes = ", ".join(f"{c}: {k}" for c, k in sorted(statuses.items()))
    count = f"{differing}/{total} responses"
    if not differing:
        return "identical", count, f"all fields equal (HTTP {codes})"
    order = [*LIST_FIELDS, *SCORE_FIELDS, "cold_start", "unknown_tracks", "unknown_tags"]
    ranked = sorted(fields, key=lambda f: (order.index(f) if f in order else len(order), f))
    detail = ", ".join(f"{f} {fields[f]}" for f in ranked)
    return kind_of(fields), f"{count} ({detail})", example[ranked[0]]


INTERFACES = (
    ("recommend (CLI)", "recommend", None),
    ("POST /v1/continue", "serve", ("/v1/continue",)),
    ("POST /v1/recommend", "serve", ("/v1/recommend",)),
    ("GET /health, /v1/model", "serve", ("/health", "/v1/model")),
)


def compare_entry(ref_dir: Path, new_dir: Path) -> list[tuple[str, str, str, str]]:
    """Rows (interface, result, differing, first difference) for one (task, model)."""
    ref = json.loads((ref_dir / "result.json").read_text())
    new = json.loads((new_dir / "result.json").read_text())
    rows = []
    for label, step, paths in INTERFACES:
        ref_err, new_err = ref["errors"].get(step), new["errors"].get(step)
        if ref_err or new_err:
            if ref_err and new_err:
                if ref_err == new_err:
                    rows.append((label, "identical (both fail)", "-", ref_err))
                else:
                    rows.append((label, "both failed", "-", f"ref: {ref_err}; new: {new_err}"))
            else:
                who = "ref" if ref_err else "new"
                rows.append((label, f"FAILED ({who})", "-", ref_err or new_err))
            continue
        if paths is None:
            result, count, first = compare_recommend(ref_dir, new_dir, ref["recommend_file"])
        else:
            ref_http = json.loads((ref_dir / "http.json").read_text())
            new_http = json.loads((new_dir / "http.json").read_text())
            result, count, first = compare_http(ref_http, new_http, paths)
        rows.append((label, result, count, first))
    return rows


def md_table(header: list[str], rows: list[list[str]]) -> str:
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return "\n".join(lines)


# main ----------------------------------------------------------------------------------------
def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


class RefTree:
    """The reference commit as a detached worktree, made on first use, removed at the end."""

    def __init__(self, commit: str) -> None:
        self.commit = commit
        self.tmp: Path | None = None

    @property
    def src(self) -> Path:
        if self.tmp is None:
            self.tmp = Path(tempfile.mkdtemp(prefix="segue-ref-")) / "tree"
            for attempt in range(10):  # another git command may hold a lock for a moment
                proc = subprocess.run(
                    ["git", "-C", str(REPO), "worktree", "add", "--detach", str(self.tmp)]
                    + [self.commit],
                    capture_output=True,
                    text=True,
                )
                if proc.returncode == 0:
                    break
                if "lock" not in proc.stderr or attempt == 9:
                    raise SystemExit(f"git worktree add failed: {proc.stderr.strip()}")
                time.sleep(3)
            log(f"[ref] worktree of {self.commit[:12]} at {self.tmp}")
        return self.tmp / "src"

    def remove(self) -> None:
        if self.tmp is not None:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(self.tmp)],
                capture_output=True,
            )
            shutil.rmtree(self.tmp.parent, ignore_errors=True)
            self.tmp = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default=DEFAULT_REF, help="reference commit (default %(default)s)")
    parser.add_argument("--new-src", type=Path, default=REPO / "src", help="source of the new side")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated subset")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    parser.add_argument("--two-stage-config", choices=("quick", "default"), default="quick")
    parser.add_argument("--cache", type=Path, default=None, help="reference results folder")
    parser.add_argument("--rerun-ref", action="store_true", help="ignore cached reference results")
    parser.add_argument(
        "--self-check", action="store_true", help="new side = the reference source: all identical"
    )
    parser.add_argument(
        "--determinism",
        action="store_true",
        help="also run the reference two-stage MPD model a second time and compare",
    )
    parser.add_argument(
        "--compare-only",
        action="store_true",
        help="run nothing: compare the stored results of the last run again",
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--python", default=sys.executable, help="interpreter of both sides")
    args = parser.parse_args(argv)

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [t for t in tasks if t not in TASKS] + [m for m in models if m not in MODELS]
    if bad:
        parser.error(f"unknown task/model {bad}; tasks {list(TASKS)}, models {list(MODELS)}")
    source_mpd = args.data_dir / MPD_SOURCE
    if "mpd" in tasks and not source_mpd.exists():
        parser.error(f"{source_mpd} not found (pass --data-dir, or leave mpd out of --tasks)")
    try:
        commit = git("rev-parse", "--verify", f"{args.ref}^{{commit}}")
    except subprocess.CalledProcessError as exc:
        parser.error(f"not a commit: {args.ref} ({exc.stderr.strip()})")
    cache = args.cache or Path(tempfile.gettempdir()) / "segue-equivalence" / commit
    data = cache / "data"
    started = time.perf_counter()

    tree = RefTree(commit)
    ref_side = Side("ref", args.python, tree=tree)
    if args.self_check:
        new_side = Side("new", args.python, tree=tree)
        new_root = cache / "self-check"
    else:
        new_side = Side("new", args.python, src=args.new_src)
        new_root = cache / "new"
    try:
        if args.compare_only:
            stamps = {t: data / t / "done.json" for t in tasks}
            missing = [str(p) for p in stamps.values() if not p.exists()]
            if missing:
                raise SystemExit(f"--compare-only: no stored data ({', '.join(missing)})")
            data_seconds = {t: json.loads(p.read_text())["seconds"] for t, p in stamps.items()}
        else:
            data_seconds = make_data(ref_side, data, source_mpd, tasks)
        plan = []
        for task in tasks:
            queries = queries_for(task, data)
            for model in models:
                if model in PLAYLIST_ONLY and task == "listens":
                    continue
                plan.append((task, model, queries))
        # reference side: cached results where the spec matches
        ref_status: dict[tuple[str, str], str] = {}
        for task, model, queries in plan:
            if args.compare_only:
                ref_status[(task, model)] = "cached"
                continue
            name = entry_name(model, args.two_stage_config)
            spec = entry_spec(task, model, args.two_stage_config, queries, source_mpd)
            out = cache / "ref" / task / name
            stored = out / "result.json"
            if (
                not args.rerun_ref
                and stored.exists()
                and json.loads(stored.read_text()).get("spec") == spec
            ):
                ref_status[(task, model)] = "cached"
                log(f"[ref] {task}/{name}: cached")
                continue
            run_entry(ref_side, task, model, spec, data, out, queries)
            ref_status[(task, model)] = "run"
        # the new side, every time
        for task, model, queries in [] if args.compare_only else plan:
            name = entry_name(model, args.two_stage_config)
            spec = entry_spec(task, model, args.two_stage_config, queries, source_mpd)
            run_entry(new_side, task, model, spec, data, new_root / task / name, queries)
        det_rows = []
        if args.determinism and "mpd" in tasks:
            model = "two-stage"
            queries = queries_for("mpd", data)
            spec = entry_spec("mpd", model, args.two_stage_config, queries, source_mpd)
            name = entry_name(model, args.two_stage_config)
            rerun = cache / "determinism" / "mpd" / name
            if not args.compare_only:
                run_entry(ref_side, "mpd", model, spec, data, rerun, queries)
            for row in compare_entry(cache / "ref" / "mpd" / name, rerun):
                det_rows.append(["mpd", name, *row])
    finally:
        tree.remove()

    # report
    rows, time_rows, any_diff = [], [], False
    side_total = {"ref": 0.0, "new": 0.0}
    ref_file, new_file = ref_side.segue_file, new_side.segue_file
    for task, model, _ in plan:
        name = entry_name(model, args.two_stage_config)
        ref_dir, new_dir = cache / "ref" / task / name, new_root / task / name
        for label, result, count, first in compare_entry(ref_dir, new_dir):
            any_diff |= not result.startswith("identical")
            rows.append([task, name, label, result, count, first])
        for side, folder in (("ref", ref_dir), ("new", new_dir)):
            stored = json.loads((folder / "result.json").read_text())
            if side == "ref":
                ref_file = ref_file or stored["segue_file"]
            else:
                new_file = new_file or stored["segue_file"]
            sec = stored["seconds"]
            side_total[side] += sum(sec.values())
            note = " (cached)" if side == "ref" and ref_status[(task, model)] == "cached" else ""
            steps = ("train", "recommend", "serve_start", "http", "serve_stop")
            time_rows.append(
                [task, name, side + note] + [f"{sec[k]:.1f}" if k in sec else "-" for k in steps]
            )
    new_label = "the reference source again (--self-check)" if args.self_check else args.new_src
    out = [f"# segue API equivalence: {commit[:12]} vs {new_label}", ""]
    out.append(f"- ref: {commit}, segue imported from {ref_file}")
    out.append(f"- new: segue imported from {new_file or new_side.import_error}")
    out.append(f"- cache: {cache}; new side's outputs: {new_root}")
    out.append(f"- two-stage config: {args.two_stage_config}; tasks: {', '.join(tasks)}")
    data_note = ", ".join(f"{t} {s:.1f} s" for t, s in data_seconds.items())
    out += [f"- data (made once with the reference CLI, cached): {data_note}", ""]
    out.append(
        md_table(["task", "model", "interface", "result", "differing", "first difference"], rows)
    )
    if det_rows:
        out += ["", "## determinism: the reference two-stage MPD model trained twice", ""]
        out.append(
            md_table(["task", "model", "interface", "result", "differing", "first"], det_rows)
        )
        any_diff |= any(not r[3].startswith("identical") for r in det_rows)
    out += ["", "## wall times (seconds)", ""]
    out.append(
        md_table(
            ["task", "model", "side", "train", "recommend", "serve start", "requests", "stop"],
            time_rows,
        )
    )
    total = time.perf_counter() - started
    out.append("")
    out.append(
        f"steps: ref {side_total['ref']:.0f} s (cached ones included), new "
        f"{side_total['new']:.0f} s; this run's wall time {total:.0f} s ({total / 60:.1f} min)"
    )
    tally = Counter(r[3] for r in rows)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(tally.items()))
    out += ["", f"{len(rows)} comparisons: {summary}"]
    out += ["", "DIFFERENCES FOUND" if any_diff else "ALL IDENTICAL"]
    text = "\n".join(out)
    print(text)
    (new_root / "report.md").write_text(text + "\n", encoding="utf-8")
    return 1 if any_diff else 0


if __name__ == "__main__":
    sys.exit(main())
