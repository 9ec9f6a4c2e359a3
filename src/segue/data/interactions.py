"""Interactions: who listened to what, as id maps plus one canonical float32 CSR matrix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue._types import ExternalIds, IdxArray
from segue.data.vocab import IdMap
from segue.exceptions import DataFormatError, ParameterError

if TYPE_CHECKING:
    from segue.data.playlists import Playlists

__all__ = ["Interactions", "canonical_csr", "take_rows"]

Agg = Literal["sum", "count", "max"]


def canonical_csr(matrix: Any, shape: tuple[int, int] | None = None) -> sp.csr_array:
    """Return ``matrix`` as float32 CSR with sorted indices, no duplicates and no stored zeros."""
    m = sp.csr_array(matrix, shape=shape, dtype=np.float32)
    m.sum_duplicates()
    m.eliminate_zeros()
    m.sort_indices()
    if m.indices.dtype != np.int32 and max(m.shape) < np.iinfo(np.int32).max:
        m.indices = m.indices.astype(np.int32)
    return m


def _column(values: Any) -> Any:
    """A pandas column or typed array as it is (looked up by distinct values); else objects."""
    if isinstance(values, pd.Series | pd.Index | pd.Categorical):
        return values
    if isinstance(values, np.ndarray) and values.dtype.kind in "iuU":
        return values
    return np.asarray(values, dtype=object)


@dataclass(frozen=True, eq=False)
class Interactions:
    """Users x items feedback: the object every reader returns and every model fits on.

    Attributes
    ----------
    users, items
        Vocabularies of the rows and the columns.
    matrix
        ``(len(users), len(items))`` float32 CSR with sorted indices and no duplicates. Values
        are feedback strengths (listen counts, or 1 for a playlist membership).
    playlists
        The playlists the rows were encoded from (one per row, same order), when they were:
        the order of their tracks, titles, tags and metadata reach models that read them
        (sequence models, the two-stage ranker) without a side channel.
    """

    users: IdMap
    items: IdMap
    matrix: sp.csr_array
    playlists: Playlists | None = None

    def __post_init__(self) -> None:
        shape = (len(self.users), len(self.items))
        if self.matrix.shape != shape:
            raise ParameterError(f"matrix shape {self.matrix.shape} != vocabularies {shape}")
        if not (sp.issparse(self.matrix) and self.matrix.format == "csr"):
            raise ParameterError("Interactions.matrix must be a CSR matrix")
        if self.matrix.dtype != np.float32:
            raise ParameterError(f"Interactions.matrix must be float32, got {self.matrix.dtype}")

    # construction ---------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        users: ExternalIds,
        items: ExternalIds,
        weights: Any = None,
        *,
        agg: Agg = "sum",
        user_ids: IdMap | None = None,
        item_ids: IdMap | None = None,
    ) -> Interactions:
        """Build from parallel arrays of external ids; duplicate pairs are aggregated.

        ``agg="sum"`` adds duplicate (user, item) weights (listen counts), ``"count"`` counts the
        rows, ``"max"`` keeps the largest. Given vocabularies are used as they are (ids outside
        them raise); otherwise they are built in order of first appearance.
        """
        users, items = _column(users), _column(items)
        if len(users) != len(items) or users.ndim != 1 or items.ndim != 1:
            raise ParameterError("users and items must be 1-D arrays of the same length")
        w = None
        if weights is not None and agg != "count":
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (len(users),):
                raise ParameterError("weights must have the same length as users and items")
            bad = ~np.isfinite(w) | (w <= 0)
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                raise DataFormatError(f"row {first}: weight {w[first]!r} is not a positive number")
        if user_ids is None:
            user_ids, rows = IdMap.factorize(users, kind="user")
        else:
            rows = user_ids.numbers(users)
        if item_ids is None:
            item_ids, cols = IdMap.factorize(items, kind="item")
        else:
            cols = item_ids.numbers(items)
        return cls.from_indices(user_ids, item_ids, rows, cols, w, agg=agg)

    @classmethod
    def from_indices(
        cls,
        user_ids: IdMap,
        item_ids: IdMap,
        rows: IdxArray,
        cols: IdxArray,
        weights: Any = None,
        *,
        agg: Agg = "sum",
    ) -> Interactions:
        """Build from row and column indices into given vocabularies (see :meth:`from_arrays`).

        Without weights every pair counts 1, summed as float32 (exact up to 2**24 repeats),
        and ``agg="max"`` is then plain membership: no sort of the pairs, which at the MPD's
        66M entries would cost gigabytes.
        """
        if agg not in ("sum", "count", "max"):
            raise ParameterError(f"agg must be 'sum', 'count' or 'max', got {agg!r}")
        shape = (len(user_ids), len(item_ids))
        if weights is None or agg == "count":
            w = np.ones(len(rows), dtype=np.float32)
            matrix = canonical_csr(sp.coo_array((w, (rows, cols)), shape=shape).tocsr(), shape)
            if agg == "max":
                matrix.data[:] = 1.0
            return cls(user_ids, item_ids, matrix)
        w = np.asarray(weights, dtype=np.float64)
        if agg == "max":
            order = np.lexsort((w, cols, rows))  # last of each (row, col) run is the max
            rows, cols, w = rows[order], cols[order], w[order]
            last = np.ones(len(rows), dtype=bool)
            last[:-1] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
            rows, cols, w = rows[last], cols[last], w[last]
        coo = sp.coo_array((w, (rows, cols)), shape=shape)  # float64 sums, then float32
        return cls(user_ids, item_ids, canonical_csr(coo.tocsr(), shape=shape))

    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        user: str = "user_id",
        item: str = "item_id",
        weight: str | None = None,
        agg: Agg = "sum",
    ) -> Interactions:
        """Build from a DataFrame with named columns (see :meth:`from_arrays`)."""
        missing = [c for c in (user, item, weight) if c is not None and c not in df.columns]
        if missing:
            raise DataFormatError(f"missing column(s) {missing}; have {list(df.columns)}")
        for col in (user, item):
            if df[col].isna().any():
                row = int(np.flatnonzero(df[col].isna().to_numpy())[0])
                raise DataFormatError(f"row {row}: missing {col!r}")
        return cls.from_arrays(
            df[user].astype(str).to_numpy(dtype=object),
            df[item].astype(str).to_numpy(dtype=object),
            None if weight is None else df[weight].to_numpy(),
            agg=agg,
        )

    # views ----------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        """Number of rows."""
        return len(self.users)

    @property
    def n_items(self) -> int:
        """Number of columns."""
        return len(self.items)

    @property
    def nnz(self) -> int:
        """Number of stored (user, item) pairs."""
        return int(self.matrix.nnz)

    def rows(self, user_idx: IdxArray) -> sp.csr_array:
        """Rows for the given user indices; index -1 gives an empty row."""
        return take_rows(self.matrix, user_idx)

    def align(self, items: IdMap) -> tuple[Interactions, int]:
        """Re-index the columns to ``items`` (a fitted model's vocabulary).

        Returns the aligned interactions and the number of stored pairs dropped because their
        item is not in ``items``.
        """
        if items is self.items or items == self.items:
            return self, 0
        cols = items.numbers(self.items.ids, missing="negative")
        m = self.matrix.tocoo()
        new_cols = cols[m.col]
        keep = new_cols >= 0
        dropped = int((~keep).sum())
        shape = (self.n_users, len(items))
        aligned = sp.coo_array((m.data[keep], (m.row[keep], new_cols[keep])), shape=shape)
        return Interactions(self.users, items, canonical_csr(aligned.tocsr(), shape)), dropped

    def to_frame(self) -> pd.DataFrame:
        """Long format: ``user_id``, ``item_id``, ``weight``, in row-major order."""
        m = self.matrix.tocoo()
        return pd.DataFrame(
            {
                "user_id": self.users.ids[m.row],
                "item_id": self.items.ids[m.col],
                "weight": m.data,
            }
        )

    def describe(self) -> dict[str, Any]:
        """Sizes and density, for logs and model manifests."""
        per_user = np.diff(self.matrix.indptr)
        return {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": self.nnz,
            "density": self.nnz / max(1, self.n_users * self.n_items),
            "items_per_user_median": float(np.median(per_user)) if len(per_user) else 0.0,
            "weight_sum": float(self.matrix.data.sum(dtype=np.float64)),
        }

    def __repr__(self) -> str:
        return f"Interactions(users={self.n_users}, items={self.n_items}, nnz={self.nnz})"


def take_rows(matrix: sp.csr_array, row_idx: IdxArray) -> sp.csr_array:
    """Rows of a CSR matrix by index, where -1 selects an all-empty row."""
    row_idx = np.asarray(row_idx, dtype=np.int64)
    if row_idx.size and row_idx.min() >= 0:
        return sp.csr_array(matrix[row_idx])
    counts = np.diff(matrix.indptr)
    valid = row_idx >= 0
    lengths = np.where(valid, counts[np.where(valid, row_idx, 0)], 0)
    indptr = np.zeros(len(row_idx) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    starts = np.where(valid, matrix.indptr[np.where(valid, row_idx, 0)], 0)
    # gather positions: for each selected row, its contiguous [start, start+len) slice
    offsets = np.arange(indptr[-1]) - np.repeat(indptr[:-1], lengths)
    src = np.repeat(starts, lengths) + offsets
    out = sp.csr_array(
        (matrix.data[src], matrix.indices[src], indptr), shape=(len(row_idx), matrix.shape[1])
    )
    return out
