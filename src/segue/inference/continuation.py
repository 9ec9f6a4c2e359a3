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
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from segue.data.kinds import ItemKind, tag_names
from segue.data.playlists import Playlists
from segue.data.vocab import IdMap
from segue.exceptions import ParameterError
from segue.inference.encode import QueryEncoder
from segue.models.base import BaseRecommender, Target

if TYPE_CHECKING:
    from segue.inference.densify import Densifier

__all__ = ["ContinuationBatch", "SongTags", "continue_playlists", "playlist_targets"]

TagsFrom = Literal["model", "songs"]
"""Where the tags of a Melon answer come from: the model's tag columns (one scoring pass with
the songs), or the tags most attached to the songs it recommended (:class:`SongTags`)."""


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
    densify: Densifier | None = None,
    tags_from: TagsFrom = "model",
) -> Iterator[ContinuationBatch]:
    """Continue every playlist of ``queries`` with ``n`` tracks (and ``n_tags`` tags).

    Seed tracks and tags are excluded; rows are folded in from the seeds, so the queries need
    not (and, for honest evaluation, must not) be in the model's training data. With
    ``densify`` (:class:`~segue.inference.densify.Densifier`) short queries are padded with
    their songs' content neighbours before the model scores them; ``tags_from="songs"`` takes
    the tags most attached to the recommended songs instead of the model's tag scores.
    """
    model.check_fitted()
    if n < 1:
        raise ParameterError(f"n must be at least 1, got {n}")
    if tags_from not in ("model", "songs"):
        raise ParameterError(f"tags_from must be 'model' or 'songs', got {tags_from!r}")
    items = model.items_
    if n_tags and not items.count(ItemKind.TAG):
        raise ParameterError("the model was trained without tags; it cannot recommend tags")
    history = QueryEncoder(items).playlists(queries)
    matrix, pids = history.matrix, history.users.ids
    song_tags = SongTags(model) if n_tags and tags_from == "songs" else None
    targets = playlist_targets(items, n, 0 if song_tags else n_tags)
    batch = batch_size or model.default_batch_size()
    item_ids = items.ids
    for start in range(0, len(pids), batch):
        stop = min(len(pids), start + batch)
        rows = sp.csr_array(matrix[start:stop])
        dense = densify.expand(rows, items) if densify is not None else None
        part = queries.slice(start, stop) if model.needs_playlists else None
        unseen = np.full(stop - start, -1, dtype=np.int32)
        found = model.retrieve(
            unseen,
            rows if dense is None else dense.rows,
            targets if dense is None else {"tracks": targets["tracks"]},
            exclude_seen=dense is None,
            exclude=None if dense is None else rows,  # only the real seeds are masked
            playlists=part,
            batch_size=batch,
        )
        if dense is not None and "tags" in targets:  # densification is for songs: tags are
            # scored from the question as asked (densified rows cost 0.048 tag nDCG on generated
            # Melon, bench/densification.py)
            found["tags"] = model.retrieve(
                unseen, rows, {"tags": targets["tags"]}, playlists=part, batch_size=batch
            )["tags"]
        tracks, scores = found["tracks"]
        tags = None
        if "tags" in found:
            tags = [tag_names(item_ids[r[r >= 0]]) for r in found["tags"][0]]
        if song_tags is not None:
            tags = song_tags.top(tracks, rows, n_tags)
        track_lists = [item_ids[r[r >= 0]].tolist() for r in tracks]
        score_lists = [s[np.isfinite(s)] for s in scores]
        if dense is not None and densify is not None and densify.cold_slots:
            _add_cold(track_lists, score_lists, dense, densify.cold_slots, n)
        yield ContinuationBatch(
            pids=pids[start:stop], tracks=track_lists, track_scores=score_lists, tags=tags
        )
        if progress is not None:
            progress(stop - start)


def _add_cold(
    tracks: list[list[Any]], scores: list[np.ndarray], dense: Any, slots: int, n: int
) -> None:
    """Give the last places of each list to its nearest cold neighbours (in place)."""
    for i, cold in enumerate(dense.cold):
        take = cold[:slots].tolist()
        if not take:
            continue
        keep = min(len(tracks[i]), n - len(take))
        floor = float(scores[i][keep - 1]) if keep > 0 else 0.0
        tracks[i] = tracks[i][:keep] + take
        scores[i] = np.concatenate(
            [scores[i][:keep], np.full(len(take), floor, dtype=np.float32)]
        ).astype(np.float32)


class SongTags:
    """The tags most attached to recommended songs: a baseline beside the model's tag scores.

    Each recommended song votes for the tags of the training playlists that hold it, as its
    share of them (a song in 10 playlists tagged "rock" 6 times votes 0.6 for "rock"); the
    tags with the most votes over the list win, the query's own tags left out. Songs in no
    tagged training playlist do not vote.
    """

    def __init__(self, model: BaseRecommender) -> None:
        items = model.items_
        self.tag_cols = items.columns(ItemKind.TAG)
        self.tag_names = np.asarray(tag_names(items.ids[self.tag_cols]), dtype=object)
        history = sp.csr_array(model.history_)
        tracks = history[:, items.columns(ItemKind.TRACK)] if items.has_kinds else history
        counts = sp.csr_array((tracks.T > 0).astype(np.float32) @ (history[:, self.tag_cols] > 0))
        totals = np.asarray(counts.sum(axis=1)).ravel()
        share = sp.diags_array(np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0))
        votes = sp.csr_array(share @ counts)
        # rows by item column (non-track columns vote for nothing)
        full = sp.csr_array((len(items), len(self.tag_cols)), dtype=np.float32).tolil()
        track_cols = items.columns(ItemKind.TRACK) if items.has_kinds else np.arange(len(items))
        full[track_cols] = votes
        self.votes = sp.csr_array(full)

    def top(self, tracks: np.ndarray, queries: sp.csr_array, k: int) -> list[list[str]]:
        """The ``k`` best tags of each row of recommended ``tracks`` (``-1`` padding)."""
        rows = np.repeat(np.arange(len(tracks)), tracks.shape[1])
        cols = tracks.ravel()
        ok = cols >= 0
        pick = sp.csr_array(
            (np.ones(int(ok.sum()), dtype=np.float32), (rows[ok], cols[ok])),
            shape=(len(tracks), self.votes.shape[0]),
        )
        scores = (pick @ self.votes).toarray()
        seeds = sp.csr_array(queries)[:, self.tag_cols].toarray() > 0
        scores[seeds] = -np.inf
        # tags nobody voted for come last, by training frequency
        scores += 1e-6 * self._popularity()
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        out = []
        for row, cols_ in zip(scores, best, strict=True):
            good = cols_[np.isfinite(row[cols_])]
            out.append(self.tag_names[good].tolist())
        return out

    def _popularity(self) -> np.ndarray:
        pop = getattr(self, "_pop", None)
        if pop is None:
            pop = np.asarray(self.votes.sum(axis=0)).ravel()
            pop = pop / max(float(pop.max()), 1e-9)
            self._pop = pop
        return pop
