"""Inputs that escaped the readers' clean error (issue 13, items 8, 9 and the reader parts of 10).

Each test is one reported input: the reader must give a result or a
:class:`~segue.exceptions.DataFormatError` naming the file (and the line or record where one
applies), never an OverflowError, UnicodeEncodeError, RecursionError or ``_csv.Error``.
"""

from __future__ import annotations

import json
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segue.data.readers import (
    read_challenge_set,
    read_listen_interactions,
    read_listens,
    read_melon,
    read_mpd,
    read_song_meta,
    read_table_interactions,
    read_targets,
)
from segue.data.readers._limits import MAX_ID_CHARS, MAX_TEXT_CHARS
from segue.data.readers.melon import load_melon_json
from segue.data.titles import title_pairs
from segue.exceptions import DataFormatError

BIG = 2**63  # one past int64


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def error(call, path: Path, *args: Any, **kwargs: Any) -> str:
    """The one-line DataFormatError message of ``call(path)``, checked to name the file."""
    with pytest.raises(DataFormatError) as info:
        call(path, *args, **kwargs)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message
    return message


def melon_record(pid: int = 1, **fields: Any) -> dict[str, Any]:
    record = {
        "tags": ["rock"],
        "id": pid,
        "plylst_title": "t",
        "songs": [1, 2],
        "like_cnt": 1,
        "updt_date": "2020-01-01 00:00:00.000",
    }
    record.update(fields)
    return record


def song(sid: int = 1, **fields: Any) -> dict[str, Any]:
    record = {
        "song_gn_dtl_gnr_basket": ["GN0101"],
        "issue_date": "20200101",
        "album_name": "a",
        "album_id": 7,
        "artist_id_basket": [3],
        "song_name": "s",
        "song_gn_gnr_basket": ["GN0100"],
        "artist_name_basket": ["x"],
        "id": sid,
    }
    record.update(fields)
    return record


def mpd_line(pid: int = 1, **fields: Any) -> dict[str, Any]:
    playlist = {"pid": pid, "name": "road trip", "tracks": [{"track_uri": "spotify:track:1"}]}
    playlist.update(fields)
    return playlist


def write_lines(path: Path, playlists: list[dict[str, Any]]) -> Path:
    return write(path, "".join(json.dumps(p) + "\n" for p in playlists))


# item 8: integers past int64 ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("id", BIG, "list index 0: 'id' 9223372036854775808"),
        ("id", -BIG - 1, "list index 0: 'id' -9223372036854775809"),
        ("songs", [1, BIG], "playlist id 1 (list index 0): 'songs' position 1: 92233"),
        ("like_cnt", BIG, "playlist id 1 (list index 0): 'like_cnt' 9223372036854775808"),
    ],
)
def test_melon_integers_past_int64(tmp_path: Path, field: str, value: Any, where: str) -> None:
    # was OverflowError: Python int too large to convert to C long
    path = write(tmp_path / "train.json", json.dumps([melon_record(**{field: value})]))
    message = error(read_melon, path)
    assert where in message and "out of the 64-bit integer range" in message
    assert where in error(load_melon_json, path)


def test_song_meta_id_past_int64_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "song_meta.json", json.dumps([song(), song(BIG)]))
    assert "list index 1: 'id' 9223372036854775808 is out" in error(read_song_meta, path)


def test_song_meta_album_and_artist_past_int64_are_missing_metadata(tmp_path: Path) -> None:
    # was TypeError: cannot safely cast non-equivalent uint64 to int64; song_meta.json is
    # read leniently (the challenge calls it unreliable): such values are dropped
    meta = [song(1, album_id=BIG, artist_id_basket=[BIG, 4]), song(2)]
    tracks = read_song_meta(write(tmp_path / "song_meta.json", json.dumps(meta)))
    assert tracks["album"].isna().tolist() == [True, False]
    assert tracks["artists"].tolist() == [[4], [3]] and tracks["artist"].tolist() == ["4", "3"]


# item 8: lone surrogates ----------------------------------------------------------------------
def test_mpd_name_with_a_lone_surrogate(tmp_path: Path) -> None:
    # was UnicodeEncodeError from pyarrow
    path = write_lines(tmp_path / "p.jsonl", [mpd_line(1), mpd_line(2, name="x\ud800")])
    message = error(read_mpd, path)
    assert message.startswith(f"{path}:2: pid 2: 'name'") and "lone surrogate" in message


