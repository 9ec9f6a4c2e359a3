"""The two playlist challenges' submission files: written atomically, read back strictly.

A submission the official scorer rejects wastes a day's attempt, and a lenient reader hides a
broken pipeline until the leaderboard shows it. So the writers refuse to write a file the
scorer would reject, and the readers reject everything the official checkers reject, plus what
can never score (a seed track recommended back), each time naming the file and the line
(MPD) or the playlist id and its position (Melon), as :class:`~segue.exceptions.DataFormatError`.
Both writers go through :func:`segue._atomic.atomic_open`: a crash leaves the old file or
none, never half of one.

Spotify Million Playlist Dataset / RecSys Challenge 2018 (CSV, optionally gzipped)
    Rules followed (the challenge's "Submission Format" section, RecSys Challenge 2018 and its
    AIcrowd continuation): fields are comma separated, with optional whitespace around the
    comma; a line whose first non-blank character is ``#`` is a comment; blank lines are
    ignored; the first other line is ``team_info, TEAM NAME, EMAIL`` (AIcrowd) or, in the 2018
    challenge, with the track (``main`` or ``creative``) as an extra field, written by segue as
    ``team_info,TEAM NAME,main,EMAIL`` (the order used by a submitted 2018 entry,
    proto-n/recsys-challenge-2018 ``9_format_and_fix.py``; the reader also accepts the track
    before the team name); then one ``pid, trackuri_1, ..., trackuri_500`` line per challenge
    playlist: exactly 500 distinct tracks, none of them a seed track, and every challenge
    playlist present. A path ending in ``.gz`` is written gzipped (the challenge asks for a
    ``.csv.gz``) and a gzipped file is read whatever its name.

Kakao Arena Melon Playlist Continuation (``results.json``)
    A JSON list of ``{"id": int, "songs": [100 ints], "tags": [10 strings]}``, UTF-8 with
    non-ASCII tags kept as they are. The official ``evaluate.py``
    (kakao-arena/melon-playlist-continuation) rejects a file whose set of ids differs from the
    answers', a playlist without exactly 100 songs or 10 tags, and repeated songs or tags in a
    playlist. It does not reject a song or tag that the question already gave, which can never
    be an answer; segue rejects it too, as well as a repeated playlist id (the official code
    would score it twice).
"""

from __future__ import annotations

import gzip
import io
import json
import operator
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

from segue._atomic import atomic_open
from segue.exceptions import DataFormatError, ParameterError

__all__ = [
    "MelonResult",
    "read_melon_results",
    "read_mpd_submission",
    "write_melon_results",
    "write_mpd_submission",
]

MPD_TRACKS = ("main", "creative")
_TRACK_URI = re.compile(r"spotify:track:[0-9A-Za-z]{22}")
_TRACK_URI_LIST = re.compile(r"spotify:track:[0-9A-Za-z]{22}(?:,spotify:track:[0-9A-Za-z]{22})*")
_PID = re.compile(r"[0-9]+")
_EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+")
_GZIP_MAGIC = b"\x1f\x8b"

PathLike = str | os.PathLike[str]


def _shown(values: Iterable[Any], total: int, limit: int = 5) -> str:
    head = ", ".join(repr(v) for v in list(values)[:limit])
    return head + (f" and {total - limit} more" if total > limit else "")


# --------------------------------------------------------------------------------------------
# Spotify MPD
# --------------------------------------------------------------------------------------------


def _check_team_field(value: str, what: str) -> str:
    if not value or value != value.strip() or any(c in value for c in ",\r\n"):
        raise ParameterError(
            f"{what} must be non-empty, without commas, line breaks or surrounding spaces: "
            f"{value!r}"
        )
    return value


def _write_through(binary: IO[bytes], write: Callable[[IO[str]], None]) -> None:
    """Run ``write`` on a UTF-8 text view of ``binary``, leaving ``binary`` open."""
    fh = io.TextIOWrapper(binary, encoding="utf-8", newline="\n")
    try:
        write(fh)
    finally:
        fh.detach()  # flushes; closing stays with the owner of ``binary``


