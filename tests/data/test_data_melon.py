from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from segue.data.playlists import Playlists, load_playlists
from segue.data.readers.melon import (
    PLAYLIST_FIELDS,
    load_melon_json,
    read_genres,
    read_melon,
    read_song_meta,
    write_melon_json,
)
from segue.exceptions import DataFormatError


def _pl(pid: int, songs: list[Any], tags: list[Any] | None = None, **extra: Any) -> dict:
    record = {
        "tags": tags if tags is not None else ["발라드"],
        "id": pid,
        "plylst_title": f"playlist {pid}",
        "songs": songs,
        "like_cnt": 3,
        "updt_date": "2013-12-19 18:36:19.000",
    }
    record.update(extra)
    return record


PLAYLISTS = [
    _pl(61281, [525, 129, 383], ["락"], plylst_title="여행같은 음악", like_cnt=71),
    _pl(10, [], ["새벽", "감성 🎧"], plylst_title="새벽 감성 ♬ 🎧"),  # empty songs, unicode
    {"tags": [], "id": 7, "songs": [129, 999999]},  # no title, like_cnt, date; unknown song
    _pl(3, [383, 129], plylst_title=None, updt_date="not a date", like_cnt=None),
    _pl(4, [525], updt_date="2020-04-23 12:00:00"),  # no milliseconds
]
SONGS = [
    {
        "song_gn_dtl_gnr_basket": ["GN0105", "GN0101"],
        "issue_date": "20140512",
        "album_name": "앨범",
        "album_id": 2255639,
        "artist_id_basket": [2727, 3],
        "song_name": "밤편지",
        "song_gn_gnr_basket": ["GN0100"],
        "artist_name_basket": ["아이유", "성시경"],
        "id": 129,
    },
    {
        "song_gn_dtl_gnr_basket": [],
        "issue_date": "00000000",
        "album_name": None,
        "album_id": None,
        "artist_id_basket": [],
        "song_name": "Untitled",
        "song_gn_gnr_basket": [],
        "artist_name_basket": [],
        "id": 383,
    },
    {"id": 525, "issue_date": "20050000", "song_gn_gnr_basket": ["GN0900", "GN1500"]},
    {"id": 1, "issue_date": "1999", "artist_id_basket": "oops"},  # in no playlist
]
GENRES = {"GN0100": "발라드", "GN0101": "세부장르전체", "GN0105": "'10-", "GN0900": "POP"}


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def melon_dir(tmp_path: Path) -> Path:
    _write(tmp_path / "train.json", PLAYLISTS)
    _write(tmp_path / "song_meta.json", SONGS)
    _write(tmp_path / "genre_gn_all.json", GENRES)
    return tmp_path


@pytest.fixture
def data(melon_dir: Path) -> Playlists:
    return read_melon(melon_dir / "train.json")


def test_playlists_table(data: Playlists) -> None:
    pl = data.playlists
    assert list(pl.columns) == ["pid", "name", "tags", "like_cnt", "updt_date"]
    assert pl["pid"].tolist() == [61281, 10, 7, 3, 4]
    assert pl["pid"].dtype == np.int64
    assert pl["name"].tolist() == ["여행같은 음악", "새벽 감성 ♬ 🎧", "", "", "playlist 4"]
    assert pl["tags"].tolist() == [["락"], ["새벽", "감성 🎧"], [], ["발라드"], ["발라드"]]
    assert str(pl["like_cnt"].dtype) == "Int64"
    assert pl["like_cnt"].tolist()[:2] == [71, 3]
    assert pl["like_cnt"].isna().tolist() == [False, False, True, True, False]
    assert pd.api.types.is_datetime64_any_dtype(pl["updt_date"])
    dates = pl["updt_date"]
    assert dates.iloc[0] == pd.Timestamp("2013-12-19 18:36:19")
    assert dates.isna().tolist() == [False, False, True, True, False]  # missing and bad: NaT
    assert dates.iloc[4] == pd.Timestamp("2020-04-23 12:00:00")


def test_entries_keep_order_and_empty_playlists(data: Playlists) -> None:
    e = data.entries
    assert list(e.columns) == ["pid", "pos", "track"]
    assert e["pid"].tolist() == [61281] * 3 + [7, 7, 3, 3, 4]
    assert e["pos"].tolist() == [0, 1, 2, 0, 1, 0, 1, 0]
    assert e["track"].tolist() == [525, 129, 383, 129, 999999, 383, 129, 525]
    assert all(e[c].dtype == np.int64 for c in e.columns)
    assert data.lengths().tolist() == [3, 0, 2, 2, 1]
    assert data.describe()["empty_playlists"] == 1
    assert data.track_lists()[10] == []