def test_mpd_uri_with_a_lone_surrogate_in_a_slice(tmp_path: Path) -> None:
    bad = mpd_line(5, tracks=[{"track_uri": "spotify:track:1"}, {"track_uri": "s:\udfff"}])
    path = write(tmp_path / "mpd.slice.0-999.json", json.dumps({"playlists": [bad]}))
    message = error(read_mpd, path)
    assert "playlists[0] (pid 5): tracks[1]: 'track_uri'" in message
    assert "lone surrogate" in message


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"tags": ["ok", "\ud800"]}, "'tags' position 1: tag '\\ud800' is not valid Unicode"),
        ({"plylst_title": "x\udc00y"}, "'plylst_title' 'x\\udc00y' is not valid Unicode"),
    ],
)
def test_melon_tag_or_title_with_a_lone_surrogate(tmp_path: Path, fields, where) -> None:
    path = write(tmp_path / "train.json", json.dumps([melon_record(3, **fields)]))
    assert f"playlist id 3 (list index 0): {where}" in error(read_melon, path)


def test_song_meta_names_with_a_lone_surrogate_read_as_null(tmp_path: Path) -> None:
    meta = [song(1, song_name="\ud800", artist_name_basket=["a", "\ud801"]), song(2)]
    tracks = read_song_meta(write(tmp_path / "song_meta.json", json.dumps(meta)))
    assert tracks["track_name"].isna().tolist() == [True, False]
    assert tracks["artist_name"].tolist() == ["a", "x"]


# item 8: deep nesting and long CSV fields ---------------------------------------------------
@pytest.mark.parametrize("name", ["one-line.json", "mpd.slice.0-999.json", "p.jsonl"])
def test_mpd_nested_100000_deep(tmp_path: Path, name: str) -> None:
    # was RecursionError (the JSON Lines sniffing of a one-line slice)
    path = write(tmp_path / name, "[" * 100_000 + "]" * 100_000)
    assert "nested too deeply" in error(read_mpd, path)
    path = write(tmp_path / name, '{"playlists": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert "nested too deeply" in error(read_mpd, path)


def test_melon_nested_100000_deep(tmp_path: Path) -> None:
    path = write(tmp_path / "train.json", "[" * 100_000 + "]" * 100_000)
    assert "nested too deeply" in error(read_melon, path)


def test_csv_field_over_131072_characters_on_a_ragged_line(tmp_path: Path) -> None:
    # was _csv.Error: field larger than field limit (131072), in the fallback scan
    path = write(tmp_path / "t.csv", "user_id,item_id\nu1,i1\nu2," + "x" * 200_000 + ",extra\n")
    assert error(read_table_interactions, path) == f"{path}:3: expected 2 fields, found 3"


def test_csv_long_field_in_another_column_is_read(tmp_path: Path) -> None:
    # 200K characters (over csv's limit) and 3 MB (over Arrow's 1 MiB block) in a column
    # that is not read
    for size in (200_000, 3_000_000):
        path = write(tmp_path / "t.csv", f"user_id,item_id,note\nu1,i1,{'x' * size}\nu2,i2,y\n")
        inter = read_table_interactions(path)
        assert inter.users.ids.tolist() == ["u1", "u2"]


def test_csv_long_id_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "user_id,item_id\nu1,i1\nu2," + "y" * 200_000 + "\n")
    message = error(read_table_interactions, path)
    assert message.startswith(f"{path}:3: 'item_id' 'yyy")
    assert f"has 200,000 characters (at most {MAX_ID_CHARS:,})" in message


# item 9: bounded titles and ids -----------------------------------------------------------------
def test_mpd_long_title_is_cut_with_a_warning(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "p.jsonl", [mpd_line(1, name="x" * 1_000_000), mpd_line(2)])
    with pytest.warns(RuntimeWarning, match=r"p.jsonl: 1 titles or names longer than 1,000"):
        playlists = read_mpd(path)
    assert playlists.playlists["name"].str.len().tolist() == [MAX_TEXT_CHARS, 9]


