"""The streamed MPD generator at its default (MPD-sized) catalogue, and its challenge set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from segue.data.mpd_split import CATEGORIES
from segue.data.readers.mpd import read_challenge_set, read_mpd
from segue.data.synthetic.mpd import MPD_CATALOGUE, write_mpd
from segue.exceptions import ParameterError
from segue.metrics.playlist_eval import read_mpd_answers


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("gen") / "mpd"
    return out, write_mpd(out, 1200, seed=3, challenge=100)


@pytest.fixture(scope="module")
def read_back(generated):
    return read_mpd(generated[0])


def test_stats_are_what_the_files_hold(generated, read_back) -> None:
    out, stats = generated
    pl = read_back
    info = pl.describe()
    assert stats.catalogue == MPD_CATALOGUE and stats.playlists == info["playlists"] == 1200
    assert stats.entries == info["entries"] and stats.tracks == info["tracks"]
    assert stats.artists == pl.tracks["artist"].nunique()
    assert stats.albums == pl.tracks["album"].nunique()
    assert stats.titles == pl.playlists["name"].nunique()
    lengths = pl.lengths()
    assert (stats.min_length, stats.max_length) == (lengths.min(), lengths.max())
    assert 5 <= lengths.min() and lengths.max() <= 250
    assert 60 < stats.mean_length < 73  # the MPD's: 66.35
    # a long tail: most distinct tracks occur once at this size, the top one in many playlists
    assert stats.tracks_once > stats.tracks / 2 and stats.top_track_playlists > 25
    assert stats.artists < stats.albums < stats.tracks


def test_challenge_set_in_the_official_format(generated, read_back) -> None:
    out, stats = generated
    doc = json.loads((out / "challenge_set.json").read_text())
    rows = doc["playlists"]
    assert len(rows) == stats.challenge_playlists == 100
    answers = read_mpd_answers(out / "answers.json")
    assert answers["pid"].tolist() == [p["pid"] for p in rows]
    in_slices = set(read_back.tracks["track"])
    pids_slices = set(range(1200))
    for category in CATEGORIES:
        mine = [p for p, c in zip(rows, answers["category"], strict=True) if c == category.number]
        assert len(mine) == 10
        for p in mine:
            assert p["pid"] not in pids_slices
            assert ("name" in p) == category.title
            assert len(p["tracks"]) == p["num_samples"] == category.n_seeds
            assert p["num_samples"] + p["num_holdouts"] == p["num_tracks"]
            assert category.min_tracks <= p["num_tracks"] <= category.max_tracks
            positions = [t["pos"] for t in p["tracks"]]
            assert positions == sorted(positions)
            if not category.random:
                assert positions == list(range(category.n_seeds))
    held = set(np.concatenate(answers["tracks"].to_numpy()).tolist())
    seeds = {t["track_uri"] for p in rows for t in p["tracks"]}
    assert held | seeds <= in_slices  # "all tracks in the challenge set appear in the MPD"
    assert read_challenge_set(out / "challenge_set.json").n_playlists == 100


def test_fewer_playlists_see_fewer_distinct_tracks_sublinearly(tmp_path: Path) -> None:
    small = write_mpd(tmp_path / "a", 300, 200_000, seed=3)
    big = write_mpd(tmp_path / "b", 1200, 200_000, seed=3)
    ratio = big.tracks / small.tracks
    assert 1.5 < ratio < 3.9  # 4x the playlists, fewer than 4x the distinct tracks


def test_bad_challenge_sizes(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="challenge must be 0 or at least 10"):
        write_mpd(tmp_path / "x", 50, 500, challenge=5)
    with pytest.raises(ParameterError, match="too few distinct tracks"):
        write_mpd(tmp_path / "y", 20, 60, challenge=10)
