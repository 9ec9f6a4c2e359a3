"""inner_split: the challenge's categories and seed rules on an in-memory Playlists."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segue.data.mpd_split import CATEGORIES
from segue.data.playlists import Playlists
from segue.exceptions import ParameterError
from segue.ranking.inner_split import inner_split


def _playlists(n: int = 400, n_tracks: int = 300, seed: int = 0) -> Playlists:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(10, 251, size=n)
    entries = pd.DataFrame(
        {
            "pid": np.repeat(np.arange(n), lengths),
            "pos": np.concatenate([np.arange(k) for k in lengths]),
            "track": [f"t{i}" for i in rng.integers(0, n_tracks, size=int(lengths.sum()))],
        }
    )
    names = [f"mix {i % 7}" if i % 5 else "" for i in range(n)]
    table = pd.DataFrame({"pid": np.arange(n), "name": names})
    tracks = pd.DataFrame({"track": [f"t{i}" for i in range(n_tracks)]})
    tracks = tracks[tracks["track"].isin(entries["track"])].reset_index(drop=True)
    return Playlists(playlists=table, entries=entries, tracks=tracks)


def test_categories_seeds_and_answers():
    source = _playlists()
    split = inner_split(source, per_category=8, seed=0)
    cats = {c.number: c for c in CATEGORIES}
    counts = split.categories.value_counts()
    assert set(counts.index) == set(cats) and (counts <= 8).all()
    q = split.queries
    assert not set(q.playlists["pid"]) & set(split.train.playlists["pid"])
    assert split.train.n_playlists + q.n_playlists <= source.n_playlists
    assert list(q.playlists["pid"]) == list(split.categories.index)
    full = source.track_lists()
    train_tracks = set(split.train.entries["track"])
    lengths = dict(zip(source.playlists["pid"], source.lengths(), strict=True))
    seeds = q.track_lists()
    for pid, number in split.categories.items():
        c = cats[number]
        row = q.playlists.set_index("pid").loc[pid]
        assert c.min_tracks <= lengths[pid] <= c.max_tracks
        assert len(seeds[pid]) == c.n_seeds == row["num_samples"]
        pos = q.entries.loc[q.entries["pid"] == pid, "pos"].to_numpy()
        if c.random:
            assert np.all(np.diff(pos) > 0)
        else:
            assert pos.tolist() == list(range(c.n_seeds))
        assert [full[pid][p] for p in pos] == seeds[pid]
        assert pd.isna(row["name"]) == (not c.title)
        hidden = split.answers[pid]
        assert hidden and set(hidden) <= train_tracks and len(hidden) == row["num_holdouts"]
        # hidden = the tracks not shown, minus those unknown to training
        shown = set(pos.tolist())
        rest = [t for i, t in enumerate(full[pid]) if i not in shown and t in train_tracks]
        assert hidden == rest


def test_deterministic_per_seed():
    source = _playlists()
    a, b = inner_split(source, 5, seed=3), inner_split(source, 5, seed=3)
    c = inner_split(source, 5, seed=4)
    assert a.answers == b.answers and a.queries.entries.equals(b.queries.entries)
    assert list(a.categories.index) != list(c.categories.index)


def test_bad_per_category():
    with pytest.raises(ParameterError):
        inner_split(_playlists(20), 0)


def test_excluded_playlists_are_never_asked_but_stay_in_training():
    source = _playlists()
    first = inner_split(source, per_category=8, seed=0)
    asked = first.queries.playlists["pid"].to_numpy()
    second = inner_split(source, per_category=8, seed=1, exclude=asked)
    again = second.queries.playlists["pid"].to_numpy()
    assert len(again) and not set(again) & set(asked)  # folds ask disjoint questions
    assert set(asked) <= set(second.train.playlists["pid"])
