"""Outputs segue writes: never destroy what --out points at, never leave temporaries behind.

Issue 13, items 3 (replace only segue's own outputs), 4 (symlinks, FIFOs and devices), 6 (stale
temporaries of killed runs, SIGTERM) and the directory permissions of item 10.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import segue._atomic as atomic
from segue._atomic import (
    MARKER,
    OutputError,
    atomic_dir,
    atomic_open,
    check_output_dir,
    clean_stale,
    segue_output_kind,
)
from segue.data.interactions import Interactions
from segue.data.io import load_interactions, save_interactions
from segue.exceptions import SegueError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file semantics")


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path under ``root`` with its bytes (files), ``dir`` or its link target."""
    out: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = path.read_bytes()
    return out


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def small_data() -> Interactions:
    return Interactions.from_arrays(["u1", "u2"], ["a", "b"], [1, 2])


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def live_pid() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


# item 3: atomic_dir replaces only what segue wrote -----------------------------------------------
def test_user_directory_with_files_survives_and_the_error_names_it(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.txt").write_text("my notes")
    (mine / "sub" / "input.csv").write_text("user,item\n")
    before = snapshot(tmp_path)
    with pytest.raises(OutputError) as info, atomic_dir(mine) as tmp:
        (tmp / "manifest.json").write_text("{}")
    message = str(info.value)
    assert str(mine) in message and "not a segue output" in message and MARKER in message
    assert "choose a new --out or remove it" in message
    assert isinstance(info.value, SegueError)
    assert snapshot(tmp_path) == before  # nothing changed, no temporary left


def test_input_file_as_dataset_out_survives(tmp_path: Path) -> None:
    data_file = tmp_path / "listen_count.txt"
    data_file.write_text("u1 a 1\n")
    with pytest.raises(OutputError, match="it is a file, not a segue output directory"):
        save_interactions(small_data(), data_file)
    assert data_file.read_text() == "u1 a 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["listen_count.txt"]


def test_current_directory_and_its_parents_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "project" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)  # empty, and still not replaceable: it is where we stand
    for out in (".", "..", str(work), str(tmp_path / "project")):
        with pytest.raises(OutputError, match="current directory or one of its parents"):
            save_interactions(small_data(), out)
    assert work.is_dir() and sorted(p.name for p in tmp_path.iterdir()) == ["project"]


def test_directory_holding_the_input_is_refused_even_when_segue_wrote_it(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    save_interactions(small_data(), out)
    source = out / "users.parquet"  # an input inside the output
    before = snapshot(tmp_path)
    with pytest.raises(OutputError, match="holds the input"), atomic_dir(out, keep=[source]):
        pass
    with pytest.raises(OutputError, match="holds the input"):
        check_output_dir(out, keep=[str(out / "*.parquet")])  # a pattern: the files it names
    assert snapshot(tmp_path) == before


def test_empty_directory_and_missing_path_are_written(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    save_interactions(small_data(), tmp_path / "empty")
    save_interactions(small_data(), tmp_path / "new" / "deeper")
    assert load_interactions(tmp_path / "empty").n_users == 2
    assert load_interactions(tmp_path / "new" / "deeper").n_users == 2
    assert hidden(tmp_path) == [] and hidden(tmp_path / "new") == []


@pytest.mark.parametrize(
    ("doc", "content", "kind"),
    [
        ("manifest.json", {"format": "segue.model", "format_version": 1}, "model"),
        ("config.json", {"format": "segue.two_stage", "format_version": 2}, "two-stage-model"),
        ("schema.json", {"format": "segue.interactions", "version": 1}, "dataset"),
        ("schema.json", {"format": "segue.playlists", "version": 1}, "playlists"),
    ],
)
def test_directories_segue_wrote_are_replaced(
    tmp_path: Path, doc: str, content: dict, kind: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / doc).write_text(json.dumps(content))
    (out / "arrays.npz").write_bytes(b"old")
    assert segue_output_kind(out) == kind
    with atomic_dir(out) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "new.txt"]
    assert hidden(tmp_path) == []


def test_a_foreign_format_document_is_not_enough(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"format": "something.else"}))
    assert segue_output_kind(out) is None
    with pytest.raises(OutputError, match="not a segue output"):
        check_output_dir(out)


