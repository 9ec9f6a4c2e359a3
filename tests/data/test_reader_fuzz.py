"""Property-based fuzzing of every reader: a result or a one-line SegueError naming the file.

Inputs come from three hypothesis sources: random bytes; a valid file of the reader's format
with a few byte-level mutations (flips, inserts of tokens that broke readers before: NUL, BOM,
invalid UTF-8, ``2**63``, ``1e300``, ``"\\ud800"``, deep brackets; deletions, duplications,
truncation); and, for the JSON formats, the valid document with one value replaced by a hostile
JSON value (huge integers, lone surrogates, NaN, long strings, nested lists and objects). For
Parquet, tables whose id and weight columns have arbitrary Arrow types are written too.

The only allowed outcomes are a return value or a :class:`~segue.exceptions.SegueError` whose
message starts with the file's path and is one line (issue 13). Each reader gets a modest number
of examples so the whole file runs in seconds.
"""

from __future__ import annotations

import io
import json
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segue.data.readers import (
    read_challenge_set,
    read_genres,
    read_listen_interactions,
    read_melon,
    read_mpd,
    read_song_meta,
    read_table_interactions,
    read_targets,
)
from segue.exceptions import SegueError

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# valid samples of each format ------------------------------------------------------------------
_TRACK = {
    "pos": 0,
    "artist_name": "A",
    "track_uri": "spotify:track:1",
    "artist_uri": "spotify:artist:1",
    "track_name": "T",
    "album_uri": "spotify:album:1",
    "duration_ms": 1000,
    "album_name": "B",
}
_PLAYLISTS = [
    {
        "name": "road trip",
        "collaborative": "false",
        "pid": 0,
        "modified_at": 1500000000,
        "num_followers": 3,
        "tracks": [_TRACK, dict(_TRACK, pos=1, track_uri="spotify:track:2")],
    },
    {"name": "chill", "pid": 1, "tracks": [dict(_TRACK, pos=0, track_uri="spotify:track:3")]},
]
_CHALLENGE = {
    "date": "2018-01-16",
    "version": "v1",
    "playlists": [
        {"name": "x", "pid": 1000, "num_holdouts": 5, "num_samples": 0, "tracks": []},
        {"pid": 1001, "num_holdouts": 4, "num_samples": 1, "tracks": [_TRACK]},
    ],
}
_MELON = [
    {
        "tags": ["rock", "drive"],
        "id": 7,
        "plylst_title": "밤 드라이브",
        "songs": [1, 2, 3],
        "like_cnt": 4,
        "updt_date": "2020-01-01 10:00:00.000",
    },
    {"tags": [], "id": 8, "plylst_title": "", "songs": [2], "like_cnt": 0, "updt_date": None},
]
_QUESTIONS = [
    {"tags": [], "id": 9, "plylst_title": "rain", "songs": [], "like_cnt": 1, "updt_date": None}
]
_SONGS = [
    {
        "song_gn_dtl_gnr_basket": ["GN0101"],
        "issue_date": "20140512",
        "album_name": "al",
        "album_id": 2255639,
        "artist_id_basket": [2727],
        "song_name": "s",
        "song_gn_gnr_basket": ["GN0100"],
        "artist_name_basket": ["Ar"],
        "id": 1,
    },
    {"song_gn_gnr_basket": [], "issue_date": "00000000", "id": 2, "artist_id_basket": []},
]
_GENRES = {"GN0100": "발라드", "GN0101": "세부장르전체"}


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


_PARQUET = _parquet_bytes(
    pa.table({"user_id": ["u1", "u2", "u1"], "item_id": ["a", "b", "b"], "w": [1.0, 2.0, 3.5]})
)

Reader = Callable[[Path], Any]
READERS: dict[str, tuple[str, Reader, bytes]] = {
    "listens": ("l.txt", read_listen_interactions, b"u1 s1 3\nu2\ts2 1\n\nu1 s2 2\n"),
    "targets": ("t.txt", read_targets, b"u1\nu2 u3\n"),
    "csv": (
        "t.csv",
        lambda p: read_table_interactions(p, weight_col="w"),
        b'user_id,item_id,w\nu1,i1,2\n"u2",i2,1.5\n',
    ),
    "tsv": (
        "t.tsv",
        lambda p: read_table_interactions(p, weight_col="w"),
        b"user_id\titem_id\tw\nu1\ti1\t2\nu2\ti2\t1.5\n",
    ),
    "parquet": ("t.parquet", lambda p: read_table_interactions(p, weight_col="w"), _PARQUET),
    "mpd-slice": (
        "mpd.slice.0-999.json",
        read_mpd,
        json.dumps({"info": {"slice": "0-999"}, "playlists": _PLAYLISTS}, indent=1).encode(),
    ),
    "mpd-lines": ("p.jsonl", read_mpd, "".join(json.dumps(p) + "\n" for p in _PLAYLISTS).encode()),
    "challenge": ("challenge_set.json", read_challenge_set, json.dumps(_CHALLENGE).encode()),
    "melon-train": (
        "train.json",
        lambda p: read_melon(p, song_meta=False),
        json.dumps(_MELON, ensure_ascii=False).encode(),
    ),
    "melon-questions": (
        "questions.json",
        lambda p: read_melon(p, song_meta=False),
        json.dumps(_QUESTIONS).encode(),
    ),
    "song-meta": ("song_meta.json", read_song_meta, json.dumps(_SONGS).encode()),
    "genres": ("genre_gn_all.json", read_genres, json.dumps(_GENRES, ensure_ascii=False).encode()),
}
JSON_READERS = [name for name, (file, _, _) in READERS.items() if file.endswith(("json", "jsonl"))]


