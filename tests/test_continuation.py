"""Playlist continuation: fold-in of seed tracks, tags as items, cold start."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segue import EASE, MostPopular, ParameterError
from segue.data.kinds import ItemKind
from segue.data.playlists import Playlists
from segue.inference import continue_playlists, playlist_interactions


def make_playlists(n: int = 60, seed: int = 0, offset: int = 0) -> Playlists:
    """Two tastes: even playlists hold even tracks and tag 'calm', odd ones odd and 'loud'."""
    rng = np.random.default_rng(seed)
    pids, rows = [], []
    for p in range(n):
        own = np.arange(p % 2, 40, 2)
        tracks = rng.choice(own, size=8, replace=False)
        pids.append(p + offset)
        rows += [(p + offset, pos, f"t{t:02d}") for pos, t in enumerate(tracks)]
    entries = pd.DataFrame(rows, columns=["pid", "pos", "track"])
    playlists = pd.DataFrame(
        {
            "pid": pids,
            "name": ["Calm evening" if p % 2 == 0 else "LOUD gym!" for p in range(n)],
            "tags": [["calm"] if p % 2 == 0 else ["loud", "gym"] for p in range(n)],
        }
    )
    tracks = pd.DataFrame({"track": sorted(entries["track"].unique())})
    return Playlists(playlists, entries, tracks)


def test_playlist_interactions_with_tags() -> None:
    pl = make_playlists(4)
    inter = playlist_interactions(pl, with_tags=True)
    assert inter.n_users == 4
    tags = inter.items.columns(ItemKind.TAG)
    assert sorted(inter.items.ids[tags].tolist()) == ["tag:calm", "tag:gym", "tag:loud"]
    assert inter.matrix[[1]][:, tags].sum() == 2  # playlist 1: loud, gym


def test_seeds_are_folded_in_and_never_returned() -> None:
    train = make_playlists(60)
    model = EASE(l2=5.0).fit(playlist_interactions(train))
    queries = make_playlists(6, seed=9, offset=1000)
    seeds = queries.track_lists()
    batches = list(continue_playlists(model, queries, 5, batch_size=4))
    assert [len(b.pids) for b in batches] == [4, 2]
    for b in batches:
        for pid, tracks in zip(b.pids, b.tracks, strict=True):
            assert len(tracks) == 5 and not set(tracks) & set(seeds[pid])
            parity = {int(t[1:]) % 2 for t in tracks}
            assert parity == {pid % 2}  # the taste of the seeds, learned from other playlists


def test_tags_as_items_give_tags_and_cold_start_from_tags() -> None:
    train = make_playlists(60)
    model = EASE(l2=5.0).fit(playlist_interactions(train, with_tags=True))
    queries = make_playlists(2, offset=500)
    # question 500 has only its tag; question 501 has songs but no tags
    queries = Playlists(
        queries.playlists.assign(tags=[["calm"], []]),
        queries.entries[queries.entries["pid"] == 501],
        queries.tracks,
    )
    (batch,) = continue_playlists(model, queries, 4, n_tags=2)
    calm_tracks, loud_tracks = batch.tracks
    assert {int(t[1:]) % 2 for t in calm_tracks} == {0}  # songs from a tag alone
    assert {int(t[1:]) % 2 for t in loud_tracks} == {1}
    assert "calm" not in batch.tags[0]  # given tags are not returned
    assert set(batch.tags[1]) == {"loud", "gym"}


def test_empty_playlist_gets_the_cold_start_list() -> None:
    train = make_playlists(60)
    model = MostPopular().fit(playlist_interactions(train))
    empty = Playlists(
        pd.DataFrame({"pid": [7], "name": ["x"]}),
        pd.DataFrame({"pid": pd.Series([], dtype=int), "pos": [], "track": []}),
        pd.DataFrame({"track": pd.Series([], dtype=object)}),
    )
    (batch,) = continue_playlists(model, empty, 3)
    expected = model.recommend([train.playlists["pid"].iloc[0]], 3, exclude_seen=False)
    assert batch.tracks[0] == list(expected.lists())[0][1]


def test_title_only_playlists_are_scored_from_their_title() -> None:
    train = make_playlists(60)
    model = EASE(l2=5.0).fit(playlist_interactions(train, with_titles=True))
    queries = Playlists(
        pd.DataFrame({"pid": [900, 901, 902], "name": ["calm", "Gym 💪", "unknown words"]}),
        pd.DataFrame({"pid": pd.Series([], dtype=int), "pos": [], "track": []}),
        pd.DataFrame({"track": pd.Series([], dtype=object)}),
    )
    (batch,) = continue_playlists(model, queries, 6)
    calm, gym, unknown = batch.tracks
    assert {int(t[1:]) % 2 for t in calm} == {0} and {int(t[1:]) % 2 for t in gym} == {1}
    assert all(t in set(train.tracks["track"]) for t in calm + gym + unknown)  # only tracks
    # no known word: the cold-start list (tracks by playlist count; ties in any order)
    counts = model.fallback_scores_[model.items_.numbers(train.tracks["track"].to_numpy())]
    got = model.fallback_scores_[model.items_.numbers(unknown)]
    np.testing.assert_array_equal(np.sort(got)[::-1], np.sort(counts)[::-1][:6])


def test_tags_need_a_model_trained_with_tags() -> None:
    train = make_playlists(10)
    model = MostPopular().fit(playlist_interactions(train))
    with pytest.raises(ParameterError, match="without tags"):
        list(continue_playlists(model, train, 3, n_tags=2))
