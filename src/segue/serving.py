"""One playlist (or one user) at a time, fast: the library call behind the HTTP service.

Why a second route next to :func:`segue.continuation.continue_playlists`: that function takes a
:class:`~segue.data.playlists.Playlists` (three pandas tables) and builds the history matrix
through ``Interactions.from_arrays``, which costs milliseconds of pandas work for one playlist;
a service answering single requests spends that on every call. :class:`Continuer` does the same
computation for one query without pandas: the seed ids are mapped with the model's item
vocabulary, the one-row history CSR is built directly (sorted unique indices, float32 ones,
exactly what ``playlist_interactions`` produces) and passed to the same model calls
(``recommend_idx``, or ``score`` and :func:`segue.models.topk.topk` for a model with ``tag:``
columns) with the same arguments. The lists are therefore identical to ``continue_playlists``
(and so to ``segue recommend --challenge/--questions``) for the same seeds; the service tests
check it against both.

What a query may add on top of ``continue_playlists``:

- ``exclude``: more track ids that must not come back (added to the seed mask, so the list is
  ``continue_playlists``' longer list with those ids removed).
- ids given as the other JSON type: a model trained on integer song ids (Melon) also finds
  ``"123"``, and one trained on string ids finds ``123``; an id is tried as given first.
- nothing else: ``title`` is used exactly as ``continue_playlists`` uses it (its words and whole
  normalised title are history columns when the model was trained with titles, and ignored
  otherwise); a query with no known seed track, tag or title word gets the cold-start list.

A future model that continues playlists differently (titles, re-ranking) plugs in here: the
service calls only :meth:`Continuer.continue_playlist` and :meth:`Continuer.recommend_user`.
Both are thread-safe once :meth:`Continuer.warm_up` has built the models' lazy caches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from segue.continuation import (
    TAG_PREFIX,
    tag_columns,
    tag_names,
    title_columns,
    track_columns,
)
from segue.data.interactions import take_rows
from segue.data.titles import TITLE_PREFIX, WHOLE_TITLE_PREFIX, normalize_title
from segue.data.vocab import IdMap
from segue.exceptions import ParameterError, UnknownIdError
from segue.models.base import BaseRecommender
from segue.models.topk import topk

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


def _other_type(value: Any) -> Any:
    """The same id in the other JSON type (``"12"`` <-> ``12``), or None when there is none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        as_int = int(value)
        return as_int if str(as_int) == value else None  # "007" is not 7
    return None


def _check_sizes(n: int, n_tags: int) -> None:
    if n < 1:
        raise ParameterError(f"n must be at least 1, got {n}")
    if n_tags < 0:
        raise ParameterError(f"n_tags must be at least 0, got {n_tags}")


class _Vocabulary:
    """Fast id -> index lookups for one IdMap, with the other-type retry of the module docs."""

    def __init__(self, ids: IdMap) -> None:
        self.map = ids
        plain = [_plain(i) for i in ids.ids]
        self.has_int = any(isinstance(i, int) and not isinstance(i, bool) for i in plain)
        self.has_str = any(isinstance(i, str) for i in plain)

    def numbers(self, ids: Sequence[Any]) -> np.ndarray:
        """int32 indices of ``ids``, -1 where the id is unknown in either JSON type."""
        if not len(ids):
            return np.empty(0, dtype=np.int32)
        query = np.empty(len(ids), dtype=object)
        query[:] = list(ids)
        idx = self.map.numbers(query, missing="negative")
        miss = np.flatnonzero(idx < 0)
        if len(miss) and (self.has_int or self.has_str):
            retry = [(i, _other_type(query[i])) for i in miss]
            retry = [
                (i, v)
                for i, v in retry
                if (isinstance(v, int) and self.has_int) or (isinstance(v, str) and self.has_str)
            ]
            if retry:
                alt = np.empty(len(retry), dtype=object)
                alt[:] = [v for _, v in retry]
                idx[[i for i, _ in retry]] = self.map.numbers(alt, missing="negative")
        return idx