def test_mpd_long_track_names_are_cut_and_long_uris_refused(tmp_path: Path) -> None:
    track = {"track_uri": "spotify:track:1", "track_name": "n" * 5000, "artist_name": "a" * 2000}
    path = write_lines(tmp_path / "p.jsonl", [mpd_line(1, tracks=[track])])
    with pytest.warns(RuntimeWarning, match="2 titles or names"):
        tracks = read_mpd(path).tracks
    assert tracks["track_name"].str.len().tolist() == [MAX_TEXT_CHARS]
    assert tracks["artist"].tolist() == ["name:" + "a" * MAX_TEXT_CHARS]
    long_uri = {"track_uri": "spotify:track:" + "1" * MAX_ID_CHARS}
    path = write_lines(tmp_path / "q.jsonl", [mpd_line(7, tracks=[long_uri])])
    message = error(read_mpd, path)
    assert message.startswith(f"{path}:1: pid 7: tracks[0]: 'track_uri'")
    assert f"has 1,014 characters (at most {MAX_ID_CHARS:,})" in message


def test_melon_long_title_is_cut_and_long_tag_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "train.json", json.dumps([melon_record(plylst_title="t" * 10**6)]))
    with pytest.warns(RuntimeWarning, match="train.json: 1 titles longer than 1,000"):
        playlists = read_melon(path)
    assert playlists.playlists["name"].str.len().tolist() == [MAX_TEXT_CHARS]
    path = write(tmp_path / "train.json", json.dumps([melon_record(tags=["g" * 1001])]))
    assert "'tags' position 0: tag 'ggg" in error(read_melon, path)


def test_listens_long_id_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "l.txt", "u1 s1 3\nu2 " + "s" * 5000 + " 1\nu3 s3 1\n")
    message = error(read_listens, path)
    assert message.startswith(f"{path}:2: sid 'sss") and "5,000 characters" in message
    # a long line that holds only short ids (padding) is fine
    padded = write(tmp_path / "p.txt", "u1" + " " * 3000 + "s1 3\n")
    assert read_listens(padded)["item_id"].tolist() == ["s1"]


def test_targets_long_id_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "t.txt", "u1\nu2 " + "u" * 1001 + "\n")
    assert error(read_targets, path).startswith(f"{path}:2: user id 'uuu")


def test_title_words_do_not_cost_their_longest_word_each() -> None:
    # np.concatenate made a fixed-width '<U1000000' array: 4 MB per title word
    titles = pd.Series(["w" * 1_000_000] + [f"rock {i}" for i in range(300)])
    tracemalloc.start()
    try:
        rows, cols, _ = title_pairs(np.arange(301), titles)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert cols.dtype == object and len(cols) == 1 + 600 + 301
    assert peak < 50 * 2**20, peak  # was 2.4 GB