def _write_text(path: PathLike, write: Callable[[IO[str]], None]) -> Path:
    """Write through ``atomic_open``; gzip (with a fixed timestamp) when the name ends in .gz."""
    path = Path(path)
    with atomic_open(path, "wb") as raw:
        if path.suffix == ".gz":
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as gz:
                _write_through(gz, write)
        else:
            _write_through(raw, write)
    return path


def write_mpd_submission(
    path: PathLike,
    rows: Iterable[tuple[int, Sequence[str]]],
    *,
    team_name: str = "segue",
    email: str = "segue@example.org",
    track: str | None = "main",
    n: int | None = 500,
) -> Path:
    """Write an MPD challenge submission, atomically (gzipped when ``path`` ends in ``.gz``).

    Parameters
    ----------
    path
        The file to write; its folder is created.
    rows
        ``(pid, [track_uri, ...])`` per challenge playlist, best track first.
    team_name, email
        The ``team_info`` fields.
    track
        ``"main"`` or ``"creative"`` (RecSys Challenge 2018: ``team_info,TEAM,main,EMAIL``), or
        ``None`` for the AIcrowd form without it (``team_info,TEAM,EMAIL``).
    n
        The exact number of tracks each line must hold (500), or ``None`` not to check it.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ParameterError
        A line the official checker would reject (not exactly ``n`` tracks, a repeated track, a
        track that is not a ``spotify:track:`` URI, a pid that is not a non-negative integer, a
        repeated pid) or a malformed ``team_info`` field. Nothing is written then.
    """
    _check_team_field(team_name, "team_name")
    _check_team_field(email, "email")
    if not _EMAIL.fullmatch(email):
        raise ParameterError(f"email does not look like an address: {email!r}")
    if track is not None and track not in MPD_TRACKS:
        raise ParameterError(f"track must be 'main', 'creative' or None, got {track!r}")
    head = ["team_info", team_name] + ([track] if track is not None else []) + [email]

    def write(fh: IO[str]) -> None:
        fh.write(",".join(head) + "\n")
        seen: set[int] = set()
        for number, (pid, uris) in enumerate(rows):
            pid = _as_pid(pid, number)
            if pid in seen:
                raise ParameterError(f"row {number}: pid {pid} has a second row")
            seen.add(pid)
            uris = [str(u) for u in uris]
            if n is not None and len(uris) != n:
                raise ParameterError(f"pid {pid}: {len(uris)} tracks, the challenge needs {n}")
            if uris and not _TRACK_URI_LIST.fullmatch(",".join(uris)):
                bad = next(u for u in uris if not _TRACK_URI.fullmatch(u))
                raise ParameterError(f"pid {pid}: not a spotify:track: URI: {bad!r}")
            repeat = _first_repeat(uris)
            if repeat is not None:
                raise ParameterError(f"pid {pid}: track {repeat[1]} is listed twice")
            fh.write(",".join([str(pid), *uris]) + "\n")

    return _write_text(path, write)


def _as_pid(value: Any, number: int) -> int:
    """A non-negative int pid from an int-like value (NumPy integers included)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        pid = operator.index(value)
    except TypeError:
        raise ParameterError(f"row {number}: pid must be an integer, got {value!r}") from None
    if pid < 0:
        raise ParameterError(f"row {number}: pid must be non-negative, got {pid}")
    return pid


def _first_repeat(values: Sequence[Any]) -> tuple[int, Any] | None:
    """``(1-based position, value)`` of the first value seen before, or None."""
    seen: set[Any] = set()
    for position, value in enumerate(values, start=1):
        if value in seen:
            return position, value
        seen.add(value)
    return None


def _open_text_lines(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed when it starts with the gzip magic number."""
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rb")
    return open(path, "rb")


