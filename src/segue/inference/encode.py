"""The one query encoder: playlists (seed tracks, title, tags) or listens -> a model's rows.

Training and answering encode playlists the same way, here and nowhere else:

- tracks are their own columns;
- with tags (Melon), each tag is a column (:attr:`~segue.data.kinds.ItemKind.TAG`), so one
  model learns song-song, song-tag and tag-tag co-occurrence and a tags-only query is scored;
- with titles, each distinct normalised title word and the whole normalised title are columns
  (:mod:`segue.data.titles`), so a title-only query is scored from them.

:func:`playlist_interactions` builds training rows (and the item vocabulary, with the kind of
every column). :class:`QueryEncoder` encodes queries over a trained model's vocabulary: a batch
of :class:`~segue.data.playlists.Playlists` through the same function, or one playlist without
pandas (:meth:`QueryEncoder.playlist`, the service's path, milliseconds faster per request and
giving the very same row).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue.data.interactions import Interactions
from segue.data.kinds import ItemKind, item_id
from segue.data.playlists import Playlists
from segue.data.titles import normalize_title, title_pairs
from segue.data.vocab import IdMap
from segue.exceptions import ParameterError

__all__ = ["EncodedPlaylist", "QueryEncoder", "playlist_interactions"]


def _tag_pairs(playlists: Playlists) -> tuple[np.ndarray, np.ndarray]:
    if "tags" not in playlists.playlists.columns:
        return np.empty(0, dtype=object), np.empty(0, dtype=object)
    tags = playlists.playlists[["pid", "tags"]].explode("tags").dropna(subset=["tags"])
    return (
        tags["pid"].to_numpy(dtype=object),
        item_id(ItemKind.TAG, tags["tags"]).to_numpy(dtype=object),
    )


def playlist_interactions(
    playlists: Playlists,
    *,
    with_tags: bool = False,
    with_titles: bool = False,
    items: IdMap | None = None,
    weight: Literal["binary", "count"] = "binary",
) -> Interactions:
    """Playlists x tracks, every playlist a row; tags and title words as extra columns.

    ``weight="binary"`` stores 1 for membership, ``"count"`` how often a column occurs in the
    playlist.

    ``items`` fixes the columns (a trained model's); tracks, tags and title words outside it
    are dropped. Otherwise the vocabulary is built in order of first appearance (tracks, then
    tags, then titles), with the :class:`~segue.data.kinds.ItemKind` of every column. The
    result carries ``playlists`` (the order of the tracks, titles and metadata).
    """
    if weight not in ("binary", "count"):
        raise ParameterError(f"weight must be 'binary' or 'count', got {weight!r}")
    entries = playlists.entries
    users = playlists.playlist_ids()
    # the entries (66M at MPD scale) stay pandas columns, looked up by their distinct values;
    # only the few tag and title pairs become Python objects
    extra_rows: list[np.ndarray] = []
    extra_cols: list[np.ndarray] = []
    extra_kinds: list[np.ndarray] = []
    if with_tags:
        tag_rows, tag_cols = _tag_pairs(playlists)
        extra_rows.append(tag_rows)
        extra_cols.append(tag_cols)
        extra_kinds.append(np.full(len(tag_cols), ItemKind.TAG, dtype=np.uint8))
    if with_titles:
        table = playlists.playlists
        title_rows, title_cols, title_kinds = title_pairs(table["pid"].to_numpy(), table["name"])
        extra_rows.append(title_rows)
        extra_cols.append(title_cols)
        extra_kinds.append(title_kinds)
    more_rows = np.concatenate([np.empty(0, dtype=object), *extra_rows])
    more_cols = np.concatenate([np.empty(0, dtype=object), *extra_cols])
    if items is None:
        items, track_cols, more_idx = _vocabulary(
            entries["track"], more_cols, np.concatenate([np.empty(0, np.uint8), *extra_kinds])
        )
    else:
        track_cols = items.numbers(entries["track"], missing="negative")
        more_idx = items.numbers(more_cols, missing="negative")
    rows = np.concatenate([users.numbers(entries["pid"]), users.numbers(more_rows)])
    cols = np.concatenate([track_cols, more_idx])
    known = cols >= 0  # columns outside a given vocabulary are dropped
    if not known.all():
        rows, cols = rows[known], cols[known]
    inter = Interactions.from_indices(
        users, items, rows, cols, agg="max" if weight == "binary" else "count"
    )
    return Interactions(inter.users, inter.items, inter.matrix, playlists)


def _vocabulary(
    tracks: pd.Series, more: np.ndarray, more_kinds: np.ndarray
) -> tuple[IdMap, np.ndarray, np.ndarray]:
    """Item vocabulary in order of first appearance: tracks, then tag and title columns.

    Returns the vocabulary and the column of every track entry and of every extra pair. A tag
    or title id equal to a track id is that track's column, as one factorisation of all the
    ids together would make it.
    """
    track_codes, track_ids = pd.factorize(tracks, sort=False)
    if (track_codes < 0).any():
        raise ParameterError("track ids contain missing values (None/NaN)")
    track_ids = np.asarray(track_ids, dtype=object)
    more_codes, more_ids = pd.factorize(more, sort=False)
    more_ids = np.asarray(more_ids, dtype=object)
    first = np.empty(len(more_ids), dtype=np.int64)
    first[more_codes[::-1]] = np.arange(len(more_codes))[::-1]  # first occurrence of each id
    in_tracks = (
        pd.Index(track_ids, dtype=object).get_indexer(more_ids)
        if len(more_ids)
        else np.empty(0, dtype=np.intp)
    )
    new = in_tracks < 0
    column = np.where(new, len(track_ids) + np.cumsum(new) - 1, in_tracks)
    kinds = np.concatenate([np.zeros(len(track_ids), np.uint8), more_kinds[first][new]])
    items = IdMap(np.concatenate([track_ids, more_ids[new]]), kind="item", kinds=kinds)
    return items, track_codes.astype(np.int32), column[more_codes].astype(np.int32)


@dataclass(frozen=True)
class EncodedPlaylist:
    """One playlist as a model row, and what of it the model did not know.

    Attributes
    ----------
    row
        ``(1, n_items)`` float32 CSR: a 1 at each known seed track, tag and title column.
    tracks
        Indices of the known seed tracks, in playlist order, without repeats.
    tags
        The known seed tags, in order.
    title
        The title as given.
    unknown_tracks, unknown_tags
        Seeds the model does not know (ignored for scoring), in request order.
    """

    row: sp.csr_array
    tracks: np.ndarray
    tags: list[str] = field(default_factory=list)
    title: str | None = None
    unknown_tracks: list[Any] = field(default_factory=list)
    unknown_tags: list[str] = field(default_factory=list)

    def as_playlists(self, items: IdMap, pid: Any = 0) -> Playlists:
        """The known part of the query as a one-playlist :class:`Playlists` (pid ``pid``)."""
        known = items.ids[self.tracks].tolist()
        table: dict[str, list[Any]] = {"pid": [pid], "name": [self.title]}
        if items.count(ItemKind.TAG):
            table["tags"] = [list(self.tags)]
        return Playlists(
            pd.DataFrame(table),
            pd.DataFrame({"pid": [pid] * len(known), "pos": range(len(known)), "track": known}),
            pd.DataFrame({"track": pd.Series(known, dtype=object)}),
        )


def _one_row(indices: np.ndarray, n_items: int) -> sp.csr_array:
    """A one-row float32 CSR with a 1 at each index (sorted, unique), as ``canonical_csr``."""
    cols = np.unique(indices[indices >= 0]).astype(np.int32)
    data = np.ones(len(cols), dtype=np.float32)
    indptr = np.array([0, len(cols)], dtype=np.int32)
    return sp.csr_array((data, cols, indptr), shape=(1, n_items))


class QueryEncoder:
    """Encode queries over a trained model's item vocabulary (module docstring).

    Tags are read when the vocabulary has tag columns and titles when it has title columns,
    exactly as the model was trained.
    """

    def __init__(self, items: IdMap) -> None:
        self.items = items
        self.with_tags = items.count(ItemKind.TAG) > 0
        self.with_titles = len(items.columns(ItemKind.TITLE_WORD, ItemKind.TITLE)) > 0

    def playlists(self, queries: Playlists) -> Interactions:
        """Every query playlist as a row (seeds, and the tag and title columns the model has)."""
        return playlist_interactions(
            queries, with_tags=self.with_tags, with_titles=self.with_titles, items=self.items
        )

    def listens(self, history: Interactions) -> Interactions:
        """Listen histories re-indexed to the model's items (unknown songs dropped)."""
        return history.align(self.items)[0]

    def playlist(
        self,
        tracks: Sequence[Any] = (),
        *,
        title: str | None = None,
        tags: Sequence[str] = (),
        exclude: Sequence[Any] = (),
    ) -> tuple[EncodedPlaylist, sp.csr_array | None]:
        """One playlist as a row, without pandas; the same row :meth:`playlists` builds.

        Ids given as the other JSON type are found too (``"12"`` for the song ``12``). Returns
        the encoded playlist and a one-row CSR of the known ``exclude`` ids (None when there
        are none).
        """
        items = self.items
        n_items = len(items)
        seed_idx = items.numbers(list(tracks), missing="negative", json_types=True)
        unknown_tracks = [t for t, i in zip(tracks, seed_idx, strict=True) if i < 0]
        known_tracks = np.asarray(list(dict.fromkeys(seed_idx[seed_idx >= 0].tolist())), np.int64)
        parts = [seed_idx]
        unknown_tags = list(tags)
        known_tags: list[str] = []
        if self.with_tags and len(tags):
            ids = [item_id(ItemKind.TAG, t) for t in tags]
            tag_idx = items.numbers(ids, missing="negative", json_types=True)
            unknown_tags = [t for t, i in zip(tags, tag_idx, strict=True) if i < 0]
            known_tags = [t for t, i in zip(tags, tag_idx, strict=True) if i >= 0]
            parts.append(tag_idx)
        if self.with_titles and title:
            parts.append(self._title_idx(title))
        row = _one_row(np.concatenate(parts), n_items)
        extra = None
        if len(exclude):
            ex = items.numbers(list(exclude), missing="negative", json_types=True)
            if (ex >= 0).any():
                extra = _one_row(ex, n_items)
        encoded = EncodedPlaylist(
            row=row,
            tracks=known_tracks,
            tags=known_tags,
            title=title,
            unknown_tracks=unknown_tracks,
            unknown_tags=unknown_tags,
        )
        return encoded, extra

    def _title_idx(self, title: str) -> np.ndarray:
        """Columns of the title's distinct words and of the whole normalised title."""
        norm = normalize_title(title)
        if not norm:
            return np.empty(0, dtype=np.int32)
        words = [item_id(ItemKind.TITLE_WORD, w) for w in dict.fromkeys(norm.split())]
        ids = np.array([*words, item_id(ItemKind.TITLE, norm)], dtype=object)
        return self.items.numbers(ids, missing="negative")
