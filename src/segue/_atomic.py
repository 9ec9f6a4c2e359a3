"""Write files and directories that never end half-written, and never destroy what is not segue's.

:func:`atomic_open` and :func:`atomic_dir` write into a temporary sibling of the target and move
it into place only when the writing block succeeds. What they will and will not touch:

* **Files** (:func:`atomic_open`). A missing path or an existing writable regular file is
  replaced atomically (the new file keeps the old one's permission bits; a new file gets
  ``0666 & ~umask``). A symlink is kept and the file it points to is written (atomically,
  beside that file). A FIFO, a character device (``/dev/null``, a pipe made with ``mkfifo``)
  and a link to a stream of the process (``/dev/stdout``, ``/dev/fd/3``, ``/proc/self/fd/1``)
  are written in place, as a shell redirection would; a write error there (``ENOSPC`` from
  ``/dev/full``) is an :class:`OutputError` naming the path. A directory, a block device, a
  socket or a read-only file is refused with an :class:`OutputError`; nothing but a regular
  file is ever unlinked.
* **Directories** (:func:`atomic_dir`). A missing path, an empty directory or a directory that
  segue wrote (:func:`segue_output_kind`: a ``.segue-output.json`` marker, a model, two-stage,
  dataset or playlists directory recognised by its own format document, or the exact layout of
  a split written by an earlier segue) is replaced by a rename (an atomic exchange on Linux).
  Anything else (a directory of the user's, a regular file, the current directory or one of its
  parents, a directory holding one of the ``keep`` paths, such as the input) is refused with an
  :class:`OutputError` and left as it was. A symlink to a directory is kept and its target is
  replaced. The new directory gets the old one's permission bits (``0777 & ~umask`` when new),
  like the files.

Temporary names carry the writing process id (``.NAME.PID-HOST.XXXXXXXX.tmp``), so a later run
removes what a killed run left beside the same target (:func:`clean_stale`) and never touches a
live process's temporary. SIGTERM and SIGHUP leave nothing behind once
:func:`install_signal_cleanup` has turned them into an exception.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import glob
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from segue.exceptions import SegueError

__all__ = [
    "MARKER",
    "OutputError",
    "Terminated",
    "atomic_dir",
    "atomic_open",
    "check_output_dir",
    "clean_stale",
    "install_signal_cleanup",
    "segue_output_kind",
    "signal_cleanup",
]

PathLike = str | os.PathLike[str]

MARKER = ".segue-output.json"
"""Written into every directory :func:`atomic_dir` makes that has no format document of its own."""
MARKER_FORMAT = "segue.output"

STALE_AGE_S = 24 * 3600
"""Temporaries that cannot be traced to a process (an earlier segue's names without a pid, or
another host's) are removed once they are this old."""

_FORMAT_DOCS: tuple[tuple[str, dict[str, str]], ...] = (
    ("manifest.json", {"segue.model": "model"}),
    ("config.json", {"segue.two_stage": "two-stage-model"}),
    ("schema.json", {"segue.interactions": "dataset", "segue.playlists": "playlists"}),
)
"""Directories that say what they are in a JSON document (its ``format``): no marker needed."""

_LAYOUTS: tuple[tuple[str, frozenset[str], frozenset[str], frozenset[str]], ...] = (
    # kind, required files, optional files, required folders
    (
        "listens-split",
        frozenset({"listen_count.txt", "target_users.txt", "answers.txt"}),
        frozenset(),
        frozenset(),
    ),
    (
        "melon-split",
        frozenset({"train.json", "questions.json", "answers.json"}),
        frozenset({"song_meta.json", "genre_gn_all.json"}),
        frozenset(),
    ),
    (
        "mpd-split",
        frozenset({"challenge_set.json", "answers.json"}),
        frozenset({"tracks.parquet"}),
        frozenset({"train"}),
    ),
)
"""Split folders as earlier segue versions wrote them (without a marker). Recognised only when
they hold exactly these names (plus temporaries segue left), so a folder of the user's that
happens to hold the same files next to others is never taken for one."""

_MAX_DOC_BYTES = 1 << 20
_HEAD_BYTES = 4096
_FORMAT_HEAD = re.compile(rb'\A\s*\{\s*"format"\s*:\s*"([A-Za-z0-9_.-]{1,64})"')
_RANDOM = "[a-z0-9_]+"  # tempfile's random part
_MAX_STEM_BYTES = 200  # leaves room for ".PID-HOST.XXXXXXXX.tmp" within NAME_MAX (255)
_SLICE_FILE = re.compile(r"mpd\.slice\.\d+-\d+\.json")
_STREAM_LINK = re.compile(r"/dev/(stdout|stderr|fd/\d+)|/proc/(self|thread-self|\d+)/fd/\d+")
"""Links to a stream of the process, written in place even when they lead to a regular file
(a shell redirection), like the FIFOs and devices they usually lead to."""
_WRITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EPIPE, errno.EROFS}
)