def _tag_numbers(items: _Vocabulary, tags: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Column indices of seed tags (``-1``: unknown to the model) and the unknown tags."""
    idx = items.numbers([TAG_PREFIX + t for t in tags])
    return idx, [t for t, i in zip(tags, idx, strict=True) if i < 0]


def _json_ids(ids: IdMap) -> np.ndarray:
    """Ids as JSON-ready Python values, built once (``ids[r].tolist()`` per request)."""
    out = np.empty(len(ids), dtype=object)
    out[:] = [_plain(i) for i in ids.ids]
    return out


def _row(indices: np.ndarray, n_items: int) -> sp.csr_array:
    """A one-row float32 CSR with a 1 at each index (sorted, unique), as ``canonical_csr``."""
    cols = np.unique(indices[indices >= 0]).astype(np.int32)
    data = np.ones(len(cols), dtype=np.float32)
    indptr = np.array([0, len(cols)], dtype=np.int32)
    return sp.csr_array((data, cols, indptr), shape=(1, n_items))


class Continuer:
    """Continue one playlist, or recommend for one known user, with a fitted model.

    Parameters
    ----------
    model
        A fitted segue model trained on playlists x tracks (``segue train --mpd/--melon``), or
        on listen counts (then :meth:`continue_playlist` treats the seeds as a listener's
        songs, and :meth:`recommend_user` serves the listeners).
    """

    def __init__(self, model: BaseRecommender) -> None:
        model._check_fitted()
        self.model = model
        self.n_items = len(model.items_)
        self.tag_idx = tag_columns(model.items_)
        self.has_tags = len(self.tag_idx) > 0
        self.uses_title = len(title_columns(model.items_)) > 0
        self.track_idx = track_columns(model.items_)
        # tag or title columns: score, then keep tracks only
        self.has_side = len(self.track_idx) < len(model.items_)
        self.n_tracks = len(self.track_idx)
        self._item_ids = _json_ids(model.items_)
        self._items = _Vocabulary(model.items_)
        self._users = _Vocabulary(model.users_)

    # queries ----------------------------------------------------------------------------------
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
            Seed track ids in playlist order (order and repeats do not change the result).
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
        seed_idx = self._items.numbers(tracks)
        unknown_tracks = [t for t, i in zip(tracks, seed_idx, strict=True) if i < 0]
        unknown_tags = list(tags)
        if self.has_tags and len(tags):
            tag_idx, unknown_tags = _tag_numbers(self._items, tags)
            seed_idx = np.concatenate([seed_idx, tag_idx])
        if self.uses_title and title:
            seed_idx = np.concatenate([seed_idx, self._title_idx(title)])
        row = _row(seed_idx, self.n_items)
        extra = None
        if len(exclude):
            ex = self._items.numbers(exclude)
            if (ex >= 0).any():
                extra = _row(ex, self.n_items)
        user_idx = np.full(1, -1, dtype=np.int32)
        items, scores, tag_list = self._top(user_idx, row, n, n_tags, extra)
        return Continuation(
            tracks=items,
            scores=scores,
            tags=tag_list,
            unknown_tracks=unknown_tracks,
            unknown_tags=unknown_tags,
            cold_start=row.nnz == 0,
        )

    def _title_idx(self, title: str) -> np.ndarray:
        """Columns of the title's distinct words and of the whole normalised title."""
        norm = normalize_title(title)
        if not norm:
            return np.empty(0, dtype=np.int32)
        words = [TITLE_PREFIX + w for w in dict.fromkeys(norm.split())]
        ids = np.array([*words, WHOLE_TITLE_PREFIX + norm], dtype=object)
        return self.model.items_.numbers(ids, missing="negative")

    def recommend_user(
        self, user: ExternalId, n: int = 100, *, n_tags: int = 0
    ) -> UserRecommendation:
        """Top-``n`` items for a user of the training data, seen items excluded.

        For a playlist model the users are the training playlists (their pids). Equals
        ``model.recommend([user], n)`` for a model without tags; a model with tags returns
        only tracks (and ``n_tags`` tags apart), as ``continue_playlists`` does.

        Raises
        ------
        UnknownIdError
            When the model has no such user.
        """
        if n < 1:
            raise ParameterError(f"n must be at least 1, got {n}")
        idx = self._users.numbers([user])
        if idx[0] < 0:
            raise UnknownIdError(self.model.users_.kind, [user], 1)
        row = take_rows(self.model.history_, idx)
        items, scores, tag_list = self._top(idx, row, n, n_tags, None)
        return UserRecommendation(user=user, items=items, scores=scores, tags=tag_list)

    def warm_up(self) -> None:
        """Run a cold-start and a seeded query once, so lazy model caches exist before serving.

        Models build some derived arrays on first use (the item-major weights of UserKNN, the
        regularised Gram of WRMF's fold-in, faiss indexes); building them here keeps the first
        request fast and avoids two threads building them at once.
        """
        self.continue_playlist((), n=1, n_tags=1 if self.has_tags else 0)
        if self.n_tracks:
            first = self._item_ids[self.track_idx[0]]
            self.continue_playlist([first], n=1, n_tags=1 if self.has_tags else 0)

    # the shared kernel --------------------------------------------------------------------------
    def _top(
        self,
        user_idx: np.ndarray,
        row: sp.csr_array,
        n: int,
        n_tags: int,
        extra: sp.csr_array | None,
    ) -> tuple[list[ExternalId], list[float], list[str]]:
        """The model calls of ``continue_playlists`` for one row (plus the ``extra`` mask)."""
        model = self.model
        tag_list: list[str] = []
        if not self.has_side:
            items, scores = model.recommend_idx(user_idx, row, n, exclude=extra, batch_size=1)
        else:
            raw = model.score(user_idx, row)
            mask = row if extra is None else sp.csr_array(row + extra)
            items, scores = topk(raw, n, exclude=mask, allow=self.track_idx, copy=n_tags > 0)
            if n_tags:
                tag_items, _ = topk(raw, n_tags, exclude=row, allow=self.tag_idx)
                got = tag_items[0][tag_items[0] >= 0]
                tag_list = tag_names(self._item_ids[got])
        keep = items[0] >= 0
        return (
            self._item_ids[items[0][keep]].tolist(),
            scores[0][keep].astype(np.float64).tolist(),
            tag_list,
        )


class TwoStageContinuer:
    """:class:`Continuer`'s interface over a :class:`~segue.ranking.two_stage.TwoStage` model.

    One query becomes a one-playlist :class:`~segue.data.playlists.Playlists` and goes through
    :meth:`TwoStage.recommend_idx <segue.ranking.two_stage.TwoStage.recommend_idx>`, the call
    ``segue recommend --challenge`` makes, so the lists are the same. Users are not served (the
    model continues playlists); a Melon model takes seed tags and returns tags from its tag
    ranker (:meth:`TwoStage.rank <segue.ranking.two_stage.TwoStage.rank>`, as ``segue recommend
    --questions``). The scores are minus the rank (the ranker's own scores stay inside).
    """

    uses_title = True

    def __init__(self, model: Any) -> None:
        self.model = model
        items = model.items_
        first = next(iter(model.models_.values()))
        self.has_tags = model.tag_ranker_ is not None
        self.tag_idx = tag_columns(items) if self.has_tags else np.empty(0, dtype=np.int32)
        self.track_idx = track_columns(items)
        self.n_tracks = len(self.track_idx)
        self.n_items = len(items)
        self._items = _Vocabulary(items)
        self._item_ids = _json_ids(items)
        self.users_ = first.users_
        self.history_ = first.history_
        self.last_seconds: dict[str, float] = {}

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
        """The next ``n`` tracks of one playlist, re-ranked (see the class docstring)."""
        import pandas as pd

        from segue.data.playlists import Playlists

        _check_sizes(n, n_tags)
        seed_idx = self._items.numbers(tracks)
        unknown_tracks = [t for t, i in zip(tracks, seed_idx, strict=True) if i < 0]
        known = list(dict.fromkeys(self._item_ids[seed_idx[seed_idx >= 0]].tolist()))
        ex = self._items.numbers(exclude) if len(exclude) else np.empty(0, dtype=np.int32)
        extra = len(set(ex[ex >= 0].tolist()) - set(seed_idx.tolist()))
        table = {"pid": [0], "name": [title]}
        known_tags: list[str] = []
        unknown_tags = list(tags)
        if self.has_tags:
            tag_idx, unknown_tags = _tag_numbers(self._items, tags)
            known_tags = [t for t, i in zip(tags, tag_idx, strict=True) if i >= 0]
            table["tags"] = [known_tags]
        queries = Playlists(
            pd.DataFrame(table),
            pd.DataFrame({"pid": [0] * len(known), "pos": range(len(known)), "track": known}),
            pd.DataFrame({"track": pd.Series(known, dtype=object)}),
        )
        ranked = self.model.rank(queries, n + extra, n_tags if self.has_tags else 0)
        self.last_seconds = ranked.seconds
        row = ranked.tracks[0][ranked.tracks[0] >= 0]
        if extra:
            row = row[~np.isin(row, ex)]
        row = row[:n]
        out_tags: list[str] = []
        if ranked.tags is not None:
            tag_row = ranked.tags[0][ranked.tags[0] >= 0]
            out_tags = tag_names(self._item_ids[tag_row])
        return Continuation(
            tracks=self._item_ids[row].tolist(),
            scores=[float(-rank) for rank in range(1, len(row) + 1)],
            tags=out_tags,
            unknown_tracks=unknown_tracks,
            unknown_tags=unknown_tags,
            cold_start=not known and not title and not known_tags,
        )

    def recommend_user(self, user: ExternalId, n: int = 100, *, n_tags: int = 0) -> Any:
        """Not served: the two-stage model continues playlists (a 404 names the reason)."""
        raise UnknownIdError("user (the two-stage model serves /v1/continue only)", [user], 1)

    def warm_up(self) -> None:
        """One cold and one seeded query, so lazy caches exist before the first request."""
        self.continue_playlist((), n=1)
        if self.n_tracks:
            self.continue_playlist([self._item_ids[self.track_idx[0]]], n=1)
