"""Spotify MPD reader: slices, challenge sets, JSON Lines, errors, streaming import."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from segue.data.playlists import Playlists, load_playlists
from segue.data.readers.mpd import (
    import_mpd,
    iter_mpd_playlists,
    list_mpd_files,
    read_challenge_set,
    read_mpd,
)
from segue.exceptions import DataFormatError


def track(n: int, **fields: Any) -> dict[str, Any]:
    """A full MPD track object for track number ``n`` (fields override or, as None, drop)."""
    full = {
        "pos": n,
        "artist_name": f"Artist {n % 3}",
        "track_uri": f"spotify:track:t{n}",
        "artist_uri": f"spotify:artist:a{n % 3}",
        "track_name": f"Song {n}",
        "album_uri": f"spotify:album:b{n % 5}",
        "duration_ms": 200_000 + n,
        "album_name": f"Album {n % 5}",
    }
    full.update(fields)
    return {k: v for k, v in full.items() if v is not None}


def playlist(pid: int, tracks: list[int], **fields: Any) -> dict[str, Any]:
    full: dict[str, Any] = {
        "name": f"list {pid}",
        "collaborative": "false",
        "pid": pid,
        "modified_at": 1_500_000_000 + pid,
        "num_tracks": len(tracks),
        "num_followers": 1 + pid,
        "tracks": [track(n, pos=pos) for pos, n in enumerate(tracks)],
    }
    full.update(fields)
    return {k: v for k, v in full.items() if v is not None}


def slice_doc(playlists: list[dict[str, Any]], start: int = 0) -> dict[str, Any]:
    info = {"generated_on": "2017-12-03 08:41:42.057563", "slice": f"{start}-{start + 999}"}
    return {"info": {**info, "version": "v1"}, "playlists": playlists}


def write_json(path: Path, document: Any, indent: int | None = 4) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=indent), encoding="utf-8")
    return path


def write_lines(path: Path, playlists: list[Any], opener=open) -> Path:
    text = "".join(json.dumps(p) + "\n" for p in playlists)
    with opener(path, "wt", encoding="utf-8") as fh:
        fh.write(text)
    return path


def error_of(path: Path | str) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        read_mpd(path)
    return info.value


# reading ----------------------------------------------------------------------------------------


def test_read_slice_all_fields(tmp_path: Path) -> None:
    f = write_json(
        tmp_path / "mpd.slice.0-999.json",
        slice_doc(
            [
                playlist(0, [1, 2, 1], collaborative="true", description="old songs"),
                playlist(1, [2, 3]),
            ]
        ),
    )
    pl = read_mpd(f)
    assert isinstance(pl, Playlists)
    assert list(pl.playlists.columns) == [
        "pid",
        "name",
        "description",
        "num_followers",
        "modified_at",
        "collaborative",
    ]
    assert pl.playlists["pid"].tolist() == [0, 1]
    assert pl.playlists["name"].tolist() == ["list 0", "list 1"]
    assert pl.playlists["collaborative"].tolist() == [True, False]
    assert pl.playlists["num_followers"].tolist() == [1, 2]
    assert pl.entries["pid"].tolist() == [0, 0, 0, 1, 1]
    assert pl.entries["pos"].tolist() == [0, 1, 2, 0, 1]
    assert pl.entries["track"].tolist() == [f"spotify:track:t{n}" for n in [1, 2, 1, 2, 3]]
    assert pl.tracks["track"].tolist() == [f"spotify:track:t{n}" for n in [1, 2, 3]]
    first = pl.tracks.iloc[0].to_dict()
    assert first == {
        "track": "spotify:track:t1",
        "track_name": "Song 1",
        "artist": "spotify:artist:a1",
        "artist_name": "Artist 1",
        "album": "spotify:album:b1",
        "album_name": "Album 1",
        "duration_ms": 200_001,
    }
    assert pl.lengths().tolist() == [3, 2]
    assert pl.track_artists()["spotify:track:t2"] == "spotify:artist:a2"


def test_iter_yields_original_dicts_with_unknown_fields(tmp_path: Path) -> None:
    p = playlist(5, [1], num_edits=3, extra={"a": 1})
    f = write_json(tmp_path / "s.json", slice_doc([p]))
    assert list(iter_mpd_playlists(f)) == [p]


def test_first_track_metadata_wins_and_name_fallbacks(tmp_path: Path) -> None:
    tracks = [
        track(1, pos=None, artist_uri=None, album_uri=None),
        track(1, pos=None, track_name="Other name"),
        track(2, pos=None, artist_uri=None, album_uri=None, album_name=None, duration_ms=None),
        track(3, pos=None, artist_uri=None, artist_name=None, album_uri=None),
    ]
    f = write_json(tmp_path / "s.json", slice_doc([{"pid": 1, "tracks": tracks}]))
    pl = read_mpd(f)
    t = pl.tracks.set_index("track")
    assert t.loc["spotify:track:t1", "track_name"] == "Song 1"
    assert t.loc["spotify:track:t1", "artist"] == "name:Artist 1"
    assert t.loc["spotify:track:t1", "album"] == "name:Artist 1/Album 1"
    assert t.loc["spotify:track:t2", "artist"] == "name:Artist 2"
    assert pd.isna(t.loc["spotify:track:t2", "album"])
    assert pd.isna(t.loc["spotify:track:t2", "duration_ms"])
    assert pd.isna(t.loc["spotify:track:t3", "artist"])
    assert t.loc["spotify:track:t3", "album"] == "name:/Album 3"
    # no name: null, and only the always-present playlist columns
    assert list(pl.playlists.columns) == ["pid", "name"]
    assert pl.playlists["name"].isna().all()


def test_only_track_uri_given(tmp_path: Path) -> None:
    doc = {"playlists": [{"pid": 3, "tracks": [{"track_uri": "x"}, {"track_uri": "y"}]}]}
    pl = read_mpd(write_json(tmp_path / "s.json", doc))
    assert list(pl.tracks.columns) == ["track"]
    assert pl.track_artists().empty
    assert pl.entries["track"].tolist() == ["x", "y"]


def test_folder_sorted_by_slice_start_and_data_subfolder(tmp_path: Path) -> None:
    for start in (1000, 0, 200):
        write_json(
            tmp_path / "data" / f"mpd.slice.{start}-{start + 99}.json",
            slice_doc([playlist(start, [1]), playlist(start + 1, [2])], start),
        )
    (tmp_path / "data" / "README.md").write_text("not a slice")
    (tmp_path / "data" / "mpd.slice.notes.json").write_text("{}")
    assert [p.name for p in list_mpd_files(tmp_path)] == [
        "mpd.slice.0-99.json",
        "mpd.slice.200-299.json",
        "mpd.slice.1000-1099.json",
    ]
    assert read_mpd(tmp_path).playlists["pid"].tolist() == [0, 1, 200, 201, 1000, 1001]
    assert read_mpd(tmp_path / "data").n_playlists == 6
    pattern = str(tmp_path / "data" / "mpd.slice.*-*99.json")
    assert [p["pid"] for p in iter_mpd_playlists(pattern)] == [0, 1, 200, 201, 1000, 1001]


def test_compressed_slices_in_folder(tmp_path: Path) -> None:
    doc = json.dumps(slice_doc([playlist(7, [1, 2])])).encode()
    (tmp_path / "mpd.slice.0-999.json.xz").write_bytes(lzma.compress(doc))
    doc2 = json.dumps(slice_doc([playlist(1007, [3])], 1000)).encode()
    (tmp_path / "mpd.slice.1000-1999.json.gz").write_bytes(gzip.compress(doc2))
    assert read_mpd(tmp_path).playlists["pid"].tolist() == [7, 1007]


def test_challenge_set_shapes(tmp_path: Path) -> None:
    doc = {
        "date": "2018-01-16 08:47:28.198015",
        "version": "v1",
        "playlists": [
            {
                "pid": 1000002,
                "name": "spanish",
                "num_holdouts": 11,
                "num_samples": 0,
                "num_tracks": 11,
                "tracks": [],
            },
            {
                "pid": 1000003,
                "num_holdouts": 40,
                "num_samples": 2,
                "num_tracks": 42,
                "tracks": [track(1, pos=0), track(2, pos=1)],
            },
            {
                "pid": 1000004,
                "name": "random",
                "num_holdouts": 100,
                "num_samples": 2,
                "num_tracks": 102,
                "tracks": [track(3, pos=4), track(4, pos=77)],
            },
        ],
    }
    pl = read_challenge_set(write_json(tmp_path / "challenge_set.json", doc))
    assert list(pl.playlists.columns) == ["pid", "name", "num_holdouts", "num_samples"]
    assert pl.playlists["num_holdouts"].tolist() == [11, 40, 100]
    assert pl.playlists["name"].isna().tolist() == [False, True, False]
    assert pl.lengths().tolist() == [0, 2, 2]
    # pos is the order in the file; the pos field (with gaps) was only checked
    assert pl.entries["pos"].tolist() == [0, 1, 0, 1]
    assert pl.describe()["empty_playlists"] == 1
    assert pl.describe()["with_title"] == 2
    matrix = pl.to_interactions()
    assert (matrix.n_users, matrix.n_items, matrix.nnz) == (3, 4, 4)


def test_playlist_with_no_tracks_key_and_null_fields(tmp_path: Path) -> None:
    doc = {"playlists": [{"pid": 1, "name": None, "description": None, "collaborative": None}]}
    pl = read_mpd(write_json(tmp_path / "c.json", doc))
    assert pl.n_playlists == 1 and pl.n_entries == 0 and pl.n_tracks == 0
    assert list(pl.playlists.columns) == ["pid", "name"]


def test_top_level_list_of_playlists(tmp_path: Path) -> None:
    f = write_json(tmp_path / "list.json", [playlist(1, [1]), playlist(2, [2])])
    assert read_mpd(f).n_playlists == 2


@pytest.mark.parametrize(
    ("name", "opener"),
    [
        ("p.jsonl", open),
        ("p.ndjson", open),
        ("p.jsonl.gz", gzip.open),
        ("p.jsonl.xz", lzma.open),
        ("p.jsonl.bz2", bz2.open),
        ("p.json.xz", lzma.open),  # JSON Lines under a .json name: sniffed
        ("p.json", open),
    ],
)
def test_json_lines_variants(tmp_path: Path, name: str, opener) -> None:
    rows = [playlist(1, [1, 2]), playlist(2, []), playlist(3, [2])]
    f = write_lines(tmp_path / name, rows, opener)
    pl = read_mpd(f)
    assert pl.playlists["pid"].tolist() == [1, 2, 3]
    assert pl.lengths().tolist() == [2, 0, 1]


def test_json_lines_blank_lines_ignored(tmp_path: Path) -> None:
    text = "\n" + json.dumps(playlist(1, [1])) + "\n\n  \n" + json.dumps(playlist(2, [2])) + "\n"
    f = tmp_path / "p.jsonl"
    f.write_text(text)
    assert read_mpd(f).n_playlists == 2


def test_one_line_slice_document_is_not_json_lines(tmp_path: Path) -> None:
    f = write_json(tmp_path / "mpd.slice.0-999.json", slice_doc([playlist(4, [1])]), indent=None)
    assert read_mpd(f).playlists["pid"].tolist() == [4]


def test_real_shaped_jsonl_fields(tmp_path: Path) -> None:
    """The shape of the shared JSON Lines copy: no pos/uris/albums, extra playlist fields."""
    row = {
        "slice": "0-999",
        "generated_on": "2017-12-03",
        "name": "classics",
        "pid": 0,
        "num_tracks": 2,
        "num_followers": 10,
        "num_edits": 4,
        "duration_ms": 1,
        "num_artists": 2,
        "tracks": [
            {"artist_name": "Elton John", "track_uri": "u1", "track_name": "Bennie"},
            {"artist_name": "America", "track_uri": "u2", "track_name": "Ventura"},
        ],
    }
    pl = read_mpd(write_lines(tmp_path / "x.jsonl", [row]))
    assert list(pl.playlists.columns) == ["pid", "name", "num_followers"]
    assert list(pl.tracks.columns) == ["track", "track_name", "artist", "artist_name"]
    assert pl.tracks["artist"].tolist() == ["name:Elton John", "name:America"]


def test_progress_counts_playlists(tmp_path: Path) -> None:
    rows = [playlist(i, [i % 7]) for i in range(2500)]
    f = write_lines(tmp_path / "p.jsonl", rows)
    seen: list[int] = []
    read_mpd(f, progress=seen.append)
    assert seen == [1000, 1000, 500]


# errors -----------------------------------------------------------------------------------------


def test_missing_paths_and_empty_folders(tmp_path: Path) -> None:
    assert "no such file or folder" in str(error_of(tmp_path / "nope.json"))
    (tmp_path / "empty").mkdir()
    assert "no mpd.slice.START-END.json files" in str(error_of(tmp_path / "empty"))
    assert "no file matches" in str(error_of(str(tmp_path / "mpd.slice.*.json")))


def test_invalid_json_in_slice_reports_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "mpd.slice.0-999.json"
    f.write_text('{\n  "playlists": [\n    {"pid": 1,, "tracks": []}\n  ]\n}\n')
    err = error_of(f)
    assert err.path == str(f) and err.line == 3
    assert "not valid JSON" in err.reason and "column 15" in err.reason


def test_invalid_json_in_lines_reports_line(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps(playlist(1, [1])) + "\n\n" + '{"pid": 2, "tracks": [}\n')
    err = error_of(f)
    assert err.line == 3 and "not valid JSON" in err.reason
    assert str(err).startswith(f"{f}:3: not valid JSON")


def test_truncated_file(tmp_path: Path) -> None:
    f = tmp_path / "s.json"
    f.write_text(json.dumps(slice_doc([playlist(1, [1, 2])]), indent=2)[:-40])
    assert "not valid JSON" in error_of(f).reason


def test_not_utf8(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_bytes(b'{"pid": 1, "name": "ok"}\n{"pid": 2, "name": "caf\xe9"}\n')
    err = error_of(f)
    assert err.line == 2 and "UTF-8" in err.reason
    g = tmp_path / "s.json"
    g.write_bytes(b'{"playlists": [\n{"pid": 2, "name": "caf\xe9"}]}')
    err = error_of(g)
    assert err.line == 2 and "UTF-8" in err.reason


def test_corrupt_compressed_file(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl.xz"
    rows = b"".join(b'{"pid": %d}\n' % i for i in range(100))
    f.write_bytes(lzma.compress(rows)[:-30])
    err = error_of(f)
    assert err.path == str(f) and "cannot read the xz file" in err.reason
    g = tmp_path / "p.jsonl.gz"
    g.write_bytes(b"this is not gzip")
    assert "cannot read the gz file" in error_of(g).reason


def test_empty_inputs(tmp_path: Path) -> None:
    empty = tmp_path / "e.json"
    empty.write_text("  \n")
    assert "the file is empty" in error_of(empty).reason
    none = write_json(tmp_path / "n.json", {"info": {}, "playlists": []})
    assert "no playlists found" in str(error_of(none))
    blank = tmp_path / "b.jsonl"
    blank.write_text("\n\n")
    assert "no playlists found" in str(error_of(blank))


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"info": {}}, "no 'playlists'"),
        ({"playlists": {"0": {}}}, "'playlists' found an object"),
        ("just a string", "found a string"),
        ({"playlists": [3]}, "playlists[0]: expected a playlist object, found an integer 3"),
    ],
)
def test_wrong_document_shapes(tmp_path: Path, document: Any, message: str) -> None:
    err = error_of(write_json(tmp_path / "s.json", document))
    assert message in str(err)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"name": "x", "tracks": []}, "playlists[1]: missing 'pid'"),
        (
            {"pid": "12", "tracks": []},
            "playlists[1]: 'pid' must be an integer, found a string '12'",
        ),
        ({"pid": True}, "'pid' must be an integer, found a boolean True"),
        ({"pid": 1.5}, "'pid' must be an integer, found a number 1.5"),
        ({"pid": 2**63}, "playlists[1]: 'pid' 9223372036854775808 is out of the 64-bit range"),
        ({"pid": 9, "num_followers": -(2**64)}, "'num_followers' -18446744073709551616 is out"),
        ({"pid": 9, "tracks": [track(1, duration_ms=10**20)]}, "tracks[0]: 'duration_ms' 1"),
        ({"pid": 9, "name": 5}, "playlists[1] (pid 9): 'name' must be a string, found an integer"),
        ({"pid": 9, "num_followers": "10"}, "'num_followers' must be an integer"),
        ({"pid": 9, "modified_at": 1.5}, "'modified_at' must be an integer"),
        ({"pid": 9, "num_holdouts": "3"}, "'num_holdouts' must be an integer"),
        ({"pid": 9, "collaborative": "maybe"}, "'collaborative' must be true or false"),
        ({"pid": 9, "collaborative": 1}, "'collaborative' must be true or false"),
        ({"pid": 9, "tracks": {"a": 1}}, "'tracks' must be a list, found an object"),
        ({"pid": 9, "tracks": ["spotify:track:x"]}, "tracks[0]: expected a track object"),
        (
            {"pid": 9, "tracks": [track(1), track(2), {"pos": 2, "track_name": "x"}]},
            "playlists[1] (pid 9): tracks[2]: missing 'track_uri'",
        ),
        ({"pid": 9, "tracks": [{"track_uri": ""}]}, "tracks[0]: bad 'track_uri', found a string"),
        ({"pid": 9, "tracks": [{"track_uri": 7}]}, "tracks[0]: bad 'track_uri', found an integer"),
        ({"pid": 9, "tracks": [track(1, duration_ms="3:20")]}, "'duration_ms' must be an integer"),
        ({"pid": 9, "tracks": [track(1, artist_name=3)]}, "'artist_name' must be a string"),
        ({"pid": 9, "tracks": [track(1, pos=-1)]}, "tracks[0]: 'pos' must not be negative"),
        ({"pid": 9, "tracks": [track(1, pos="0")]}, "tracks[0]: 'pos' must be an integer"),
        (
            {"pid": 9, "tracks": [track(1, pos=0), track(2, pos=0)]},
            "tracks[1]: 'pos' 0 repeats that of tracks[0]",
        ),
    ],
)
def test_bad_playlists_in_slice(tmp_path: Path, bad: dict[str, Any], message: str) -> None:
    f = write_json(tmp_path / "mpd.slice.0-999.json", slice_doc([playlist(0, [1]), bad]))
    err = error_of(f)
    assert err.path == str(f) and err.line is None
    assert message in err.reason, err.reason


def test_bad_playlist_in_lines_names_line_and_pid(tmp_path: Path) -> None:
    bad = {"pid": 42, "tracks": [track(1), {"pos": 1}]}
    f = write_lines(tmp_path / "p.jsonl.gz", [playlist(0, [1]), bad], gzip.open)
    err = error_of(f)
    assert (err.line, err.reason) == (2, "pid 42: tracks[1]: missing 'track_uri'")
    g = write_lines(tmp_path / "q.jsonl", [playlist(0, [1]), [1, 2]])
    err = error_of(g)
    assert err.line == 2 and "playlist 1: expected a playlist object, found a list" in err.reason
    h = write_lines(tmp_path / "r.jsonl", [{"name": "no pid"}])
    assert (error_of(h).line, error_of(h).reason) == (1, "playlist 0: missing 'pid'")


def test_duplicate_pid_across_files(tmp_path: Path) -> None:
    write_json(tmp_path / "mpd.slice.0-999.json", slice_doc([playlist(5, [1])]))
    second = write_json(
        tmp_path / "mpd.slice.1000-1999.json", slice_doc([playlist(6, [1]), playlist(5, [2])])
    )
    err = error_of(tmp_path)
    assert err.path == str(second) and "playlists[1] (pid 5): duplicate pid" in err.reason


def test_errors_are_data_format_errors_not_tracebacks(tmp_path: Path) -> None:
    # every error above is a DataFormatError; a ValueError subclass, never a raw json/pandas one
    f = tmp_path / "p.jsonl"
    f.write_text("[1, 2\n")
    err = error_of(f)
    assert type(err) is DataFormatError and isinstance(err, ValueError)


# import -----------------------------------------------------------------------------------------


def assert_same_playlists(a: Playlists, b: Playlists) -> None:
    for name in ("playlists", "entries", "tracks"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))


def test_import_equals_read_then_save(tmp_path: Path) -> None:
    src = tmp_path / "mpd"
    write_json(src / "mpd.slice.0-999.json", slice_doc([playlist(i, [i, i + 1]) for i in range(3)]))
    # the second slice brings optional fields the first lacks, and drops others
    write_json(
        src / "mpd.slice.1000-1999.json",
        slice_doc(
            [
                playlist(1000, [1, 9], description="d", collaborative=None),
                playlist(1001, [], name=None, num_followers=None),
                {"pid": 1002, "tracks": [track(50, artist_uri=None, album_uri=None)]},
            ],
            1000,
        ),
    )
    seen: list[int] = []
    out = import_mpd(src, tmp_path / "imported", progress=seen.append)
    assert out == tmp_path / "imported" and sum(seen) == 6
    assert sorted(p.name for p in out.iterdir()) == [
        "entries.parquet",
        "playlists.parquet",
        "schema.json",
        "tracks.parquet",
    ]
    read = read_mpd(src)
    read.save(tmp_path / "saved")
    imported = load_playlists(out)
    assert_same_playlists(imported, load_playlists(tmp_path / "saved"))
    assert_same_playlists(imported, read)
    assert (out / "schema.json").read_text() == (tmp_path / "saved" / "schema.json").read_text()
    assert list(imported.playlists.columns) == [
        "pid",
        "name",
        "description",
        "num_followers",
        "modified_at",
        "collaborative",
    ]


def test_import_writes_one_row_group_per_thousand(tmp_path: Path) -> None:
    f = write_lines(tmp_path / "p.jsonl", [playlist(i, [i % 11, 3]) for i in range(2100)])
    out = import_mpd(f, tmp_path / "o")
    assert pq.ParquetFile(out / "entries.parquet").num_row_groups == 3
    assert pq.ParquetFile(out / "playlists.parquet").num_row_groups == 3
    assert_same_playlists(load_playlists(out), read_mpd(f))


def test_import_failure_writes_nothing_and_keeps_old_output(tmp_path: Path) -> None:
    src = tmp_path / "mpd"
    write_json(src / "mpd.slice.0-999.json", slice_doc([playlist(1, [1])]))
    out = import_mpd(src, tmp_path / "out")
    before = load_playlists(out)
    write_json(src / "mpd.slice.1000-1999.json", slice_doc([{"pid": 2, "tracks": [{}]}], 1000))
    with pytest.raises(DataFormatError, match="missing 'track_uri'"):
        import_mpd(src, tmp_path / "out")
    assert_same_playlists(load_playlists(out), before)
    with pytest.raises(DataFormatError):
        import_mpd(src, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    empty = write_json(tmp_path / "none.json", {"playlists": []})
    with pytest.raises(DataFormatError, match="no playlists found"):
        import_mpd(empty, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_import_challenge_set_with_empty_playlists(tmp_path: Path) -> None:
    doc = {"playlists": [{"pid": 1, "num_holdouts": 5, "num_samples": 0, "tracks": []}]}
    f = write_json(tmp_path / "challenge_set.json", doc)
    loaded = load_playlists(import_mpd(f, tmp_path / "o"))
    assert_same_playlists(loaded, read_challenge_set(f))
    assert loaded.n_entries == 0 and loaded.n_tracks == 0


# the real data (../shared/data/spotify-mpd) -------------------------------------------------------

REAL_LINES = "spotify-mpd/mpd_followers10.jsonl.xz"
REAL_SLICE = "spotify-mpd/mpd.slice.0-999.first29.json"


@pytest.mark.realdata
def test_real_slice_file(shared_data: Path) -> None:
    pl = read_mpd(shared_data / REAL_SLICE)
    assert (pl.n_playlists, pl.n_entries, pl.n_tracks) == (29, 1447, 1397)
    assert pl.playlists["pid"].tolist() == list(range(29))
    assert pl.playlists["name"].iloc[0] == "Throwbacks"
    assert list(pl.playlists.columns) == [
        "pid",
        "name",
        "num_followers",
        "modified_at",
        "collaborative",
    ]
    assert pl.tracks["artist"].str.startswith("spotify:artist:").all()
    assert pl.tracks["album"].str.startswith("spotify:album:").all()
    # the pos field of the original schema is contiguous, so it equals the file order
    raw = list(iter_mpd_playlists(shared_data / REAL_SLICE))
    assert [t["pos"] for p in raw for t in p["tracks"]] == pl.entries["pos"].tolist()


@pytest.mark.realdata
def test_real_json_lines_and_import(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / REAL_LINES
    start = time.perf_counter()
    pl = read_mpd(path)
    read_s = time.perf_counter() - start
    assert (pl.n_playlists, pl.n_entries, pl.n_tracks) == (7071, 696_957, 201_730)
    assert pl.describe()["max_length"] == 250 and pl.lengths().min() == 5
    assert pl.playlists["description"].notna().sum() == 703
    assert pl.tracks["artist"].str.startswith("name:").all()
    assert pl.tracks["artist"].nunique() == 42_743
    assert not pl.playlists["pid"].duplicated().any()
    start = time.perf_counter()
    out = import_mpd(path, tmp_path / "mpd")
    import_s = time.perf_counter() - start
    assert_same_playlists(load_playlists(out), pl)
    assert pq.ParquetFile(out / "entries.parquet").num_row_groups == 8
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"read_mpd {read_s:.1f}s, import_mpd {import_s:.1f}s, peak RSS {rss_mib:.0f} MiB")
    assert np.isfinite(read_s + import_s)