class OutputError(SegueError):
    """An output path segue refuses to write, or could not write.

    The message reads ``PATH: REASON``; ``path`` and ``reason`` hold the two parts.
    """

    def __init__(self, path: PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class Terminated(SystemExit):
    """SIGTERM or SIGHUP, raised in the main thread by :func:`install_signal_cleanup`.

    A :class:`SystemExit` (exit status 128 + signal number, as a shell reports a killed job), so
    every ``with atomic_open``/``atomic_dir`` block on the way out removes its temporary.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(128 + signum)


# signals -------------------------------------------------------------------------------------
def _raise_terminated(signum: int, frame: Any) -> None:
    signal.signal(signum, signal.SIG_DFL)  # a second signal kills at once, as without us
    raise Terminated(signum)


def install_signal_cleanup(
    signals: Iterable[int] = (signal.SIGTERM, signal.SIGHUP),
) -> list[int]:
    """Make SIGTERM and SIGHUP raise :class:`Terminated` so temporaries are cleaned up.

    Installed only for signals that still have their default action (a handler someone else set,
    or ``SIG_IGN`` as under ``nohup``, is kept) and only from the main thread; calling it again is
    harmless. The exception is raised in the main thread between two Python operations, so a
    long native call (a matrix inverse) finishes first. Returns the signals it installed.
    """
    if threading.current_thread() is not threading.main_thread():
        return []
    installed = []
    for sig in signals:
        current = signal.getsignal(sig)
        if current is _raise_terminated:
            installed.append(sig)
        elif current == signal.SIG_DFL:
            signal.signal(sig, _raise_terminated)
            installed.append(sig)
    return installed


@contextlib.contextmanager
def signal_cleanup(
    signals: Iterable[int] = (signal.SIGTERM, signal.SIGHUP),
) -> Iterator[None]:
    """Run the block with :func:`install_signal_cleanup`; on SIGTERM/SIGHUP, die of the signal.

    The signal becomes :class:`Terminated`, which unwinds the block (every ``atomic_open`` and
    ``atomic_dir`` removes its temporary on the way out); then the process kills itself with the
    same signal, default action restored, so its parent sees what it saw without the handler (a
    shell prints "Terminated", systemd counts a clean stop, ``uvicorn`` shutting down gracefully
    and re-raising the signal ends the same way). Meant for the command's entry point::

        with signal_cleanup():
            app()
    """
    install_signal_cleanup(signals)
    try:
        yield
    except Terminated as exc:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        signal.signal(exc.signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {exc.signum})
        os.kill(os.getpid(), exc.signum)
        raise  # only if the signal did not end the process


# small helpers -------------------------------------------------------------------------------
def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` would race other threads)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@functools.lru_cache(maxsize=1)
def _host_tag() -> str:
    """8 hex digits naming this host and pid namespace: pids are only compared within it."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return hashlib.sha1(f"{socket.gethostname()}\0{namespace}".encode()).hexdigest()[:8]


def _stem(name: str) -> str:
    while len(os.fsencode(name)) > _MAX_STEM_BYTES:
        name = name[:-1]
    return name


def _temp_prefix(name: str) -> str:
    return f".{_stem(name)}.{os.getpid()}-{_host_tag()}."


def _lstat(path: Path) -> os.stat_result | None:
    """``os.lstat``, None when nothing is there; other errors (EACCES) as :class:`OutputError`."""
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # NotADirectory: a parent is a file
        return None
    except OSError as exc:
        raise OutputError(path, f"cannot inspect it: {exc.strerror}") from None


def _alive(pid: int) -> bool:
    """Whether process ``pid`` (of this host and pid namespace) may still be running."""
    if pid <= 0 or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: someone else's live process
        return True
    with contextlib.suppress(OSError, IndexError):  # a zombie no longer writes
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    return True


def _remove(path: Path) -> None:
    """Remove a file, a link or a whole directory (never following a link)."""
    st = _lstat(path)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)


