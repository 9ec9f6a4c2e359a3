"""Playlists whose order carries signal, and a two-taste playlist set with titles and tags.

``ring_playlists``: songs sit on a ring; a playlist walks ``length`` consecutive songs from a
random start, clockwise or anticlockwise. The set of its first songs is an arc, the same for
both directions; only their order tells which end the playlist continues from, so an
order-aware model finds the continuation from the seeds in order, and loses it when they are
shuffled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segue.data.playlists import Playlists

__all__ = ["ring_playlists", "taste_playlists"]


def _playlists(lists: list[list[str]], names: list[str], tags: list[list[str]] | None = None):
    pids = list(range(len(lists)))
    rows = [
        (p, pos, t) for p, songs in zip(pids, lists, strict=True) for pos, t in enumerate(songs)
    ]
    entries = pd.DataFrame(rows, columns=["pid", "pos", "track"])
    table = {"pid": pids, "name": names}
    if tags is not None:
        table["tags"] = tags
    tracks = pd.DataFrame({"track": sorted({t for songs in lists for t in songs})})
    return Playlists(pd.DataFrame(table), entries, tracks)


def ring_playlists(
    n: int = 500, *, songs: int = 40, length: int = 12, seed: int = 0
) -> tuple[Playlists, list[list[str]]]:
    """Ring walks (module docstring): the playlists and their song lists in order."""
    rng = np.random.default_rng(seed)
    lists = []
    for _ in range(n):
        start, step = int(rng.integers(songs)), int(rng.choice([-1, 1]))
        lists.append([f"r{(start + step * i) % songs:02d}" for i in range(length)])
    return _playlists(lists, [""] * n), lists


def taste_playlists(n: int = 200, *, songs: int = 60, length: int = 8, seed: int = 0) -> Playlists:
    """Even playlists hold even songs, title "calm evening", tag calm; odd ones the odd."""
    rng = np.random.default_rng(seed)
    lists, names, tags = [], [], []
    for p in range(n):
        own = np.arange(p % 2, songs, 2)
        lists.append([f"t{t:02d}" for t in rng.choice(own, size=length, replace=False)])
        names.append("Calm evening" if p % 2 == 0 else "LOUD gym!")
        tags.append(["calm"] if p % 2 == 0 else ["loud"])
    return _playlists(lists, names, tags)


def query_playlists(lists: list[list[str]], names: list[str] | None = None) -> Playlists:
    """Query playlists (pids 0..n-1) with these seeds, in the given order."""
    return _playlists(lists, names if names is not None else [""] * len(lists))
