"""Playlists as ordered song lists, for the models that read the order of their seeds.

A batch of playlists becomes a :class:`Ragged` array: each row's track columns in playlist order
(first occurrence kept). The order comes from the training positions (:meth:`FitData.order`),
from the query playlists, or, for rows that carry no order (listen histories, a known user
scored from its training row), from the row's column order. Windows (the last ``length``
songs, left-padded) feed a convolution; bags (flat values and offsets) feed
``torch.nn.functional.embedding_bag`` averages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from segue.data.playlists import Playlists
from segue.data.vocab import IdMap

__all__ = ["Ragged", "column_lists", "order_lists", "playlist_lists"]


@dataclass(frozen=True)
class Ragged:
    """Rows of different lengths: row ``i`` is ``values[indptr[i]:indptr[i + 1]]``."""

    indptr: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def lengths(self) -> np.ndarray:
        """Values per row (int64)."""
        return np.diff(self.indptr)

    def take(self, rows: np.ndarray, counts: np.ndarray | None = None) -> Ragged:
        """The selected rows, each cut to its first ``counts[i]`` values (all when None)."""
        rows = np.asarray(rows, dtype=np.int64)
        have = self.indptr[rows + 1] - self.indptr[rows]
        n = have if counts is None else np.minimum(have, np.asarray(counts, dtype=np.int64))
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(n, out=indptr[1:])
        offsets = np.arange(indptr[-1]) - np.repeat(indptr[:-1], n)
        src = np.repeat(self.indptr[rows], n) + offsets
        return Ragged(indptr, self.values[src])

    def windows(self, length: int) -> np.ndarray:
        """``(rows, length)`` int64: each row's last ``length`` values, left-padded with -1."""
        lengths = self.lengths()
        slot = lengths[:, None] - length + np.arange(length)[None, :]  # index within the row
        valid = slot >= 0
        src = np.where(valid, self.indptr[:-1, None] + slot, 0)
        if not len(self.values):
            return np.full((len(self), length), -1, dtype=np.int64)
        return np.where(valid, self.values[src], -1).astype(np.int64)


def _grouped(rows: np.ndarray, cols: np.ndarray, n_rows: int) -> Ragged:
    """Values ``cols`` already sorted by row: their ragged form over ``n_rows`` rows."""
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return Ragged(indptr, cols.astype(np.int64))


def order_lists(order: sp.csr_array, keep: np.ndarray | None = None) -> Ragged:
    """Each row's columns sorted by the positions stored in ``order`` (1-based, as FitData's).

    ``keep`` (a boolean per column) drops the other columns.
    """
    coo = sp.coo_array(order)
    rows, cols, pos = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
    if keep is not None:
        sel = keep[cols]
        rows, cols, pos = rows[sel], cols[sel], pos[sel]
    by = np.lexsort((cols, pos, rows))
    return _grouped(rows[by], cols[by], order.shape[0])


def column_lists(matrix: sp.csr_array, keep: np.ndarray | None = None) -> Ragged:
    """Each row's columns in column order: the fallback for rows that carry no song order."""
    matrix = sp.csr_array(matrix)
    matrix.sort_indices()
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    cols = matrix.indices.astype(np.int64)
    if keep is not None:
        sel = keep[cols]
        rows, cols = rows[sel], cols[sel]
    return _grouped(rows, cols, matrix.shape[0])


def playlist_lists(playlists: Playlists, items: IdMap, keep: np.ndarray | None = None) -> Ragged:
    """The known tracks of each playlist (table order), in playlist order, without repeats."""
    table = playlists.playlists
    entries = playlists.entries
    row_of = playlists.playlist_ids().numbers(
        entries["pid"].to_numpy(dtype=object), missing="negative"
    )
    cols = items.numbers(entries["track"].to_numpy(dtype=object), missing="negative")
    pos = entries["pos"].to_numpy(dtype=np.int64)
    sel = (row_of >= 0) & (cols >= 0)
    if keep is not None:
        sel &= keep[np.where(cols >= 0, cols, 0)]
    rows, cols, pos = row_of[sel].astype(np.int64), cols[sel].astype(np.int64), pos[sel]
    by = np.lexsort((pos, cols, rows))  # each (row, col) pair's first position first
    rows, cols, pos = rows[by], cols[by], pos[by]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    rows, cols, pos = rows[first], cols[first], pos[first]
    by = np.lexsort((cols, pos, rows))
    return _grouped(rows[by], cols[by], len(table))