def clean_stale(target: PathLike) -> list[Path]:
    """Remove the temporaries that dead processes left beside ``target``; return what went.

    Recognised names, all in ``target``'s folder: ``.NAME.PID-HOST.XXXXXXXX.tmp`` (a file or
    directory being written) and ``.NAME.PID-HOST.XXXXXXXX.old`` (the previous output during a
    non-atomic swap), removed when ``PID`` is not running on this host (a temporary of another
    host, whose pids cannot be checked, only after :data:`STALE_AGE_S`); ``.NAME.XXXXXXXX.tmp``
    (an earlier segue's name, without a pid), removed after :data:`STALE_AGE_S`; and
    ``.NAME.old-PID`` (what an earlier segue replaced), removed when ``PID`` is dead and it is
    an empty directory or one segue wrote (earlier versions replaced anything, so it may be the
    user's own file or folder, which is kept). When a
    run was killed between the two renames of a swap, ``target`` is missing and its previous
    version is moved back instead of being removed. A live process's temporaries are kept.
    """
    target = Path(target)
    parent, name = target.parent, target.name
    stem = re.escape(_stem(name))
    ours = re.compile(rf"\.{stem}\.(\d+)-([0-9a-f]{{8}})\.{_RANDOM}\.(tmp|old)")
    legacy_tmp = re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{8}}\.tmp")
    legacy_old = re.compile(rf"\.{re.escape(name)}\.old-(\d+)")
    try:
        entries = [e.name for e in os.scandir(parent) if e.name.startswith(".")]
    except OSError:
        return []
    with contextlib.suppress(OutputError):  # a folder we may list but not search: leave it
        return _clean(target, entries, ours, legacy_tmp, legacy_old)
    return []


def _clean(
    target: Path,
    entries: list[str],
    ours: re.Pattern[str],
    legacy_tmp: re.Pattern[str],
    legacy_old: re.Pattern[str],
) -> list[Path]:
    parent = target.parent
    now = time.time()
    stale_tmp: list[Path] = []
    stale_old: list[Path] = []
    legacy: list[Path] = []
    for entry in entries:
        path = parent / entry
        match = ours.fullmatch(entry)
        if match is not None:
            pid, tag, what = int(match.group(1)), match.group(2), match.group(3)
            if tag == _host_tag():
                dead = not _alive(pid)
            else:
                st = _lstat(path)
                dead = st is not None and now - st.st_mtime > STALE_AGE_S
            if dead:
                (stale_old if what == "old" else stale_tmp).append(path)
            continue
        match = legacy_old.fullmatch(entry)
        if match is not None:
            if not _alive(int(match.group(1))):
                legacy.append(path)
            continue
        if legacy_tmp.fullmatch(entry):
            st = _lstat(path)
            if st is not None and now - st.st_mtime > STALE_AGE_S:
                stale_tmp.append(path)
    removed = []
    for path in stale_old + legacy:
        if _lstat(target) is None:
            with contextlib.suppress(OSError):
                os.rename(path, target)  # the only copy of the previous output: put it back
                continue
        if path in legacy and not _disposable(path):
            continue  # an earlier segue replaced whatever was there: maybe the user's own data
        _remove(path)
        removed.append(path)
    for path in stale_tmp:
        _remove(path)
        removed.append(path)
    return removed