def test_train_peak_memory_with_a_1_mb_title(tmp_path: Path) -> None:
    from segue.inference import playlist_interactions

    path = write_lines(
        tmp_path / "p.jsonl",
        [mpd_line(0, name="x" * 1_000_000)] + [mpd_line(p, name=f"mix {p}") for p in range(1, 300)],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        playlists = read_mpd(path)
    tracemalloc.start()
    try:
        playlist_interactions(playlists, with_titles=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20, peak


# item 10 (readers): BOM, float32 overflow, file names, Parquet id types, NUL ------------------
def test_targets_with_a_bom(tmp_path: Path) -> None:
    path = write(tmp_path / "t.txt", b"\xef\xbb\xbfu1\nu2\n")
    assert read_targets(path).tolist() == ["u1", "u2"]  # was "\ufeffu1"


def test_listens_and_csv_with_a_bom(tmp_path: Path) -> None:
    assert read_listens(write(tmp_path / "l.txt", b"\xef\xbb\xbfu1 s1 3\n"))["user_id"][0] == "u1"
    path = write(tmp_path / "t.csv", b"\xef\xbb\xbfuser_id,item_id\nu1,i1\n")
    assert read_table_interactions(path).users.ids.tolist() == ["u1"]


def test_weight_that_overflows_float32(tmp_path: Path) -> None:
    # was: float32 inf, failing later as "ALS diverged"
    path = write(tmp_path / "t.csv", "user_id,item_id,w\nu1,i1,2\nu1,i2,1e300\n")
    message = error(read_table_interactions, path, weight_col="w")
    assert message.startswith(f"{path}:3: 'w' value") and "too large" in message
    table = pa.table({"user_id": ["u1", "u2"], "item_id": ["a", "b"], "w": [1.0, 1e39]})
    pq.write_table(table, tmp_path / "t.parquet")
    message = error(read_table_interactions, tmp_path / "t.parquet", weight_col="w")
    assert "row 1: 'w' value" in message and "too large" in message
    # each fits, their sum does not
    path = write(tmp_path / "s.csv", "user_id,item_id,w\nu1,i1,3e38\nu1,i1,3e38\n")
    assert "sum to more than float32 holds" in error(read_table_interactions, path, weight_col="w")


def test_challenge_pid_must_not_be_negative(tmp_path: Path) -> None:
    # was "row 0: pid must be non-negative, got -5" from the submission writer, no file name
    doc = {"playlists": [{"pid": 1, "name": "a"}, {"pid": -5, "name": "x", "tracks": []}]}
    path = write(tmp_path / "challenge_set.json", json.dumps(doc))
    message = error(read_challenge_set, path)
    assert "playlists[1] (pid -5): a challenge playlist's 'pid' must not be negative" in message


@pytest.mark.parametrize(
    ("content", "line"),
    [(b"user_id,item_id\nu1,i1\nu2,i\xff2\n", 3), (b"user\xff_id,item_id\nu1,i1\n", 1)],
)
def test_csv_invalid_utf8_names_file_and_line(tmp_path: Path, content: bytes, line: int) -> None:
    path = write(tmp_path / "t.csv", content)
    assert error(read_table_interactions, path).startswith(f"{path}:{line}: not valid UTF-8")


@pytest.mark.parametrize(
    "array",
    [
        pa.array([[1], [2]]),
        pa.array([{"a": 1}, {"a": 2}]),
        pa.array([1.0, 2.0]),
        pa.array([True, False]),
        pa.array([b"a", b"b"]),
    ],
    ids=["list", "struct", "float", "bool", "binary"],
)
def test_parquet_id_columns_that_are_not_strings_or_integers(tmp_path: Path, array) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"user_id": array, "item_id": ["a", "b"]}), path)
    message = error(read_table_interactions, path)
    assert "column 'user_id' holds" in message and "ids must be strings or integers" in message


def test_parquet_integer_and_dictionary_id_columns_are_read(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    users = pa.array(["u1", "u2"]).dictionary_encode()
    pq.write_table(pa.table({"user_id": users, "item_id": pa.array([7, 8], pa.int64())}), path)
    inter = read_table_interactions(path)
    assert inter.users.ids.tolist() == ["u1", "u2"] and inter.items.ids.tolist() == ["7", "8"]


def test_parquet_weight_column_of_lists(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"user_id": ["u"], "item_id": ["i"], "w": [[1.0]]}), path)
    assert "weights must be numbers" in error(read_table_interactions, path, weight_col="w")


def test_nul_in_ids_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "l.txt", "u1 s1 3\nu\x002 s2 1\n")
    assert error(read_listen_interactions, path).startswith(f"{path}:2: uid 'u\\x002'")
    path = write(tmp_path / "t.txt", "u1\nu\x002\n")
    assert error(read_targets, path).startswith(f"{path}:2: user id")
    path = write(tmp_path / "t.csv", "user_id,item_id\nu1,i\x001\n")
    assert "NUL" in error(read_table_interactions, path)
    pq.write_table(pa.table({"user_id": ["a\x00"], "item_id": ["i"]}), tmp_path / "t.parquet")
    assert "row 0: 'user_id'" in error(read_table_interactions, tmp_path / "t.parquet")
    path = write_lines(tmp_path / "p.jsonl", [mpd_line(3, tracks=[{"track_uri": "a\x00b"}])])
    assert "NUL" in error(read_mpd, path)
    path = write(tmp_path / "train.json", json.dumps([melon_record(tags=["a\x00"])]))
    assert "NUL" in error(read_melon, path)
