"""Kakao Arena "Melon Playlist Continuation" (2020) files: playlists, song metadata, genres.

The challenge ships JSON files, each holding one list (or one object):

``train.json``, ``val.json``, ``test.json`` (and the question / answer files that
:mod:`segue.data.melon_split` writes)
    A list of playlists ``{"tags": [str], "id": int, "plylst_title": str, "songs": [int],
    "like_cnt": int, "updt_date": "2013-12-19 18:36:19.000"}``. In the question files
    (``val.json``, ``test.json``) part of ``songs`` and ``tags`` is hidden and the title may be
    ``""``. A results file (``[{"id", "songs", "tags"}]``) reads too: it has no title.
``song_meta.json``
    A list of songs ``{"song_gn_dtl_gnr_basket": ["GN0901"], "issue_date": "20140512",
    "album_name": str, "album_id": int, "artist_id_basket": [int], "song_name": str,
    "song_gn_gnr_basket": ["GN0900"], "artist_name_basket": [str], "id": int}``. The real
    ``issue_date`` is not always a date: ``"00000000"`` (unknown) and months or days ``"00"``
    occur.
``genre_gn_all.json``
    One object ``{"GN0100": "발라드", "GN0101": "세부장르전체", ...}``: major genres end in
    ``00``, their detailed genres share the first four characters.

:func:`read_melon` turns a playlist file (plus ``song_meta.json``) into
:class:`~segue.data.playlists.Playlists`. The choices it makes, and why:

- ``updt_date`` is parsed to ``datetime64[us]``, because recency features and "no song released
  after the playlist was updated" filters need arithmetic on it; a date that does not parse (or
  is missing) becomes ``NaT`` instead of failing the whole file.
- ``like_cnt`` is a nullable ``Int64`` column: ``<NA>`` when a file (a results file) has none.
- ``artist`` is the *first* artist id of the song, as a string. A song's first artist is its
  main credit; joining the whole basket (``"3|17"``) would make a featuring credit break an exact
  "same artist as the seed songs" match, while the first id keeps the songs of one artist
  together. The whole basket stays in ``artists`` (list of ints) for overlap features, and
  ``artist_name`` holds all names joined with ``", "`` (the way Melon displays them).
- ``issue_date`` stays the raw ``yyyymmdd`` integer (``0`` when unknown or not a number),
  because ``00`` months and days cannot be dates; compare it as a number (``20140512``) or take
  ``issue_date // 10000`` for the year.
- the track table has every song of ``song_meta.json`` (in its order), then the songs that only
  the playlists name (sorted, with empty metadata), so the catalogue is complete even for songs
  no playlist holds and every entry's track is in it.

Reading is built for the full challenge size (115k playlists, about 5 million entries, 707k
songs): one ``json.loads`` per file with the cyclic garbage collector paused, then columns built
with comprehensions, ``operator.itemgetter`` and numpy (no per-row DataFrame work). Validation
runs on whole columns first (the set of element types) and only walks the records one by one to
name the first bad one when something is wrong. On generated data of the real size (115k
playlists with 5.0M entries, 707k songs; 62 MB and 194 MB of JSON) ``read_melon`` takes about
7 s on the 2-core reference VM, of which ``song_meta.json`` is 5 s; ``song_meta=False`` skips it.

Errors raise :class:`~segue.exceptions.DataFormatError` naming the file and the playlist
(``playlist id 7 (list index 3)``): not UTF-8 or not JSON (with the line), not a list, a record
that is not an object, a missing or non-integer ``id``, ``songs`` that is not a list of integers,
``tags`` that is not a list of strings, a title or ``like_cnt`` of the wrong type, duplicate ids,
an ``id``, song id or ``like_cnt`` outside the 64-bit integer range (``2**63`` and up).

Bounds (:mod:`segue.data.readers._limits`): a tag is an id (an item of the models and an
answer of the challenge), so a tag over 1,000 characters, holding a NUL character or a lone
surrogate (such as U+D800, which JSON allows) is an error; a title with a lone surrogate is an
error, and a title over 1,000 characters is cut to 1,000 with one warning per file. In
``song_meta.json``, whose metadata the challenge itself calls unreliable, such values are
dropped instead, as other invalid metadata is: a name with a lone surrogate reads as null, an
``album_id`` or basket artist id outside the 64-bit range as missing.
"""

from __future__ import annotations