def _parse_team_info(fields: list[str], path: Path, line: int) -> None:
    """Accept ``team_info, NAME, EMAIL`` and ``team_info, NAME, TRACK, EMAIL`` (either order)."""
    if fields[0] != "team_info":
        raise DataFormatError(
            f"the first line that is not blank or a comment must start with 'team_info', "
            f"got {fields[0][:40]!r}",
            path=path,
            line=line,
        )
    rest = fields[1:]
    if len(rest) == 3:
        tracks = [i for i in (0, 1) if rest[i] in MPD_TRACKS]
        if not tracks:
            raise DataFormatError(
                f"team_info has 4 fields but none of the team fields is the track "
                f"('main' or 'creative'): {rest}",
                path=path,
                line=line,
            )
        # the track is whichever of the two is 'main'/'creative'; both are: segue's order
        name = rest[1 - tracks[0]] if len(tracks) == 1 else rest[0]
        email = rest[2]
    elif len(rest) == 2:
        name, email = rest
    else:
        raise DataFormatError(
            f"team_info must be 'team_info, TEAM NAME, EMAIL' (or with the track 'main' or "
            f"'creative' after the team name), got {len(fields)} fields",
            path=path,
            line=line,
        )
    if not name:
        raise DataFormatError("team_info has an empty team name", path=path, line=line)
    if not _EMAIL.fullmatch(email):
        raise DataFormatError(
            f"team_info: the contact email {email!r} is not an address", path=path, line=line
        )


