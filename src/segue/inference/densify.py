"""Query densification: pad a short query with its songs' content neighbours before scoring.

A collaborative model scores a 1-song or 5-song playlist from very little. The Kakao Arena
Melon write-up added, before the CF model scored a short question, each seed song's 1-3
nearest neighbours by a content autoencoder (:mod:`segue.models.content_autoencoder`) until
the question held about 100 songs. This is an option of continuation for any model, not a
model: :func:`segue.inference.continuation.continue_playlists` takes a :class:`Densifier`.

What is added and what is not:

- each seed song with metadata gets ``ceil((size - n) / n)`` neighbours, at most
  ``per_seed`` (``n`` seed songs; nothing when the query already holds ``size``), nearest
  first, never a seed and never twice; the total stops at ``size``;
- a neighbour the CF model knows becomes a column of the query with value ``weight``; only
  the original seeds are masked, so added songs can (and usually do) come back as
  recommendations;
- a neighbour the CF model does not know (a cold song: in the metadata, in no training
  playlist) cannot be scored by it; with ``cold_slots > 0`` the nearest such songs take the
  last ``cold_slots`` places of the list (the only way a CF list reaches a cold song), else
  they are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue.data.kinds import ItemKind
from segue.data.vocab import IdMap
from segue.exceptions import ParameterError

__all__ = ["Densified", "Densifier"]


@dataclass(frozen=True)
class Densified:
    """A batch of queries after densification.

    Attributes
    ----------
    rows
        The queries with the added songs the model knows (``weight`` each).
    added
        Songs added per query (model-known ones), for reports and tests.
    cold
        Per query, the added songs the model does not know: their ids, nearest first.
    cold_sims
        Their summed similarity to the query's seeds (same order).
    """

    rows: sp.csr_array
    added: np.ndarray
    cold: list[np.ndarray]
    cold_sims: list[np.ndarray]


@dataclass(frozen=True, eq=False)
class Densifier:
    """Pads short queries with content neighbours (module docstring).

    Parameters
    ----------
    content
        A fitted :class:`~segue.models.content_autoencoder.ContentAutoencoder` (anything with
        ``items_`` and ``neighbours(idx, k)``).
    size
        Target number of songs per query.
    per_seed
        Neighbours per seed song at most (the write-up: 1-3).
    weight
        Value of an added song in the query row (seeds have 1).
    cold_slots
        Places at the end of each list given to cold neighbours (0: cold songs dropped).
    """

    content: Any
    size: int = 100
    per_seed: int = 3
    weight: float = 1.0
    cold_slots: int = 0
    _maps: dict[int, tuple[IdMap, np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.content.check_fitted()
        if not hasattr(self.content, "neighbours"):
            raise ParameterError(
                "densify needs a content model with neighbours(), got "
                f"{type(self.content).__name__}"
            )
        for name in ("size", "per_seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ParameterError(f"densify {name} must be a positive int, got {value!r}")
        if not isinstance(self.cold_slots, int) or self.cold_slots < 0:
            raise ParameterError(f"densify cold_slots must be an int >= 0, got {self.cold_slots}")
        if not float(self.weight) > 0:
            raise ParameterError(f"densify weight must be positive, got {self.weight}")

    def _mapping(self, items: IdMap) -> tuple[np.ndarray, np.ndarray]:
        """CF column -> content index (-1: none), content index -> CF track column (-1)."""
        key = id(items)
        found = self._maps.get(key)
        if found is not None and found[0] is items:
            return found[1], found[2]
        content_items: IdMap = self.content.items_
        tracks = items.columns(ItemKind.TRACK) if items.has_kinds else np.arange(len(items))
        to_content = np.full(len(items), -1, dtype=np.int64)
        to_content[tracks] = content_items.numbers(items.ids[tracks], missing="negative")
        own = content_items.columns(ItemKind.TRACK) if content_items.has_kinds else None
        if own is None:
            own = np.arange(len(content_items))
        to_cf = np.full(len(content_items), -1, dtype=np.int64)
        cf = items.numbers(content_items.ids[own], missing="negative")
        is_track = np.zeros(len(items) + 1, dtype=bool)
        is_track[tracks] = True
        to_cf[own] = np.where(is_track[cf], cf, -1)
        self._maps[key] = (items, to_content, to_cf)
        return to_content, to_cf

    def expand(self, rows: sp.csr_array, items: IdMap) -> Densified:
        """Densify a batch of query rows over a model's ``items`` (module docstring)."""
        rows = sp.csr_array(rows)
        n = rows.shape[0]
        to_content, to_cf = self._mapping(items)
        coo = rows.tocoo()
        seed_content = to_content[coo.col]
        is_track = np.zeros(rows.shape[1], dtype=bool)
        is_track[items.columns(ItemKind.TRACK) if items.has_kinds else slice(None)] = True
        n_tracks = np.bincount(coo.row[is_track[coo.col]], minlength=n)
        ok = seed_content >= 0
        r_seed, c_seed = coo.row[ok].astype(np.int64), seed_content[ok]
        n_exp = np.bincount(r_seed, minlength=n)
        room = np.maximum(self.size - n_tracks, 0)
        per_row = np.minimum(-(-room // np.maximum(n_exp, 1)), self.per_seed)
        empty = [np.empty(0, dtype=items.ids.dtype)] * n
        if not len(r_seed) or not room.any():
            return Densified(rows, np.zeros(n, np.int64), empty, [np.empty(0, np.float32)] * n)
        useeds, inverse = np.unique(c_seed, return_inverse=True)
        k = 2 * self.per_seed
        found, sims = self.content.neighbours(useeds, k)
        frame = pd.DataFrame(
            {
                "row": np.repeat(r_seed, k),
                "seed": np.repeat(np.arange(len(r_seed)), k),
                "rank": np.tile(np.arange(k), len(r_seed)),
                "nb": found[inverse].ravel().astype(np.int64),
                "sim": sims[inverse].ravel(),
            }
        )
        n_content = len(self.content.items_)
        seed_keys = r_seed * n_content + c_seed
        keys = frame["row"].to_numpy() * n_content + frame["nb"].to_numpy()
        frame = frame[(frame["nb"].to_numpy() >= 0) & ~np.isin(keys, seed_keys)]
        frame = frame.sort_values(["row", "rank", "seed"], kind="stable")
        frame = frame.drop_duplicates(["row", "nb"], keep="first")
        frame = frame[
            frame.groupby("seed").cumcount().to_numpy() < per_row[frame["row"].to_numpy()]
        ]
        frame = frame[frame.groupby("row").cumcount().to_numpy() < room[frame["row"].to_numpy()]]
        r_add, nb = frame["row"].to_numpy(), frame["nb"].to_numpy()
        cf = to_cf[nb]
        known = cf >= 0
        extra = sp.csr_array(
            (np.full(int(known.sum()), self.weight, dtype=np.float32), (r_add[known], cf[known])),
            shape=rows.shape,
        )
        dense = sp.csr_array(rows + extra)
        dense.sort_indices()
        cold, cold_sims = empty, [np.empty(0, np.float32)] * n
        if self.cold_slots and (~known).any():
            ids = self.content.items_.ids
            part = frame[~known].groupby(["row", "nb"], sort=False)["sim"].sum().reset_index()
            part = part.sort_values(["row", "sim"], ascending=[True, False], kind="stable")
            cold, cold_sims = list(empty), list(cold_sims)
            for row, group in part.groupby("row", sort=False):  # only rows with cold songs
                cold[row] = ids[group["nb"].to_numpy()]
                cold_sims[row] = group["sim"].to_numpy(np.float32)
        return Densified(dense, np.bincount(r_add[known], minlength=n), cold, cold_sims)
