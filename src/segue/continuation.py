"""Playlist continuation with any segue model: train on playlists, fold in the seed tracks.

Playlists are the model's rows and tracks its items; a challenge playlist is not in training,
so it is scored from its seed tracks (``user_idx = -1``, fold-in). A playlist with no known
seed track gets the model's cold-start list: tracks by the number of playlists they are in
(:attr:`BaseRecommender.fallback_scores_`); the two-stage model improves on that with titles.

For the Melon task, tags are items too: ``with_tags=True`` adds one column per tag (its id is
``"tag:" + tag``), so one model learns song-song, song-tag and tag-tag co-occurrence, a
playlist given only tags is scored from them, and the 10 tags to return are the best-scored tag
columns. Seed songs and seed tags are never returned.

Titles work the same way (``with_titles=True``, :mod:`segue.data.titles`): each playlist's
title words and whole normalised title become columns, so a title-only playlist is scored from
its title, through whatever model was trained; title columns are never returned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from segue.data.interactions import Interactions
from segue.data.playlists import Playlists
from segue.data.titles import TITLE_PREFIX, WHOLE_TITLE_PREFIX, title_items
from segue.data.vocab import IdMap
from segue.exceptions import ParameterError
from segue.models.base import BaseRecommender
from segue.models.topk import topk

__all__ = [
    "TAG_PREFIX",
    "ContinuationBatch",
    "continue_playlists",
    "playlist_interactions",
    "tag_columns",
    "tag_names",
    "title_columns",
    "track_columns",
]

TAG_PREFIX = "tag:"


def tag_names(ids: Iterable[Any]) -> list[str]:
    """The tags of ``tag:`` item ids, prefix dropped: what a Melon answer or response lists."""
    cut = len(TAG_PREFIX)
    return [str(i)[cut:] for i in ids]


def _tag_pairs(playlists: Playlists) -> tuple[np.ndarray, np.ndarray]:
    if "tags" not in playlists.playlists.columns:
        return np.empty(0, dtype=object), np.empty(0, dtype=object)
    tags = playlists.playlists[["pid", "tags"]].explode("tags").dropna(subset=["tags"])
    return tags["pid"].to_numpy(dtype=object), (TAG_PREFIX + tags["tags"].astype(str)).to_numpy(
        dtype=object
    )


def playlist_interactions(
    playlists: Playlists,
    *,
    with_tags: bool = False,
    with_titles: bool = False,
    items: IdMap | None = None,
) -> Interactions:
    """Playlists x tracks, binary, every playlist a row; tags and title words as extra columns.

    ``items`` fixes the columns (a trained model's); tracks, tags and title words outside it
    are dropped.
    """
    entries = playlists.entries
    rows = entries["pid"].to_numpy(dtype=object)
    cols = entries["track"].to_numpy(dtype=object)
    if with_tags:
        tag_rows, tag_cols = _tag_pairs(playlists)
        rows, cols = np.concatenate([rows, tag_rows]), np.concatenate([cols, tag_cols])
    if with_titles:
        table = playlists.playlists
        title_rows, title_cols = title_items(table["pid"].to_numpy(), table["name"])
        rows, cols = np.concatenate([rows, title_rows]), np.concatenate([cols, title_cols])
    if items is None:
        items = IdMap(pd.unique(cols), kind="item")
    else:
        known = items.numbers(cols, missing="negative") >= 0
        rows, cols = rows[known], cols[known]
    return Interactions.from_arrays(
        rows, cols, agg="max", user_ids=playlists.playlist_ids(), item_ids=items
    )


_COLUMN_CACHE: dict[tuple[int, str], tuple[IdMap, np.ndarray]] = {}


def _cached_columns(items: IdMap, kind: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """``compute()`` once per vocabulary object and kind, as a read-only int32 array.

    Served queries ask for the same model vocabulary's columns (200K ids for the MPD sample) on
    every request, so each scan runs once per vocabulary, not once per query.
    """
    key = (id(items), kind)
    hit = _COLUMN_CACHE.get(key)
    if hit is not None and hit[0] is items:  # the id of a dead object may be reused
        return hit[1]
    found = np.asarray(compute(), dtype=np.int32)
    found.setflags(write=False)
    if len(_COLUMN_CACHE) > 64:  # a long-running process that loads many models
        _COLUMN_CACHE.clear()
    _COLUMN_CACHE[key] = (items, found)
    return found


def _with_prefix(items: IdMap, prefixes: tuple[str, ...]) -> np.ndarray:
    starts = pd.Series(items.ids, dtype=object).str.startswith(prefixes)
    return np.flatnonzero(starts.fillna(False).to_numpy(dtype=bool))


def tag_columns(items: IdMap) -> np.ndarray:
    """Indices of the ``tag:`` columns of a model's item vocabulary."""
    return _cached_columns(items, "tags", lambda: _with_prefix(items, (TAG_PREFIX,)))


def title_columns(items: IdMap) -> np.ndarray:
    """Indices of the title-word and whole-title columns of a model's item vocabulary."""
    prefixes = (TITLE_PREFIX, WHOLE_TITLE_PREFIX)
    return _cached_columns(items, "titles", lambda: _with_prefix(items, prefixes))


def track_columns(items: IdMap) -> np.ndarray:
    """Indices of the columns that are tracks: neither tags nor title words."""

    def compute() -> np.ndarray:
        keep = np.ones(len(items), dtype=bool)
        keep[tag_columns(items)] = False
        keep[title_columns(items)] = False
        return np.flatnonzero(keep)

    return _cached_columns(items, "tracks", compute)


@dataclass(frozen=True)
class ContinuationBatch:
    """Continuations of a batch of playlists: ids and lists, best first."""

    pids: np.ndarray
    tracks: list[list[Any]]
    track_scores: list[np.ndarray]
    tags: list[list[str]] | None


def continue_playlists(
    model: BaseRecommender,
    queries: Playlists,
    n: int,
    *,
    n_tags: int = 0,
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[ContinuationBatch]:
    """Continue every playlist of ``queries`` with ``n`` tracks (and ``n_tags`` tags).

    Seed tracks and tags are excluded; rows are folded in from the seeds, so the queries need
    not (and, for honest evaluation, must not) be in the model's training data.
    """
    model._check_fitted()
    if n < 1:
        raise ParameterError(f"n must be at least 1, got {n}")
    tag_idx = tag_columns(model.items_)
    title_idx = title_columns(model.items_)
    if n_tags and not len(tag_idx):
        raise ParameterError("the model was trained without tags; it cannot recommend tags")
    history = playlist_interactions(
        queries, with_tags=len(tag_idx) > 0, with_titles=len(title_idx) > 0, items=model.items_
    )
    matrix = history.matrix
    track_idx = track_columns(model.items_)
    has_side = len(track_idx) < len(model.items_)  # tag or title columns to keep out
    pids = history.users.ids
    batch = batch_size or model.default_batch_size()
    item_ids = model.items_.ids
    for start in range(0, len(pids), batch):
        stop = min(len(pids), start + batch)
        rows = matrix[start:stop]
        user_idx = np.full(stop - start, -1, dtype=np.int32)
        if not has_side:
            items, scores = model.recommend_idx(user_idx, rows, n, batch_size=batch)
            tags = None
        else:
            raw = model.score(user_idx, rows)
            items, scores = topk(raw, n, exclude=rows, allow=track_idx, copy=n_tags > 0)
            tags = None
            if n_tags:
                tag_items, _ = topk(raw, n_tags, exclude=rows, allow=tag_idx)
                tags = [tag_names(item_ids[r[r >= 0]]) for r in tag_items]
        yield ContinuationBatch(
            pids=pids[start:stop],
            tracks=[item_ids[r[r >= 0]].tolist() for r in items],
            track_scores=[s[np.isfinite(s)] for s in scores],
            tags=tags,
        )
        if progress is not None:
            progress(stop - start)
