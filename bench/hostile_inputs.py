"""segue tried as a hostile new user would: malformed inputs, tampered models, abusive HTTP
clients and interrupted runs, each classified, with one table per area (issue 13's closing table).

Everything goes through the real command line (``python -m segue ...`` in a subprocess, in a
temporary folder) and a real ``segue serve`` on 127.0.0.1; nothing is imported from segue except
for the version line. The temporary folder is removed at the end (``--keep`` keeps it, to rerun a
case by hand). Seed files are made with ``segue generate listens|mpd|melon`` (small), and every
hostile case is generated from them by a few lines of code:

1. **inputs**: malformed files for every reader, each through the commands that read it, in a
   folder of its own: listen files (``train --listens``, ``split listens``, ``recommend
   --history``), target files (``recommend --users``), CSV/TSV/Parquet (``--format csv|tsv|parquet
   --user-col ...``), MPD slices / JSON Lines / challenge sets (``train --mpd``, ``split mpd
   --unseen drop``, ``recommend --challenge``), Melon train / questions / song_meta (``train
   --melon``, ``split melon``, ``recommend --questions``). Generic cases (empty, whitespace, BOM,
   UTF-16, invalid UTF-8, NUL, truncated, binary, a directory, a missing file, a symlink loop,
   /dev/null) for every file, and format-specific ones (field counts, counts that are not
   positive numbers or overflow, ints >= 2**63, lone surrogates, deep nesting, huge int
   literals, wrong JSON types, 1 MB titles, 200,000-character fields, duplicate ids, negative
   pids, a question covering the whole catalogue, ...).
2. **models**: popularity, EASE, WRMF, ItemKNN, UserKNN (listens) and a small two-stage model
   (generated MPD, ``n = 100``, ``per_category = 20``, ``folds = 1``, ``num_boost_round = 30``)
   are saved, copied and tampered with (array entries out of range, negative, NaN or inf, CSR
   parts out of order, wrong shapes and dtypes, pickled object arrays, truncated / junk / empty
   npz, deleted files, manifest edits: a list, missing keys, unknown or bad parameters, another
   registered class, an unregistered one, wrong format versions, id maps too short or with
   duplicates, unknown codecs, nested model dirs outside the model, broken LightGBM and
   safetensors files). Each directory goes through ``segue recommend`` and ``segue serve`` (which
   must exit with a one-line error, not start; when it starts, it gets two requests and is
   stopped).
3. **service**: ``segue serve`` on a good model with ``--header-timeout 1 --body-timeout 1``;
   about 2,000 requests with httpx (valid ones, fuzzed field values, invalid JSON, wrong content
   types, 2 MB bodies with Content-Length and chunked, a 50 MB chunked body, every method on
   every route, unknown routes) and raw-socket clients (nothing sent, half a header, half a
   body, byte-by-byte senders, Content-Length with Transfer-Encoding, bad chunk sizes,
   pipelining, huge headers, HTTP/2 and TLS bytes, ...), then 20 idle connections held while a
   valid request must still be answered within 2 s.
4. **interrupts**: ``split listens``, ``split melon``, ``train`` and ``recommend`` writing over an
   earlier output, killed by SIGKILL or SIGTERM at 0.1 s, 0.5 s, 1 s, when its first temporary
   appears and at 95% of an uninterrupted run; after each, the output must be the old one or the
   complete new one (never mixed), every other file unchanged, nothing left by SIGTERM, and a
   later full run must leave no temporary behind. Plus ``--out`` pointing at the input, the folder
   holding it, a user's folder or file, ``.``, ``..``, symlinks, a FIFO and /dev/null.

Every case is one of: **result** (exit 0), **clean error** (exit 1 and exactly one ``error:``
line on stderr, naming the file where one applies, or a usage error, exit 2), **stopped** (it
died of the signal this script sent), **other error** (exit 1 without exactly one ``error:``
line, or not naming the file), **traceback** ("Traceback" anywhere in its output), **crash**
(killed by a signal it was not sent, an exit code other than 0/1/2, or no exit within the
timeout; a crash that also printed a traceback counts as a crash), **5xx** (an HTTP answer >=
500), **dropped/held** (a well-formed request got no answer, or a slow client's connection
stayed open past its deadline). Orthogonally: **outputs lost** (a file that existed before,
other than the declared output, changed or vanished: the case folder is snapshotted before and
after, by path and sha256) and **leftovers** (a new file other than the declared output, e.g. a
temporary, or an output written by a failed run). Every case that is not a result, a clean error
or stopped, or that lost or left something, is listed with its command and the first and last
lines of its output. The expected number is 0 everywhere; the exit status is 1 otherwise.

    .venv/bin/python bench/hostile_inputs.py            # everything, 6.5 to 7.5 minutes on 2 cores
    .venv/bin/python bench/hostile_inputs.py --quick    # about a third of the cases, 3 minutes
    .venv/bin/python bench/hostile_inputs.py --areas inputs,models --jobs 4 --keep
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import hashlib
import json
import lzma
import os
import random
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

SEGUE = [sys.executable, "-m", "segue"]
AREAS = ("inputs", "models", "service", "interrupts")
KINDS = ("result", "clean", "stopped", "other", "traceback", "crash", "5xx", "dropped")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BOM = b"\xef\xbb\xbf"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}

# sentinels for "the input is not a regular file"
DIR, MISSING, LOOP, DEVNULL = "<a directory>", "<missing>", "<a symlink loop>", "</dev/null>"


# cases and outcomes ----------------------------------------------------------------------------
@dataclass
class Case:
    """One ``segue`` command line run in ``cwd``; ``outputs`` (relative to ``cwd``) may change."""

    area: str
    group: str
    name: str
    args: list[str]
    cwd: Path
    outputs: tuple[str, ...] = ()
    names: tuple[str, ...] = ()  # one of these must be in the error line ("" : no requirement)
    timeout: float = 120.0
    serve: bool = False  # run as a server: it must exit (error) or answer /health


@dataclass
class Outcome:
    area: str
    group: str
    name: str
    kind: str
    command: str = ""
    rc: int | None = None
    seconds: float = 0.0
    lost: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    text: str = ""
    note: str = ""
    detail: str = ""  # for the detail tables: an interrupted run's output state, a socket's fate

    @property
    def clean(self) -> bool:
        return self.kind in ("result", "clean", "stopped") and not self.lost and not self.leftovers


def _digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _under(rel: str, paths: Iterable[str]) -> bool:
    return any(rel == p or rel.startswith(p.rstrip("/") + "/") for p in paths)


def snapshot(root: Path, skip: Iterable[str] = ()) -> dict[str, str]:
    """Every entry under ``root`` (not following links): relative path -> kind and sha256."""
    skip = [os.path.normpath(s) for s in skip]
    found: dict[str, str] = {}
    if not root.exists():
        return found
    for dirpath, dirnames, filenames in os.walk(root):
        descend = []
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if _under(rel, skip):
                continue
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                found[rel] = "link:" + os.readlink(full)
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = "dir"
                descend.append(name)
            elif stat.S_ISREG(st.st_mode):
                try:
                    found[rel] = "file:" + _digest(full)
                except OSError as exc:
                    found[rel] = f"unreadable:{exc.errno}"
            else:
                found[rel] = f"special:{stat.S_IFMT(st.st_mode)}"
        dirnames[:] = [d for d in dirnames if d in descend]
    return found


def is_temporary(rel: str) -> bool:
    """A temporary segue writes beside its output (``.NAME.PID-HOST.XXXXXXXX.tmp``, ``.old``)."""
    return any(
        part.startswith(".") and (".tmp" in part or ".old" in part) for part in Path(rel).parts
    )


def compare(before: dict[str, str], after: dict[str, str]) -> tuple[list[str], list[str]]:
    """(changed or vanished, new) paths; an earlier run's temporary may vanish."""
    lost = [p for p, v in before.items() if after.get(p) != v and not is_temporary(p)]
    new = [p for p in after if p not in before]
    return sorted(lost), sorted(new)


def decode(data: bytes | None) -> str:
    return ANSI.sub("", (data or b"").decode("utf-8", "replace"))


def classify(
    rc: int | None,
    out: str,
    err: str,
    names: Sequence[str],
    *,
    hung: bool = False,
    sent: int | None = None,
) -> tuple[str, str]:
    """(kind, note) of one finished command."""
    if hung:
        return "crash", "no exit before the timeout"
    assert rc is not None
    traceback = "Traceback" in out or "Traceback" in err
    if sent is not None and rc in (-sent, 128 + sent):
        return ("traceback", "stopped by the signal sent") if traceback else ("stopped", "")
    if rc < 0:
        return "crash", f"killed by {signal.Signals(-rc).name}"
    if rc not in (0, 1, 2):
        return "crash", f"exit code {rc}"
    if traceback:
        return "traceback", ""
    if rc == 0:
        return "result", ""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    if rc == 2:
        if "Usage:" in err or errors:
            return "clean", "usage error"
        return "other", "exit 2 without a usage message"
    if len(errors) != 1:
        return "other", f"{len(errors)} 'error:' lines on stderr"
    if names and not any(n in errors[0] for n in names):
        return "other", f"the error line names none of {list(names)}"
    return "clean", ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def show(args: Sequence[str], root: Path) -> str:
    return shlex.join(["segue", *args]).replace(str(root), "$TMP")


def run_cli(case: Case, root: Path) -> Outcome:
    """Run one case; classify it; compare the case folder before and after."""
    before = snapshot(case.cwd, case.outputs)
    existed = {o for o in case.outputs if os.path.lexists(case.cwd / o)}
    args = list(case.args)
    port = None
    if case.serve:
        port = free_port()
        args += ["--port", str(port)]
    start = time.perf_counter()
    with tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        proc = subprocess.Popen(
            SEGUE + args,
            cwd=case.cwd,
            stdin=subprocess.DEVNULL,
            stdout=fout,
            stderr=ferr,
            start_new_session=True,
            env=ENV,
        )
        hung, served, note5 = False, None, ""
        if case.serve:
            served, note5 = _watch_server(proc, port, case.timeout)
        if served is None:
            try:
                proc.wait(timeout=case.timeout)
            except subprocess.TimeoutExpired:
                hung = True
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        seconds = time.perf_counter() - start
        fout.seek(0)
        ferr.seek(0)
        out, err = decode(fout.read()), decode(ferr.read())
    after = snapshot(case.cwd, case.outputs)
    if served is not None:
        kind, note = ("5xx", note5) if note5 else ("result", "served")
        if "Traceback" in out + err:
            kind, note = "traceback", "served"
    else:
        kind, note = classify(proc.returncode, out, err, case.names, hung=hung)
    lost, new = compare(before, after)
    if kind != "result":  # a failed run writes nothing, not even its output
        new += [o for o in case.outputs if o not in existed and os.path.lexists(case.cwd / o)]
    return Outcome(
        case.area,
        case.group,
        case.name,
        kind,
        show(args, root),
        proc.returncode,
        seconds,
        lost,
        new,
        out + err,
        note,
    )


def _watch_server(proc: subprocess.Popen, port: int, timeout: float) -> tuple[bool | None, str]:
    """Wait until ``segue serve`` exits (None) or answers /health (True: then two requests, a
    clean stop). The note lists 5xx answers."""
    import httpx

    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None, ""
        try:
            if httpx.get(url + "/health", timeout=1.0).status_code < 500:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    else:
        return None, ""
    bad = []
    for path, body in (("/v1/continue", {"tracks": [], "n": 10}), ("/v1/model", None)):
        try:
            r = (
                httpx.post(url + path, json=body, timeout=30)
                if body is not None
                else httpx.get(url + path, timeout=30)
            )
            if r.status_code >= 500:
                bad.append(f"{path}: {r.status_code} {r.text[:200]}")
        except httpx.HTTPError as exc:
            bad.append(f"{path}: no answer ({type(exc).__name__})")
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    return True, "; ".join(bad)