import json
import operator
import os
from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from segue._atomic import atomic_open
from segue.data.playlists import Playlists
from segue.data.readers._json import gc_paused, parse_json
from segue.data.readers._limits import (
    MAX_ID_CHARS,
    MAX_TEXT_CHARS,
    bad_id_reason,
    has_surrogate,
    warn_cut,
)
from segue.exceptions import DataFormatError

__all__ = [
    "PLAYLIST_FIELDS",
    "SONG_META_FIELDS",
    "load_melon_json",
    "melon_playlists",
    "read_genres",
    "read_melon",
    "read_song_meta",
    "write_melon_json",
]

PLAYLIST_FIELDS = ("tags", "id", "plylst_title", "songs", "like_cnt", "updt_date")
"""Fields of a Melon playlist record, in the order of the real files."""
SONG_META_FIELDS = (
    "song_gn_dtl_gnr_basket",
    "issue_date",
    "album_name",
    "album_id",
    "artist_id_basket",
    "song_name",
    "song_gn_gnr_basket",
    "artist_name_basket",
    "id",
)
"""Fields of a ``song_meta.json`` record, in the order of the real file."""

_MISSING = object()
_INT64 = (-(2**63), 2**63 - 1)
_SEP = "\x01"  # joins strings for one C-level scan; never inside a valid tag

PathLike = str | os.PathLike[str]


# JSON files ----------------------------------------------------------------------------------
def _type_name(value: object) -> str:
    """The JSON name of a Python value's type, for messages."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if type(value) in names:
        return names[type(value)]
    return "a number" if isinstance(value, int | float) else type(value).__name__


def _short(value: object) -> str:
    """``repr(value)``, cut to 40 characters, for messages."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _load_json(path: Path, what: str) -> Any:
    """Parse one JSON file; DataFormatError (with the line) when it is missing or malformed."""
    if not path.is_file():
        raise DataFormatError("no such file", path=path)
    return parse_json(path.read_bytes(), path, what)


def _load_records(path: Path, what: str) -> list[dict[str, Any]]:
    """A JSON list of objects, or DataFormatError naming the first element that is not one."""
    data = _load_json(path, what)
    if not isinstance(data, list):
        raise DataFormatError(
            f"expected a JSON list of {what}, found {_type_name(data)}", path=path
        )
    if not data:
        raise DataFormatError(f"the file is empty: an empty list, no {what}", path=path)
    if not all(type(record) is dict for record in data):
        index = next(i for i, record in enumerate(data) if type(record) is not dict)
        raise DataFormatError(
            f"list index {index}: expected an object, found {_type_name(data[index])}", path=path
        )
    return data


def _where(data: Sequence[dict[str, Any]], index: int) -> str:
    """``playlist id 7 (list index 3)``, or ``list index 3`` when the id is unusable."""
    pid = data[index].get("id")
    if type(pid) is int:
        return f"playlist id {pid} (list index {index})"
    return f"list index {index}"


def _in_int64(values: list[int]) -> bool:
    return not values or (_INT64[0] <= min(values) and max(values) <= _INT64[1])


def _check_ids(path: Path, data: list[dict[str, Any]], kind: str) -> list[int]:
    """Every record's ``id``, checked to be a unique integer in the int64 range."""
    ids = [record.get("id", _MISSING) for record in data]
    if set(map(type, ids)) != {int}:
        index = next(i for i, value in enumerate(ids) if type(value) is not int)
        if ids[index] is _MISSING:
            reason = "has no 'id'"
        else:
            reason = f"'id' must be an integer, found {_type_name(ids[index])} {_short(ids[index])}"
        raise DataFormatError(f"list index {index}: {reason}", path=path)
    if not _in_int64(ids):
        index = next(i for i, value in enumerate(ids) if not _INT64[0] <= value <= _INT64[1])
        raise DataFormatError(
            f"list index {index}: 'id' {ids[index]} is out of the 64-bit integer range", path=path
        )
    index = pd.Index(ids)
    if not index.is_unique:
        dup = int(index[index.duplicated()][0])
        first, second = [i for i, value in enumerate(ids) if value == dup][:2]
        raise DataFormatError(
            f"duplicate {kind} id {dup} (list indices {first} and {second})", path=path
        )
    return ids