def test_tracks_table_has_every_song_and_unknown_ones(data: Playlists) -> None:
    t = data.tracks
    assert list(t.columns) == [
        "track",
        "track_name",
        "artist",
        "artist_name",
        "artists",
        "album",
        "album_name",
        "genres",
        "detail_genres",
        "issue_date",
    ]
    # song_meta order, then the songs only the playlists name (sorted)
    assert t["track"].tolist() == [129, 383, 525, 1, 999999]
    row = t.iloc[0]
    assert row["track_name"] == "밤편지"
    assert row["artist"] == "2727"  # first artist id, as a string
    assert row["artists"] == [2727, 3]
    assert row["artist_name"] == "아이유, 성시경"
    assert row["album"] == 2255639 and row["album_name"] == "앨범"
    assert row["genres"] == ["GN0100"] and row["detail_genres"] == ["GN0105", "GN0101"]
    assert t["issue_date"].tolist() == [20140512, 0, 20050000, 1999, 0]
    assert t["issue_date"].dtype == np.int64
    assert str(t["album"].dtype) == "Int64"
    assert t["album"].isna().tolist() == [False, True, True, True, True]
    assert pd.isna(t["artist"].iloc[1]) and t["artists"].iloc[1] == []
    assert t["artists"].iloc[3] == []  # a basket that is not a list reads as empty
    unknown = t.iloc[4]
    assert pd.isna(unknown["track_name"]) and pd.isna(unknown["artist"])
    assert unknown["genres"] == [] and unknown["detail_genres"] == []
    assert set(data.entries["track"]) <= set(t["track"])
    assert data.track_artists()[129] == "2727"


