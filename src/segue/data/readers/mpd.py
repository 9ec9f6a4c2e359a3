"""Spotify Million Playlist Dataset (MPD) files and the RecSys Challenge 2018 challenge set.

The MPD ships as 1,000 JSON "slice" files (``mpd.slice.0-999.json`` ... ``mpd.slice.999000-
999999.json``), each ``{"info": {...}, "playlists": [...]}`` with 1,000 playlists; the
challenge set (``challenge_set.json``) has the same top-level shape, with incomplete playlists
that may lack a ``name`` and carry ``num_holdouts`` / ``num_samples``. Copies found in the wild
are often JSON Lines instead (one playlist object per line, often xz or gzip compressed) and drop
optional fields. This module reads all of these, because models should not care which one a
user has:

- :func:`iter_mpd_playlists` yields validated playlist dicts, one at a time, from a folder of
  slices (sorted by the slice's first pid; a folder whose slices are in ``data/`` works too), a
  glob pattern, one slice or challenge-set file, or a JSON Lines file (``.jsonl``, ``.ndjson``,
  optionally ``.xz`` / ``.gz`` / ``.bz2`` compressed; a ``.json`` file whose first line is a
  whole playlist object is read as JSON Lines too).
- :func:`read_mpd` returns :class:`~segue.data.playlists.Playlists` (everything in memory: fine
  for a challenge set or a few hundred slices).
- :func:`import_mpd` streams any size (the full MPD: 1M playlists, 66M entries) into the
  directory format of :meth:`Playlists.save <segue.data.playlists.Playlists.save>`, holding one
  slice (or 1,000 JSON Lines playlists) of entries at a time plus a dict of the distinct tracks.

What is required, what is optional
----------------------------------
Every playlist needs an integer ``pid`` (unique over all files) and every track a non-empty
``track_uri``; ``tracks`` may be missing or empty (a title-only challenge playlist). All other
fields are optional and type-checked when present (``null`` counts as absent): ``name``,
``description`` (strings), ``num_followers``, ``modified_at``, ``num_holdouts``,
``num_samples``, ``num_tracks`` (integers), ``collaborative`` (``true``/``false`` or the strings
``"true"``/``"false"`` the MPD uses); per track ``pos`` (a non-negative integer, unique in its
playlist), ``duration_ms`` (integer), ``artist_name``, ``artist_uri``, ``track_name``,
``album_uri``, ``album_name`` (strings). Unknown fields are ignored (and kept in the dicts that
:func:`iter_mpd_playlists` yields).

The tables
----------
``playlists``: ``pid``, ``name`` (null when absent) and those of ``description``,
``num_followers``, ``modified_at``, ``collaborative`` (bool), ``num_holdouts``, ``num_samples``
that at least one playlist has. ``entries``: ``pid``, ``pos``, ``track`` (the ``track_uri``);
``pos`` is the entry's order in the file (0, 1, 2, ...), because a challenge playlist with
random seeds has gaps in its ``pos`` values. ``tracks``: ``track`` plus those of
``track_name``, ``artist``, ``artist_name``, ``album``, ``album_name``, ``duration_ms`` that
at least one track has; a track's metadata is the first seen.

``artist`` is the ``artist_uri``. When a file has no ``artist_uri`` (common in trimmed copies,
such as the 7,071-playlist JSON Lines file of popular playlists), it is ``"name:"`` plus the
``artist_name``, so "same artist" features and the challenge's artist-level credit still work
(two artists who share a name are merged, which is rare). ``album`` follows the same rule with
``"name:ARTIST_NAME/ALBUM_NAME"``: album titles such as "Greatest Hits" are shared by many
artists, so the artist name is part of the key (``"name:/ALBUM_NAME"`` without an artist name).

Errors raise :class:`~segue.exceptions.DataFormatError` naming the file, the playlist
(``playlists[3] (pid 1003)`` in a slice, ``pid 1003`` plus the line number in JSON Lines) and
the track (``tracks[5]``, the 0-based index in the playlist): not valid JSON (with json's line
and column; nested too deeply), not UTF-8, a corrupt compressed file, a missing or non-integer
``pid``, a missing ``track_uri``, a field of the wrong type, an integer outside the 64-bit
range, a duplicate ``pid``, a negative ``pid`` in a challenge set (the submission format has
none).

Bounds (:mod:`segue.data.readers._limits`): ``track_uri``, ``artist_uri`` and ``album_uri``
are ids: over 1,000 characters or holding a NUL character, they are an error. ``name``,
``description``, ``track_name``, ``artist_name`` and ``album_name`` are text: longer than
1,000 characters, they are cut to 1,000 (in the tables and in the dicts
:func:`iter_mpd_playlists` yields) and one warning per file says how many were cut. A string
holding a lone surrogate (such as U+D800, which JSON allows) is an error: it is not text.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import json
import lzma
import os
import re
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from segue._atomic import atomic_dir
from segue.data.playlists import SCHEMA_NAME, SCHEMA_VERSION, Playlists, track_categorical
from segue.data.readers._json import parse_json
from segue.data.readers._limits import MAX_TEXT_CHARS, bad_id_reason, bad_text_reason, warn_cut
from segue.exceptions import DataFormatError

__all__ = [
    "Progress",
    "import_mpd",
    "iter_mpd_playlists",
    "list_mpd_files",
    "read_challenge_set",
    "read_mpd",
]

Progress = Callable[[int], None]
"""Called with the number of playlists read since the last call (add them up for a total)."""

BATCH_PLAYLISTS = 1000
"""Playlists per batch: one MPD slice, and one Parquet row group in :func:`import_mpd`."""

_SLICE_NAME = re.compile(r"^mpd\.slice\.(\d+)-(\d+)\.json(\.(xz|gz|bz2))?$")
_LINES_SUFFIXES = (".jsonl", ".ndjson")
_COMPRESSION = {".xz": lzma.open, ".lzma": lzma.open, ".gz": gzip.open, ".bz2": bz2.open}
_DECOMPRESS_ERRORS = (lzma.LZMAError, EOFError, gzip.BadGzipFile, zlib.error, OSError)
_INT64 = (-(2**63), 2**63 - 1)

# Playlist table: (column, arrow type); pid and name always, the others when some playlist has them.
_PLAYLIST_COLUMNS = (
    ("pid", pa.int64()),
    ("name", pa.string()),
    ("description", pa.string()),
    ("num_followers", pa.int64()),
    ("modified_at", pa.int64()),
    ("collaborative", pa.bool_()),
    ("num_holdouts", pa.int64()),
    ("num_samples", pa.int64()),
)
_ALWAYS = ("pid", "name")
_PLAYLIST_SCHEMA = pa.schema(_PLAYLIST_COLUMNS)
_ENTRY_SCHEMA = pa.schema([("pid", pa.int64()), ("pos", pa.int32()), ("track", pa.string())])
_TRACK_COLUMNS = (
    ("track", pa.string()),
    ("track_name", pa.string()),
    ("artist", pa.string()),
    ("artist_name", pa.string()),
    ("album", pa.string()),
    ("album_name", pa.string()),
    ("duration_ms", pa.int64()),
)

# Optional fields and their JSON types (None, i.e. null, always counts as absent).
_PLAYLIST_TYPES: dict[str, type] = {
    "name": str,
    "description": str,
    "num_followers": int,
    "modified_at": int,
    "num_holdouts": int,
    "num_samples": int,
    "num_tracks": int,
}
_TRACK_TYPES: dict[str, type] = {
    "pos": int,
    "duration_ms": int,
    "artist_name": str,
    "artist_uri": str,
    "track_name": str,
    "album_uri": str,
    "album_name": str,
}
_TRACK_IDS = frozenset({"artist_uri", "album_uri"})  # the other string fields are text
_TEXT_FIELDS = ("name", "description")
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    float: "a number",
    dict: "an object",
    list: "a list",
    type(None): "null",
}


def _type_name(value: object) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _found(value: object) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"found {_type_name(value)} {text}" if value is not None else "found null"


# files ----------------------------------------------------------------------------------------
def _slice_key(path: Path) -> tuple[int, int, str]:
    match = _SLICE_NAME.match(path.name)
    return (0, int(match.group(1)), path.name) if match else (1, 0, path.name)


def _slices_in(folder: Path) -> list[Path]:
    return [f for f in folder.iterdir() if f.is_file() and _SLICE_NAME.match(f.name)]


def list_mpd_files(path: str | os.PathLike[str]) -> list[Path]:
    """The files :func:`iter_mpd_playlists` reads for ``path``, in reading order.

    A folder gives its ``mpd.slice.START-END.json`` files (or those of its ``data/`` subfolder,
    the layout of the MPD download), sorted by ``START``; a pattern with ``*``, ``?`` or ``[``
    gives the matching files (slices sorted by ``START``, then the rest by name); a file gives
    itself. Handy to size a progress bar (an MPD slice holds 1,000 playlists).

    Raises
    ------
    DataFormatError
        Nothing exists at ``path``, the folder has no slice files, or the pattern matches none.
    """
    p = Path(path)
    if p.is_dir():
        files = _slices_in(p)
        if not files and (p / "data").is_dir():
            files = _slices_in(p / "data")
        if not files:
            raise DataFormatError("no mpd.slice.START-END.json files in this folder", path=p)
    elif p.is_file():
        return [p]
    elif any(c in str(path) for c in "*?["):
        files = [Path(f) for f in glob.glob(str(path)) if Path(f).is_file()]
        if not files:
            raise DataFormatError("no file matches this pattern", path=str(path))
    else:
        raise DataFormatError("no such file or folder", path=p)
    return sorted(files, key=_slice_key)


def _open(path: Path) -> IO[bytes]:
    opener = _COMPRESSION.get(path.suffix.lower())
    return opener(path, "rb") if opener is not None else open(path, "rb")


def _base_name(path: Path) -> str:
    name = path.name.lower()
    for suffix in _COMPRESSION:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@contextmanager
def _decompress_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except DataFormatError:
        raise
    except _DECOMPRESS_ERRORS as exc:
        what = path.suffix.lower().lstrip(".")
        raise DataFormatError(f"cannot read the {what} file: {exc}", path=path) from None


def _is_json_lines(path: Path) -> bool:
    """JSON Lines by name (``.jsonl``), or when the first line alone is a playlist object."""
    if _base_name(path).endswith(_LINES_SUFFIXES):
        return True
    with _decompress_errors(path), _open(path) as fh:
        for raw in fh:
            if raw.strip():
                try:
                    first = json.loads(raw)
                except (ValueError, UnicodeDecodeError, RecursionError):
                    return False  # the document reader reports it, with its reason
                return isinstance(first, dict) and "playlists" not in first
    return False


# validation -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Where:
    """Where a playlist came from: file, JSON Lines line number, index in the file."""

    path: Path
    line: int | None
    index: int

    def label(self, pid: object = None) -> str:
        pid_text = "" if pid is None else f"pid {pid}"
        if self.line is not None:  # the line number already says where
            return pid_text or f"playlist {self.index}"
        return f"playlists[{self.index}]" + (f" ({pid_text})" if pid_text else "")

    def error(self, reason: str, pid: object = None) -> DataFormatError:
        return DataFormatError(f"{self.label(pid)}: {reason}", path=self.path, line=self.line)


def _check_text(obj: dict[str, Any], key: str, label: str, where: _Where, pid: object) -> int:
    """Check the text field ``obj[key]`` (a string); cut it when too long. 1 if it was cut."""
    value = obj[key]
    reason = bad_text_reason(value, label)
    if reason is not None:
        raise where.error(reason, pid)
    if len(value) > MAX_TEXT_CHARS:
        obj[key] = value[:MAX_TEXT_CHARS]
        return 1
    return 0


def _check_playlist(obj: object, where: _Where) -> int:
    """Raise :class:`DataFormatError` (naming playlist and track) when ``obj`` is malformed.

    Text fields longer than ``MAX_TEXT_CHARS`` are cut in place; returns how many were.
    """
    if type(obj) is not dict:
        raise where.error(f"expected a playlist object, {_found(obj)}")
    pid = obj.get("pid")
    if pid is None:
        raise where.error("missing 'pid'")
    if type(pid) is not int:
        raise where.error(f"'pid' must be an integer, {_found(pid)}")
    for key, value in obj.items():
        kind = _PLAYLIST_TYPES.get(key)
        if kind is not None and value is not None:
            if type(value) is not kind:
                raise where.error(f"'{key}' must be {_TYPE_NAMES[kind]}, {_found(value)}", pid)
            if kind is int and not _INT64[0] <= value <= _INT64[1]:
                raise where.error(f"'{key}' {value} is out of the 64-bit range", pid)
    if not _INT64[0] <= pid <= _INT64[1]:
        raise where.error(f"'pid' {pid} is out of the 64-bit range")
    cut = 0
    for key in _TEXT_FIELDS:
        if type(obj.get(key)) is str:
            cut += _check_text(obj, key, f"'{key}'", where, pid)
    collaborative = obj.get("collaborative")
    if collaborative is not None and not (
        type(collaborative) is bool or collaborative in ("true", "false")
    ):
        raise where.error(f"'collaborative' must be true or false, {_found(collaborative)}", pid)
    tracks = obj.get("tracks")
    if tracks is None:
        return cut
    if type(tracks) is not list:
        raise where.error(f"'tracks' must be a list, {_found(tracks)}", pid)
    has_pos = False
    for j, track in enumerate(tracks):
        if type(track) is not dict:
            raise where.error(f"tracks[{j}]: expected a track object, {_found(track)}", pid)
        uri = track.get("track_uri")
        if type(uri) is not str or not uri:
            reason = "missing 'track_uri'" if uri is None else f"bad 'track_uri', {_found(uri)}"
            raise where.error(f"tracks[{j}]: {reason}", pid)
        reason = bad_id_reason(uri, "'track_uri'")
        if reason is not None:
            raise where.error(f"tracks[{j}]: {reason}", pid)
        texts = None
        for key, value in track.items():
            kind = _TRACK_TYPES.get(key)
            if kind is not None and value is not None:
                if type(value) is not kind:
                    raise where.error(
                        f"tracks[{j}]: '{key}' must be {_TYPE_NAMES[kind]}, {_found(value)}", pid
                    )
                if kind is int and not _INT64[0] <= value <= _INT64[1]:
                    raise where.error(
                        f"tracks[{j}]: '{key}' {value} is out of the 64-bit range", pid
                    )
                if kind is str:
                    if key in _TRACK_IDS:
                        reason = bad_id_reason(value, f"'{key}'")
                        if reason is not None:
                            raise where.error(f"tracks[{j}]: {reason}", pid)
                    else:
                        texts = (texts or []) + [key]
        for key in texts or ():  # after the loop: the dict is not changed while iterated
            cut += _check_text(track, key, f"tracks[{j}]: '{key}'", where, pid)
        pos = track.get("pos")
        if pos is not None:
            has_pos = True
            if pos < 0:
                raise where.error(f"tracks[{j}]: 'pos' must not be negative, found {pos}", pid)
    if has_pos:
        seen: dict[int, int] = {}
        for j, track in enumerate(tracks):
            pos = track.get("pos")
            if pos is not None:
                if pos in seen:
                    raise where.error(
                        f"tracks[{j}]: 'pos' {pos} repeats that of tracks[{seen[pos]}]", pid
                    )
                seen[pos] = j
    return cut


# reading --------------------------------------------------------------------------------------
def _iter_document(path: Path) -> Iterator[tuple[dict[str, Any], _Where]]:
    with _decompress_errors(path), _open(path) as fh:
        raw = fh.read()
    data = parse_json(raw, path, "playlists")
    del raw
    if isinstance(data, dict):
        playlists = data.get("playlists")
        if type(playlists) is not list:
            found = "no 'playlists'" if playlists is None else f"'playlists' {_found(playlists)}"
            raise DataFormatError(
                "expected an MPD slice or challenge set (an object with a 'playlists' list), "
                f"{found}",
                path=path,
            )
    elif isinstance(data, list):
        playlists = data
    else:
        raise DataFormatError(
            f"expected an object with a 'playlists' list, found {_type_name(data)}", path=path
        )
    cut = 0
    for index, playlist in enumerate(playlists):
        where = _Where(path, None, index)
        cut += _check_playlist(playlist, where)
        yield playlist, where
    warn_cut(path, cut)


def _iter_lines(path: Path) -> Iterator[tuple[dict[str, Any], _Where]]:
    index = 0
    cut = 0
    with _decompress_errors(path), _open(path) as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                playlist = json.loads(raw)
            except UnicodeDecodeError as exc:
                raise DataFormatError(
                    f"not valid UTF-8 ({exc.reason} at byte {exc.start})", path=path, line=number
                ) from None
            except json.JSONDecodeError as exc:
                raise DataFormatError(
                    f"not valid JSON: {exc.msg} (column {exc.colno})", path=path, line=number
                ) from None
            except RecursionError:
                raise DataFormatError(
                    "not valid JSON: nested too deeply", path=path, line=number
                ) from None
            except ValueError as exc:  # e.g. an integer of more than 4,300 digits
                raise DataFormatError(f"not valid JSON: {exc}", path=path, line=number) from None
            where = _Where(path, number, index)
            cut += _check_playlist(playlist, where)
            yield playlist, where
            index += 1
    warn_cut(path, cut)


def iter_located(path: str | os.PathLike[str]) -> Iterator[tuple[dict[str, Any], _Where]]:
    """Validated playlists with where they came from; duplicate pids are an error."""
    seen: set[int] = set()
    for file in list_mpd_files(path):
        reader = _iter_lines if _is_json_lines(file) else _iter_document
        for playlist, where in reader(file):
            pid = playlist["pid"]
            if pid in seen:
                raise where.error("duplicate pid (an earlier playlist has it)", pid)
            seen.add(pid)
            yield playlist, where


def iter_mpd_playlists(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield the playlists of MPD files one at a time, validated, as parsed from JSON.

    Parameters
    ----------
    path
        A folder of ``mpd.slice.*.json`` files, a glob pattern, a slice or challenge-set file,
        or a JSON Lines file (optionally compressed); see :func:`list_mpd_files`.

    Yields
    ------
    dict
        The playlist object as in the file (unknown fields kept; only text fields over
        1,000 characters are cut, see the module docstring).

    Raises
    ------
    DataFormatError
        A malformed file or playlist (see the module docstring), or a duplicate ``pid``.
    """
    for playlist, _ in iter_located(path):
        yield playlist


# tables ---------------------------------------------------------------------------------------
def artist_key(uri: Any, artist_name: Any) -> str | None:
    """``artist``: the uri, else ``"name:ARTIST_NAME"``, else None."""
    if uri is not None:
        return uri
    return None if artist_name is None else f"name:{artist_name}"


def _album_key(uri: Any, artist_name: Any, album_name: Any) -> str | None:
    """``album``: the uri, else ``"name:ARTIST_NAME/ALBUM_NAME"``, else None."""
    if uri is not None:
        return uri
    return None if album_name is None else f"name:{artist_name or ''}/{album_name}"


def _collaborative(value: Any) -> bool | None:
    if value is None:
        return None
    return value is True or value == "true"


class _Builder:
    """Turns batches of playlists into Arrow tables and keeps the distinct tracks' metadata.

    :func:`read_mpd` and :func:`import_mpd` share it, so both give exactly the same tables.
    """

    def __init__(self) -> None:
        self.tracks: dict[str, tuple[Any, ...]] = {}
        self.present: set[str] = set(_ALWAYS)
        self.n_playlists = 0
        self.n_entries = 0
        self.n_empty = 0
        self.max_length = 0
        self.with_title = 0

    def batch(self, playlists: list[dict[str, Any]]) -> tuple[pa.Table, pa.Table]:
        """The playlists and entries tables of one batch (every optional column included)."""
        columns: dict[str, list[Any]] = {name: [] for name, _ in _PLAYLIST_COLUMNS}
        entry_pid: list[int] = []
        entry_pos: list[int] = []
        entry_track: list[str] = []
        tracks = self.tracks
        for playlist in playlists:
            pid = playlist["pid"]
            columns["pid"].append(pid)
            for name, _ in _PLAYLIST_COLUMNS[1:]:
                value = playlist.get(name)
                if name == "collaborative":
                    value = _collaborative(value)
                if value is not None:
                    self.present.add(name)
                columns[name].append(value)
            name = playlist.get("name")
            if name:
                self.with_title += 1
            items = playlist.get("tracks") or ()
            length = len(items)
            self.n_entries += length
            self.max_length = max(self.max_length, length)
            self.n_empty += length == 0
            entry_pid.extend([pid] * length)
            entry_pos.extend(range(length))
            for track in items:
                uri = track["track_uri"]
                entry_track.append(uri)
                if uri not in tracks:
                    get = track.get
                    artist_name = get("artist_name")
                    tracks[uri] = (
                        get("track_name"),
                        artist_key(get("artist_uri"), artist_name),
                        artist_name,
                        _album_key(get("album_uri"), artist_name, get("album_name")),
                        get("album_name"),
                        get("duration_ms"),
                    )
        self.n_playlists += len(playlists)
        table = pa.table(
            [pa.array(columns[name], type=kind) for name, kind in _PLAYLIST_COLUMNS],
            schema=_PLAYLIST_SCHEMA,
        )
        entries = pa.table(
            [
                pa.array(entry_pid, type=pa.int64()),
                pa.array(entry_pos, type=pa.int32()),
                pa.array(entry_track, type=pa.string()),
            ],
            schema=_ENTRY_SCHEMA,
        )
        return table, entries

    def playlist_columns(self) -> list[str]:
        return [name for name, _ in _PLAYLIST_COLUMNS if name in self.present]

    def tracks_table(self) -> pa.Table:
        """One row per distinct track (first-seen order); all-null metadata columns dropped."""
        uris = list(self.tracks)
        metadata = list(zip(*self.tracks.values(), strict=True)) or [()] * (len(_TRACK_COLUMNS) - 1)
        arrays = {"track": pa.array(uris, type=pa.string())}
        for (name, kind), values in zip(_TRACK_COLUMNS[1:], metadata, strict=True):
            array = pa.array(values, type=kind)
            if array.null_count < len(array):
                arrays[name] = array
        return pa.table(arrays)

    def describe(self) -> dict[str, Any]:
        """The same numbers as :meth:`Playlists.describe`, counted while streaming."""
        n = self.n_playlists
        return {
            "playlists": n,
            "entries": self.n_entries,
            "tracks": len(self.tracks),
            "empty_playlists": self.n_empty,
            "mean_length": self.n_entries / n if n else 0.0,
            "max_length": self.max_length,
            "with_title": self.with_title,
        }


def _batches(
    path: str | os.PathLike[str], builder: _Builder, progress: Progress | None
) -> Iterator[tuple[pa.Table, pa.Table]]:
    pending: list[dict[str, Any]] = []
    for playlist, _ in iter_located(path):
        pending.append(playlist)
        if len(pending) >= BATCH_PLAYLISTS:
            yield builder.batch(pending)
            if progress is not None:
                progress(len(pending))
            pending = []
    if pending:
        yield builder.batch(pending)
        if progress is not None:
            progress(len(pending))


def _no_playlists(path: str | os.PathLike[str]) -> DataFormatError:
    return DataFormatError("no playlists found", path=str(path))


def read_mpd(path: str | os.PathLike[str], *, progress: Progress | None = None) -> Playlists:
    """Read MPD slices, a challenge set or JSON Lines playlists into :class:`Playlists`.

    Everything is held in memory (about 1 GB per 100 slices); for the whole MPD use
    :func:`import_mpd` and :func:`~segue.data.playlists.load_playlists`.

    Parameters
    ----------
    path
        See :func:`list_mpd_files`.
    progress
        Called with the number of playlists read since the last call (every 1,000).

    Raises
    ------
    DataFormatError
        A malformed file or playlist, a duplicate ``pid``, or no playlist at all.
    """
    builder = _Builder()
    playlist_tables: list[pa.Table] = []
    entry_tables: list[pa.Table] = []
    for playlists, entries in _batches(path, builder, progress):
        playlist_tables.append(playlists)
        entry_tables.append(entries)
    if builder.n_playlists == 0:
        raise _no_playlists(path)
    playlists = pa.concat_tables(playlist_tables).select(builder.playlist_columns())
    entries = pa.concat_tables(entry_tables).to_pandas()
    # track as a categorical, as load_playlists reads it: one code per entry, not one string
    entries["track"] = track_categorical(entries["track"])
    return Playlists(
        playlists=playlists.to_pandas(),
        entries=entries,
        tracks=builder.tracks_table().to_pandas(),
    )


def read_challenge_set(path: str | os.PathLike[str]) -> Playlists:
    """Read ``challenge_set.json`` (official or written by :func:`segue.data.mpd_split.split_mpd`).

    The same as :func:`read_mpd`: playlists without a name get a null ``name``, title-only
    playlists have no entries (``lengths()`` gives 0), and ``num_holdouts`` / ``num_samples``
    are columns of the playlists table. A negative ``pid`` is an error naming the file and the
    playlist: the submission CSV cannot carry it.
    """
    playlists = read_mpd(path)
    if (playlists.playlists["pid"] < 0).any():  # read again only to say where
        for playlist, where in iter_located(path):
            if playlist["pid"] < 0:
                raise where.error(
                    "a challenge playlist's 'pid' must not be negative (the submission has none)",
                    playlist["pid"],
                )
    return playlists


def import_mpd(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
) -> Path:
    """Stream MPD files into a playlists directory that :func:`load_playlists` reads.

    The output is the format of :meth:`Playlists.save <segue.data.playlists.Playlists.save>`
    (``schema.json`` plus ``playlists``, ``entries`` and ``tracks`` Parquet files, zstd), and
    loads to the same tables as ``read_mpd(path)``. Entries and playlists are written one row
    group per 1,000 playlists with a :class:`pyarrow.parquet.ParquetWriter`; only one slice of
    entries and a dict of the distinct tracks' metadata are held in memory (the full MPD's 2.26M
    tracks fit in a few GB). The directory appears only when the import succeeds.

    Parameters
    ----------
    path
        See :func:`list_mpd_files`.
    out_dir
        The directory to write (replaced atomically if it exists).
    progress
        Called with the number of playlists read since the last call (every 1,000).

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    DataFormatError
        As :func:`read_mpd`; nothing is written then.
    """
    builder = _Builder()
    with atomic_dir(out_dir, keep=[path]) as tmp:
        every_column = tmp / ".playlists.all.parquet"
        with (
            pq.ParquetWriter(every_column, _PLAYLIST_SCHEMA, compression="zstd") as playlist_w,
            pq.ParquetWriter(tmp / "entries.parquet", _ENTRY_SCHEMA, compression="zstd") as entry_w,
        ):
            for playlists, entries in _batches(path, builder, progress):
                playlist_w.write_table(playlists)
                entry_w.write_table(entries)
        if builder.n_playlists == 0:
            raise _no_playlists(path)
        # keep only the optional columns some playlist has, as read_mpd does
        columns = builder.playlist_columns()
        source = pq.ParquetFile(every_column)
        schema = pa.schema([_PLAYLIST_SCHEMA.field(name) for name in columns])
        with pq.ParquetWriter(tmp / "playlists.parquet", schema, compression="zstd") as writer:
            for group in range(source.num_row_groups):
                writer.write_table(source.read_row_group(group, columns=columns))
        source.close()
        every_column.unlink()
        schema_doc = {"format": SCHEMA_NAME, "version": SCHEMA_VERSION, **builder.describe()}
        tracks = builder.tracks_table()
        builder.tracks.clear()  # the table holds the same data: free the dict before writing
        pq.write_table(tracks, tmp / "tracks.parquet", compression="zstd")
        del tracks
        (tmp / "schema.json").write_text(json.dumps(schema_doc, indent=2) + "\n")
    return Path(out_dir)