def _check_list_field(
    path: Path,
    data: list[dict[str, Any]],
    field: str,
    element: type,
    element_name: str,
) -> list[list[Any]]:
    """Every record's ``field``: a list whose elements are all of type ``element``."""
    values = [record.get(field, _MISSING) for record in data]
    if set(map(type, values)) != {list}:
        index = next(i for i, value in enumerate(values) if type(value) is not list)
        value = values[index]
        found = "it is missing" if value is _MISSING else f"found {_type_name(value)}"
        hint = ""
        if value is _MISSING and "song_name" in data[index]:
            hint = " (this looks like song_meta.json, not a playlist file)"
        raise DataFormatError(
            f"{_where(data, index)}: '{field}' must be a list of {element_name}, {found}{hint}",
            path=path,
        )
    if not set(map(type, chain.from_iterable(values))) <= {element}:
        for index, items in enumerate(values):
            for position, item in enumerate(items):
                if type(item) is not element:
                    raise DataFormatError(
                        f"{_where(data, index)}: '{field}' must be a list of {element_name}, "
                        f"found {_type_name(item)} {_short(item)} at position {position}",
                        path=path,
                    )
    # the fast test on all values at once; the exact walk below only names the first bad one
    if element is int:
        low = min(chain.from_iterable(values), default=0)
        high = max(chain.from_iterable(values), default=0)
        check = None if _INT64[0] <= low and high <= _INT64[1] else _first_out_of_range
    else:  # strings are ids (tags)
        joined = _SEP.join(chain.from_iterable(values))
        longest = max(map(len, chain.from_iterable(values)), default=0)
        suspect = "\x00" in joined or has_surrogate(joined) or longest > MAX_ID_CHARS
        check = _first_bad_id if suspect else None
    if check is not None:
        for index, items in enumerate(values):
            for position, item in enumerate(items):
                reason = check(item, field)
                if reason is not None:
                    raise DataFormatError(
                        f"{_where(data, index)}: '{field}' position {position}: {reason}",
                        path=path,
                    )
    return values


def _first_out_of_range(item: int, field: str) -> str | None:
    if _INT64[0] <= item <= _INT64[1]:
        return None
    return f"{item} is out of the 64-bit integer range"


def _first_bad_id(item: str, field: str) -> str | None:
    return bad_id_reason(item, "tag" if field == "tags" else "value")


def _check_scalar_field(
    path: Path, data: list[dict[str, Any]], field: str, allowed: type, allowed_name: str
) -> list[Any]:
    """Every record's optional ``field`` (None when absent), checked to be ``allowed`` or null.

    Integers must be in the int64 range, strings valid Unicode (no lone surrogate).
    """
    values = [record.get(field) for record in data]
    if not set(map(type, values)) <= {allowed, type(None)}:
        index = next(
            i for i, value in enumerate(values) if value is not None and type(value) is not allowed
        )
        raise DataFormatError(
            f"{_where(data, index)}: '{field}' must be {allowed_name}, "
            f"found {_type_name(values[index])} {_short(values[index])}",
            path=path,
        )
    present = [value for value in values if value is not None]
    if allowed is int and not _in_int64(present):
        index = next(
            i for i, v in enumerate(values) if v is not None and not _INT64[0] <= v <= _INT64[1]
        )
        raise DataFormatError(
            f"{_where(data, index)}: '{field}' {values[index]} is out of the 64-bit integer range",
            path=path,
        )
    if allowed is str and has_surrogate(_SEP.join(present)):
        index = next(i for i, v in enumerate(values) if v is not None and has_surrogate(v))
        raise DataFormatError(
            f"{_where(data, index)}: '{field}' {values[index][:30]!r} is not valid Unicode "
            "(a lone surrogate)",
            path=path,
        )
    return values