def check(name: str, content: bytes) -> None:
    """Run reader ``name`` on ``content``: a result, or a one-line SegueError naming the file."""
    file, reader, _ = READERS[name]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / file
        path.write_bytes(content)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # "titles cut" and the like
                reader(path)
        except SegueError as exc:
            message = str(exc)
            assert message.startswith(str(path)), message
            assert "\n" not in message, message


# strategies --------------------------------------------------------------------------------------
TOKENS = [
    b"\x00",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xc3",
    b'"',
    b",",
    b"\t",
    b"\n",
    b"\r",
    b" ",
    b"9223372036854775808",
    b"-9223372036854775809",
    b"1e300",
    b"-1",
    b"-5",
    b"0",
    b"NaN",
    b"null",
    b"true",
    b"[]",
    b"{}",
    b'"\\ud800"',
    b"\\ud800",
    b"[" * 3000,
    "💥".encode(),
]


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "token", "delete", "dup", "truncate"]))
        i = draw(st.integers(0, len(data)))
        j = draw(st.integers(i, min(len(data), i + 40)))
        if op == "flip" and i < len(data):
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "token":
            data[i:i] = draw(st.sampled_from(TOKENS))
        elif op == "delete":
            del data[i:j]
        elif op == "dup":
            data[i:i] = data[i:j]
        elif op == "truncate":
            del data[i:]
    return bytes(data)


specials = st.sampled_from([2**63, -(2**63) - 1, "\ud800", "x\udfff", "a\x00b", "x" * 1200, -5])
hostile_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([2**64, 10**30])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(exclude_categories=[]), max_size=12)  # lone surrogates included
    | st.sampled_from(["", " ", "-5"])
)
hostile_values = st.recursive(
    hostile_leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def replaced(draw: st.DrawFn, document: Any) -> Any:
    """``document`` (a deep copy) with one value, at a drawn path, replaced by a hostile one."""
    root = json.loads(json.dumps(document))
    holder: Any = None
    key: Any = None
    node = root
    while isinstance(node, dict | list) and node and draw(st.integers(0, 5)) > 0:  # mostly deep
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        holder, key = node, draw(st.sampled_from(keys))
        node = node[key]
    value = draw(st.one_of(specials, specials, hostile_leaves, hostile_values))
    if holder is None:
        return value
    holder[key] = value
    return root


def _document(name: str) -> Any:
    file, _, content = READERS[name]
    text = content.decode()
    if file.endswith(".jsonl"):
        return [json.loads(line) for line in text.splitlines()]
    return json.loads(text)


def _encode(name: str, document: Any) -> bytes:
    if READERS[name][0].endswith(".jsonl") and isinstance(document, list):
        return "".join(json.dumps(p) + "\n" for p in document).encode()
    return json.dumps(document).encode()


# tests -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(READERS))
@FUZZ
@given(data=st.data())
def test_random_bytes(name: str, data: st.DataObject) -> None:
    check(name, data.draw(st.binary(max_size=200) | st.sampled_from(TOKENS)))


@pytest.mark.parametrize("name", list(READERS))
@FUZZ
@given(data=st.data())
def test_mutated_valid_file(name: str, data: st.DataObject) -> None:
    check(name, data.draw(mutated(READERS[name][2])))


@pytest.mark.parametrize("name", JSON_READERS)
@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_valid_document_with_a_hostile_value(name: str, data: st.DataObject) -> None:
    check(name, _encode(name, data.draw(replaced(_document(name)))))


def test_the_valid_samples_read() -> None:
    for name, (file, reader, content) in READERS.items():
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / file
            path.write_bytes(content)
            assert reader(path) is not None, name


arrow_arrays = st.sampled_from(
    [
        pa.array(["u1", "u2"]),
        pa.array([1, 2], pa.int64()),
        pa.array([1, 2], pa.uint64()),
        pa.array([1.5, float("nan")]),
        pa.array([None, "x"]),
        pa.array(["", " "]),
        pa.array([[1], []]),
        pa.array([{"a": 1}, None]),
        pa.array([True, False]),
        pa.array([b"\xff", b"a"]),
        pa.array(["a\x00", "b"]),
        pa.array(["x" * 1500, "y"]),
        pa.array([1e300, -1.0]),
        pa.array(["3", "nan"]),
        pa.array([None, None], pa.null()),
        pa.array(["u", "v"]).dictionary_encode(),
        pa.array([0, 1], pa.timestamp("s")),
        pa.array([1, 2], pa.decimal128(5, 0)),
    ]
)


@FUZZ
@given(user=arrow_arrays, item=arrow_arrays, weight=arrow_arrays)
def test_parquet_columns_of_any_type(user: pa.Array, item: pa.Array, weight: pa.Array) -> None:
    table = pa.table({"user_id": user, "item_id": item, "w": weight})
    check("parquet", _parquet_bytes(table))
