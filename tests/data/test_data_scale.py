"""The data path at MPD scale: columns are mapped by their distinct values, never as objects.

Issue 16: 66M track-id strings as Python objects took 17 GiB; these tests pin the behaviour
of the column paths (same answers as the object paths) and that no object array is made.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segue.data.interactions import Interactions
from segue.data.playlists import Playlists, load_playlists, track_categorical
from segue.data.vocab import IdMap
from segue.exceptions import UnknownIdError
from segue.inference.encode import playlist_interactions


@pytest.fixture
def songs() -> IdMap:
    return IdMap(["s0", "00123", "NA", "null", "späť"], kind="song")


QUERY = ["null", "s0", "ghost", "00123", "s0", "NA"]


@pytest.mark.parametrize(
    "column",
    [
        pd.Series(QUERY, dtype="str"),
        pd.Series(QUERY, dtype="category"),
        pd.Series(QUERY, dtype=object),
        pd.Index(QUERY),
        pd.Series(track_categorical(pd.Series(QUERY, dtype="str"))),
    ],
    ids=["arrow-str", "category", "object", "index", "track_categorical"],
)
def test_numbers_of_a_column_equal_the_list_path(songs: IdMap, column) -> None:
    want = songs.numbers(QUERY, missing="negative")
    got = songs.numbers(column, missing="negative")
    assert got.dtype == np.int32 and got.tolist() == want.tolist() == [3, 0, -1, 1, 0, 2]
    with pytest.raises(UnknownIdError) as info:
        songs.numbers(column)
    assert info.value.ids == ["ghost"] and info.value.total == 1


def test_numbers_of_a_column_with_missing_values(songs: IdMap) -> None:
    column = pd.Series(["s0", None, "NA"], dtype="str")
    assert songs.numbers(column, missing="negative").tolist() == [0, -1, 2]
    with pytest.raises(UnknownIdError):
        songs.numbers(column)


def test_integer_ids_by_an_int64_column_and_json_types() -> None:
    pids = IdMap(np.array([10, 7, 3]), kind="playlist")
    column = np.array([3, 3, 10, 99, 7], dtype=np.int64)
    assert pids.numbers(column, missing="negative").tolist() == [2, 2, 0, -1, 1]
    assert pids.numbers(pd.Series(["7", "3"]), json_types=True).tolist() == [1, 2]


def test_numbers_of_a_column_makes_no_string_per_entry(songs: IdMap) -> None:
    # 200K entries of 2 distinct ids: a Python string per entry would cost over 10 MB
    column = pd.Series(["s0", "NA"] * 100_000, dtype="str")
    tracemalloc.start()
    try:
        idx = songs.numbers(column)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert idx.sum() == 2 * 100_000
    assert peak < 4 * 2**20, peak  # codes (1.6 MB) and indices (0.8 MB)
    object_path = songs.numbers(column.to_numpy(dtype=object))  # the object path, for scale
    assert (object_path == idx).all()


def test_from_arrays_of_columns_equals_from_lists() -> None:
    users = ["u1", "u2", "u1", "u1", "u3"]
    items = ["a", "b", "a", "c", "b"]
    for agg in ("sum", "count", "max"):
        want = Interactions.from_arrays(users, items, agg=agg)
        got = Interactions.from_arrays(
            pd.Series(users, dtype="str"), pd.Series(items, dtype="category"), agg=agg
        )
        assert got.users == want.users and got.items == want.items
        assert (got.matrix != want.matrix).nnz == 0
    binary = Interactions.from_arrays(users, items, agg="max").matrix
    assert binary.data.tolist() == [1.0] * 4  # (u1, a) twice: membership, not 2
    counts = Interactions.from_arrays(users, items, agg="count").matrix
    assert sorted(counts.data.tolist()) == [1.0, 1.0, 1.0, 2.0]


def _playlists(track_dtype: str) -> Playlists:
    table = pd.DataFrame({"pid": [5, 6, 7], "name": ["Chill", "rock", None]})
    tracks = ["t1", "t2", "t1", "title:chill", "t3", "t3"]
    entries = pd.DataFrame(
        {"pid": [5, 5, 6, 6, 6, 7], "pos": [0, 1, 0, 1, 2, 0], "track": tracks}
    ).astype({"track": track_dtype})
    meta = pd.DataFrame({"track": ["t1", "t2", "t3", "title:chill"]})
    return Playlists(table, entries, meta)


def test_playlist_interactions_same_for_every_track_dtype() -> None:
    # a track id equal to a title column's id ("title:chill") is one column, as one
    # factorisation of all ids together gives
    want = playlist_interactions(_playlists("object"), with_titles=True)
    for dtype in ("str", "category"):
        got = playlist_interactions(_playlists(dtype), with_titles=True)
        assert got.items == want.items and got.users == want.users
        assert (got.matrix != want.matrix).nnz == 0
    assert want.items.to_list()[:4] == ["t1", "t2", "title:chill", "t3"]
    assert want.items.kinds[:4].tolist() == [0, 0, 0, 0]
    assert want.matrix[[1], :].toarray()[0, 2] == 1.0  # pid 6: the track and the title word


def test_saved_playlists_load_tracks_as_codes(tmp_path: Path) -> None:
    pl = _playlists("object")
    back = load_playlists(pl.save(tmp_path / "pl"))
    assert isinstance(back.entries["track"].dtype, pd.CategoricalDtype)
    assert back.entries["track"].astype(object).tolist() == pl.entries["track"].tolist()
    assert back.entries["track"].cat.categories.tolist() == ["t1", "t2", "title:chill", "t3"]
    a = playlist_interactions(back, with_titles=True)
    b = playlist_interactions(pl, with_titles=True)
    assert a.items == b.items and (a.matrix != b.matrix).nnz == 0