@gc_paused()
def load_melon_json(path: PathLike) -> list[dict[str, Any]]:
    """Read a Melon playlist file as its list of dicts, after checking every record.

    The records are returned as parsed (unknown fields kept), so they can be masked and written
    back in the same schema (:mod:`segue.data.melon_split`).

    Parameters
    ----------
    path
        A Melon playlist file: ``train.json``, ``val.json``, ``test.json``, a question, answer
        or results file.

    Returns
    -------
    list of dict
        One dict per playlist, in file order.

    Raises
    ------
    segue.exceptions.DataFormatError
        The file is missing, empty, not UTF-8, not JSON or not a non-empty list of objects; a
        record has no integer ``id``; ``songs`` is not a list of integers; ``tags`` is not a list
        of strings; ``plylst_title`` is not a string or ``like_cnt`` not an integer (both may be
        absent or null); two records share an id; an integer is outside the int64 range; a tag
        is over 1,000 characters or holds a NUL or a lone surrogate; a title holds a lone
        surrogate. The message names the file and the playlist. A title over 1,000 characters
        is cut to 1,000 (in the records returned), with one warning for the file.
    """
    path = Path(path)
    data = _load_records(path, "playlists")
    _check_ids(path, data, "playlist")
    _check_list_field(path, data, "songs", int, "integer song ids")
    _check_list_field(path, data, "tags", str, "strings")
    titles = _check_scalar_field(path, data, "plylst_title", str, "a string")
    _check_scalar_field(path, data, "like_cnt", int, "an integer")
    cut = 0
    for record, title in zip(data, titles, strict=True):
        if title is not None and len(title) > MAX_TEXT_CHARS:
            record["plylst_title"] = title[:MAX_TEXT_CHARS]
            cut += 1
    warn_cut(path, cut, "titles")
    return data


def write_melon_json(path: PathLike, records: Iterable[dict[str, Any]]) -> Path:
    """Write records as one JSON list, UTF-8 (Korean kept as is), atomically.

    The layout is the one of the arena's ``write_json`` (``json.dumps(..., ensure_ascii=False)``
    on one line), so the files look like the challenge's own.
    """
    path = Path(path)
    with atomic_open(path) as fh:
        fh.write(json.dumps(list(records), ensure_ascii=False))
    return path


# playlists -----------------------------------------------------------------------------------
def _object_column(values: Sequence[Any]) -> np.ndarray:
    """A 1-d object array holding ``values`` as they are (lists stay lists)."""
    return np.fromiter(values, dtype=object, count=len(values))


def _parse_dates(values: Sequence[Any]) -> pd.Series:
    """``datetime64[us]`` from Melon ``updt_date`` strings; anything unparseable is NaT."""
    raw = pd.Series([v if isinstance(v, str) else None for v in values], dtype=object)
    return pd.to_datetime(raw, format="ISO8601", errors="coerce").astype("datetime64[us]")


@gc_paused()
def read_melon(path: PathLike, *, song_meta: PathLike | Literal[False] | None = None) -> Playlists:
    """Read a Melon playlist file (and its song metadata) into :class:`Playlists`.

    Parameters
    ----------
    path
        ``train.json``, ``val.json``, ``test.json``, or a question, answer or results file.
    song_meta
        The ``song_meta.json`` to take track metadata from. ``None`` (default) uses
        ``song_meta.json`` beside ``path`` when there is one; ``False`` reads none (the track
        table then holds only the songs of the playlists, with empty metadata).

    Returns
    -------
    Playlists
        ``playlists``: ``pid`` (int64, the Melon ``id``), ``name`` (the title; ``""`` when
        absent or null), ``tags`` (list of str), ``like_cnt`` (nullable Int64), ``updt_date``
        (``datetime64[us]``, NaT when missing or unparseable), in file order.
        ``entries``: ``pid``, ``pos`` (0-based), ``track`` (the song id, int64).
        ``tracks``: ``track``, ``track_name``, ``artist`` (first artist id as str),
        ``artist_name`` (all names joined with ``", "``), ``artists`` (list of int),
        ``album`` (nullable Int64), ``album_name``, ``genres`` and ``detail_genres`` (lists of
        genre codes), ``issue_date`` (raw ``yyyymmdd`` int64, 0 when unknown). See the module
        docstring for why.

    Raises
    ------
    segue.exceptions.DataFormatError
        As :func:`load_melon_json` for the playlist file and :func:`read_song_meta` for the
        metadata; also when an explicit ``song_meta`` file does not exist.
    """
    path = Path(path)
    data = load_melon_json(path)
    meta_path = _song_meta_path(path, song_meta)
    meta = read_song_meta(meta_path) if meta_path is not None else None
    return melon_playlists(data, meta)