def run_all(cases: list[Case], root: Path, jobs: int, label: str) -> list[Outcome]:
    results: list[Outcome | None] = [None] * len(cases)
    done = 0
    step = max(1, len(cases) // 10)
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        futures = {pool.submit(run_cli, c, root): i for i, c in enumerate(cases)}
        for fut in concurrent.futures.as_completed(futures):
            results[futures[fut]] = fut.result()
            done += 1
            if done % step == 0 or done == len(cases):
                print(f"  {label}: {done}/{len(cases)}", file=sys.stderr, flush=True)
    return [r for r in results if r is not None]


def must(args: Sequence[str], cwd: Path, timeout: float = 600) -> float:
    """Run a set-up command that has to succeed; its wall time."""
    start = time.perf_counter()
    proc = subprocess.run(
        SEGUE + list(args),
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
        env=ENV,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"set-up command failed: {shlex.join(['segue', *args])}\n"
            f"{decode(proc.stdout)}{decode(proc.stderr)}"
        )
    return time.perf_counter() - start


def parallel(funcs: Sequence[Callable[[], Any]], jobs: int) -> list[Any]:
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        return [f.result() for f in [pool.submit(fn) for fn in funcs]]


# area 1: inputs --------------------------------------------------------------------------------
JSON_RAW = {
    '"__DEEP__"': "[" * 100_000 + "]" * 100_000,
    '"__BIGINT__"': "9" * 5000,
    '"__NAN__"': "NaN",
    '"__INF__"': "Infinity",
    '"__1E400__"': "1e400",
}
MEGA_TITLE = " ".join(f"w{i}" for i in range(150_000))  # about 1 MB of distinct words


def dump_json(doc: Any) -> bytes:
    text = json.dumps(doc)  # ensure_ascii: a lone surrogate becomes the escape "\ud800"
    for key, raw in JSON_RAW.items():
        text = text.replace(key, raw)
    return text.encode("utf-8")


BINARY_GENERIC = frozenset(
    {
        "empty",
        "only whitespace",
        "invalid UTF-8",
        "truncated in the middle",
        "binary junk",
        "directory instead of the file",
        "missing file",
        "symlink loop",
        "/dev/null",
    }
)
"""The generic cases of the binary formats (Parquet, xz): the text-encoding ones are alike."""
GENERIC_EVERY = {"empty", "truncated in the middle", "directory instead of the file"}
"""The generic cases run through every command that reads the file (the others: the first)."""


def generic_cases(data: bytes, rng: random.Random) -> list[tuple[str, Any]]:
    """The cases every file gets."""
    mid = data.find(b"\n", len(data) // 2) + 1 or len(data) // 2
    try:
        utf16 = ("UTF-16 with BOM", b"\xff\xfe" + data.decode("utf-8").encode("utf-16-le"))
    except UnicodeDecodeError:  # a binary format (Parquet, xz)
        utf16 = ("bytes reversed", data[::-1])
    return [
        ("empty", b""),
        ("only whitespace", b"  \n\t\n   \r\n\n"),
        ("UTF-8 BOM", BOM + data),
        utf16,
        ("invalid UTF-8", data[:mid] + b"\xff\xfe\xc3\x28" + data[mid:]),
        ("surrogate as UTF-8 bytes (CESU)", data[: mid + 2] + b"\xed\xa0\x80" + data[mid + 2 :]),
        ("NUL byte", data[: mid + 3] + b"\x00" + data[mid + 3 :]),
        ("truncated in the middle", data[: len(data) // 2 + 3]),
        ("binary junk", rng.randbytes(4096)),
        ("directory instead of the file", DIR),
        ("missing file", MISSING),
        ("symlink loop", LOOP),
        ("/dev/null", DEVNULL),
    ]


@dataclass
class Reader:
    """A file format, the seed it is mutated from, and the commands that read it."""

    group: str
    seed: Path
    rel: str  # the mutated file's place in the case folder
    arg: str  # what the commands are given: the file, or the folder holding it
    commands: list[Callable[[str], tuple[list[str], tuple[str, ...]]]]
    extras: dict[str, Path] = field(default_factory=dict)  # other files of the case folder
    generic: frozenset[str] | None = None  # the generic cases it gets (None: all)


def materialise(case_dir: Path, reader: Reader, content: Any) -> str:
    """Write the mutated file into the case folder; the path to give the commands."""
    for rel, src in reader.extras.items():
        dst = case_dir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    path = case_dir / reader.rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is DEVNULL:
        if reader.arg == reader.rel:
            return "/dev/null"
        os.symlink("/dev/null", path)
    elif content is DIR:
        path.mkdir()
        (path / "inside.txt").write_text("a file inside a directory given as the input\n")
    elif content is LOOP:
        os.symlink(path.name, path)
    elif content is not MISSING:
        path.write_bytes(content)
    return reader.arg


def input_cases(root: Path, seeds: dict[str, Path], quick: bool, rng: random.Random) -> list[Case]:
    cases: list[Case] = []
    for reader, specific in readers(seeds, rng):
        data = reader.seed.read_bytes()
        generic = [
            g for g in generic_cases(data, rng) if reader.generic is None or g[0] in reader.generic
        ]
        if quick:
            generic = generic[::3]
            specific = specific[::3]
        for i, (name, content, every) in enumerate(
            [(n, c, n in GENERIC_EVERY) for n, c in generic] + [(n, c, e) for n, c, e in specific]
        ):
            commands = reader.commands if every else reader.commands[:1]
            if quick:
                commands = commands[:1]
            for j, command in enumerate(commands):
                case_dir = root / "inputs" / f"{reader.group}-{i:02d}-{j}"
                case_dir.mkdir(parents=True)
                arg = materialise(case_dir, reader, content)
                args, outputs = command(arg)
                names = {Path(reader.rel).name, Path(reader.arg).name}
                if content is DEVNULL and reader.arg == reader.rel:
                    names = {"/dev/null"}
                cases.append(
                    Case("inputs", reader.group, name, args, case_dir, outputs, tuple(names))
                )
    return cases


def make_input_seeds(root: Path, jobs: int) -> dict[str, Path]:
    s = root / "seeds"
    s.mkdir(parents=True)

    def listens() -> None:
        must(
            [
                "generate",
                "listens",
                "--out",
                "listens.txt",
                "--users",
                "150",
                "--items",
                "200",
                "--seed",
                "0",
            ],
            s,
        )
        must(["train", "--listens", "listens.txt", "--model", "popularity", "--out", "pop"], s)
        must(["split", "listens", "listens.txt", "--out", "lsplit", "--min-items", "5"], s)

    def mpd() -> None:
        must(
            [
                "generate",
                "mpd",
                "--out",
                "mpd",
                "--playlists",
                "60",
                "--tracks",
                "200",
                "--seed",
                "0",
            ],
            s,
        )
        must(["split", "mpd", "mpd", "--out", "msplit", "--playlists", "10", "--unseen", "drop"], s)
        must(["train", "--mpd", "msplit/train", "--model", "popularity", "--out", "mpdpop"], s)

    def melon() -> None:
        must(
            [
                "generate",
                "melon",
                "--out",
                "melon",
                "--playlists",
                "200",
                "--songs",
                "300",
                "--tags",
                "40",
                "--seed",
                "0",
            ],
            s,
        )
        must(["split", "melon", "melon/train.json", "--out", "melsplit"], s)
        must(["train", "--melon", "melsplit", "--model", "popularity", "--out", "melpop"], s)

    parallel([listens, mpd, melon], jobs)
    # tables and JSON Lines made from the seeds by this script
    lines = [ln.split() for ln in (s / "listens.txt").read_text().splitlines() if ln.strip()]
    csv = "listener,track,plays\n" + "".join(f"{u},{i},{c}\n" for u, i, c in lines)
    (s / "plays.csv").write_text(csv)
    (s / "plays.tsv").write_text(csv.replace(",", "\t"))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table(
            {
                "listener": [u for u, _, _ in lines],
                "track": [i for _, i, _ in lines],
                "plays": [int(c) for _, _, c in lines],
            }
        ),
        s / "plays.parquet",
    )
    slice_file = next((s / "mpd").glob("mpd.slice.*.json"))
    doc = json.loads(slice_file.read_text())
    (s / "playlists.jsonl").write_text("".join(json.dumps(p) + "\n" for p in doc["playlists"]))
    (s / "playlists.jsonl.xz").write_bytes(lzma.compress((s / "playlists.jsonl").read_bytes()))
    return {
        "listens": s / "listens.txt",
        "pop": s / "pop",
        "targets": s / "lsplit" / "target_users.txt",
        "csv": s / "plays.csv",
        "tsv": s / "plays.tsv",
        "parquet": s / "plays.parquet",
        "slice": slice_file,
        "jsonl": s / "playlists.jsonl",
        "jsonl.xz": s / "playlists.jsonl.xz",
        "challenge": s / "msplit" / "challenge_set.json",
        "mpdpop": s / "mpdpop",
        "melon_train": s / "melon" / "train.json",
        "song_meta": s / "melon" / "song_meta.json",
        "questions": s / "melsplit" / "questions.json",
        "melpop": s / "melpop",
    }


def _line_cases(data: bytes, lines: list[tuple[str, str | list[str], bool]]) -> list[tuple]:
    """Replace the 6th line by the given line(s)."""
    text = data.decode().splitlines()
    out = []
    for name, bad, every in lines:
        new = bad if isinstance(bad, list) else [bad]
        out.append(
            (
                name,
                ("\n".join(text[:5] + new + text[6:]) + "\n").encode("utf-8", "surrogatepass"),
                every,
            )
        )
    return out


def listens_specific(data: bytes) -> list[tuple]:
    u, s = "u000001", "s999999"
    return _line_cases(
        data,
        [
            ("two fields", f"{u} {s}", False),
            ("count not a number", f"{u} {s} abc", True),
            ("count inf", f"{u} {s} inf", False),
            ("count 1e300", f"{u} {s} 1e300", False),
            ("count 4e38 (over float32)", f"{u} {s} 4e38", False),
            (
                "count 3e38 twice for one pair (the sum overflows float32)",
                [f"{u} {s} 3e38", f"{u} {s} 3e38"],
                True,
            ),
            ("count negative", f"{u} {s} -3", False),
            ("count not an integer", f"{u} {s} 2.5", False),
            ("count 2**63", f"{u} {s} {2**63}", False),
            ("count 5000 digits", f"{u} {s} {'9' * 5000}", False),
            ("count fullwidth digits", f"{u} {s} \uff15", False),
            ("count Arabic-Indic digits", f"{u} {s} \u0663", False),
            ("id of 1,000 characters", f"{'u' * 1000} {s} 3", False),
            ("id of 1,001 characters", f"{'u' * 1001} {s} 3", True),
            ("id of 200,000 characters", f"{'u' * 200_000} {s} 3", False),
            ("a 1 MB line", "x" * 1_000_000, False),
            ("NUL inside an id", f"u\x00x {s} 3", True),
            ("U+2028 inside an id", f"u\u2028x {s} 3", False),
            ("lone surrogate inside an id", f"u\ud800x {s} 3", False),
            ("emoji ids", "\U0001f3b5 \U0001f3b6 3", False),
            ("comma-separated line", f"{u},{s},3", False),
            ("header line", "uid sid count", False),
            ("10,000 fields on a line", " ".join(["a"] * 10_000), False),
            ("the same line 3 times", [f"{u} {s} 2"] * 3, False),
            ("blank lines in between", ["", "   ", "\t", f"{u} {s} 2"], False),
        ],
    ) + [("only one line", data.splitlines(keepends=True)[0], False)]


def targets_specific(data: bytes) -> list[tuple]:
    return _line_cases(
        data,
        [
            ("duplicate ids", ["u000001"] * 3, True),
            ("unknown ids", ["nobody", "\U0001f3b5"], False),
            ("two ids on a line", "u000001 u000002", True),
            ("id of 1,001 characters", "u" * 1001, True),
            ("id of 200,000 characters", "u" * 200_000, False),
            ("NUL inside an id", "u\x00x", False),
            ("lone surrogate inside an id", "u\ud800x", False),
            ("spaces around an id", "   u000001   ", False),
            ("10,000 unknown ids", [f"x{i}" for i in range(10_000)], False),
        ],
    )


def csv_specific(data: bytes, sep: str) -> list[tuple]:
    text = data.decode()
    header, *rows = text.splitlines()
    body = "\n".join(rows) + "\n"

    def row(line: str) -> bytes:
        return (header + "\n" + "\n".join(rows[:4] + [line] + rows[5:]) + "\n").encode(
            "utf-8", "surrogatepass"
        )

    j = sep.join
    return [
        ("header only", (header + "\n").encode(), False),
        (
            "weight column missing",
            ("\n".join(sep.join(r.split(sep)[:2]) for r in [header, *rows]) + "\n").encode(),
            False,
        ),
        ("user column renamed", (header.replace("listener", "user") + "\n" + body).encode(), False),
        ("empty user id", row(j(["", "s1", "3"])), False),
        ("weight zero", row(j(["u1", "s1", "0"])), False),
        ("weight negative", row(j(["u1", "s1", "-2"])), True),
        ("weight not a number", row(j(["u1", "s1", "abc"])), False),
        ("weight nan", row(j(["u1", "s1", "nan"])), False),
        ("weight 1e300", row(j(["u1", "s1", "1e300"])), False),
        ("id field of 200,000 characters", row(j(["u" * 200_000, "s1", "3"])), True),
        (
            "extra column with a 200,000-character field",
            (
                header
                + sep
                + "note\n"
                + "\n".join(r + sep + ("n" * 200_000 if k == 3 else "") for k, r in enumerate(rows))
                + "\n"
            ).encode(),
            False,
        ),
        ("field of 1 MB", row(j(["u1", "s" * 1_000_000, "3"])), False),
        ("unbalanced quote", row(j(['"u1', "s1", "3"])), True),
        ("quoted field with a newline", row(j(['"u\n1"', "s1", "3"])), False),
        ("row with an extra field", row(j(["u1", "s1", "3", "4"])), False),
        ("row with a missing field", row(j(["u1", "s1"])), False),
        ("invalid UTF-8 in the header", b"list\xffener" + data[len("listener") :], True),
        ("NUL in a field", row(j(["u\x001", "s1", "3"])), False),
        ("lone surrogate in a field", row(j(["u\ud8001", "s1", "3"])), False),
        ("id of 1,001 characters", row(j(["u" * 1001, "s1", "3"])), False),
        (
            "duplicate header names",
            (j(["listener", "listener", "plays"]) + "\n" + body).encode(),
            False,
        ),
        ("other delimiter", text.replace(sep, ";").encode(), False),
    ]


def parquet_specific(seed: Path) -> list[tuple]:

    import pyarrow as pa
    import pyarrow.parquet as pq

    base = pq.read_table(seed)
    n = base.num_rows
    users, tracks, plays = (base.column(c).to_pylist() for c in ("listener", "track", "plays"))

    def tab(**cols: Any) -> pa.Table:
        data = {"listener": users, "track": tracks, "plays": plays}
        data.update(cols)
        return pa.table({k: v for k, v in data.items() if v is not None})

    def at(values: list, k: int, v: Any) -> list:
        values = list(values)
        values[k] = v
        return values

    def write(table: pa.Table, **kw: Any) -> bytes:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, **kw)
        return sink.getvalue().to_pybytes()

    tables: list[tuple[str, Callable[[], bytes], bool]] = [
        ("zero rows", lambda: write(base.slice(0, 0)), True),
        ("weight column missing", lambda: write(base.drop(["plays"])), False),
        (
            "float user ids",
            lambda: write(tab(listener=pa.array([float(i) for i in range(n)]))),
            False,
        ),
        ("int64 user ids", lambda: write(tab(listener=pa.array(list(range(n))))), False),
        ("list user ids", lambda: write(tab(listener=pa.array([[u] for u in users]))), True),
        ("null user id", lambda: write(tab(listener=pa.array(at(users, 5, None)))), False),
        (
            "binary ids with invalid UTF-8",
            lambda: write(
                tab(listener=pa.array([b"\xff\xfe" + u.encode() for u in users], type=pa.binary()))
            ),
            True,
        ),
        ("NUL inside an id", lambda: write(tab(listener=pa.array(at(users, 5, "u\x00x")))), False),
        (
            "id of 1,001 characters",
            lambda: write(tab(listener=pa.array(at(users, 5, "u" * 1001)))),
            False,
        ),
        (
            "id of 200,000 characters",
            lambda: write(tab(listener=pa.array(at(users, 5, "u" * 200_000)))),
            False,
        ),
        (
            "dictionary-encoded ids",
            lambda: write(tab(listener=pa.array(users).dictionary_encode())),
            False,
        ),
        ("weight as strings", lambda: write(tab(plays=pa.array([str(p) for p in plays]))), False),
        ("weight zero", lambda: write(tab(plays=pa.array(at(plays, 5, 0)))), False),
        ("weight negative", lambda: write(tab(plays=pa.array(at(plays, 5, -2)))), False),
        (
            "weight NaN",
            lambda: write(tab(plays=pa.array(at([float(p) for p in plays], 5, float("nan"))))),
            False,
        ),
        (
            "weight 1e300",
            lambda: write(tab(plays=pa.array(at([float(p) for p in plays], 5, 1e300)))),
            True,
        ),
        ("weight null", lambda: write(tab(plays=pa.array(at(plays, 5, None)))), False),
        ("bool weight", lambda: write(tab(plays=pa.array([True] * n))), False),
        (
            "duplicate column names",
            lambda: write(
                pa.Table.from_arrays(
                    [pa.array(users), pa.array(users), pa.array(plays)],
                    names=["listener", "listener", "plays"],
                )
            ),
            False,
        ),
        ("one row group per 10 rows", lambda: write(base, row_group_size=10), False),
    ]
    out = [(name, make(), every) for name, make, every in tables]
    raw = seed.read_bytes()
    out.append(
        ("PAR1 magic around junk", b"PAR1" + random.Random(1).randbytes(3000) + b"PAR1", False)
    )
    out.append(("footer cut off", raw[:-20], False))
    return out


def mpd_specific(seed: Path) -> list[tuple]:
    """Mutations of an MPD slice document ({"info", "playlists"})."""
    doc = json.loads(seed.read_text())

    def pl(fn: Callable[[dict], Any]) -> Callable[[dict], dict]:
        def mutate(d: dict) -> dict:
            fn(d["playlists"][3])
            return d

        return mutate

    def tr(fn: Callable[[dict], Any]) -> Callable[[dict], dict]:
        return pl(lambda p: fn(p["tracks"][0]))

    def setk(key: str, value: Any) -> Callable[[dict], None]:
        return lambda d: d.__setitem__(key, value)

    def delk(key: str) -> Callable[[dict], None]:
        return lambda d: d.pop(key, None)

    def dup_pid(d: dict) -> dict:
        d["playlists"][4]["pid"] = d["playlists"][3]["pid"]
        return d

    muts: list[tuple[str, Callable[[Any], Any], bool]] = [
        ("top level is a list", lambda d: d["playlists"], False),
        ("top level is a string", lambda d: "playlists", False),
        ("no 'playlists' key", lambda d: {"info": d["info"]}, False),
        ("'playlists' is an object", lambda d: {**d, "playlists": {}}, False),
        ("'playlists' is empty", lambda d: {**d, "playlists": []}, False),
        ("a playlist is a number", lambda d: {**d, "playlists": [5] + d["playlists"]}, False),
        ("pid missing", pl(delk("pid")), False),
        ("pid negative", pl(setk("pid", -5)), False),
        ("pid 2**63", pl(setk("pid", 2**63)), False),
        ("pid of 5,000 digits", pl(setk("pid", "__BIGINT__")), False),
        ("duplicate pid", dup_pid, False),
        ("name of 1 MB", pl(setk("name", MEGA_TITLE)), False),
        ("name with a lone surrogate", pl(setk("name", "road \ud800 trip")), False),
        ("name with NUL", pl(setk("name", "road\u0000trip")), False),
        ("name nested 100,000 deep", pl(setk("name", "__DEEP__")), False),
        ("tracks missing", pl(delk("tracks")), False),
        ("tracks empty", pl(setk("tracks", [])), False),
        ("a track is a string", pl(lambda p: p["tracks"].insert(0, "spotify:track:x")), False),
        ("track_uri missing", tr(delk("track_uri")), False),
        ("track_uri empty", tr(setk("track_uri", "")), False),
        (
            "track_uri of 1,001 characters",
            tr(setk("track_uri", "spotify:track:" + "x" * 990)),
            False,
        ),
        ("track_uri with a lone surrogate", tr(setk("track_uri", "spotify:track:\udfffx")), False),
        ("track_uri with NUL", tr(setk("track_uri", "spotify:track:a\u0000b")), False),
        ("duration_ms 1e400", tr(setk("duration_ms", "__1E400__")), False),
        ("artist_name with a lone surrogate", tr(setk("artist_name", "\ud83d")), False),
        ("album_name of 1 MB", tr(setk("album_name", MEGA_TITLE)), False),
        ("modified_at 2**63", pl(setk("modified_at", 2**63)), False),
        ("the whole file nested 100,000 deep", lambda d: "__DEEP__", True),
        ("trailing garbage", None, False),
        ("duplicate keys", None, False),
    ]
    out = []
    base = dump_json(doc)
    for name, fn, every in muts:
        if name == "trailing garbage":
            data = base + b"}}garbage"
        elif name == "two documents":
            data = base + b"\n" + base
        elif name == "duplicate keys":
            data = base.replace(b'"pid": ', b'"pid": 1, "pid": ', 1)
        else:
            data = dump_json(fn(copy.deepcopy(doc)))
        out.append((name, data, every))
    return out


def jsonl_specific(seed: Path) -> list[tuple]:
    lines = seed.read_text().splitlines()
    p = json.loads(lines[3])

    def with_line(line: str) -> bytes:
        return ("\n".join(lines[:3] + [line] + lines[4:]) + "\n").encode()

    def pl(**kw: Any) -> str:
        return dump_json({**p, **kw}).decode()

    return [
        ("a line that is not JSON", with_line("{not json"), True),
        ("a line that is a list", with_line("[1, 2]"), False),
        ("a line that is a number", with_line("7"), False),
        ("blank lines", with_line("\n\n   \n" + lines[3]), False),
        ("last line cut", ("\n".join(lines) + "\n")[:-40].encode(), False),
        ("pid 2**63", with_line(pl(pid=2**63)), True),
        ("pid negative", with_line(pl(pid=-5)), False),
        ("duplicate pid", with_line(pl(pid=json.loads(lines[2])["pid"])), False),
        ("name with a lone surrogate", with_line(pl(name="a\ud800")), True),
        ("name of 1 MB", with_line(pl(name=MEGA_TITLE)), False),
        ("a line nested 100,000 deep", with_line("[" * 100_000 + "]" * 100_000), True),
        ("pid of 5,000 digits", with_line(pl(pid="__BIGINT__")), False),
        ("tracks null", with_line(pl(tracks=None)), False),
        ("two playlists on one line", with_line(lines[3] + lines[4]), False),
    ]


def jsonl_xz_specific(seed: Path) -> list[tuple]:
    raw = seed.read_bytes()
    return [
        ("xz stream cut in half", raw[: len(raw) // 2], True),
        ("xz of invalid UTF-8", lzma.compress(b"\xff\xfe{}\n"), True),
        ("xz of nothing", lzma.compress(b""), False),
        ("xz of a non-JSON line", lzma.compress(b"{\n"), False),
        ("xz of 100,000-deep nesting", lzma.compress(b"[" * 100_000 + b"]" * 100_000), False),
    ]


def challenge_specific(seed: Path, catalogue: list[str]) -> list[tuple]:
    doc = json.loads(seed.read_text())

    def pl(fn: Callable[[dict], Any], k: int = 2) -> Callable[[dict], dict]:
        def mutate(d: dict) -> dict:
            fn(d["playlists"][k])
            return d

        return mutate

    def setk(key: str, value: Any) -> Callable[[dict], None]:
        return lambda d: d.__setitem__(key, value)

    def first_with_tracks(fn: Callable[[dict], Any]) -> Callable[[dict], dict]:
        def mutate(d: dict) -> dict:
            fn(next(p for p in d["playlists"] if p.get("tracks")))
            return d

        return mutate

    def dup(d: dict) -> dict:
        d["playlists"][3]["pid"] = d["playlists"][2]["pid"]
        return d

    whole = [
        {
            "pos": i,
            "track_uri": t,
            "track_name": "x",
            "artist_name": "y",
            "artist_uri": "spotify:artist:y",
            "album_uri": "spotify:album:z",
            "album_name": "z",
            "duration_ms": 1000,
        }
        for i, t in enumerate(catalogue)
    ]
    muts = [
        ("top level is a list", lambda d: d["playlists"]),
        ("no 'playlists' key", lambda d: {k: v for k, v in d.items() if k != "playlists"}),
        ("'playlists' empty", lambda d: {**d, "playlists": []}),
        ("a playlist is a string", lambda d: {**d, "playlists": ["x"] + d["playlists"]}),
        ("pid negative", pl(setk("pid", -5))),
        ("pid 2**63", pl(setk("pid", 2**63))),
        ("pid a string", pl(setk("pid", "12"))),
        ("pid of 5,000 digits", pl(setk("pid", "__BIGINT__"))),
        ("duplicate pid", dup),
        (
            "unknown track uris",
            first_with_tracks(
                lambda p: [
                    t.__setitem__("track_uri", f"spotify:track:nope{i}")
                    for i, t in enumerate(p["tracks"])
                ]
            ),
        ),
        (
            "a playlist holding the whole catalogue",
            pl(lambda p: p.update(tracks=whole, num_samples=len(whole), num_tracks=len(whole) + 5)),
        ),
        (
            "no name and no tracks",
            pl(lambda p: (p.pop("name", None), p.update(tracks=[], num_samples=0))),
        ),
        ("name with a lone surrogate", pl(setk("name", "\udcff"))),
        ("name of 1 MB", pl(setk("name", MEGA_TITLE))),
        (
            "track_uri with a lone surrogate",
            first_with_tracks(
                lambda p: p["tracks"][0].__setitem__("track_uri", "spotify:track:\ud800")
            ),
        ),
        ("tracks not a list", pl(setk("tracks", "spotify:track:x"))),
        ("a track without track_uri", first_with_tracks(lambda p: p["tracks"][0].pop("track_uri"))),
        ("num_samples negative", pl(setk("num_samples", -1))),
        ("num_holdouts 2**63", pl(setk("num_holdouts", 2**63))),
        ("nested 100,000 deep", pl(setk("name", "__DEEP__"))),
    ]
    return [
        (
            name,
            dump_json(fn(copy.deepcopy(doc))),
            name
            in (
                "top level is a list",
                "pid negative",
                "pid 2**63",
                "a playlist holding the whole catalogue",
                "name with a lone surrogate",
                "nested 100,000 deep",
            ),
        )
        for name, fn in muts
    ]


def melon_specific(seed: Path) -> list[tuple]:
    """Mutations of a Melon playlist list (train.json)."""
    doc = json.loads(seed.read_text())

    def it(fn: Callable[[dict], Any], k: int = 3) -> Callable[[list], list]:
        def mutate(d: list) -> list:
            fn(d[k])
            return d

        return mutate

    def setk(key: str, value: Any) -> Callable[[dict], None]:
        return lambda d: d.__setitem__(key, value)

    def delk(key: str) -> Callable[[dict], None]:
        return lambda d: d.pop(key, None)

    def dup(d: list) -> list:
        d[4]["id"] = d[3]["id"]
        return d

    def song(value: Any) -> Callable[[dict], None]:
        return lambda p: p.__setitem__("songs", [value] + list(p.get("songs", [])))

    def tag(value: Any) -> Callable[[dict], None]:
        return lambda p: p.__setitem__("tags", [value] + list(p.get("tags", [])))

    muts = [
        ("top level is an object", lambda d: {"playlists": d}, False),
        ("top level is a string", lambda d: "train", False),
        ("an empty list", lambda d: [], False),
        ("a playlist is a number", lambda d: [5] + d, False),
        ("id missing", it(delk("id")), False),
        ("id negative", it(setk("id", -3)), False),
        ("id 2**63", it(setk("id", 2**63)), False),
        ("id of 5,000 digits", it(setk("id", "__BIGINT__")), False),
        ("duplicate id", dup, False),
        ("songs a string", it(setk("songs", "1 2 3")), False),
        ("a song id 2**63", it(song(2**63)), True),
        ("a song id negative", it(song(-1)), False),
        ("a song id NaN", it(song("__NAN__")), False),
        ("a song id unknown to song_meta", it(song(987654)), False),
        (
            "a song twice",
            it(
                lambda p: (
                    p.__setitem__("songs", [p["songs"][0]] * 2 + p["songs"])
                    if p.get("songs")
                    else None
                )
            ),
            False,
        ),
        ("a tag a number", it(tag(5)), False),
        ("a tag with a lone surrogate", it(tag("\ud800")), True),
        ("a tag of 1,001 characters", it(tag("t" * 1001)), False),
        ("a tag of 1 MB", it(tag("t" * 1_000_000)), False),
        ("a tag with NUL", it(tag("a\u0000b")), False),
        ("title with a lone surrogate", it(setk("plylst_title", "\udc80 road")), False),
        ("title of 1 MB", it(setk("plylst_title", MEGA_TITLE)), False),
        ("title a number", it(setk("plylst_title", 7)), False),
        ("like_cnt 2**63", it(setk("like_cnt", 2**63)), False),
        ("like_cnt 1e300", it(setk("like_cnt", 1e300)), False),
        ("updt_date garbage", it(setk("updt_date", "yesterday")), False),
        ("updt_date 9999-99-99", it(setk("updt_date", "9999-99-99 99:99:99.000")), False),
        ("nested 100,000 deep", it(setk("tags", "__DEEP__")), False),
    ]
    return [(name, dump_json(fn(copy.deepcopy(doc))), every) for name, fn, every in muts]


def questions_specific(seed: Path, song_ids: list[int]) -> list[tuple]:
    doc = json.loads(seed.read_text())

    def it(fn: Callable[[dict], Any], k: int = 1) -> Callable[[list], list]:
        def mutate(d: list) -> list:
            fn(d[k])
            return d

        return mutate

    def setk(key: str, value: Any) -> Callable[[dict], None]:
        return lambda d: d.__setitem__(key, value)

    def dup(d: list) -> list:
        d[2]["id"] = d[1]["id"]
        return d

    muts = [
        ("a question covering the whole catalogue", it(setk("songs", song_ids)), True),
        (
            "every question covering the whole catalogue",
            lambda d: [{**q, "songs": song_ids} for q in d],
            False,
        ),
        ("unknown songs", it(setk("songs", [900001, 900002])), False),
        ("unknown tags", it(setk("tags", ["no such tag", "\U0001f3b5"])), False),
        ("an empty question", it(lambda q: q.update(songs=[], tags=[], plylst_title="")), True),
        ("a song id 2**63", it(setk("songs", [2**63])), True),
        ("a song id negative", it(setk("songs", [-7])), True),
        ("a song id a string", it(setk("songs", ["12"])), False),
        ("id 2**63", it(setk("id", 2**63)), True),
        ("id missing", it(lambda q: q.pop("id")), False),
        ("duplicate id", dup, True),
        ("top level is an object", lambda d: {"questions": d}, True),
        ("an empty list", lambda d: [], False),
        ("title with a lone surrogate", it(setk("plylst_title", "\ud800")), True),
        ("title of 1 MB", it(setk("plylst_title", MEGA_TITLE)), False),
        ("a tag of 1,001 characters", it(setk("tags", ["t" * 1001])), False),
        ("nested 100,000 deep", it(setk("songs", "__DEEP__")), True),
        ("id of 5,000 digits", it(setk("id", "__BIGINT__")), False),
    ]
    return [(name, dump_json(fn(copy.deepcopy(doc))), every) for name, fn, every in muts]


def song_meta_specific(seed: Path) -> list[tuple]:
    doc = json.loads(seed.read_text())

    def it(fn: Callable[[dict], Any], k: int = 3) -> Callable[[list], list]:
        def mutate(d: list) -> list:
            fn(d[k])
            return d

        return mutate

    def setk(key: str, value: Any) -> Callable[[dict], None]:
        return lambda d: d.__setitem__(key, value)

    def dup(d: list) -> list:
        d[4]["id"] = d[3]["id"]
        return d

    muts = [
        ("album_id 2**63", it(setk("album_id", 2**63)), True),
        ("id 2**63", it(setk("id", 2**63)), True),
        ("id missing", it(lambda s: s.pop("id")), True),
        ("id a string", it(setk("id", "3")), False),
        ("id negative", it(setk("id", -3)), False),
        ("duplicate id", dup, True),
        ("artist ids are strings", it(setk("artist_id_basket", ["x"])), False),
        ("artist id 2**63", it(setk("artist_id_basket", [2**63])), False),
        ("artist ids null", it(setk("artist_id_basket", None)), False),
        ("genres a string", it(setk("song_gn_dtl_gnr_basket", "GN0101")), False),
        ("issue_date garbage", it(setk("issue_date", "someday")), True),
        ("issue_date 99999999", it(setk("issue_date", "99999999")), False),
        ("issue_date a number", it(setk("issue_date", 20200101)), False),
        ("song_name of 1 MB", it(setk("song_name", MEGA_TITLE)), True),
        ("artist name with a lone surrogate", it(setk("artist_name_basket", ["\ud800"])), True),
        ("top level is an object", lambda d: {"songs": d}, True),
        ("an empty list", lambda d: [], False),
        ("nested 100,000 deep", it(setk("album_name", "__DEEP__")), False),
    ]

    return [(name, dump_json(fn(copy.deepcopy(doc))), every) for name, fn, every in muts]


def train_mpd(f: str) -> tuple[list[str], tuple[str, ...]]:
    """``segue train --mpd`` on a hostile file (the outputs it may write)."""
    return ["train", "--mpd", f, "--model", "popularity", "--out", "M"], ("M",)


def split_mpd(f: str) -> tuple[list[str], tuple[str, ...]]:
    """``segue split mpd`` on a hostile file (the outputs it may write)."""
    return ["split", "mpd", f, "--out", "V", "--playlists", "10", "--unseen", "drop"], ("V",)


def readers(seeds: dict[str, Path], rng: random.Random) -> list[tuple[Reader, list[tuple]]]:
    pop, mpdpop, melpop = str(seeds["pop"]), str(seeds["mpdpop"]), str(seeds["melpop"])
    targets = str(seeds["targets"])
    table = ["--user-col", "listener", "--item-col", "track", "--weight-col", "plays"]
    slice_name = seeds["slice"].name
    catalogue = sorted(
        {
            t["track_uri"]
            for p in json.loads(seeds["slice"].read_text())["playlists"]
            for t in p["tracks"]
        }
    )
    song_ids = [s["id"] for s in json.loads(seeds["song_meta"].read_text())]

    def train_listens(extra: Sequence[str] = ()) -> Callable:
        return lambda f: (
            ["train", "--listens", f, *extra, "--model", "popularity", "--out", "M"],
            ("M",),
        )

    def split_listens(extra: Sequence[str] = ()) -> Callable:
        return lambda f: (["split", "listens", f, *extra, "--out", "V", "--min-items", "2"], ("V",))

    out: list[tuple[Reader, list[tuple]]] = [
        (
            Reader(
                "listens",
                seeds["listens"],
                "listens.txt",
                "listens.txt",
                [
                    train_listens(),
                    split_listens(),
                    lambda f: (
                        ["recommend", pop, "--users", targets, "--history", f, "--out", "R.txt"],
                        ("R.txt",),
                    ),
                ],
            ),
            listens_specific(seeds["listens"].read_bytes()),
        ),
        (
            Reader(
                "targets",
                seeds["targets"],
                "targets.txt",
                "targets.txt",
                [
                    lambda f: (["recommend", pop, "--users", f, "--out", "R.txt"], ("R.txt",)),
                ],
            ),
            targets_specific(seeds["targets"].read_bytes()),
        ),
        (
            Reader(
                "csv",
                seeds["csv"],
                "plays.csv",
                "plays.csv",
                [
                    train_listens(["--format", "csv", *table]),
                    split_listens(["--format", "csv", *table]),
                ],
            ),
            csv_specific(seeds["csv"].read_bytes(), ","),
        ),
        (
            Reader(
                "tsv",
                seeds["tsv"],
                "plays.tsv",
                "plays.tsv",
                [
                    train_listens(["--format", "tsv", *table]),
                ],
                generic=frozenset({"empty", "invalid UTF-8", "UTF-8 BOM"}),  # the CSV reader
            ),
            [c for c in csv_specific(seeds["tsv"].read_bytes(), "\t") if c[2]],
        ),
        (
            Reader(
                "parquet",
                seeds["parquet"],
                "plays.parquet",
                "plays.parquet",
                [
                    train_listens(["--format", "parquet", *table]),
                    split_listens(["--format", "parquet", *table]),
                ],
                generic=BINARY_GENERIC,
            ),
            parquet_specific(seeds["parquet"]),
        ),
        (
            Reader(
                "mpd slices",
                seeds["slice"],
                f"slices/{slice_name}",
                "slices",
                [
                    train_mpd,
                    split_mpd,
                ],
            ),
            mpd_specific(seeds["slice"]),
        ),
        (
            Reader(
                "mpd jsonl",
                seeds["jsonl"],
                "playlists.jsonl",
                "playlists.jsonl",
                [
                    train_mpd,
                    split_mpd,
                ],
            ),
            jsonl_specific(seeds["jsonl"]),
        ),
        (
            Reader(
                "mpd jsonl.xz",
                seeds["jsonl.xz"],
                "playlists.jsonl.xz",
                "playlists.jsonl.xz",
                [
                    train_mpd,
                ],
                generic=BINARY_GENERIC,
            ),
            jsonl_xz_specific(seeds["jsonl.xz"]),
        ),
        (
            Reader(
                "mpd challenge",
                seeds["challenge"],
                "challenge_set.json",
                "challenge_set.json",
                [
                    lambda f: (
                        ["recommend", mpdpop, "--challenge", f, "--out", "S.csv", "--n", "20"],
                        ("S.csv",),
                    ),
                ],
            ),
            challenge_specific(seeds["challenge"], catalogue),
        ),
        (
            Reader(
                "melon train",
                seeds["melon_train"],
                "melondir/train.json",
                "melondir",
                [
                    lambda f: (
                        ["train", "--melon", f, "--model", "popularity", "--out", "M"],
                        ("M",),
                    ),
                    lambda f: (["split", "melon", f + "/train.json", "--out", "V"], ("V",)),
                ],
                extras={"melondir/song_meta.json": seeds["song_meta"]},
            ),
            melon_specific(seeds["melon_train"]),
        ),
        (
            Reader(
                "melon questions",
                seeds["questions"],
                "questions.json",
                "questions.json",
                [
                    lambda f: (
                        ["recommend", melpop, "--questions", f, "--out", "R.json"],
                        ("R.json",),
                    ),
                ],
            ),
            questions_specific(seeds["questions"], song_ids),
        ),
        (
            Reader(
                "melon song_meta",
                seeds["song_meta"],
                "melondir/song_meta.json",
                "melondir",
                [
                    lambda f: (
                        ["train", "--melon", f, "--model", "popularity", "--out", "M"],
                        ("M",),
                    ),
                ],
                extras={"melondir/train.json": seeds["melon_train"]},
            ),
            song_meta_specific(seeds["song_meta"]),
        ),
    ]
    # the xz reader has no use for text-level generic cases beyond the basic ones
    return out


# area 2: models --------------------------------------------------------------------------------
LISTEN_MODELS = ("popularity", "ease", "wrmf", "itemknn", "userknn")
TWO_STAGE_TOML = "n = 100\nper_category = 20\nfolds = 1\nnum_boost_round = 30\n"


def make_models(root: Path, seeds: dict[str, Path], jobs: int) -> dict[str, Path]:
    m = root / "models" / "seed"
    m.mkdir(parents=True)
    (m / "two-stage.toml").write_text(TWO_STAGE_TOML)
    listens = str(seeds["listens"])

    def two_stage() -> None:
        must(
            [
                "generate",
                "mpd",
                "--out",
                "mpd",
                "--playlists",
                "600",
                "--tracks",
                "800",
                "--seed",
                "1",
            ],
            m,
        )
        must(["split", "mpd", "mpd", "--out", "msplit", "--playlists", "50", "--unseen", "drop"], m)
        must(
            [
                "train",
                "--mpd",
                "msplit/train",
                "--model",
                "two-stage",
                "--config",
                "two-stage.toml",
                "--out",
                "two-stage",
            ],
            m,
        )

    funcs = [two_stage] + [
        (lambda name=name: must(["train", "--listens", listens, "--model", name, "--out", name], m))
        for name in LISTEN_MODELS
    ]
    parallel(funcs, jobs)
    return {name: m / name for name in (*LISTEN_MODELS, "two-stage")} | {
        "challenge": m / "msplit" / "challenge_set.json"
    }


def _npz(path: Path, fn: Callable[[dict[str, np.ndarray]], dict[str, Any]]) -> None:
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays = fn(arrays)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _manifest(path: Path, fn: Callable[[Any], Any]) -> None:
    doc = json.loads(path.read_text())
    doc = fn(doc)
    path.write_text(json.dumps(doc))


def _set(arrays: dict, key: str, fn: Callable[[np.ndarray], np.ndarray]) -> dict:
    arrays[key] = fn(arrays[key].copy())
    return arrays


def _entry(a: np.ndarray, value: Any, i: int = 0) -> np.ndarray:
    a.reshape(-1)[i] = value
    return a


def array_mutations(
    model_dir: Path, keep: Callable[[str], bool]
) -> list[tuple[str, Callable[[Path], None]]]:
    """Mutations of the model's arrays (the npz keys ``keep`` accepts): CSR parts out of range,
    negative, out of order or of the wrong shape; NaN or inf floats; int entries out of range or
    negative; arrays one row short; one array stored as strings."""
    with np.load(model_dir / "arrays.npz", allow_pickle=False) as z:
        info = {k: (z[k].dtype, z[k].shape) for k in z.files}
    muts: list[tuple[str, Callable[[Path], None]]] = []
    strings_done = False

    def npz(fn: Callable[[dict], dict]) -> Callable[[Path], None]:
        return lambda d: _npz(d / "arrays.npz", fn)

    for key, (dtype, shape) in info.items():
        if not keep(key):
            continue
        stem = key.rsplit(".", 1)[0]
        if key.endswith(".indices"):
            ncols = int(np.load(model_dir / "arrays.npz")[stem + ".shape"][1])
            muts.append(
                (
                    f"{key} entry out of range ({ncols + 7})",
                    npz(lambda a, k=key, v=ncols + 7: _set(a, k, lambda x: _entry(x, v))),
                )
            )
            muts.append(
                (
                    f"{key} entry negative",
                    npz(lambda a, k=key: _set(a, k, lambda x: _entry(x, -1, len(x) // 2))),
                )
            )
        elif key.endswith(".indptr"):
            muts.append(
                (
                    f"{key} decreasing",
                    npz(lambda a, k=key: _set(a, k, lambda x: _entry(x, x[-1] + 5, 1))),
                )
            )
        elif key.endswith(".shape"):
            muts.append(
                (
                    f"{key} too small",
                    npz(lambda a, k=key: _set(a, k, lambda x: np.maximum(x - 3, 0))),
                )
            )
        elif key.endswith(".data"):
            muts.append(
                (f"{key} NaN", npz(lambda a, k=key: _set(a, k, lambda x: _entry(x, np.nan))))
            )
        elif np.issubdtype(dtype, np.floating):
            muts.append(
                (f"{key} NaN", npz(lambda a, k=key: _set(a, k, lambda x: _entry(x, np.nan))))
            )
            if len(shape) == 2:  # factors and weights: inf too
                muts.append(
                    (
                        f"{key} inf",
                        npz(lambda a, k=key: _set(a, k, lambda x: _entry(x, np.inf, x.size // 2))),
                    )
                )
        elif np.issubdtype(dtype, np.integer):
            muts.append(
                (
                    f"{key} entry out of range",
                    npz(lambda a, k=key: _set(a, k, lambda x: _entry(x, np.iinfo(x.dtype).max))),
                )
            )
            if np.issubdtype(dtype, np.signedinteger):
                muts.append(
                    (
                        f"{key} entry negative",
                        npz(lambda a, k=key: _set(a, k, lambda x: _entry(x, -1))),
                    )
                )
        if len(shape) >= 1 and not key.endswith((".shape", ".indptr", ".indices", ".data")):
            muts.append(
                (f"{key} one row short", npz(lambda a, k=key: _set(a, k, lambda x: x[:-1])))
            )
            if not strings_done:
                strings_done = True
                muts.append(
                    (
                        f"{key} stored as strings",
                        npz(lambda a, k=key: _set(a, k, lambda x: x.astype(str))),
                    )
                )
    return muts


def common_mutations(model_dir: Path) -> list[tuple[str, Callable[[Path], None]]]:
    """Mutations every model directory can take: the manifest, the files, the folder."""
    man = json.loads((model_dir / "manifest.json").read_text())
    cls = man["class"]
    other = "segue.models.knn:ItemKNN" if "EASE" not in cls else "segue.models.wrmf:WRMF"
    params = man.get("params", {})
    numeric = next(
        (k for k, v in params.items() if isinstance(v, (int, float)) and not isinstance(v, bool)),
        None,
    )
    idmaps = [k for k, v in man["state"].items() if v.get("codec") == "idmap"]
    arrays_ = [k for k, v in man["state"].items() if v.get("codec") in ("array", "csr")]
    rng = random.Random(7)

    def m(fn: Callable[[Any], Any]) -> Callable[[Path], None]:
        return lambda d: _manifest(d / "manifest.json", fn)

    def upd(**kw: Any) -> Callable[[Path], None]:
        return m(lambda doc: {**doc, **kw})

    def drop(key: str) -> Callable[[Path], None]:
        return m(lambda doc: {k: v for k, v in doc.items() if k != key})

    def write(name: str, data: bytes) -> Callable[[Path], None]:
        return lambda d: (d / name).write_bytes(data)

    def truncate(name: str) -> Callable[[Path], None]:
        return lambda d: (d / name).write_bytes(
            (d / name).read_bytes()[: (d / name).stat().st_size // 2]
        )

    def state(fn: Callable[[dict], Any]) -> Callable[[Path], None]:
        def edit(doc: dict) -> dict:
            fn(doc["state"])
            return doc

        return m(edit)

    def empty_npz(d: Path) -> None:
        with open(d / "arrays.npz", "wb") as fh:
            np.savez(fh)

    def object_array(d: Path) -> None:
        def fn(a: dict) -> dict:
            key = next(iter(a))
            a[key] = np.array([{"pickled": 1}, None], dtype=object)
            return a

        with np.load(d / "arrays.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        with open(d / "arrays.npz", "wb") as fh:
            np.savez(fh, **fn(arrays))  # pickled: loading it needs allow_pickle

    def missing_key(d: Path) -> None:
        _npz(d / "arrays.npz", lambda a: {k: v for i, (k, v) in enumerate(a.items()) if i})

    def dir_is_file(d: Path) -> None:
        shutil.rmtree(d)
        d.write_text("not a model\n")

    def dir_empty(d: Path) -> None:
        shutil.rmtree(d)
        d.mkdir()

    muts: list[tuple[str, Callable[[Path], None]]] = [
        ("manifest is a list", m(lambda doc: [doc])),
        ("manifest without 'class'", drop("class")),
        ("manifest without 'params'", drop("params")),
        ("manifest without 'state'", drop("state")),
        ("unknown parameter", m(lambda doc: {**doc, "params": {**doc["params"], "bogus": 1}})),
        (f"another registered class ({other})", upd(**{"class": other})),
        ("an unregistered class (os:system)", upd(**{"class": "os:system"})),
        ("format_version 99", upd(format_version=99)),
        ('format_version "2"', upd(format_version="2")),
        ("format_version null", upd(format_version=None)),
        ("manifest truncated", truncate("manifest.json")),
        ("manifest empty", write("manifest.json", b"")),
        ("manifest deleted", lambda d: (d / "manifest.json").unlink()),
        ("manifest nested 100,000 deep", write("manifest.json", b"[" * 100_000 + b"]" * 100_000)),
        ("arrays.npz deleted", lambda d: (d / "arrays.npz").unlink()),
        ("arrays.npz truncated", truncate("arrays.npz")),
        ("arrays.npz junk", write("arrays.npz", rng.randbytes(5000))),
        ("arrays.npz empty archive", empty_npz),
        ("arrays.npz with a pickled object array", object_array),
        ("arrays.npz without its first key", missing_key),
        ("model dir is a file", dir_is_file),
        ("model dir empty", dir_empty),
        (
            "state entry with an unknown codec",
            state(lambda s: s[next(iter(s))].__setitem__("codec", "pickle")),
        ),
        (
            "state entry without its key",
            state(lambda s: s[arrays_[0]].clear()) if arrays_ else drop("state"),
        ),
    ]
    if numeric:
        muts.append(
            (
                f"parameter {numeric} = -1",
                m(lambda doc: {**doc, "params": {**doc["params"], numeric: -1}}),
            )
        )
        muts.append(
            (
                f'parameter {numeric} = "abc"',
                m(lambda doc: {**doc, "params": {**doc["params"], numeric: "abc"}}),
            )
        )
    for key in idmaps[:1]:
        muts.append(
            (
                f"id map {key} one id short",
                state(lambda s, k=key: s[k].__setitem__("ids", s[k]["ids"][:-1])),
            )
        )
        muts.append(
            (
                f"id map {key} with a duplicate id",
                state(lambda s, k=key: s[k]["ids"].__setitem__(1, s[k]["ids"][0])),
            )
        )
        muts.append(
            (
                f"id map {key} with a number id",
                state(lambda s, k=key: s[k]["ids"].__setitem__(0, 12)),
            )
        )
    return muts


def two_stage_mutations(model_dir: Path, other_model: Path) -> list[tuple[str, Callable]]:
    rng = random.Random(11)

    def m(fn: Callable[[dict], Any]) -> Callable[[Path], None]:
        def edit(d: Path) -> None:
            doc = json.loads((d / "manifest.json").read_text())
            fn(doc)
            (d / "manifest.json").write_text(json.dumps(doc))

        return edit

    def nested_npz(name: str, key: str, value: Any) -> Callable[[Path], None]:
        return lambda d: _npz(
            d / "models_" / name / "arrays.npz", lambda a: _set(a, key, lambda x: _entry(x, value))
        )

    return [
        (
            "ranker_.txt truncated",
            lambda d: (d / "ranker_.txt").write_bytes((d / "ranker_.txt").read_bytes()[:2000]),
        ),
        ("ranker_.txt junk", lambda d: (d / "ranker_.txt").write_bytes(rng.randbytes(3000))),
        ("ranker_.txt deleted", lambda d: (d / "ranker_.txt").unlink()),
        ("ranker_.importance.csv deleted", lambda d: (d / "ranker_.importance.csv").unlink()),
        (
            "context_.safetensors junk",
            lambda d: (d / "context_.safetensors").write_bytes(rng.randbytes(3000)),
        ),
        (
            "context_.safetensors truncated",
            lambda d: (d / "context_.safetensors").write_bytes(
                (d / "context_.safetensors").read_bytes()[:500]
            ),
        ),
        ("nested wrmf item_factors_ NaN", nested_npz("wrmf", "item_factors_", np.nan)),
        (
            "nested userknn history_.indices out of range",
            nested_npz("userknn", "history_.indices", 10**6),
        ),
        (
            "nested itemknn manifest is a list",
            lambda d: (d / "models_/itemknn/manifest.json").write_text("[]"),
        ),
        ("nested model folder deleted", lambda d: shutil.rmtree(d / "models_" / "pop")),
        (
            "nested model dir outside the model (absolute path)",
            m(lambda doc: doc["state"]["models_"]["dirs"].__setitem__("pop", str(other_model))),
        ),
        (
            "nested model dir ../..",
            m(lambda doc: doc["state"]["models_"]["dirs"].__setitem__("pop", "../../..")),
        ),
        (
            "ranker file outside the model (/etc/hostname)",
            m(lambda doc: doc["state"]["ranker_"].__setitem__("file", "/etc/hostname")),
        ),
        (
            "fusion_weights_ one short",
            lambda d: _npz(
                d / "arrays.npz", lambda a: _set(a, "fusion_weights_", lambda x: x[:-1])
            ),
        ),
        (
            "items_.kinds out of range",
            lambda d: _npz(
                d / "arrays.npz", lambda a: _set(a, "items_.kinds", lambda x: _entry(x, 200))
            ),
        ),
        (
            "feature_names_ one short",
            m(
                lambda doc: doc["state"]["feature_names_"].__setitem__(
                    "value", doc["state"]["feature_names_"]["value"][:-1]
                )
            ),
        ),
        ("task_ unknown", m(lambda doc: doc["state"]["task_"].__setitem__("value", "jazz"))),
        ("parameter n = 0", m(lambda doc: doc["params"].__setitem__("n", 0))),
        ("first_stage a list", m(lambda doc: doc["params"].__setitem__("first_stage", [1]))),
    ]


def model_cases(root: Path, models: dict[str, Path], targets: Path, quick: bool) -> list[Case]:
    """Tampered copies of every model, each through recommend and serve."""
    plan: list[tuple[str, str, Callable[[Path], None]]] = []
    commons = {name: common_mutations(models[name]) for name in LISTEN_MODELS}
    # every common mutation once, spread round-robin over the five listens models
    for i in range(max(len(v) for v in commons.values())):
        name = LISTEN_MODELS[i % len(LISTEN_MODELS)]
        for shift in range(len(LISTEN_MODELS)):  # the first model that has mutation i
            name = LISTEN_MODELS[(i + shift) % len(LISTEN_MODELS)]
            if i < len(commons[name]):
                plan.append((name, *commons[name][i]))
                break
    for name in LISTEN_MODELS:
        # the history CSR and fallback scores every model has are tampered with in one model
        # each (EASE: the history, issue 13 item 7; popularity: the fallback scores)
        def keep(key: str, name: str = name) -> bool:
            if key.startswith("history_."):
                return name == "ease"
            return name == "popularity" or not key.startswith("fallback_scores_")

        arrays = array_mutations(models[name], keep)
        if name != "ease":  # at most 5, one per array first (the npz keys in turn)
            keys = [a[0].split(" ")[0] for a in arrays]
            rank = [keys[:i].count(k) for i, k in enumerate(keys)]
            arrays = [a for _, _, a in sorted(zip(rank, range(len(arrays)), arrays, strict=True))][
                :5
            ]
        plan += [(name, *a) for a in arrays]
    plan += [("two-stage", *a) for a in two_stage_mutations(models["two-stage"], models["ease"])]
    plan += [("two-stage", *a) for a in common_mutations(models["two-stage"])[:3]]
    if quick:
        plan = plan[::3]
    cases = []
    for i, (name, what, mutate) in enumerate(plan):
        case_dir = root / "models" / f"{i:03d}"
        case_dir.mkdir(parents=True)
        mdir = case_dir / f"tampered-{name}"
        shutil.copytree(models[name], mdir)
        mutate(mdir)
        label = f"{name}: {what}"
        if name == "two-stage":
            rec = [
                "recommend",
                mdir.name,
                "--challenge",
                str(models["challenge"]),
                "--out",
                "recs.csv",
                "--n",
                "50",
            ]
            out = "recs.csv"
        else:
            rec = ["recommend", mdir.name, "--users", str(targets), "--out", "recs.txt"]
            out = "recs.txt"
        names = (mdir.name,)
        cases.append(Case("models", f"recommend {name}", label, rec, case_dir, (out,), names))
        cases.append(
            Case(
                "models",
                f"serve {name}",
                label,
                ["serve", mdir.name, "--no-access-log", "--log-level", "warning"],
                case_dir,
                (),
                names,
                timeout=60,
                serve=True,
            )
        )
    return cases


def cross_check(outcomes: list[Outcome]) -> None:
    """A directory recommend refuses must not be served."""
    by_label: dict[str, dict[str, Outcome]] = {}
    for o in outcomes:
        by_label.setdefault(o.name, {})[o.group.split()[0]] = o
    for pair in by_label.values():
        rec, srv = pair.get("recommend"), pair.get("serve")
        if rec and srv and srv.note.startswith("served") and rec.kind != "result":
            srv.kind = "other"
            srv.note = "serve started on a directory that recommend refuses"


# area 3: service -------------------------------------------------------------------------------
@dataclass
class Req:
    group: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    chunked: bool = False
    chunk_total: int = 0  # > 0: a generated chunked body of this many bytes
    may_close: bool = False  # the server may close instead of answering (oversized upload)


HOSTILE_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    2**63,
    2**64,
    -(2**63) - 1,
    10**30,
    "",
    "x",
    "5",
    "\ud800",
    "a\u0000b",
    "x" * 513,
    "x" * 1001,
    "x" * 100_000,
    [],
    [None],
    [1],
    [[]],
    [{}],
    {},
    {"a": 1},
    ["s"] * 1001,
    ["s"] * 10_001,
    list(range(5000)),
    1e308,
    -0.0,
    "\U0001f3b5" * 300,
]
RAW_BODIES: list[bytes] = [
    b"",
    b"{",
    b"}",
    b'{"tracks": [',
    b"{'tracks': []}",
    b'{"n": NaN}',
    b'{"n": Infinity}',
    b'{"n": -Infinity}',
    b'{"n": 1e999}',
    b'{"n": ' + b"9" * 5000 + b"}",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"tracks": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b"\xff\xfe{}",
    BOM + b"{}",
    b'{"title": "\xff"}',
    b'{"title": "a\x00b"}',
    b'{"tracks": [], "tracks": ["x"]}',
    b"null",
    b"[]",
    b'"str"',
    b"1",
    b"true",
    b'{"n": 10,}',
    b"{} {}",
    b'{"tracks": ["\\ud800"]}',
    b'{"title": "\\udfff\\ud800"}',
    b'{"n": 10}' + b" " * 1000,
    b"\x00" * 100,
    b'{"user": "\\u0000"}',
]


def service_requests(
    rng: random.Random, items: list[str], users: list[str], scale: float
) -> list[Req]:
    js = {"content-type": "application/json"}
    reqs: list[Req] = []

    def body(doc: Any) -> bytes:
        return json.dumps(doc).encode()

    def cont() -> dict:
        doc: dict[str, Any] = {
            "tracks": rng.sample(items, rng.randint(0, 30)),
            "n": rng.randint(1, 1000),
        }
        if rng.random() < 0.3:
            doc["title"] = rng.choice(["road trip", "", "\U0001f3b5 chill", "x" * 1000])
        if rng.random() < 0.3:
            doc["exclude"] = rng.sample(items, rng.randint(0, 50))
        return doc

    def recd() -> dict:
        return {"user": rng.choice(users), "n": rng.randint(1, 1000)}

    def count(n: int) -> int:
        return max(1, int(n * scale))

    for _ in range(count(600)):
        reqs.append(Req("valid /v1/continue", "POST", "/v1/continue", js, body(cont())))
    for _ in range(count(300)):
        reqs.append(Req("valid /v1/recommend", "POST", "/v1/recommend", js, body(recd())))
    for _ in range(count(50)):
        reqs.append(
            Req(
                "unknown user",
                "POST",
                "/v1/recommend",
                js,
                body({"user": f"nobody{rng.randint(0, 10**9)}", "n": 10}),
            )
        )
    for _ in range(count(40)):
        reqs.append(Req("GET health/model", "GET", rng.choice(["/health", "/v1/model"])))
    fields_c = ["tracks", "title", "tags", "n", "n_tags", "exclude", "k", "__proto__"]
    fields_r = ["user", "n", "n_tags", "exclude", "tracks"]
    for _ in range(count(700)):
        if rng.random() < 0.65:
            path, doc, key = "/v1/continue", cont(), rng.choice(fields_c)
        else:
            path, doc, key = "/v1/recommend", recd(), rng.choice(fields_r)
        value = rng.choice(HOSTILE_VALUES)
        if rng.random() < 0.2 and isinstance(doc.get("tracks"), list) and key == "tracks":
            value = doc["tracks"] + [value]
        doc[key] = value
        reqs.append(Req("fuzzed field values", "POST", path, js, body(doc)))
    for raw in RAW_BODIES:
        for path in ("/v1/continue", "/v1/recommend"):
            reqs.append(Req("invalid JSON bodies", "POST", path, js, raw))
    ctypes = [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=utf-16",
        "application/json; charset=latin-1",
        "APPLICATION/JSON",
        "application/json-patch+json",
        "*/*",
        "application/json, text/plain",
    ]
    for ct in ctypes:
        for path, doc in (("/v1/continue", cont()), ("/v1/recommend", recd())):
            reqs.append(
                Req("content types", "POST", path, {"content-type": ct} if ct else {}, body(doc))
            )
    big = [
        body({"tracks": [f"spotify:track:{i:022d}" for i in range(60_000)], "n": 10}),
        body({"title": "x" * 2_000_000}),
        b" " * 2_000_000 + b"{}",
        b"[" * 2_000_000,
    ]
    for raw in big:
        for path in ("/v1/continue", "/v1/recommend"):
            reqs.append(Req("2 MB bodies", "POST", path, js, raw))
            reqs.append(
                Req("2 MB chunked bodies", "POST", path, js, raw, chunked=True, may_close=True)
            )
    reqs.append(
        Req(
            "50 MB chunked body",
            "POST",
            "/v1/continue",
            js,
            None,
            chunked=True,
            chunk_total=50 * 2**20,
            may_close=True,
        )
    )
    for _ in range(count(20)):
        reqs.append(
            Req("small chunked bodies", "POST", "/v1/continue", js, body(cont()), chunked=True)
        )
    paths = [
        "/health",
        "/v1/model",
        "/v1/continue",
        "/v1/recommend",
        "/openapi.json",
        "/docs",
        "/",
        "/v1",
        "/v1/continue/",
        "/v1/x",
        "/..%2f..%2fetc/passwd",
        "/%00",
        "/" + "a" * 8000,
        "/health?" + "q=1&" * 2000,
        "/v1/model?x=%ff%fe",
    ]
    for path in paths:
        for method in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "POST", "BREW"):
            if scale < 1 and rng.random() > scale:
                continue
            reqs.append(
                Req(
                    "methods x routes",
                    method,
                    path,
                    js if method == "POST" else {},
                    b"{}" if method == "POST" else None,
                )
            )
    rng.shuffle(reqs)
    return reqs


def send(client: Any, url: str, r: Req) -> tuple[int | None, str]:
    import httpx

    content: Any = r.body
    if r.chunked:
        data = r.body

        def gen() -> Iterable[bytes]:
            if r.chunk_total:
                block = b" " * 65536
                for _ in range(r.chunk_total // len(block)):
                    yield block
            else:
                assert data is not None
                for i in range(0, len(data), 65536):
                    yield data[i : i + 65536]

        content = gen()
    try:
        resp = client.request(r.method, url + r.path, headers=r.headers, content=content)
        return resp.status_code, resp.text[:300]
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"


@dataclass
class Raw:
    name: str
    steps: list[bytes | float]  # bytes are sent, a float is a pause in seconds
    expect_close: bool = False  # a slow client: the server must close it (deadline 1 s)
    shut_write: bool = False


def raw_cases() -> list[Raw]:
    H = b"Host: x\r\n"
    J = b"Content-Type: application/json\r\n"
    body = b'{"tracks": [], "n": 5}'
    ok = (
        b"POST /v1/continue HTTP/1.1\r\n" + H + J + b"Content-Length: %d\r\n\r\n" % len(body) + body
    )
    drip_header = [b"POST /v1/continue HTTP/1.1\r\n"] + [
        x for c in b"Host: x\r\nX-A: bbbbbbbbbb" for x in (0.25, bytes([c]))
    ]
    drip_body = [b"POST /v1/continue HTTP/1.1\r\n" + H + J + b"Content-Length: 200\r\n\r\n"] + [
        x for c in b'{"tracks": [] ' for x in (0.25, bytes([c]))
    ]
    return [
        Raw("nothing sent", [], expect_close=True),
        Raw("half a request line", [b"POST /v1/con"], expect_close=True),
        Raw(
            "half a header",
            [b"POST /v1/continue HTTP/1.1\r\n" + H + b"Content-Type: app"],
            expect_close=True,
        ),
        Raw(
            "headers, then half the body",
            [
                b"POST /v1/continue HTTP/1.1\r\n"
                + H
                + J
                + b"Content-Length: 100\r\n\r\n"
                + b'{"tracks": ['
            ],
            expect_close=True,
        ),
        Raw("a header byte every 0.25 s", drip_header, expect_close=True),
        Raw("a body byte every 0.25 s", drip_body, expect_close=True),
        Raw(
            "a chunked body that never ends",
            [
                b"POST /v1/continue HTTP/1.1\r\n" + H + J + b"Transfer-Encoding: chunked\r\n\r\n"
                b'5\r\n{"tra\r\n'
            ],
            expect_close=True,
        ),
        Raw(
            "Content-Length and Transfer-Encoding",
            [
                b"POST /v1/continue HTTP/1.1\r\n"
                + H
                + J
                + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            ],
        ),
        Raw(
            "bad chunk size",
            [
                b"POST /v1/continue HTTP/1.1\r\n"
                + H
                + J
                + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
            ],
        ),
        Raw(
            "Transfer-Encoding gzip, chunked",
            [
                b"POST /v1/continue HTTP/1.1\r\n"
                + H
                + J
                + b"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
            ],
        ),
        Raw(
            "two Content-Length values",
            [
                b"POST /v1/continue HTTP/1.1\r\n"
                + H
                + J
                + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
            ],
        ),
        Raw(
            "negative Content-Length",
            [b"POST /v1/continue HTTP/1.1\r\n" + H + J + b"Content-Length: -2\r\n\r\n{}"],
        ),
        Raw(
            "Content-Length not a number",
            [b"POST /v1/continue HTTP/1.1\r\n" + H + J + b"Content-Length: two\r\n\r\n{}"],
        ),
        Raw(
            "Content-Length 2**64",
            [
                b"POST /v1/continue HTTP/1.1\r\n"
                + H
                + J
                + b"Content-Length: 18446744073709551616\r\n\r\n{}"
            ],
        ),
        Raw(
            "Content-Length larger than the body, then EOF",
            [b"POST /v1/continue HTTP/1.1\r\n" + H + J + b"Content-Length: 50\r\n\r\n{}"],
            shut_write=True,
        ),
        Raw(
            "Content-Length smaller than the body",
            [b"POST /v1/continue HTTP/1.1\r\n" + H + J + b"Content-Length: 2\r\n\r\n{}garbage"],
        ),
        Raw("three pipelined requests", [ok * 3]),
        Raw("HTTP/1.0 without Host", [b"GET /health HTTP/1.0\r\n\r\n"]),
        Raw("HTTP/1.1 without Host", [b"GET /health HTTP/1.1\r\n\r\n"]),
        Raw("HTTP/2 preface", [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]),
        Raw("TLS ClientHello", [bytes.fromhex("16030100a5010000a10303") + os.urandom(160)]),
        Raw(
            "a 100 KB header",
            [b"GET /health HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 100_000 + b"\r\n\r\n"],
        ),
        Raw(
            "1,000 headers",
            [
                b"GET /health HTTP/1.1\r\n"
                + H
                + b"".join(b"X-%d: y\r\n" % i for i in range(1000))
                + b"\r\n"
            ],
        ),
        Raw("a header without a colon", [b"GET /health HTTP/1.1\r\n" + H + b"Broken\r\n\r\n"]),
        Raw("NUL in the request line", [b"GET /hea\x00lth HTTP/1.1\r\n" + H + b"\r\n"]),
        Raw("absolute URI", [b"GET http://evil.example/health HTTP/1.1\r\n" + H + b"\r\n"]),
        Raw("OPTIONS *", [b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n"]),
        Raw("CONNECT", [b"CONNECT evil.example:443 HTTP/1.1\r\n" + H + b"\r\n"]),
        Raw(
            "Expect: 100-continue",
            [
                b"POST /v1/continue HTTP/1.1\r\n"
                + H
                + J
                + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body),
                0.2,
                body,
            ],
        ),
        Raw("a 64 KB request line", [b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\n" + H + b"\r\n"]),
        Raw(
            "Upgrade: websocket",
            [
                b"GET /health HTTP/1.1\r\n" + H + b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
                b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
                b"dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            ],
        ),
        Raw(
            "obsolete header folding",
            [b"GET /health HTTP/1.1\r\n" + H + b"X-A: a\r\n  folded\r\n\r\n"],
        ),
        Raw("bare LF line ends", [b"GET /health HTTP/1.1\n" + H.replace(b"\r", b"") + b"\n"]),
        Raw(
            "huge chunk extension",
            [
                b"POST /v1/continue HTTP/1.1\r\n"
                + H
                + J
                + b"Transfer-Encoding: chunked\r\n\r\n2;"
                + b"e" * 100_000
                + b"\r\n{}\r\n0\r\n\r\n"
            ],
        ),
        Raw(
            "chunked body with trailers",
            [
                b"POST /v1/continue HTTP/1.1\r\n"
                + H
                + J
                + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n"
                b"X-Trailer: 1\r\n\r\n"
            ],
        ),
        Raw(
            "chunk larger than the 1 MiB limit",
            [
                b"POST /v1/continue HTTP/1.1\r\n" + H + J + b"Transfer-Encoding: chunked\r\n\r\n"
                b"FFFFFFFF\r\n" + b" " * 100_000
            ],
        ),
    ]


def raw_exchange(port: int, case: Raw, wait: float) -> tuple[list[int], bool, float]:
    """Send the steps; read until the server closes or ``wait`` passes.

    (status codes seen, closed by the server, seconds until closed)."""
    start = time.monotonic()
    data = b""
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        try:
            for step in case.steps:
                if isinstance(step, float):
                    time.sleep(step)
                else:
                    s.sendall(step)
            if case.shut_write:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            closed = True  # the server closed first (reset or broken pipe)
        deadline = start + wait
        quiet_after = None
        while not closed and time.monotonic() < deadline:
            s.settimeout(max(0.05, min(0.3, deadline - time.monotonic())))
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                if not case.expect_close and re.search(rb"HTTP/1\.[01] \d{3}", data):
                    quiet_after = quiet_after or time.monotonic()
                    if time.monotonic() - quiet_after > 0.3:
                        break  # answered; a keep-alive connection may stay open
                continue
            except OSError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
            quiet_after = None
    statuses = [int(x) for x in re.findall(rb"HTTP/1\.[01] (\d{3})", data)]
    return statuses, closed, time.monotonic() - start


def service_area(
    root: Path, model: Path, items: list[str], users: list[str], quick: bool, rng: random.Random
) -> list[Outcome]:
    import httpx

    outcomes: list[Outcome] = []
    port = free_port()
    log_path = root / "service.log"
    cmd = [
        "serve",
        str(model),
        "--port",
        str(port),
        "--no-access-log",
        "--header-timeout",
        "1",
        "--body-timeout",
        "1",
        "--log-level",
        "warning",
    ]
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            SEGUE + cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=ENV,
        )
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"segue serve did not start:\n{log_path.read_text()}")
        command = show(cmd, root)
        reqs = service_requests(rng, items, users, 0.25 if quick else 1.0)
        print(f"  service: {len(reqs)} requests", file=sys.stderr, flush=True)
        with httpx.Client(timeout=httpx.Timeout(20.0)) as client:
            for r in reqs:
                status, text = send(client, url, r)
                if status is None:
                    kind = "clean" if r.may_close else "dropped"
                    note = text
                elif status >= 500:
                    kind, note = "5xx", f"{status} {text}"
                else:
                    kind, note = ("result" if status < 400 else "clean"), str(status)
                head = (r.body or b"")[:120].decode("utf-8", "replace")
                outcomes.append(
                    Outcome(
                        "service",
                        r.group,
                        f"{r.method} {r.path[:60]} {head}",
                        kind,
                        command,
                        status,
                        0.0,
                        text=text,
                        note=note,
                    )
                )
        # raw sockets, concurrently (most of them wait for a deadline)
        raws = raw_cases()
        if quick:
            raws = raws[::2]

        def one(c: Raw) -> Outcome:
            wait = 6.0 if c.expect_close else 4.0
            try:
                statuses, closed, secs = raw_exchange(port, c, wait)
            except OSError as exc:
                return Outcome(
                    "service",
                    "raw sockets",
                    c.name,
                    "dropped",
                    command,
                    note=f"could not connect: {exc}",
                )
            bad = [s for s in statuses if s >= 500]
            if bad:
                kind, note = "5xx", f"statuses {statuses}"
            elif c.expect_close and not closed:
                kind, note = "dropped", f"held: still open after {secs:.1f} s ({statuses})"
            elif c.expect_close:
                kind, note = "clean", f"closed after {secs:.1f} s, statuses {statuses}"
            elif statuses:
                kind = "result" if all(s < 400 for s in statuses) else "clean"
                note = f"statuses {statuses}"
            elif closed:
                kind, note = "clean", "closed without an answer"
            else:
                kind, note = "dropped", f"no answer and still open after {secs:.1f} s"
            return Outcome("service", "raw sockets", c.name, kind, command, note=note)

        outcomes += parallel([lambda c=c: one(c) for c in raws], 16)
        # idle connections must not block a real client, and must be closed by the deadline
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        opened = time.monotonic()
        try:
            t0 = time.monotonic()
            try:
                r = httpx.post(
                    url + "/v1/continue", json={"tracks": items[:3], "n": 10}, timeout=10
                )
                status = r.status_code
            except httpx.HTTPError:
                status = None
            took = time.monotonic() - t0
            kind = (
                "result"
                if status == 200 and took < 2
                else ("5xx" if status and status >= 500 else "dropped")
            )
            outcomes.append(
                Outcome(
                    "service",
                    "idle connections",
                    "a request while 20 idle connections are open",
                    kind,
                    command,
                    status,
                    note=f"{status} after {took:.2f} s",
                )
            )
            deadline = opened + 6
            still = list(idle)
            closed_after: dict[int, float] = {}
            while still and time.monotonic() < deadline:
                for s in list(still):
                    s.settimeout(0.05)
                    try:
                        gone = s.recv(1024) == b""
                    except TimeoutError:
                        gone = False
                    except OSError:
                        gone = True
                    if gone:
                        still.remove(s)
                        closed_after[id(s)] = time.monotonic() - opened
            for i, s in enumerate(idle):
                held = s in still
                outcomes.append(
                    Outcome(
                        "service",
                        "idle connections",
                        f"idle connection {i}",
                        "dropped" if held else "clean",
                        command,
                        note="held past 6 s"
                        if held
                        else f"closed after {closed_after[id(s)]:.1f} s",
                    )
                )
        finally:
            for s in idle:
                s.close()
        # the server must still be up
        try:
            alive = httpx.get(url + "/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            alive = False
        outcomes.append(
            Outcome(
                "service",
                "server",
                "alive and answering after everything",
                "result" if alive and proc.poll() is None else "crash",
                command,
                proc.poll(),
                note="" if alive else "no answer to /health",
            )
        )
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    log = log_path.read_text(errors="replace")
    outcomes.append(
        Outcome(
            "service",
            "server",
            "log free of tracebacks",
            "traceback" if "Traceback" in log else "result",
            command,
            proc.returncode,
            text=log[-3000:],
        )
    )
    return outcomes


# area 4: interrupts and --out ------------------------------------------------------------------
def normalised(path: Path) -> dict[str, str]:
    """The output's content, ignoring timestamps and timings in segue's JSON documents."""
    if not os.path.lexists(path):
        return {}
    if path.is_file():
        return {"": _digest(str(path))}
    snap = snapshot(path)
    for rel in snap:
        if Path(rel).name in ("manifest.json", ".segue-output.json"):
            try:
                doc = json.loads((path / rel).read_text())
            except (OSError, ValueError):
                continue
            _drop_times(doc)
            snap[rel] = (
                "json:" + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
            )
    return snap


def _drop_times(doc: Any) -> None:
    if isinstance(doc, dict):
        for key in list(doc):
            if key == "created" or "seconds" in key or "timings" in key:
                doc.pop(key)
            else:
                _drop_times(doc[key])
    elif isinstance(doc, list):
        for v in doc:
            _drop_times(v)


@dataclass
class Job:
    name: str
    args: list[str]
    output: str
    inputs: dict[str, Path]  # relative path in the case folder -> source (file or folder)
    old: Path  # the earlier output, copied to ``output`` before every run
    new: Path  # the complete new output (an uninterrupted run)
    seconds: float = 1.0


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, symlinks=True)
    else:
        shutil.copy2(src, dst)


def _restore(job: Job, d: Path) -> None:
    out = d / job.output
    if out.is_dir() and not out.is_symlink():
        shutil.rmtree(out)
    elif os.path.lexists(out):
        out.unlink()
    _copy(job.old, out)


def make_interrupt_jobs(root: Path, jobs: int) -> list[Job]:
    s = root / "interrupts" / "seed"
    s.mkdir(parents=True)

    def listens() -> None:
        must(
            [
                "generate",
                "listens",
                "--out",
                "big.txt",
                "--users",
                "3000",
                "--items",
                "5000",
                "--seed",
                "0",
            ],
            s,
        )
        must(["split", "listens", "big.txt", "--out", "split-old", "--seed", "0"], s)
        must(["split", "listens", "big.txt", "--out", "split-new", "--seed", "1"], s)
        must(
            [
                "train",
                "--listens",
                "split-old/listen_count.txt",
                "--model",
                "ease",
                "--param",
                "l2=100",
                "--param",
                "max_items=3000",
                "--out",
                "model-old",
            ],
            s,
        )
        must(
            [
                "train",
                "--listens",
                "split-old/listen_count.txt",
                "--model",
                "ease",
                "--param",
                "l2=500",
                "--param",
                "max_items=3000",
                "--out",
                "model-new",
            ],
            s,
        )
        users = sorted({ln.split()[0] for ln in (s / "big.txt").read_text().splitlines()})
        (s / "all-users.txt").write_text("\n".join(users) + "\n")
        must(
            [
                "recommend",
                "model-new",
                "--users",
                "all-users.txt",
                "--n",
                "50",
                "--out",
                "recs-old.txt",
            ],
            s,
        )
        must(["recommend", "model-new", "--users", "all-users.txt", "--out", "recs-new.txt"], s)

    def melon() -> None:
        must(
            [
                "generate",
                "melon",
                "--out",
                "melon",
                "--playlists",
                "20000",
                "--songs",
                "20000",
                "--tags",
                "500",
                "--seed",
                "0",
            ],
            s,
        )
        must(["split", "melon", "melon/train.json", "--out", "msplit-old", "--seed", "0"], s)
        must(["split", "melon", "melon/train.json", "--out", "msplit-new", "--seed", "1"], s)

    parallel([listens, melon], jobs)
    result = [
        Job(
            "split listens",
            ["split", "listens", "big.txt", "--out", "val", "--seed", "1"],
            "val",
            {"big.txt": s / "big.txt"},
            s / "split-old",
            s / "split-new",
        ),
        Job(
            "split melon",
            ["split", "melon", "melon/train.json", "--out", "mval", "--seed", "1"],
            "mval",
            {"melon": s / "melon"},
            s / "msplit-old",
            s / "msplit-new",
        ),
        Job(
            "train",
            [
                "train",
                "--listens",
                "listen_count.txt",
                "--model",
                "ease",
                "--param",
                "l2=500",
                "--param",
                "max_items=3000",
                "--out",
                "model",
            ],
            "model",
            {"listen_count.txt": s / "split-old" / "listen_count.txt"},
            s / "model-old",
            s / "model-new",
        ),
        Job(
            "recommend",
            ["recommend", "model", "--users", "all-users.txt", "--out", "recs.txt"],
            "recs.txt",
            {"model": s / "model-new", "all-users.txt": s / "all-users.txt"},
            s / "recs-old.txt",
            s / "recs-new.txt",
        ),
    ]
    # time one uninterrupted run of each, in a scratch folder
    for job in result:
        d = root / "interrupts" / f"timing-{job.name.replace(' ', '-')}"
        for rel, src in job.inputs.items():
            _copy(src, d / rel)
        _restore(job, d)
        job.seconds = must(job.args, d)
        shutil.rmtree(d)
    return result


def interrupt_chain(root: Path, job: Job, sig: int, points: list[float | str]) -> list[Outcome]:
    """Kill ``job`` at each point (seconds, "temp": when its first temporary appears,
    "95%": at 95% of an uninterrupted run), over the old output; then one full run."""
    d = root / "interrupts" / f"{job.name.replace(' ', '-')}-{signal.Signals(sig).name}"
    for rel, src in job.inputs.items():
        _copy(src, d / rel)
    _restore(job, d)
    old, new = normalised(job.old), normalised(job.new)
    initial = snapshot(d, (job.output,))
    outcomes = []
    command = show(job.args, root)
    for point in points:
        if normalised(d / job.output) != old:
            _restore(job, d)
        before = snapshot(d, (job.output,))
        known = set(os.listdir(d))
        start = time.perf_counter()
        with tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
            proc = subprocess.Popen(
                SEGUE + job.args,
                cwd=d,
                stdout=fout,
                stderr=ferr,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=ENV,
            )
            if point == "temp":
                limit = start + job.seconds * 3 + 5
                while proc.poll() is None and time.perf_counter() < limit:
                    if any(n.startswith(".") for n in set(os.listdir(d)) - known):
                        break
                    time.sleep(0.002)
            else:
                at = job.seconds * 0.95 if point == "95%" else float(point)
                while proc.poll() is None and time.perf_counter() - start < at:
                    time.sleep(0.002)
            sent = proc.poll() is None
            if sent:
                proc.send_signal(sig)
            try:
                proc.wait(timeout=60)
                hung = False
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                hung = True
            fout.seek(0)
            ferr.seek(0)
            out, err = decode(fout.read()), decode(ferr.read())
        kind, note = classify(proc.returncode, out, err, (), hung=hung, sent=sig)
        state = normalised(d / job.output)
        which = (
            "old"
            if state == old
            else "new"
            if state == new
            else ("missing" if not state else "mixed")
        )
        after = snapshot(d, (job.output,))
        lost, fresh = compare(before, after)
        if which in ("mixed", "missing"):
            lost.append(f"{job.output} ({which}: neither the old output nor the new one)")
        leftovers = fresh if sig != signal.SIGKILL else []  # SIGTERM must leave nothing
        note = (note + "; " if note else "") + (
            f"signal at {point}" + ("" if sent else " (finished first)") + f", output {which}"
        )
        outcomes.append(
            Outcome(
                "interrupts",
                f"{job.name} {signal.Signals(sig).name}",
                f"{job.name}: {signal.Signals(sig).name} at {point}",
                kind,
                command,
                proc.returncode,
                time.perf_counter() - start,
                lost,
                leftovers,
                out + err,
                note,
                f"{which}" if sent else f"{which} (finished first)",
            )
        )
    # a later full run: the new output, and nothing left by the killed ones
    _restore(job, d)
    case = Case(
        "interrupts",
        f"{job.name} {signal.Signals(sig).name}",
        f"{job.name}: a full run after the {signal.Signals(sig).name}s",
        job.args,
        d,
        (job.output,),
    )
    o = run_cli(case, root)
    o.leftovers = compare(initial, snapshot(d, (job.output,)))[1]
    if normalised(d / job.output) != new:
        o.lost.append(f"{job.output} is not the complete new output")
    outcomes.append(o)
    return outcomes


def out_path_cases(root: Path, seeds: dict[str, Path]) -> list[Case]:
    """--out at the input, the folder holding it, a user's folder or file, ., .., symlinks,
    a FIFO, /dev/null, ..."""
    cases = []
    listens, targets, pop = seeds["listens"], seeds["targets"], seeds["pop"]

    def folder(i: int) -> Path:
        d = root / "outs" / f"{i:02d}" / "work"
        d.mkdir(parents=True)
        shutil.copy(listens, d / "in.txt")
        shutil.copy(targets, d / "targets.txt")
        (d / "data").mkdir()
        shutil.copy(listens, d / "data" / "in.txt")
        shutil.copytree(pop, d / "model")
        (d / "notes" / "sub").mkdir(parents=True)
        (d / "notes" / "a.txt").write_text("my notes\n")
        (d / "notes" / "sub" / "b.txt").write_text("more notes\n")
        (d / "mine.txt").write_text("mine\n")
        (d / "recs.txt").write_text("u1 s1\n")
        os.symlink("notes", d / "link-notes")
        os.symlink("model", d / "link-model")
        os.symlink("recs.txt", d / "link-recs")
        os.symlink("nothere.txt", d / "dangling")
        (d / "slices").mkdir()
        shutil.copy(seeds["slice"], d / "slices" / seeds["slice"].name)
        (d / "melondir").mkdir()
        shutil.copy(seeds["melon_train"], d / "melondir" / "train.json")
        return d

    train = ["train", "--listens", "in.txt", "--model", "popularity", "--out"]
    rec = ["recommend", "model", "--users", "targets.txt", "--out"]
    specs: list[tuple[str, list[str], tuple[str, ...]]] = [
        ("train --out the input file", train + ["in.txt"], ()),
        (
            "train --out the folder holding the input",
            ["train", "--listens", "data/in.txt", "--model", "popularity", "--out", "data"],
            (),
        ),
        ("train --out a user's folder", train + ["notes"], ()),
        ("train --out a user's file", train + ["mine.txt"], ()),
        ("train --out a symlink to a user's folder", train + ["link-notes"], ()),
        ("train --out a symlink to a segue model", train + ["link-model"], ("model",)),
        ("train --out an existing segue model", train + ["model"], ("model",)),
        ("train --out .", train + ["."], ()),
        ("train --out ..", train + [".."], ()),
        ("train --out a dangling symlink", train + ["dangling"], ("nothere.txt",)),
        ("recommend --out the targets file", rec + ["targets.txt"], ()),
        ("recommend --out the model folder", rec + ["model"], ()),
        ("recommend --out a file inside the model", rec + ["model/manifest.json"], ()),
        ("recommend --out a user's folder", rec + ["notes"], ()),
        ("recommend --out .", rec + ["."], ()),
        ("recommend --out a symlink to an existing file", rec + ["link-recs"], ("recs.txt",)),
        ("recommend --out a dangling symlink", rec + ["dangling"], ("nothere.txt",)),
        ("recommend --out /dev/null", rec + ["/dev/null"], ()),
        ("recommend --out a FIFO with a reader", rec + ["fifo"], ()),
        ("recommend --out in a missing folder", rec + ["nofolder/recs.txt"], ("nofolder",)),
        ("recommend --out ''", rec + [""], ()),
        ("split listens --out .", ["split", "listens", "in.txt", "--out", "."], ()),
        (
            "split listens --out a user's folder",
            ["split", "listens", "in.txt", "--out", "notes"],
            (),
        ),
        (
            "split listens --out the input file",
            ["split", "listens", "in.txt", "--out", "in.txt"],
            (),
        ),
        (
            "split listens --out the folder holding the input",
            ["split", "listens", "data/in.txt", "--out", "data"],
            (),
        ),
        ("split listens --out ..", ["split", "listens", "in.txt", "--out", ".."], ()),
        (
            "split melon --out the folder holding the input",
            ["split", "melon", "melondir/train.json", "--out", "melondir"],
            (),
        ),
        (
            "split mpd --out the input folder",
            ["split", "mpd", "slices", "--out", "slices", "--playlists", "10", "--unseen", "drop"],
            (),
        ),
        (
            "split mpd --out a user's folder",
            ["split", "mpd", "slices", "--out", "notes", "--playlists", "10", "--unseen", "drop"],
            (),
        ),
        (
            "train --mpd --out inside the input folder",
            ["train", "--mpd", "slices", "--model", "popularity", "--out", "slices/m"],
            ("slices/m",),
        ),
    ]
    for i, (name, args, outputs) in enumerate(specs):
        d = folder(i)
        if "FIFO" in name:
            os.mkfifo(d / "fifo")
        cases.append(Case("interrupts", "--out paths", name, args, d, outputs, ()))
    return cases


def run_out_cases(cases: list[Case], root: Path, jobs: int) -> list[Outcome]:
    readers_: list[threading.Thread] = []
    for c in cases:
        if "FIFO" in c.name:  # something must read the FIFO, as a shell pipeline would

            def drain(p: Path = c.cwd / "fifo") -> None:
                with open(p, "rb") as fh:
                    while fh.read(65536):
                        pass

            t = threading.Thread(target=drain, daemon=True)
            t.start()
            readers_.append(t)
    null_before = os.stat("/dev/null").st_rdev, stat.S_ISCHR(os.stat("/dev/null").st_mode)
    outcomes = run_all(cases, root, jobs, "--out paths")
    null_after = os.stat("/dev/null").st_rdev, stat.S_ISCHR(os.stat("/dev/null").st_mode)
    if null_after != null_before:
        for o in outcomes:
            if "/dev/null" in o.name:
                o.lost.append("/dev/null is no longer the null device")
    for t in readers_:
        t.join(timeout=5)
    return outcomes


# report ----------------------------------------------------------------------------------------
HEADERS = [
    "cases",
    "results",
    "clean errors",
    "stopped (signal sent)",
    "other errors",
    "tracebacks",
    "crashes",
    "5xx",
    "dropped/held",
    "outputs lost",
    "leftovers",
]


def counts(outcomes: list[Outcome]) -> list[int]:
    k = [o.kind for o in outcomes]
    return [
        len(outcomes),
        k.count("result"),
        k.count("clean"),
        k.count("stopped"),
        k.count("other"),
        k.count("traceback"),
        k.count("crash"),
        k.count("5xx"),
        k.count("dropped"),
        sum(bool(o.lost) for o in outcomes),
        sum(bool(o.leftovers) for o in outcomes),
    ]


def area_table(outcomes: list[Outcome]) -> str:
    groups: dict[str, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(o.group, []).append(o)
    rows = [[g, *counts(v)] for g, v in groups.items()]
    rows.append(["**all**", *counts(outcomes)])
    return common.markdown_table(["group", *HEADERS], rows)


def details(area: str, outcomes: list[Outcome]) -> None:
    """Which hostile cases were accepted (exit 0), what each raw-socket client got, and the state
    of each interrupted output."""
    if area in ("inputs", "models"):
        accepted: dict[str, list[str]] = {}
        for o in outcomes:
            if o.kind == "result" and not o.group.startswith("serve"):
                accepted.setdefault(o.group, [])
                if o.name not in accepted[o.group]:
                    accepted[o.group].append(o.name)
        rows = [[g, "; ".join(v)] for g, v in accepted.items()]
        print("\nAccepted (exit 0; the lists were written):\n")
        print(common.markdown_table(["group", "cases"], rows) if rows else "none")
    if area == "service":
        rows = [
            [o.name, o.kind, o.note]
            for o in outcomes
            if o.group in ("raw sockets", "idle connections", "server")
        ]
        idle = [o for o in outcomes if o.name.startswith("idle connection ")]
        rows = [r for r in rows if not r[0].startswith("idle connection ")]
        if idle:
            secs = [
                float(m.group(1)) for o in idle if (m := re.search(r"after ([\d.]+) s", o.note))
            ]
            rows.append(
                [
                    f"{len(idle)} idle connections (nothing sent)",
                    "/".join(sorted({o.kind for o in idle})),
                    f"closed after {min(secs):.1f}-{max(secs):.1f} s" if secs else idle[0].note,
                ]
            )
        print("\nRaw sockets (`--header-timeout 1 --body-timeout 1`):\n")
        print(common.markdown_table(["client", "outcome", "what the server did"], rows))
    if area == "interrupts":
        chains: dict[str, dict[str, str]] = {}
        points: list[str] = []
        for o in outcomes:
            if " at " in o.name and o.group != "--out paths":
                point = o.name.rsplit(" at ", 1)[1]
                if point not in points:
                    points.append(point)
                chains.setdefault(o.group, {})[point] = f"{o.kind}, output {o.detail}"
            elif "a full run after the" in o.name:
                chains.setdefault(o.group, {})["later full run"] = (
                    f"{o.kind}, {'leftovers' if o.leftovers else 'no leftovers'}"
                    + (", output not the new one" if o.lost else ", output new")
                )
        rows = [
            [g, *(v.get(p, "") for p in [*points, "later full run"])] for g, v in chains.items()
        ]
        print("\nInterrupted runs (signal at each point; the output after it):\n")
        print(common.markdown_table(["run", *points, "later full run"], rows))
        rows = [
            [o.name, o.kind, "; ".join(o.lost + o.leftovers) or "-"]
            for o in outcomes
            if o.group == "--out paths"
        ]
        print("\n--out paths:\n")
        print(common.markdown_table(["case", "outcome", "lost / leftovers"], rows))


def excerpt(text: str, head: int = 4, tail: int = 3) -> list[str]:
    """The first and last lines of an output, repeated lines collapsed, each cut to 200."""
    lines: list[str] = []
    count = 0
    for ln in [ln.rstrip()[:200] for ln in text.strip().splitlines() if ln.strip()]:
        if lines and ln == lines[-1].split("  (x")[0]:
            count += 1
            lines[-1] = f"{ln}  (x{count})"
        else:
            count = 1
            lines.append(ln)
    if len(lines) <= head + tail:
        return lines
    return lines[:head] + [f"... ({len(lines) - head - tail} more lines)"] + lines[-tail:]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="about a third of the cases")
    parser.add_argument(
        "--areas", default=",".join(AREAS), help=f"comma-separated subset of {list(AREAS)}"
    )
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    parser.add_argument(
        "--jobs",
        type=int,
        default=max(1, min(8, usable)),
        help="cases run at once (default: usable cores, at most 8)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the fuzzed values")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    areas = [a.strip() for a in args.areas.split(",") if a.strip()]
    if unknown := [a for a in areas if a not in AREAS]:
        parser.error(f"unknown area(s) {unknown}; choose from {list(AREAS)}")
    rng = random.Random(args.seed)
    wall = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="segue-hostile-"))
    results: dict[str, list[Outcome]] = {}
    timings: dict[str, float] = {}
    try:
        t = time.perf_counter()
        print(f"seeds in {root}", file=sys.stderr, flush=True)
        seeds = make_input_seeds(root, args.jobs)
        seed_snap = snapshot(root / "seeds")
        timings["seeds"] = time.perf_counter() - t
        if "inputs" in areas:
            t = time.perf_counter()
            cases = input_cases(root, seeds, args.quick, rng)
            results["inputs"] = run_all(cases, root, args.jobs, "inputs")
            timings["inputs"] = time.perf_counter() - t
        models = None
        if "models" in areas or "service" in areas:
            t = time.perf_counter()
            models = make_models(root, seeds, args.jobs)
            timings["models: training"] = time.perf_counter() - t
        if "models" in areas:
            assert models is not None
            t = time.perf_counter()
            model_snap = snapshot(root / "models" / "seed")
            cases = model_cases(root, models, seeds["targets"], args.quick)
            out = run_all(cases, root, args.jobs, "models")
            cross_check(out)
            lost, _ = compare(model_snap, snapshot(root / "models" / "seed"))
            if lost:
                out.append(
                    Outcome("models", "seed models", "untouched by every case", "result", lost=lost)
                )
            results["models"] = out
            timings["models"] = time.perf_counter() - t
        if "service" in areas:
            assert models is not None
            t = time.perf_counter()
            lines = [ln.split() for ln in seeds["listens"].read_text().splitlines()]
            items = sorted({x[1] for x in lines})
            users = sorted({x[0] for x in lines})
            results["service"] = service_area(root, models["ease"], items, users, args.quick, rng)
            timings["service"] = time.perf_counter() - t
        if "interrupts" in areas:
            t = time.perf_counter()
            jobs_ = make_interrupt_jobs(root, args.jobs)
            points: list[float | str] = (
                ["temp", 0.5] if args.quick else [0.1, 0.5, 1.0, "temp", "95%"]
            )
            chains = [
                lambda j=j, s=s: interrupt_chain(root, j, s, points)
                for j in jobs_
                for s in (signal.SIGKILL, signal.SIGTERM)
            ]
            out = [o for chain in parallel(chains, args.jobs) for o in chain]
            out += run_out_cases(out_path_cases(root, seeds), root, args.jobs)
            results["interrupts"] = out
            timings["interrupts"] = time.perf_counter() - t
            timings_note = ", ".join(f"{j.name} {j.seconds:.1f} s" for j in jobs_)
        lost, _ = compare(seed_snap, snapshot(root / "seeds"))
        if lost:
            results.setdefault("inputs", []).append(
                Outcome("inputs", "seed files", "untouched by every case", "result", lost=lost)
            )
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    wall = time.perf_counter() - wall

    print("# segue hostile inputs\n")
    for line in common.environment_lines():
        print(f"- {line}")
    print(
        f"- mode: {'quick' if args.quick else 'full'}, {args.jobs} cases at once, seed "
        f"{args.seed}, areas {', '.join(areas)}"
    )
    if "interrupts" in areas:
        print(
            f"- uninterrupted runs (kill points are 0.1/0.5/1 s, first temporary, 95%): "
            f"{timings_note}"
        )
    print("- " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    for area, outcomes in results.items():
        print(f"\n## {area}\n")
        print(area_table(outcomes))
        details(area, outcomes)
    everything = [o for v in results.values() for o in v]
    print("\n## total\n")
    rows = [[a, *counts(v)] for a, v in results.items()]
    rows.append(["**total**", *counts(everything)])
    print(common.markdown_table(["area", *HEADERS], rows))
    bad = [o for o in everything if not o.clean]
    print(f"\n## cases that were not clean: {len(bad)}\n")
    for o in bad:
        print(
            f"- [{o.area} / {o.group}] {o.name}: **{o.kind}**"
            + (f" ({o.note})" if o.note else "")
            + f", exit {o.rc}"
        )
        if o.command:
            print(f"  - command: `{o.command}`")
        if o.lost:
            print(f"  - outputs lost: {o.lost[:5]}")
        if o.leftovers:
            print(f"  - leftovers: {o.leftovers[:5]}")
        for ln in excerpt(o.text):
            print(f"    > {ln}")
    print(f"\nwall time: {wall:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