def _is_empty(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return next(entries, None) is None


def _disposable(path: Path) -> bool:
    """An empty directory, or one segue wrote (never a file: that was the user's)."""
    st = _lstat(path)
    if st is None or not stat.S_ISDIR(st.st_mode):
        return False
    with contextlib.suppress(OSError):
        if _is_empty(path):
            return True
    return segue_output_kind(path) is not None


def _is_temporary(name: str, owner: str) -> bool:
    """Whether ``name`` is a temporary that segue leaves beside ``owner`` (in the same folder)."""
    stem = re.escape(_stem(owner))
    return bool(
        re.fullmatch(rf"\.{stem}\.\d+-[0-9a-f]{{8}}\.{_RANDOM}\.(tmp|old)", name)
        or re.fullmatch(rf"\.{re.escape(owner)}\.[a-z0-9_]{{8}}\.tmp", name)
        or re.fullmatch(rf"\.{re.escape(owner)}\.old-\d+", name)
        or re.fullmatch(rf"\.{re.escape(owner)}\.\d+\.tmp", name)  # melon_split's side files
    )


def _format_of(path: Path) -> str | None:
    """The ``format`` of a small JSON document (read from its head when it is large)."""
    st = _lstat(path)
    if st is None or not stat.S_ISREG(st.st_mode):
        return None
    try:
        with open(path, "rb") as fh:
            if st.st_size <= _MAX_DOC_BYTES:
                doc = json.loads(fh.read())
                value = doc.get("format") if isinstance(doc, dict) else None
                return value if isinstance(value, str) else None
            head = _FORMAT_HEAD.match(fh.read(_HEAD_BYTES))
            return None if head is None else head.group(1).decode()
    except (OSError, ValueError):
        return None


def _self_described(path: Path) -> str | None:
    for doc, kinds in _FORMAT_DOCS:
        kind = kinds.get(_format_of(path / doc) or "")
        if kind is not None:
            return kind
    return None


def _marker_kind(path: Path) -> str | None:
    marker = path / MARKER
    st = _lstat(marker)
    if st is None or not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_DOC_BYTES:
        return None
    try:
        doc = json.loads(marker.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != MARKER_FORMAT:
        return None
    kind = doc.get("kind")
    return kind if isinstance(kind, str) and kind else "output"


def _layout(path: Path) -> tuple[str | None, str]:
    """The legacy split layout of ``path`` (or None) and, if it nearly matches one, why not."""
    try:
        entries = {e.name: e.is_dir(follow_symlinks=False) for e in os.scandir(path)}
    except OSError:
        return None, ""
    files = {n for n, is_dir in entries.items() if not is_dir}
    folders = {n for n, is_dir in entries.items() if is_dir}
    near = ""
    for kind, required, optional, required_dirs in _LAYOUTS:
        if not (required <= files and required_dirs <= folders):
            continue
        known = required | optional | required_dirs
        extra = sorted(
            n for n in entries if n not in known and not any(_is_temporary(n, k) for k in known)
        )
        if not extra:
            return kind, ""
        shown = ", ".join(extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
        near = f" (it has the files of a {kind}, but also {shown}, which segue did not write)"
    return None, near


def segue_output_kind(path: PathLike) -> str | None:
    """What segue wrote at the directory ``path``, or None if it is not recognisably segue's.

    ``"model"``, ``"two-stage-model"``, ``"dataset"`` and ``"playlists"`` come from the
    directory's own format document (``manifest.json``, ``config.json``, ``schema.json``); any
    other kind from the ``.segue-output.json`` marker (``"listens-split"``, ``"melon-split"``,
    ``"mpd-split"``, ``"mpd-slices"``, ...); for split folders of earlier versions, from their
    exact layout.
    """
    path = Path(path)
    st = _lstat(path)
    if st is None or not stat.S_ISDIR(st.st_mode):
        return None
    return _marker_kind(path) or _self_described(path) or _layout(path)[0]


def _same_or_inside(inner: str, outer: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def _kept_inside(target: Path, keep: Iterable[PathLike | None]) -> str | None:
    """The first ``keep`` path that is ``target`` or lies inside it."""
    real = os.path.realpath(target)
    items: list[PathLike] = []
    for item in keep:
        if item is None:
            continue
        items.append(item)
        if not os.path.lexists(item) and any(c in str(item) for c in "*?["):
            items.extend(glob.glob(str(item)))  # a pattern: the files it reads
    for item in items:
        with contextlib.suppress(OSError, ValueError):
            if not os.path.lexists(item):
                continue
            if _same_or_inside(os.path.realpath(item), real):
                return str(item)
            if os.path.exists(target) and os.path.samefile(item, target):
                return str(item)
    return None


def _write_failed(exc: BaseException) -> bool:
    """An error of writing the output itself (the disk is full), not of something else."""
    return (
        isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS and exc.filename is None
    ) or isinstance(exc, BrokenPipeError)


def _mkdir_parent(parent: Path, shown: PathLike) -> None:
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(shown, f"cannot create its folder: {parent} is not a directory") from None
    except OSError as exc:
        raise OutputError(shown, f"cannot create its folder {parent}: {exc.strerror}") from None


def _resolve_link(path: Path, shown: PathLike) -> Path:
    """Follow a symlink at ``path`` to the path it names (which may not exist yet)."""
    real = Path(os.path.realpath(path))
    st = _lstat(real)
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise OutputError(shown, "is a symlink that cannot be resolved (a loop?)")
    return real


# files ---------------------------------------------------------------------------------------
def _check_mode(mode: str) -> str | None:
    if not mode.startswith("w") or set(mode) - set("wbt+"):
        raise ValueError(f"atomic_open writes a new file: mode must be 'w' or 'wb', got {mode!r}")
    return None if "b" in mode else "utf-8"


@contextlib.contextmanager
def _direct(path: Path, mode: str, encoding: str | None, shown: PathLike) -> Iterator[IO]:
    """Write straight into a FIFO or device: no temporary, nothing to replace."""
    try:
        fh = open(path, mode, encoding=encoding)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise OutputError(shown, f"cannot open for writing: {exc.strerror}") from None
    try:
        yield fh
    except BaseException as exc:
        with contextlib.suppress(OSError):
            fh.close()
        if _write_failed(exc):
            raise OutputError(shown, f"cannot write: {exc.strerror}") from None  # type: ignore[attr-defined]
        raise
    try:
        fh.close()
    except OSError as exc:
        raise OutputError(shown, f"cannot write: {exc.strerror}") from None


@contextlib.contextmanager
def atomic_open(
    path: PathLike, mode: str = "w", *, keep: Iterable[PathLike | None] = ()
) -> Iterator[IO]:
    """Open ``path`` for writing so that it changes only when the block succeeds.

    A regular file (or a missing one) is written to a temporary sibling
    (``.NAME.PID-HOST.XXXXXXXX.tmp``) renamed over ``path`` at the end; the temporary is removed
    on any exception (SIGTERM included, see :func:`install_signal_cleanup`), temporaries that
    killed runs left beside ``path`` are removed first (:func:`clean_stale`), and missing
    parent folders are created. Text modes write UTF-8.

    Other kinds of ``path``:

    * a symlink is kept and the file it points to is written as above (a dangling link creates
      its target);
    * a FIFO or character device, or a link to a stream of the process (``/dev/stdout``,
      ``/dev/fd/N``, ``/proc/self/fd/N``) even when it leads to a regular file, is opened and
      written in place, with no temporary (a FIFO blocks until a reader opens it, as a shell
      redirection does);
    * a directory, block device or socket, a read-only file, or one of the ``keep`` paths
      (the command's input) raises :class:`OutputError` before anything is written.

    Raises
    ------
    OutputError
        The path is refused (above), its folder cannot be created, or writing it failed for lack
        of space or an I/O error (``ENOSPC`` from ``/dev/full``): ``PATH: reason``.
    """
    encoding = _check_mode(mode)
    shown = path
    target = _absolute(path)
    st = _lstat(target)
    if st is not None and stat.S_ISLNK(st.st_mode):
        if _STREAM_LINK.fullmatch(str(target)):  # /dev/stdout, /dev/fd/N: the stream itself
            with _direct(target, mode, encoding, shown) as fh:
                yield fh
            return
        target = _resolve_link(target, shown)
        st = _lstat(target)
    if st is not None and not stat.S_ISREG(st.st_mode):
        if stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode):
            with _direct(target, mode, encoding, shown) as fh:
                yield fh
            return
        what = (
            "a directory"
            if stat.S_ISDIR(st.st_mode)
            else "a block device"
            if stat.S_ISBLK(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "not a regular file"
        )
        raise OutputError(shown, f"is {what}; refusing to write a file there")
    kept = _kept_inside(target, keep)
    if kept is not None:
        raise OutputError(shown, "is the input; choose another output file")
    if st is not None and not os.access(target, os.W_OK):
        raise OutputError(
            shown,
            f"is read-only (mode {stat.S_IMODE(st.st_mode):04o}); make it writable or choose "
            "another output file",
        )
    _mkdir_parent(target.parent, shown)
    clean_stale(target)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=_temp_prefix(target.name), suffix=".tmp", dir=target.parent
        )
    except OSError as exc:
        raise OutputError(shown, f"cannot create a file beside it: {exc.strerror}") from None
    try:
        permissions = 0o666 & ~_umask() if st is None else stat.S_IMODE(st.st_mode) & 0o777
        try:
            os.fchmod(fd, permissions)  # mkstemp makes 0600
            fh = os.fdopen(fd, mode, encoding=encoding)
        except BaseException:
            os.close(fd)
            raise
        with fh:
            yield fh
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if _write_failed(exc):
            raise OutputError(shown, f"cannot write: {exc.strerror}") from None  # type: ignore[attr-defined]
        if isinstance(exc, OSError) and exc.filename in (tmp, str(target)):
            raise OutputError(shown, f"cannot write: {exc.strerror}") from None
        raise


# directories ---------------------------------------------------------------------------------
def _refusal(target: Path, shown: PathLike, keep: Iterable[PathLike | None]) -> str | None:
    """Why ``atomic_dir`` must not replace ``target`` (None when it may)."""
    st = _lstat(target)
    if st is None:
        return None
    if target.name == "":
        return "is the root directory; choose a new --out"
    cwd = os.path.realpath(os.getcwd())
    if stat.S_ISDIR(st.st_mode) and _same_or_inside(cwd, os.path.realpath(target)):
        return "is the current directory or one of its parents; choose a new --out"
    kept = _kept_inside(target, keep)
    if kept is not None:
        if os.path.samefile(kept, target):
            return "is the input; choose a new --out"
        return f"holds the input {kept}; choose a new --out"
    if not stat.S_ISDIR(st.st_mode):
        what = "a file" if stat.S_ISREG(st.st_mode) else "not a directory"
        return (
            f"refusing to replace it: it is {what}, not a segue output directory; choose a new "
            "--out or remove it"
        )
    try:
        empty = _is_empty(target)
    except OSError as exc:
        return f"cannot read it: {exc.strerror}"
    if empty or _marker_kind(target) or _self_described(target):
        return None
    kind, near = _layout(target)
    if kind is not None:
        return None
    return (
        f"refusing to replace it: it is not a segue output (no {MARKER}){near}; choose a new "
        "--out or remove it"
    )


def _absolute(path: PathLike) -> Path:
    """``path`` made absolute; a last component ``.`` or ``..`` is resolved to a real name."""
    target = Path(path).absolute()
    if target.name in ("", ".", ".."):
        target = Path(os.path.realpath(target))
    return target


def _dir_target(path: PathLike) -> Path:
    target = _absolute(path)
    st = _lstat(target)
    if st is not None and stat.S_ISLNK(st.st_mode):
        target = _resolve_link(target, path)
    return target


def check_output_dir(path: PathLike, *, keep: Iterable[PathLike | None] = ()) -> None:
    """Raise the :class:`OutputError` that :func:`atomic_dir` would raise for ``path``, now.

    For commands that work a long time before writing: call it first, so that a refused
    ``--out`` fails at once instead of after the work.
    """
    reason = _refusal(_dir_target(path), path, [k for k in keep if k is not None])
    if reason is not None:
        raise OutputError(path, reason)


@functools.lru_cache(maxsize=1)
def _renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux renameat2); False where unsupported."""
    func = _renameat2()
    if func is None:
        return False
    if func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(tmp: Path, target: Path) -> None:
    """Move the finished ``tmp`` to ``target``; a previous ``target`` ends up at ``tmp``/removed.

    At every instant ``target`` holds either the previous or the new directory (an atomic
    exchange where the file system supports it; otherwise two renames, undone on failure and
    repaired by the next run's :func:`clean_stale` after a SIGKILL between them).
    """
    if _lstat(target) is None:
        os.rename(tmp, target)
        return
    if _exchange(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)  # now the previous directory
        return
    old = target.with_name(f"{_temp_prefix(target.name)}{secrets.token_hex(4)}.old")
    try:
        os.rename(target, old)
        os.rename(tmp, target)
    except BaseException:
        if _lstat(target) is None and _lstat(old) is not None:
            os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _write_marker(tmp: Path, kind: str | None) -> None:
    from segue import __version__  # here: segue/__init__ imports this module's importers

    if _self_described(tmp) is not None:
        return  # its own format document says what it is
    if kind is None:
        names = os.listdir(tmp)
        slices = names and all(_SLICE_FILE.fullmatch(n) for n in names)
        kind = _layout(tmp)[0] or ("mpd-slices" if slices else "output")
    doc = {
        "format": MARKER_FORMAT,
        "kind": kind,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "segue_version": __version__,
    }
    (tmp / MARKER).write_text(json.dumps(doc) + "\n", encoding="utf-8")


@contextlib.contextmanager
def atomic_dir(
    path: PathLike, *, kind: str | None = None, keep: Iterable[PathLike | None] = ()
) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``path`` only when the block succeeds.

    ``path`` is checked before anything is written, and again before the swap: it may be
    missing, an empty directory or a directory segue wrote (:func:`segue_output_kind`); a
    symlink to a directory is kept and its target replaced. Anything else (a directory of the
    user's, a regular file such as the input, the current directory or one of its parents, a
    directory holding one of the ``keep`` paths) raises :class:`OutputError` and is left as it
    was. The existing directory is kept until the new one is complete, then swapped out in one
    step where the file system allows it.

    The temporary (``.NAME.PID-HOST.XXXXXXXX.tmp``, beside ``path``) is removed on any
    exception, and what killed runs left beside ``path`` is removed first (:func:`clean_stale`).
    The new directory gets the permission bits of the one it replaces (``0777 & ~umask`` when
    new) and, unless its own ``manifest.json``/``config.json``/``schema.json`` says what it is,
    a ``.segue-output.json`` marker naming ``kind`` (guessed from the layout when not given), so
    a later run may replace it.
    """
    shown = path
    target = _dir_target(path)
    keep = [k for k in keep if k is not None]
    clean_stale(target)  # first: it may move back a previous version, checked below like any
    reason = _refusal(target, shown, keep)
    if reason is not None:
        raise OutputError(shown, reason)
    _mkdir_parent(target.parent, shown)
    st = _lstat(target)
    permissions = 0o777 & ~_umask() if st is None else stat.S_IMODE(st.st_mode)
    try:
        tmp = Path(
            tempfile.mkdtemp(prefix=_temp_prefix(target.name), suffix=".tmp", dir=target.parent)
        )
    except OSError as exc:
        raise OutputError(shown, f"cannot create a folder beside it: {exc.strerror}") from None
    try:
        with contextlib.suppress(OSError):
            os.chmod(tmp, permissions)  # mkdtemp makes 0700
        yield tmp
        _write_marker(tmp, kind)
        reason = _refusal(target, shown, keep)  # the target may have changed meanwhile
        if reason is not None:
            raise OutputError(shown, reason)
        try:
            _swap_in(tmp, target)
        except OSError as exc:
            raise OutputError(shown, f"cannot replace it: {exc.strerror}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