def melon_playlists(data: Sequence[dict[str, Any]], song_meta: pd.DataFrame | None) -> Playlists:
    """:class:`Playlists` from checked Melon playlist records (as :func:`read_melon` returns).

    ``song_meta`` is a song table as :func:`read_song_meta` returns (``None``: empty metadata);
    songs the playlists name that it lacks are appended with empty metadata. Records built in
    memory (the two-stage model's inner questions) go through here too, so they look exactly
    like a question file read from disk.
    """
    n = len(data)
    pids = np.fromiter((record["id"] for record in data), dtype=np.int64, count=n)
    songs = [record["songs"] for record in data]
    lengths = np.fromiter(map(len, songs), dtype=np.int64, count=n)
    total = int(lengths.sum())
    tracks = np.fromiter(chain.from_iterable(songs), dtype=np.int64, count=total)
    starts = np.cumsum(lengths) - lengths
    entries = pd.DataFrame(
        {
            "pid": np.repeat(pids, lengths),
            "pos": np.arange(total, dtype=np.int64) - np.repeat(starts, lengths),
            "track": tracks,
        }
    )
    titles = [record.get("plylst_title") for record in data]
    likes = [record.get("like_cnt") for record in data]
    playlists = pd.DataFrame(
        {
            "pid": pids,
            "name": pd.Series(["" if t is None else t for t in titles], dtype="str"),
            "tags": _object_column([record["tags"] for record in data]),
            "like_cnt": pd.array(likes, dtype="Int64"),
            "updt_date": _parse_dates([record.get("updt_date") for record in data]),
        }
    )

    meta = song_meta if song_meta is not None else _empty_tracks()
    extra = _unknown_tracks(tracks, meta["track"].to_numpy(dtype=np.int64))
    if extra.size:
        meta = pd.concat([meta, _empty_tracks(extra)], ignore_index=True)
    return Playlists(playlists=playlists, entries=entries, tracks=meta)