def read_mpd_submission(
    path: PathLike,
    *,
    expected_pids: Collection[int] | None = None,
    n: int = 500,
    seeds: Mapping[int, Collection[str]] | None = None,
) -> dict[int, list[str]]:
    """Read an MPD challenge submission, rejecting everything the official checker rejects.

    Parameters
    ----------
    path
        The CSV file, plain or gzipped.
    expected_pids
        The challenge playlists: every one must have a line, and no other pid may. ``None``
        skips both checks.
    n
        The exact number of tracks per line (500).
    seeds
        The seed tracks of each pid (the challenge set); recommending one is an error.

    Returns
    -------
    dict[int, list[str]]
        pid -> its track URIs, best first, in file order.

    Raises
    ------
    DataFormatError
        Naming the file and line: no ``team_info`` line or a malformed one; a pid that is not
        a non-negative integer, is repeated, or is not expected; a line without exactly ``n``
        tracks, with an empty field, a repeated track, a seed track, or a field that is not a
        ``spotify:track:`` URI; invalid UTF-8 or gzip data. Without a line: a missing file,
        an empty one, or expected pids without a line (their count and the first few).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("no such file", path=path)
    expected = None if expected_pids is None else {int(p) for p in expected_pids}
    out: dict[int, list[str]] = {}
    first_line: dict[int, int] = {}
    saw_team = False
    try:
        with _open_text_lines(path) as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    text = raw.decode("utf-8").strip()
                except UnicodeDecodeError as exc:
                    raise DataFormatError(
                        f"not valid UTF-8 ({exc.reason} at byte {exc.start})",
                        path=path,
                        line=number,
                    ) from None
                if not text or text.startswith("#"):
                    continue
                fields = [f.strip() for f in text.split(",")]
                if not saw_team:
                    _parse_team_info(fields, path, number)
                    saw_team = True
                    continue
                pid = _parse_mpd_line(fields, path, number, n, expected, first_line, seeds)
                out[pid] = fields[1:]
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataFormatError(f"cannot read the file: {exc}", path=path) from None
    if not saw_team:
        raise DataFormatError("the file is empty: no team_info line and no playlists", path=path)
    if expected is not None:
        missing = sorted(expected.difference(out))
        if missing:
            raise DataFormatError(
                f"{len(missing)} challenge playlist(s) have no line: pid "
                f"{_shown(missing, len(missing))}",
                path=path,
            )
    return out


def _parse_mpd_line(
    fields: list[str],
    path: Path,
    number: int,
    n: int,
    expected: set[int] | None,
    first_line: dict[int, int],
    seeds: Mapping[int, Collection[str]] | None,
) -> int:
    """Validate one ``pid, uri, ...`` line and return its pid."""
    if fields[0] == "team_info":
        raise DataFormatError("a second team_info line", path=path, line=number)
    if not _PID.fullmatch(fields[0]):
        raise DataFormatError(
            f"the pid must be a non-negative integer, got {fields[0][:40]!r}",
            path=path,
            line=number,
        )
    pid = int(fields[0])
    if pid in first_line:
        raise DataFormatError(
            f"pid {pid} has a second line (the first is line {first_line[pid]})",
            path=path,
            line=number,
        )
    first_line[pid] = number
    if expected is not None and pid not in expected:
        raise DataFormatError(f"pid {pid} is not a challenge playlist", path=path, line=number)
    uris = fields[1:]
    if len(uris) != n:
        raise DataFormatError(
            f"pid {pid} has {len(uris)} tracks, exactly {n} are required", path=path, line=number
        )
    if not _TRACK_URI_LIST.fullmatch(",".join(uris)):
        pos, bad = next((i, u) for i, u in enumerate(uris, 1) if not _TRACK_URI.fullmatch(u))
        what = "an empty field" if not bad else f"{bad[:60]!r} is not a spotify:track: URI"
        raise DataFormatError(f"pid {pid}, track {pos}: {what}", path=path, line=number)
    repeat = _first_repeat(uris)
    if repeat is not None:
        raise DataFormatError(
            f"pid {pid}, track {repeat[0]}: {repeat[1]} is listed twice", path=path, line=number
        )
    if seeds is not None:
        given = seeds.get(pid, ())
        bad_seeds = [u for u in uris if u in given]
        if bad_seeds:
            raise DataFormatError(
                f"pid {pid} recommends {len(bad_seeds)} of its seed track(s): "
                f"{_shown(bad_seeds, len(bad_seeds), 3)}",
                path=path,
                line=number,
            )
    return pid


# --------------------------------------------------------------------------------------------
# Kakao Arena Melon
# --------------------------------------------------------------------------------------------


class MelonResult(NamedTuple):
    """The recommended songs and tags of one Melon playlist, best first."""

    songs: list[int]
    tags: list[str]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _entry_problem(
    entry: Any, n_songs: int | None, n_tags: int | None
) -> tuple[Any, str | None, MelonResult | None]:
    """``(id, problem, result)``: what is wrong with one entry (``None`` when nothing is)."""
    if not isinstance(entry, Mapping):
        return None, f"is a JSON {type(entry).__name__}, not an object", None
    pid = entry.get("id")
    for key in ("id", "songs", "tags"):
        if key not in entry:
            return pid, f"has no {key!r} key", None
    if not _is_int(pid):
        return pid, f"the id must be an integer, got {pid!r}", None
    songs, tags = entry["songs"], entry["tags"]
    if not isinstance(songs, list) or not all(_is_int(s) for s in songs):
        return pid, "'songs' must be a list of integer song ids", None
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return pid, "'tags' must be a list of strings", None
    if n_songs is not None and len(songs) != n_songs:
        return pid, f"has {len(songs)} songs, exactly {n_songs} are required", None
    if n_tags is not None and len(tags) != n_tags:
        return pid, f"has {len(tags)} tags, exactly {n_tags} are required", None
    for kind, values in (("song", songs), ("tag", tags)):
        repeat = _first_repeat(values)
        if repeat is not None:
            return pid, f"{kind} {repeat[1]!r} is recommended twice", None
    return pid, None, MelonResult(list(songs), list(tags))


def _where(pid: Any, position: int) -> str:
    return f"playlist id {pid!r} (entry {position})" if pid is not None else f"entry {position}"


def write_melon_results(
    path: PathLike,
    rows: Iterable[Mapping[str, Any]],
    *,
    n_songs: int | None = 100,
    n_tags: int | None = 10,
) -> Path:
    """Write a Melon ``results.json`` atomically: ``[{"id", "songs", "tags"}, ...]``, UTF-8.

    Parameters
    ----------
    path
        The file to write; its folder is created.
    rows
        One mapping per playlist with ``id`` (int), ``songs`` (int song ids, best first) and
        ``tags`` (strings). NumPy integers are accepted and written as JSON integers.
    n_songs, n_tags
        The exact list lengths the evaluator requires (100 and 10); ``None`` skips the check.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ParameterError
        An entry the official evaluator would reject, or a repeated playlist id. Nothing is
        written then.
    """
    entries: list[dict[str, Any]] = []
    seen: set[int] = set()
    for position, row in enumerate(rows):
        entry: Any = row
        if isinstance(row, Mapping):
            entry = {key: row[key] for key in ("id", "songs", "tags") if key in row}
            if "id" in entry:
                entry["id"] = _plain_int(entry["id"])
            for key, convert in (("songs", _plain_int), ("tags", _plain_str)):
                if key in entry and not isinstance(entry[key], str | bytes | Mapping):
                    entry[key] = [convert(v) for v in entry[key]]
        pid, problem, result = _entry_problem(entry, n_songs, n_tags)
        if problem is None and pid in seen:
            problem = "is a second entry for this id"
        if problem is not None or result is None:
            raise ParameterError(f"{_where(pid, position)} {problem}")
        seen.add(pid)
        entries.append({"id": pid, "songs": result.songs, "tags": result.tags})

    def write(fh: IO[str]) -> None:
        json.dump(entries, fh, ensure_ascii=False)
        fh.write("\n")

    return _write_text(path, write)


def _plain_int(value: Any) -> Any:
    """NumPy integers -> int (JSON cannot hold them); anything else unchanged."""
    if isinstance(value, np.integer):
        return int(value)
    return value


def _plain_str(value: Any) -> Any:
    """NumPy strings -> str; anything else unchanged."""
    return str(value) if isinstance(value, str) else value


def read_melon_results(
    path: PathLike,
    *,
    expected_ids: Collection[int] | None = None,
    n_songs: int = 100,
    n_tags: int = 10,
    questions: Mapping[int, tuple[Collection[int], Collection[str]]] | None = None,
) -> dict[int, MelonResult]:
    """Read a Melon ``results.json``, rejecting what the Kakao Arena evaluator rejects.

    Parameters
    ----------
    path
        The JSON file.
    expected_ids
        The playlist ids that must be answered, all of them and no others. Defaults to the
        keys of ``questions`` when that is given; ``None`` without ``questions`` skips it.
    n_songs, n_tags
        The exact number of songs and tags per playlist (100 and 10).
    questions
        id -> (songs given, tags given) of each question; returning one of them is an error.

    Returns
    -------
    dict[int, MelonResult]
        id -> its songs and tags, best first, in file order.

    Raises
    ------
    DataFormatError
        Naming the file and the playlist (``playlist id X (entry N)``, ``N`` the 0-based
        position in the list; ``line`` is set only for a JSON syntax error): invalid JSON or
        UTF-8; not a list; an entry that is not an object or lacks ``id``, ``songs`` or
        ``tags``; a non-integer id or song; a tag that is not a string; not exactly ``n_songs``
        songs or ``n_tags`` tags; a repeated song or tag; a repeated or unexpected id; a song or
        tag the question gave; expected ids without an entry (count and first few).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("no such file", path=path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            f"not valid UTF-8 ({exc.reason} at byte {exc.start})", path=path
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            f"not valid JSON: {exc.msg} (column {exc.colno})", path=path, line=exc.lineno
        ) from None
    if not isinstance(data, list):
        raise DataFormatError(
            f"the results must be a JSON list of playlists, got a {type(data).__name__}",
            path=path,
        )
    if expected_ids is None and questions is not None:
        expected_ids = questions.keys()
    expected = None if expected_ids is None else set(expected_ids)
    out: dict[int, MelonResult] = {}
    where_first: dict[int, int] = {}
    for position, entry in enumerate(data):
        pid, problem, result = _entry_problem(entry, n_songs, n_tags)
        if problem is None and pid in where_first:
            problem = f"is a second entry for this id (the first is entry {where_first[pid]})"
        if problem is None and expected is not None and pid not in expected:
            problem = "is not a question playlist"
        if problem is None and questions is not None and result is not None:
            problem = _given_back(result, questions.get(pid))
        if problem is not None or result is None:
            raise DataFormatError(f"{_where(pid, position)} {problem}", path=path)
        where_first[pid] = position
        out[pid] = result
    if expected is not None:
        missing = sorted(expected.difference(out), key=repr)
        if missing:
            raise DataFormatError(
                f"{len(missing)} question playlist(s) have no entry: id "
                f"{_shown(missing, len(missing))}",
                path=path,
            )
    return out


def _given_back(
    result: MelonResult, question: tuple[Collection[int], Collection[str]] | None
) -> str | None:
    if question is None:
        return None
    given_songs, given_tags = question
    songs = [s for s in result.songs if s in given_songs]
    if songs:
        return f"recommends {len(songs)} song(s) the question gave: {_shown(songs, len(songs), 3)}"
    tags = [t for t in result.tags if t in given_tags]
    if tags:
        return f"recommends {len(tags)} tag(s) the question gave: {_shown(tags, len(tags), 3)}"
    return None