def test_song_meta_choice(melon_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    alone = read_melon(melon_dir / "train.json", song_meta=False)
    assert alone.tracks["track"].tolist() == [129, 383, 525, 999999]
    assert alone.tracks["track_name"].isna().all()
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    _write(elsewhere / "q.json", PLAYLISTS[:1])
    assert read_melon(elsewhere / "q.json").n_tracks == 3  # nothing beside it: no metadata
    explicit = read_melon(elsewhere / "q.json", song_meta=melon_dir / "song_meta.json")
    assert explicit.tracks["track"].tolist() == [129, 383, 525, 1]
    with pytest.raises(DataFormatError, match="nope.json: no such file"):
        read_melon(elsewhere / "q.json", song_meta=elsewhere / "nope.json")


def test_results_file_without_titles_reads(tmp_path: Path) -> None:
    path = _write(tmp_path / "results.json", [{"id": 1, "songs": [5, 6], "tags": ["a"]}])
    data = read_melon(path)
    assert data.playlists["name"].tolist() == [""]
    assert data.playlists["like_cnt"].isna().all()
    assert data.playlists["updt_date"].isna().all()


def test_playlists_work_downstream(data: Playlists, tmp_path: Path) -> None:
    inter = data.to_interactions()
    assert inter.matrix.shape == (5, 5)
    assert inter.matrix.nnz == 8
    saved = load_playlists(data.save(tmp_path / "ds"))
    assert saved.playlists["pid"].tolist() == data.playlists["pid"].tolist()
    assert saved.entries.equals(data.entries)


def test_load_and_write_round_trip(melon_dir: Path, tmp_path: Path) -> None:
    records = load_melon_json(melon_dir / "train.json")
    assert records == PLAYLISTS
    out = write_melon_json(tmp_path / "sub" / "copy.json", records)
    raw = out.read_bytes()
    assert "여행같은 음악".encode() in raw  # UTF-8, not \\u escapes
    assert json.loads(raw) == PLAYLISTS
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp files
    assert PLAYLIST_FIELDS == tuple(PLAYLISTS[0])


def test_read_genres(melon_dir: Path, tmp_path: Path) -> None:
    assert read_genres(melon_dir / "genre_gn_all.json") == GENRES
    with pytest.raises(DataFormatError, match="expected a JSON object"):
        read_genres(_write(tmp_path / "g.json", ["GN0100"]))
    with pytest.raises(DataFormatError, match="'GN0100': the name must be a string"):
        read_genres(_write(tmp_path / "g.json", {"GN0100": 1}))


def test_read_song_meta_alone(melon_dir: Path) -> None:
    meta = read_song_meta(melon_dir / "song_meta.json")
    assert len(meta) == 4 and meta["track"].is_unique


# --- errors: every one names the file and the playlist ----------------------------------------
BAD_PLAYLISTS = [
    pytest.param({"a": 1}, "expected a JSON list of playlists, found an object", id="not-a-list"),
    pytest.param([], "empty list", id="empty-list"),
    pytest.param([_pl(1, [1]), 5], "list index 1: expected an object, found a number", id="int"),
    pytest.param([_pl(1, [1]), {"songs": [], "tags": []}], "list index 1: has no 'id'", id="no-id"),
    pytest.param([_pl("7", [1])], "list index 0: 'id' must be an integer", id="str-id"),
    pytest.param([_pl(True, [1])], "list index 0: 'id' must be an integer", id="bool-id"),
    pytest.param(
        [_pl(1, [1]), {"id": 9, "tags": []}],
        "playlist id 9 (list index 1): 'songs' must be a list of integer song ids, it is missing",
        id="no-songs",
    ),
    pytest.param(
        [_pl(5, "1 2 3")],
        "playlist id 5 (list index 0): 'songs' must be a list of integer song ids, found a string",
        id="songs-str",
    ),
    pytest.param(
        [_pl(1, [1]), _pl(8, [1, "x", 3])],
        "playlist id 8 (list index 1): 'songs' must be a list of integer song ids, "
        "found a string 'x' at position 1",
        id="song-str",
    ),
    pytest.param([_pl(8, [1, 2.0])], "found a number 2.0 at position 1", id="song-float"),
    pytest.param([_pl(8, [True])], "found a boolean True at position 0", id="song-bool"),
    pytest.param(
        [_pl(6, [1], ["ok", 3])],
        "playlist id 6 (list index 0): 'tags' must be a list of strings, found a number 3",
        id="tag-int",
    ),
    pytest.param([_pl(6, [1], None) | {"tags": None}], "'tags' must be a list", id="tags-null"),
    pytest.param(
        [_pl(2, [1], plylst_title=12)],
        "playlist id 2 (list index 0): 'plylst_title' must be a string, found a number 12",
        id="title-int",
    ),
    pytest.param(
        [_pl(2, [1], like_cnt="12")],
        "playlist id 2 (list index 0): 'like_cnt' must be an integer",
        id="like-str",
    ),
    pytest.param(
        [_pl(1, [1]), _pl(2, [2]), _pl(1, [3])],
        "duplicate playlist id 1 (list indices 0 and 2)",
        id="dup-id",
    ),
    pytest.param(SONGS, "this looks like song_meta.json", id="song-meta-given"),
]


@pytest.mark.parametrize(("content", "message"), BAD_PLAYLISTS)
def test_bad_playlist_files(tmp_path: Path, content: Any, message: str) -> None:
    path = _write(tmp_path / "bad.json", content)
    with pytest.raises(DataFormatError) as info:
        read_melon(path)
    text = str(info.value)
    assert text.startswith(str(path))
    assert message in text
    with pytest.raises(DataFormatError, match="bad.json"):
        load_melon_json(path)


def test_not_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "train.json"
    path.write_text('[\n{"id": 1, "songs": [1],\n "tags": [] ,,}\n]', encoding="utf-8")
    with pytest.raises(DataFormatError) as info:
        read_melon(path)
    assert str(info.value).startswith(f"{path}:3: not valid JSON")
    assert info.value.line == 3


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="missing.json: no such file"):
        read_melon(tmp_path / "missing.json")
    empty = tmp_path / "empty.json"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="empty.json: the file is empty"):
        read_melon(empty)
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'[{"id": 1, "songs": [], "tags": ["caf\xe9"]}]')
    with pytest.raises(DataFormatError, match=r"latin.json:1: not valid UTF-8"):
        read_melon(latin)


def test_bad_song_meta(melon_dir: Path) -> None:
    meta = melon_dir / "song_meta.json"
    _write(meta, [*SONGS, {"id": 129}])
    with pytest.raises(DataFormatError, match=r"song_meta.json: duplicate song id 129 \(list"):
        read_melon(melon_dir / "train.json")
    _write(meta, [{"song_name": "x"}])
    with pytest.raises(DataFormatError, match="song_meta.json: list index 0: has no 'id'"):
        read_melon(melon_dir / "train.json")
    _write(meta, {"0": {}})
    with pytest.raises(DataFormatError, match="expected a JSON list of songs"):
        read_melon(melon_dir / "train.json")


def test_sparse_or_negative_song_ids(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.json", [_pl(1, [10**12, -5, 10**12])])
    data = read_melon(path)
    assert data.tracks["track"].tolist() == [-5, 10**12]
    assert data.entries["track"].tolist() == [10**12, -5, 10**12]