def _unknown_tracks(tracks: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The distinct ``tracks`` not in ``known``, sorted.

    Melon song ids are dense (0..707,988), so a bitmap over the id range does in one pass what
    a hash-based ``np.unique`` of 5 million entries takes a second for; other ids fall back to
    set operations.
    """
    if tracks.size == 0:
        return tracks
    low, high = int(tracks.min()), int(tracks.max())
    if low >= 0 and high < 8 * (tracks.size + known.size) + 1_000_000:
        seen = np.zeros(high + 1, dtype=bool)
        seen[tracks] = True
        seen[known[(known >= 0) & (known <= high)]] = False
        return np.flatnonzero(seen).astype(np.int64)
    return np.setdiff1d(np.unique(tracks), known)


def _song_meta_path(path: Path, song_meta: PathLike | Literal[False] | None) -> Path | None:
    if song_meta is False:
        return None
    if song_meta is None:
        beside = path.parent / "song_meta.json"
        return beside if beside.is_file() else None
    return Path(song_meta)


# songs and genres ----------------------------------------------------------------------------
def _empty_tracks(ids: np.ndarray | None = None) -> pd.DataFrame:
    """Track rows with no metadata, for songs that only the playlists name."""
    ids = np.empty(0, dtype=np.int64) if ids is None else ids.astype(np.int64)
    n = ids.size
    return pd.DataFrame(
        {
            "track": ids,
            "track_name": pd.Series([None] * n, dtype="str"),
            "artist": pd.Series([None] * n, dtype="str"),
            "artist_name": pd.Series([None] * n, dtype="str"),
            "artists": _object_column([[] for _ in range(n)]),
            "album": pd.array([None] * n, dtype="Int64"),
            "album_name": pd.Series([None] * n, dtype="str"),
            "genres": _object_column([[] for _ in range(n)]),
            "detail_genres": _object_column([[] for _ in range(n)]),
            "issue_date": np.zeros(n, dtype=np.int64),
        }
    )


def _issue_dates(values: Sequence[Any]) -> np.ndarray:
    """Raw ``yyyymmdd`` integers; 0 for anything that is not a string (or int) of digits."""
    if values and set(map(type, values)) == {str}:  # the real file: numpy parses it at once
        text = np.array(values)
        if text.dtype.itemsize <= 8 * 4 and np.char.isdigit(text).all():  # at most 8 digits
            return text.astype(np.int64)
    out = np.zeros(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        if type(value) is str and value.isdigit() and len(value) <= 8:
            out[i] = int(value)
        elif type(value) is int and 0 <= value <= 99_999_999:
            out[i] = value
    return out


@gc_paused()
def read_song_meta(path: PathLike) -> pd.DataFrame:
    """Read ``song_meta.json`` into the track table of :func:`read_melon`.

    Only ``id`` is checked strictly (an integer, unique); the other fields are taken as they
    come, since the challenge itself warns that metadata may be invalid: a basket that is not a
    list reads as ``[]``, a missing name as null, an ``issue_date`` that is not digits as 0.

    Raises
    ------
    segue.exceptions.DataFormatError
        The file is missing, not JSON or not a non-empty list of objects; a song has no integer
        ``id``; two songs share an id.
    """
    path = Path(path)
    data = _load_records(path, "songs")
    ids = _check_ids(path, data, "song")
    (song, artists, names, album, album_name, genres, details, issue) = _fields(
        data,
        (
            "song_name",
            "artist_id_basket",
            "artist_name_basket",
            "album_id",
            "album_name",
            "song_gn_gnr_basket",
            "song_gn_dtl_gnr_basket",
            "issue_date",
        ),
    )
    artists, names = _lists(artists), _lists(names)
    return pd.DataFrame(
        {
            "track": np.asarray(ids, dtype=np.int64),
            "track_name": pd.Series(_strings(song), dtype="str"),
            "artist": pd.Series([str(b[0]) if b else None for b in artists], dtype="str"),
            "artist_name": pd.Series(
                [", ".join(map(str, n)) if n else None for n in names], dtype="str"
            ),
            "artists": _object_column(artists),
            "album": pd.array(
                album
                if set(map(type, album)) <= {int} and _all_usable(album)
                else [_int_or_none(a) for a in album],
                dtype="Int64",
            ),
            "album_name": pd.Series(_strings(album_name), dtype="str"),
            "genres": _object_column(_lists(genres)),
            "detail_genres": _object_column(_lists(details)),
            "issue_date": _issue_dates(issue),
        }
    )


def _fields(data: list[dict[str, Any]], fields: tuple[str, ...]) -> list[Sequence[Any]]:
    """Each field's values over all records (None where a record lacks it).

    One C-level ``itemgetter`` call per record when every record has every field (the real
    file); ``dict.get`` per field and record otherwise.
    """
    try:
        columns = list(zip(*map(operator.itemgetter(*fields), data), strict=True))
    except KeyError:
        return [[record.get(field) for record in data] for field in fields]
    return columns if columns else [() for _ in fields]


def _usable(value: Any) -> bool:
    """Not a lone-surrogate string and not an integer outside int64 (either breaks Arrow)."""
    if type(value) is str:
        return not has_surrogate(value)
    if type(value) is int:
        return _INT64[0] <= value <= _INT64[1]
    return True


def _all_usable(values: Iterable[Any]) -> bool:
    """:func:`_usable` for every value, with C-level scans on the usual all-int or all-str data."""
    values = list(values)
    kinds = set(map(type, values))
    if kinds <= {int}:
        return not values or (_INT64[0] <= min(values) and max(values) <= _INT64[1])
    if kinds <= {str}:
        return not has_surrogate(_SEP.join(values))
    return all(map(_usable, values))


def _lists(values: Sequence[Any]) -> Sequence[Any]:
    """``values`` with anything that is not a list replaced by ``[]``, unusable elements dropped."""
    if not set(map(type, values)) <= {list}:
        values = [value if type(value) is list else [] for value in values]
    if _all_usable(chain.from_iterable(values)):
        return values
    return [[item for item in value if _usable(item)] for value in values]


def _strings(values: Sequence[Any]) -> Sequence[Any]:
    """``values`` with anything that is not a (valid Unicode) string replaced by None."""
    if set(map(type, values)) <= {str} and _all_usable(values):
        return values
    return [value if type(value) is str and _usable(value) else None for value in values]


def _int_or_none(value: Any) -> int | None:
    return value if type(value) is int and _usable(value) else None


def read_genres(path: PathLike) -> dict[str, str]:
    """Read ``genre_gn_all.json``: ``{code: name}`` (``"GN0100": "발라드"``), in file order.

    Raises
    ------
    segue.exceptions.DataFormatError
        The file is missing, not JSON, not an object, or maps a code to something that is not
        a string.
    """
    path = Path(path)
    data = _load_json(path, "genres")
    if not isinstance(data, dict):
        raise DataFormatError(
            f"expected a JSON object of genre codes, found {_type_name(data)}", path=path
        )
    for code, name in data.items():
        if type(name) is not str:
            raise DataFormatError(
                f"genre {code!r}: the name must be a string, found {_type_name(name)}", path=path
            )
    return dict(data)
