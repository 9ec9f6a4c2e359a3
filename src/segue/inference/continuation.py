"""Playlist continuation with any segue model: train on playlists, fold in the seed tracks.

Playlists are the model's rows and tracks its items; a challenge playlist is not in training,
so it is scored from its seed tracks (``user_idx = -1``, fold-in). A playlist with no known
seed track, tag or title word gets the model's cold-start list.

For the Melon task tags are items too (:mod:`segue.inference.encode`): the 10 tags to return
are the best-scored tag columns, from the same scoring pass as the songs. Seed songs and seed
tags are never returned, and title columns never are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from segue.data.kinds import ItemKind, tag_names
from segue.data.playlists import Playlists
from segue.data.vocab import IdMap
from segue.exceptions import ParameterError
from segue.inference.encode import QueryEncoder
from segue.models.base import BaseRecommender, Target

__all__ = ["ContinuationBatch", "continue_playlists", "playlist_targets"]


def playlist_targets(items: IdMap, n: int, n_tags: int = 0) -> dict[str, Target]:
    """What a playlist query asks a model for: ``n`` tracks and, when asked, ``n_tags`` tags.

    Tracks are restricted to the track columns when the vocabulary has others (tags, titles).
    """
    allow = items.columns(ItemKind.TRACK) if items.has_kinds else None
    targets = {"tracks": Target(n, allow)}
    if n_tags:
        targets["tags"] = Target(n_tags, items.columns(ItemKind.TAG))
    return targets


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
    model.check_fitted()
    if n < 1:
        raise ParameterError(f"n must be at least 1, got {n}")
    items = model.items_
    if n_tags and not items.count(ItemKind.TAG):
        raise ParameterError("the model was trained without tags; it cannot recommend tags")
    history = QueryEncoder(items).playlists(queries)
    matrix, pids = history.matrix, history.users.ids
    targets = playlist_targets(items, n, n_tags)
    batch = batch_size or model.default_batch_size()
    item_ids = items.ids
    for start in range(0, len(pids), batch):
        stop = min(len(pids), start + batch)
        found = model.retrieve(
            np.full(stop - start, -1, dtype=np.int32),
            matrix[start:stop],
            targets,
            playlists=queries.slice(start, stop) if model.needs_playlists else None,
            batch_size=batch,
        )
        tracks, scores = found["tracks"]
        tags = None
        if "tags" in found:
            tags = [tag_names(item_ids[r[r >= 0]]) for r in found["tags"][0]]
        yield ContinuationBatch(
            pids=pids[start:stop],
            tracks=[item_ids[r[r >= 0]].tolist() for r in tracks],
            track_scores=[s[np.isfinite(s)] for s in scores],
            tags=tags,
        )
        if progress is not None:
            progress(stop - start)
