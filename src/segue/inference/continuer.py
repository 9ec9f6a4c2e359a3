"""One playlist (or one user) at a time, fast: the library call behind the HTTP service.

:class:`Continuer` is a thin wrapper over the call ``segue recommend --challenge/--questions``
makes (:meth:`~segue.models.base.BaseRecommender.retrieve` with the targets of
:func:`~segue.inference.continuation.playlist_targets`), for any model, the two-stage one
included. What differs is only the encoding of the query: one playlist is turned into its row
without pandas (:meth:`~segue.inference.encode.QueryEncoder.playlist`), which saves
milliseconds per request and gives the very same row, so the lists equal
``continue_playlists``' for the same seeds (the service tests check it).

What a query may add on top of ``continue_playlists``:

- ``exclude``: more track ids that must not come back (added to the seed mask);
- ids given as the other JSON type: a model trained on integer song ids (Melon) also finds
  ``"123"``, and one trained on string ids finds ``123``; an id is tried as given first.

Both queries are thread-safe once :meth:`Continuer.warm_up` has built the models' lazy caches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from segue.data.interactions import take_rows
from segue.data.kinds import ItemKind, tag_names
from segue.exceptions import ParameterError, UnknownIdError
from segue.inference.continuation import playlist_targets
from segue.inference.encode import QueryEncoder
from segue.models.base import BaseRecommender

__all__ = ["Continuation", "Continuer", "UserRecommendation"]

ExternalId = str | int


@dataclass(frozen=True)
class Continuation:
    """The continuation of one playlist, best first.

    Attributes
    ----------
    tracks
        Recommended track ids (at most ``n``; fewer when the catalogue runs out).
    scores
        The model's score of each track (float32 values as Python floats).
    tags
        Recommended tags (without the ``tag:`` prefix); empty for a model without tags.
    unknown_tracks
        Seed tracks the model does not know (ignored for scoring), in request order.
    unknown_tags
        Seed tags the model does not know (all of them for a model trained without tags).
    cold_start
        True when no seed was known: the list is the model's cold-start list.
    """

    tracks: list[ExternalId]
    scores: list[float]
    tags: list[str] = field(default_factory=list)
    unknown_tracks: list[ExternalId] = field(default_factory=list)
    unknown_tags: list[str] = field(default_factory=list)
    cold_start: bool = False


@dataclass(frozen=True)
class UserRecommendation:
    """The top-``n`` items of one known user (a listener, or a training playlist's pid)."""

    user: ExternalId
    items: list[ExternalId]
    scores: list[float]
    tags: list[str] = field(default_factory=list)


def _plain(value: Any) -> Any:
    """A numpy scalar id as the plain Python value JSON writes (loaded ids already are)."""
    return value.item() if isinstance(value, np.generic) else value


def _check_sizes(n: int, n_tags: int) -> None:
    if n < 1:
        raise ParameterError(f"n must be at least 1, got {n}")
    if n_tags < 0:
        raise ParameterError(f"n_tags must be at least 0, got {n_tags}")


class Continuer:
    """Continue one playlist, or recommend for one known user, with a fitted model.

    Parameters
    ----------
    model
        A fitted segue model trained on playlists (``segue train --mpd/--melon``, any
        ``--model`` including ``two-stage``), or on listen counts (then
        :meth:`continue_playlist` treats the seeds as a listener's songs, and
        :meth:`recommend_user` serves the listeners).
    """

    def __init__(self, model: BaseRecommender) -> None:
        model.check_fitted()
        self.model = model
        items = model.items_
        self.encoder = QueryEncoder(items)
        self.n_items = len(items)
        self.tag_idx = items.columns(ItemKind.TAG)
        self.has_tags = len(self.tag_idx) > 0
        self.uses_title = self.encoder.with_titles
        self.track_idx = items.columns(ItemKind.TRACK)
        self.n_tracks = len(self.track_idx)
        self.last_seconds: dict[str, float] = {}
        # ids as JSON-ready Python values, built once (``ids[r].tolist()`` per request)
        self._item_ids = np.empty(len(items), dtype=object)
        self._item_ids[:] = [_plain(i) for i in items.ids]

    def continue_playlist(
        self,
        tracks: Sequence[ExternalId] = (),
        *,
        title: str | None = None,
        tags: Sequence[str] = (),
        n: int = 100,
        n_tags: int = 0,
        exclude: Sequence[ExternalId] = (),
    ) -> Continuation:
        """The next ``n`` tracks (and ``n_tags`` tags) of a playlist given by its seeds.

        Parameters
        ----------
        tracks
            Seed track ids in playlist order.
        title
            The playlist's title; used when the model was trained with titles.
        tags
            Seed tags; used by a model trained with tags (Melon), reported as unknown otherwise.
        n
            Tracks to return (at least 1).
        n_tags
            Tags to return; 0 for none. A model without tags returns none.
        exclude
            Track ids that must not be returned, on top of the seeds.

        Returns
        -------
        Continuation
            The same tracks, scores and tags as ``continue_playlists`` for these seeds.
        """
        _check_sizes(n, n_tags)
        encoded, extra = self.encoder.playlist(tracks, title=title, tags=tags, exclude=exclude)
        playlists = None
        if self.model.needs_playlists:
            playlists = encoded.as_playlists(self.model.items_)
        user_idx = np.full(1, -1, dtype=np.int32)
        items, scores, tag_list = self._top(user_idx, encoded.row, n, n_tags, extra, playlists)
        return Continuation(
            tracks=items,
            scores=scores,
            tags=tag_list,
            unknown_tracks=encoded.unknown_tracks,
            unknown_tags=encoded.unknown_tags,
            cold_start=encoded.row.nnz == 0,
        )

    def recommend_user(
        self, user: ExternalId, n: int = 100, *, n_tags: int = 0
    ) -> UserRecommendation:
        """Top-``n`` items for a user of the training data, seen items excluded.

        For a playlist model the users are the training playlists (their pids); a model with
        tag or title columns returns only tracks (and ``n_tags`` tags apart), as
        ``continue_playlists`` does.

        Raises
        ------
        UnknownIdError
            When the model has no such user.
        """
        _check_sizes(n, n_tags)
        idx = self.model.users_.numbers([user], missing="negative", json_types=True)
        if idx[0] < 0:
            raise UnknownIdError(self.model.users_.kind, [user], 1)
        row = take_rows(self.model.history_, idx)
        items, scores, tag_list = self._top(idx, row, n, n_tags, None, None)
        return UserRecommendation(user=user, items=items, scores=scores, tags=tag_list)

    def warm_up(self) -> None:
        """Run a cold-start and a seeded query once, so lazy model caches exist before serving.

        Models build some derived arrays on first use (the item-major weights of UserKNN, the
        regularised Gram of WRMF's fold-in, faiss indexes); building them here keeps the first
        request fast and avoids two threads building them at once.
        """
        n_tags = 1 if self.has_tags else 0
        self.continue_playlist((), n=1, n_tags=n_tags)
        if self.n_tracks:
            first = self._item_ids[self.track_idx[0]]
            self.continue_playlist([first], n=1, n_tags=n_tags)

    def _top(
        self,
        user_idx: np.ndarray,
        row: sp.csr_array,
        n: int,
        n_tags: int,
        extra: sp.csr_array | None,
        playlists: Any,
    ) -> tuple[list[ExternalId], list[float], list[str]]:
        """The call of ``continue_playlists`` for one row (plus the ``extra`` mask)."""
        targets = playlist_targets(self.model.items_, n, n_tags if self.has_tags else 0)
        found = self.model.retrieve(
            user_idx, row, targets, exclude=extra, playlists=playlists, batch_size=1
        )
        self.last_seconds = dict(self.model.last_timings)
        items, scores = found["tracks"]
        tag_list: list[str] = []
        if "tags" in found:
            got = found["tags"][0][0]
            tag_list = tag_names(self._item_ids[got[got >= 0]])
        keep = items[0] >= 0
        return (
            self._item_ids[items[0][keep]].tolist(),
            scores[0][keep].astype(np.float64).tolist(),
            tag_list,
        )
