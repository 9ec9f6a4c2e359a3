"""IdMap: the frozen vocabulary between external ids (strings in files) and int32 indices.

Models only ever see indices; ids are mapped at the edges (readers, ``recommend``, writers).
Unknown ids are the normal case in recommendation (new users, new tracks), so every lookup
declares what to do with them: ``missing="raise"`` or ``missing="negative"`` (index -1).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import pandas as pd

from segue._types import ExternalIds, IdxArray
from segue.exceptions import ParameterError, UnknownIdError

__all__ = ["IdMap"]

Missing = Literal["raise", "negative"]


class IdMap:
    """Immutable, hash-indexed mapping between external ids and ``0..n-1``.

    Parameters
    ----------
    ids
        The external ids in index order. They must be unique.
    kind
        What the ids are ("user", "item"); used in error messages.
    """

    __slots__ = ("_ids", "_index", "kind")

    def __init__(self, ids: ExternalIds | Iterable[Any], *, kind: str = "item") -> None:
        # always a private copy: the map freezes it, and must not freeze the caller's array
        arr = np.array(list(ids) if not hasattr(ids, "__len__") else ids, dtype=object)
        if arr.ndim != 1:
            raise ParameterError(f"{kind} ids must be one-dimensional, got shape {arr.shape}")
        index = pd.Index(arr, dtype=object, copy=False)
        if not index.is_unique:
            dups = index[index.duplicated()].unique()[:5].tolist()
            raise ParameterError(f"{kind} ids must be unique; duplicated: {dups}")
        arr.flags.writeable = False
        self._ids = arr
        self._index = index
        self.kind = kind

    @classmethod
    def factorize(cls, values: ExternalIds, *, kind: str = "item") -> tuple[IdMap, IdxArray]:
        """Build a vocabulary from raw values (order of first appearance) and their codes."""
        codes, uniques = pd.factorize(np.asarray(values, dtype=object), sort=False)
        if (codes < 0).any():
            raise ParameterError(f"{kind} ids contain missing values (None/NaN)")
        return cls(np.asarray(uniques, dtype=object), kind=kind), codes.astype(np.int32)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, item: object) -> bool:
        return item in self._index

    def __repr__(self) -> str:
        head = ", ".join(repr(i) for i in self._ids[:3])
        more = ", ..." if len(self) > 3 else ""
        return f"IdMap(kind={self.kind!r}, n={len(self)}, [{head}{more}])"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdMap):
            return NotImplemented
        return other is self or (
            len(other) == len(self) and bool(np.array_equal(other._ids, self._ids))
        )

    def __hash__(self) -> int:
        return hash((len(self), tuple(self._ids[:8])))

    @property
    def ids(self) -> np.ndarray:
        """External ids in index order (a read-only object array)."""
        return self._ids

    def numbers(self, ids: ExternalIds, *, missing: Missing = "raise") -> IdxArray:
        """Map external ids to int32 indices; unknown ids raise or become -1."""
        if missing not in ("raise", "negative"):
            raise ParameterError(f"missing must be 'raise' or 'negative', got {missing!r}")
        query = np.asarray(ids, dtype=object)
        if query.ndim == 0:
            query = query.reshape(1)
        idx = self._index.get_indexer(query).astype(np.int32, copy=False)
        if missing == "raise" and (idx < 0).any():
            unknown = query[idx < 0]
            raise UnknownIdError(self.kind, unknown[:5].tolist(), len(unknown))
        return idx

    def lookup(self, idx: IdxArray) -> np.ndarray:
        """Map indices back to external ids; -1 maps to ``None``."""
        idx = np.asarray(idx)
        out = np.empty(idx.shape, dtype=object)
        valid = idx >= 0
        if (idx >= len(self)).any():
            raise ParameterError(f"{self.kind} index out of range (n={len(self)})")
        out[valid] = self._ids[idx[valid]]
        out[~valid] = None
        return out

    def to_list(self) -> list[Any]:
        """Ids as a plain list (JSON-ready when the ids are strings)."""
        return self._ids.tolist()