def test_large_manifest_is_recognised_from_its_head(tmp_path: Path) -> None:
    out = tmp_path / "m"
    out.mkdir()
    doc = {"format": "segue.model", "id_maps": {"items_": ["x" * 50] * 40_000}}  # 2 MB
    (out / "manifest.json").write_text(json.dumps(doc))
    assert segue_output_kind(out) == "model"


@pytest.mark.parametrize(
    ("files", "folders", "kind"),
    [
        (["listen_count.txt", "target_users.txt", "answers.txt"], [], "listens-split"),
        (["train.json", "questions.json", "answers.json", "song_meta.json"], [], "melon-split"),
        (["challenge_set.json", "answers.json", "tracks.parquet"], ["train"], "mpd-split"),
    ],
)
def test_split_folders_of_earlier_versions(
    tmp_path: Path, files: list[str], folders: list[str], kind: str
) -> None:
    out = tmp_path / "val"
    out.mkdir()
    for name in files:
        (out / name).write_text("old")
    for name in folders:
        (out / name).mkdir()
    (out / f".{files[0]}.abcdefgh.tmp").write_text("left by a killed run of an earlier segue")
    assert segue_output_kind(out) == kind
    # the same names next to a file segue never writes: the user's folder, refused
    (out / "notes.txt").write_text("mine")
    assert segue_output_kind(out) is None
    before = snapshot(tmp_path)
    with pytest.raises(OutputError, match="but also notes.txt, which segue did not write"):
        check_output_dir(out)
    assert snapshot(tmp_path) == before
    (out / "notes.txt").unlink()
    with atomic_dir(out) as tmp:
        (tmp / "fresh.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "fresh.txt"]


def test_a_folder_of_mpd_slices_is_not_taken_for_segue_output(tmp_path: Path) -> None:
    """The MPD download's data/ holds only slice files: never replaced unless segue marked it."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "mpd.slice.0-999.json").write_text("{}")
    with pytest.raises(OutputError, match="not a segue output"):
        check_output_dir(data)
    with atomic_dir(tmp_path / "generated") as tmp:
        (tmp / "mpd.slice.0-999.json").write_text("{}")
    assert segue_output_kind(tmp_path / "generated") == "mpd-slices"
    check_output_dir(tmp_path / "generated")  # marked: may be replaced


def test_marker_only_where_no_format_document_says_what_it_is(tmp_path: Path) -> None:
    save_interactions(small_data(), tmp_path / "ds")
    assert not (tmp_path / "ds" / MARKER).exists()  # schema.json already says it
    with atomic_dir(tmp_path / "split", kind="listens-split") as tmp:
        (tmp / "answers.txt").write_text("")
    doc = json.loads((tmp_path / "split" / MARKER).read_text())
    assert doc["format"] == "segue.output" and doc["kind"] == "listens-split"
    assert {"created", "segue_version"} <= set(doc)
    assert segue_output_kind(tmp_path / "split") == "listens-split"


def test_failed_block_keeps_the_previous_directory(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    save_interactions(small_data(), out)
    before = snapshot(tmp_path)
    with pytest.raises(RuntimeError, match="boom"), atomic_dir(out) as tmp:
        (tmp / "half.txt").write_text("half")
        raise RuntimeError("boom")
    assert snapshot(tmp_path) == before


def test_symlink_to_a_directory_is_kept_and_its_target_replaced(tmp_path: Path) -> None:
    real = tmp_path / "models" / "v3"
    save_interactions(small_data(), real)
    link = tmp_path / "current"
    link.symlink_to(real)
    bigger = Interactions.from_arrays(["u1", "u2", "u3"], ["a", "b", "c"], [1, 2, 3])
    save_interactions(bigger, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert load_interactions(real).n_users == 3
    assert hidden(tmp_path) == [] and hidden(tmp_path / "models") == []


def test_two_rename_fallback_restores_the_previous_directory_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "ds"
    save_interactions(small_data(), out)
    before = snapshot(tmp_path)
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)  # no renameat2
    real_rename = os.rename
    calls = []

    def second_fails(src: object, dst: object) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(atomic.os, "rename", second_fails)
    with pytest.raises(OutputError, match="cannot replace it"), atomic_dir(out) as tmp:
        (tmp / "new.txt").write_text("new")
    monkeypatch.setattr(atomic.os, "rename", real_rename)
    assert snapshot(tmp_path) == before
    # and without the failure, the fallback swaps and cleans up
    with atomic_dir(out) as tmp:
        (tmp / "new.txt").write_text("new")
    assert (out / "new.txt").read_text() == "new" and hidden(tmp_path) == []


def test_exchange_swaps_in_one_step_where_supported(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    if not atomic._exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) not supported here")
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"


# item 10: permissions ----------------------------------------------------------------------------
def test_directories_get_the_umask_mode_like_files(tmp_path: Path, umask_027: None) -> None:
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "f").write_text("x")
    with atomic_open(tmp_path / "f.txt") as fh:
        fh.write("x")
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o750  # not mkdtemp's 0700
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o640


def test_replacing_keeps_the_previous_permissions(tmp_path: Path) -> None:
    save_interactions(small_data(), tmp_path / "ds")
    os.chmod(tmp_path / "ds", 0o700)
    save_interactions(small_data(), tmp_path / "ds")
    assert stat.S_IMODE((tmp_path / "ds").stat().st_mode) == 0o700
    private = tmp_path / "recs.txt"
    private.write_text("old")
    os.chmod(private, 0o600)
    with atomic_open(private) as fh:
        fh.write("new")
    assert private.read_text() == "new" and stat.S_IMODE(private.stat().st_mode) == 0o600


# item 4: atomic_open on what is not a regular file -----------------------------------------------
def test_symlink_to_a_file_is_kept_and_its_target_written(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "recs.txt"
    target.write_text("old")
    link = tmp_path / "recs.txt"
    link.symlink_to(target)
    with atomic_open(link) as fh:
        fh.write("new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new"
    assert hidden(tmp_path) == [] and hidden(tmp_path / "data") == []


def test_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "out.txt"
    link.symlink_to(tmp_path / "real.txt")
    with atomic_open(link) as fh:
        fh.write("new")
    assert link.is_symlink() and (tmp_path / "real.txt").read_text() == "new"


def test_symlink_loop_is_a_clean_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(OutputError, match="cannot be resolved"), atomic_open(tmp_path / "a"):
        pass
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_symlink()


def test_fifo_is_written_in_place_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as fh:
            received.append(fh.read())

    reader = threading.Thread(target=read)
    reader.start()
    with atomic_open(fifo) as fh:
        fh.write("u1 a b c\n")
    reader.join(timeout=10)
    assert received == [b"u1 a b c\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


def test_dev_null_is_written_in_place() -> None:
    before = os.lstat("/dev/null")
    with atomic_open("/dev/null", "wb") as fh:
        fh.write(b"x" * 100_000)
    after = os.lstat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_ino == before.st_ino


@pytest.mark.skipif(
    not (os.path.exists("/dev/full") and os.access("/dev/full", os.W_OK)),
    reason="/dev/full is not writable here",
)
@pytest.mark.parametrize("size", [10, 1_000_000])  # fails at close / fails in write
def test_dev_full_gives_a_clean_error(size: int) -> None:
    before = os.lstat("/dev/full")
    with pytest.raises(OutputError, match=r"^/dev/full: cannot write: No space left on device$"):
        with atomic_open("/dev/full") as fh:
            fh.write("x" * size)
    after = os.lstat("/dev/full")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


def test_dev_stdout_is_the_stream_even_when_it_is_a_file(tmp_path: Path) -> None:
    script = (
        "from segue._atomic import atomic_open\n"
        "with atomic_open('/dev/stdout') as fh:\n"
        "    fh.write('u1 a b\\n')\n"
    )
    captured = tmp_path / "captured.txt"
    with open(captured, "w") as stdout:
        ino = os.fstat(stdout.fileno()).st_ino
        subprocess.run([sys.executable, "-c", script], stdout=stdout, check=True, timeout=60)
    assert captured.read_text() == "u1 a b\n"
    assert captured.stat().st_ino == ino  # written into, not replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["captured.txt"]
    piped = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert piped.stdout == "u1 a b\n"


def test_directory_and_input_and_bad_parent_are_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputError, match="is a directory"), atomic_open(tmp_path / "d"):
        pass
    source = tmp_path / "targets.txt"
    source.write_text("u1\n")
    with pytest.raises(OutputError, match="is the input"), atomic_open(source, keep=[source]):
        pass
    with pytest.raises(OutputError, match="is not a directory"):
        with atomic_open(source / "recs.txt"):
            pass
    assert source.read_text() == "u1\n" and (tmp_path / "d").is_dir()
    assert hidden(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write read-only files")
def test_read_only_file_is_refused(tmp_path: Path) -> None:
    ro = tmp_path / "ro.txt"
    ro.write_text("keep")
    os.chmod(ro, 0o444)
    with pytest.raises(OutputError, match="is read-only"), atomic_open(ro):
        pass
    assert ro.read_text() == "keep"


def test_failed_block_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "recs.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old" and hidden(tmp_path) == []


# item 6: temporaries of killed runs, SIGTERM -----------------------------------------------------
WRITER = """
import contextlib, sys, time
from segue._atomic import atomic_dir, atomic_open, install_signal_cleanup, signal_cleanup

def write():
    if sys.argv[3] == "file":
        with atomic_open(sys.argv[1]) as fh:
            fh.write("new")
            fh.flush()
            print("ready", flush=True)
            time.sleep(60)
    else:
        with atomic_dir(sys.argv[1], kind="listens-split") as tmp:
            (tmp / "answers.txt").write_text("new")
            print("ready", flush=True)
            time.sleep(60)

if sys.argv[2] == "handled":
    install_signal_cleanup()
with signal_cleanup() if sys.argv[2] == "context" else contextlib.nullcontext():
    write()
"""


def _default_signals() -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def run_and_signal(target: Path, sig: int, handled: str, what: str) -> int:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target), handled, what],
        stdout=subprocess.PIPE,
        text=True,
        # the writer starts with default signal actions whatever ran the suite: under nohup
        # SIGHUP is ignored, and install_signal_cleanup rightly keeps an ignored signal ignored
        preexec_fn=_default_signals,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        temps = [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.")]
        assert len(temps) == 1 and f".{proc.pid}-" in temps[0].name  # named after its pid
        proc.send_signal(sig)
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.parametrize("what", ["file", "dir"])
@pytest.mark.parametrize(
    ("how", "sig", "status"),
    [
        ("handled", signal.SIGTERM, 128 + signal.SIGTERM),  # exits through the exception
        ("handled", signal.SIGHUP, 128 + signal.SIGHUP),
        ("context", signal.SIGTERM, -signal.SIGTERM),  # then dies of the signal, as before
    ],
)
def test_sigterm_removes_the_temporary(
    tmp_path: Path, what: str, how: str, sig: int, status: int
) -> None:
    target = tmp_path / ("recs.txt" if what == "file" else "val")
    if what == "file":
        target.write_text("old")
    else:
        target.mkdir()
        (target / MARKER).write_text(json.dumps({"format": "segue.output", "kind": "x"}))
    before = snapshot(tmp_path)
    assert run_and_signal(target, sig, how, what) == status
    assert snapshot(tmp_path) == before  # old output intact, no temporary left


@pytest.mark.parametrize("what", ["file", "dir"])
def test_sigkill_leftovers_are_removed_by_the_next_run(tmp_path: Path, what: str) -> None:
    target = tmp_path / ("recs.txt" if what == "file" else "val")
    rc = run_and_signal(target, signal.SIGKILL, "plain", what)
    assert rc == -signal.SIGKILL
    assert len(hidden(tmp_path)) == 1  # the killed run's temporary, left behind
    if what == "file":
        with atomic_open(target) as fh:
            fh.write("next")
    else:
        with atomic_dir(target) as tmp:
            (tmp / "answers.txt").write_text("next")
    assert hidden(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_live_processes_temporaries_are_kept(tmp_path: Path, live_pid: int) -> None:
    tag = atomic._host_tag()
    live_file = tmp_path / f".recs.txt.{live_pid}-{tag}.abcdefgh.tmp"
    live_dir = tmp_path / f".recs.txt.{live_pid}-{tag}.ijklmnop.tmp"
    live_file.write_text("being written")
    live_dir.mkdir()
    other_host = tmp_path / f".recs.txt.{dead_pid()}-00000000.qrstuvwx.tmp"
    other_host.write_text("another machine's run on a shared disk")
    dead = tmp_path / f".recs.txt.{dead_pid()}-{tag}.yzabcdef.tmp"
    dead.mkdir()
    (dead / "part").write_text("x")
    with atomic_open(tmp_path / "recs.txt") as fh:
        fh.write("mine")
    assert live_file.read_text() == "being written" and live_dir.is_dir()
    assert other_host.exists() and not dead.exists()
    old = time.time() - atomic.STALE_AGE_S - 60
    os.utime(other_host, (old, old))  # a day old: no run writes that long
    clean_stale(tmp_path / "recs.txt")
    assert not other_host.exists() and live_file.exists()


def test_leftovers_of_earlier_versions(tmp_path: Path) -> None:
    target = tmp_path / "m"
    save_interactions(small_data(), target)
    old_swap = tmp_path / f".m.old-{dead_pid()}"
    old_swap.mkdir()
    young = tmp_path / ".m.abcdefgh.tmp"
    young.mkdir()
    aged = tmp_path / ".m.ijklmnop.tmp"
    aged.write_text("x")
    old = time.time() - atomic.STALE_AGE_S - 60
    os.utime(aged, (old, old))
    unrelated = tmp_path / ".mine.abcdefgh.tmp"
    unrelated.write_text("another target's")
    old_model = tmp_path / f".m.old-{dead_pid()}"
    save_interactions(small_data(), old_model)  # a segue output an earlier run was replacing
    users_file = tmp_path / f".m.old-{dead_pid()}"
    users_file.write_text("the input an earlier segue replaced with its output")
    users_dir = tmp_path / f".m.old-{dead_pid()}"
    users_dir.mkdir()
    (users_dir / "notes.txt").write_text("mine")
    removed = clean_stale(target)
    assert sorted(p.name for p in removed) == sorted([old_swap.name, old_model.name, aged.name])
    assert young.exists() and unrelated.exists() and target.is_dir()
    assert users_file.read_text().startswith("the input") and (users_dir / "notes.txt").exists()


def test_a_run_killed_between_the_two_renames_is_repaired(tmp_path: Path) -> None:
    """Without renameat2 the swap is two renames: if killed between them, the next run puts the
    previous directory back before anything else."""
    target = tmp_path / "ds"
    pid, tag = dead_pid(), atomic._host_tag()
    previous = tmp_path / f".ds.{pid}-{tag}.0a1b2c3d.old"
    save_interactions(small_data(), previous)
    finished = tmp_path / f".ds.{pid}-{tag}.abcdefgh.tmp"
    finished.mkdir()
    clean_stale(target)
    assert load_interactions(target).n_users == 2 and hidden(tmp_path) == []


def test_install_signal_cleanup_keeps_existing_handlers() -> None:
    script = (
        "import signal\n"
        "from segue._atomic import install_signal_cleanup, _raise_terminated\n"
        "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "print(install_signal_cleanup() == [signal.SIGTERM])\n"
        "print(signal.getsignal(signal.SIGHUP) == signal.SIG_IGN)\n"
        "print(signal.getsignal(signal.SIGTERM) is _raise_terminated)\n"
        "print(install_signal_cleanup() == [signal.SIGTERM])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["True"] * 4


# end to end: the commands that write through these helpers ---------------------------------------
def segue_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "segue", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def listens_file(tmp_path: Path) -> Path:
    lines = [f"u{u} s{(u * 7 + i) % 40} {1 + i % 3}" for u in range(30) for i in range(12)]
    path = tmp_path / "listen_count.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_data_convert_never_replaces_its_input(tmp_path: Path, listens_file: Path) -> None:
    before = snapshot(tmp_path)
    res = segue_cli("data", "convert", str(listens_file), "--out", str(listens_file), cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    # refused before reading anything: the path is the input itself
    assert str(listens_file) in res.stderr and "is the input" in res.stderr
    assert snapshot(tmp_path) == before
    # the folder holding the input (and the user's notes) is refused too
    (tmp_path / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    res = segue_cli("data", "convert", str(listens_file), "--out", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr + res.stdout
    assert snapshot(tmp_path) == before


def test_cli_split_listens_never_replaces_its_input(tmp_path: Path, listens_file: Path) -> None:
    before = snapshot(tmp_path)
    res = segue_cli("split", "listens", str(listens_file), "--out", str(listens_file), cwd=tmp_path)
    assert res.returncode != 0
    assert snapshot(tmp_path) == before


def test_cli_split_listens_refuses_cleanly_and_writes_atomically(
    tmp_path: Path, listens_file: Path
) -> None:
    res = segue_cli("split", "listens", str(listens_file), "--out", str(listens_file), cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr + res.stdout
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "answers.txt").write_text("my own answers")
    before = snapshot(tmp_path)
    res = segue_cli("split", "listens", str(listens_file), "--out", str(mine), cwd=tmp_path)
    assert res.returncode == 1 and "not a segue output" in res.stderr
    assert snapshot(tmp_path) == before
    res = segue_cli(
        "split", "listens", str(listens_file), "--out", str(tmp_path / "val"), cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    assert segue_output_kind(tmp_path / "val") == "listens-split"


def test_cli_split_melon_never_replaces_its_input(tmp_path: Path) -> None:
    train = tmp_path / "melon" / "train.json"
    train.parent.mkdir()
    playlists = [
        {"id": i, "plylst_title": f"t{i}", "tags": ["a"], "songs": [i, i + 1, i + 2, 7]}
        for i in range(40)
    ]
    train.write_text(json.dumps(playlists), encoding="utf-8")
    before = snapshot(tmp_path)
    res = segue_cli("split", "melon", str(train), "--out", str(train), cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr + res.stdout
    assert str(train) in res.stderr
    res = segue_cli("split", "melon", str(train), "--out", str(tmp_path), cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr + res.stdout
    assert snapshot(tmp_path) == before


def test_cli_train_never_replaces_its_input_or_its_folder(
    tmp_path: Path, listens_file: Path
) -> None:
    """The issue's first reproduction: --out FILE (the input) and --out DIR (holding it)."""
    (tmp_path / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    for out in (listens_file, tmp_path):
        res = segue_cli(
            "train", "--listens", str(listens_file), "--model", "popularity", "--out", str(out),
            cwd=tmp_path,
        )  # fmt: skip
        assert res.returncode == 1, res.stdout + res.stderr
        assert "Traceback" not in res.stderr + res.stdout and str(out) in res.stderr
        assert snapshot(tmp_path) == before
    res = segue_cli(
        "train", "--listens", str(listens_file), "--model", "popularity", "--out", "m",
        cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert segue_output_kind(tmp_path / "m") == "model"
