"""IdMap: the frozen vocabulary between external ids (strings in files) and int32 indices.

Models only ever see indices; ids are mapped at the edges (readers, ``recommend``, writers).
Unknown ids are the normal case in recommendation (new users, new tracks), so every lookup
declares what to do with them: ``missing="raise"`` or ``missing="negative"`` (index -1).

An item vocabulary also says what each column is (:class:`~segue.data.kinds.ItemKind`: track,
tag, title word, whole title), so callers ask :meth:`IdMap.columns` for the track or tag
columns instead of scanning ids for prefixes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import pandas as pd

from segue._types import ExternalIds, IdxArray
from segue.data.kinds import ItemKind
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
    kinds
        Item vocabularies of playlist models: the :class:`~segue.data.kinds.ItemKind` code of
        each id (uint8, same length). ``None``: every id is a track.
    """

    __slots__ = ("_cache", "_ids", "_index", "_kinds", "kind")

    def __init__(
        self,
        ids: ExternalIds | Iterable[Any],
        *,
        kind: str = "item",
        kinds: np.ndarray | None = None,
    ) -> None:
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
        self._kinds = None
        if kinds is not None:
            codes = np.array(kinds, dtype=np.uint8)
            if codes.shape != arr.shape:
                raise ParameterError(f"{kind} kinds have shape {codes.shape}, ids {arr.shape}")
            if len(codes) and int(codes.max()) > max(ItemKind):
                raise ParameterError(f"{kind} kinds hold an unknown code {int(codes.max())}")
            codes.flags.writeable = False
            self._kinds = codes if codes.any() else None  # all tracks: same as no kinds
        self._cache: dict[Any, Any] = {}  # derived look-ups, built once per vocabulary

    @classmethod
    def factorize(cls, values: ExternalIds, *, kind: str = "item") -> tuple[IdMap, IdxArray]:
        """Build a vocabulary from raw values (order of first appearance) and their codes.

        A pandas column or a numeric array is factorised as it is (typed hash tables, no
        Python object per value); only the distinct values become Python objects.
        """
        if not _by_distinct(values):
            values = np.asarray(values, dtype=object)
        codes, uniques = pd.factorize(values, sort=False)
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
            len(other) == len(self)
            and bool(np.array_equal(other._ids, self._ids))
            and bool(np.array_equal(other.kinds, self.kinds))
        )

    def __hash__(self) -> int:
        return hash((len(self), tuple(self._ids[:8])))

    @property
    def ids(self) -> np.ndarray:
        """External ids in index order (a read-only object array)."""
        return self._ids

    @property
    def kinds(self) -> np.ndarray:
        """The :class:`~segue.data.kinds.ItemKind` code of every id (read-only uint8)."""
        if self._kinds is not None:
            return self._kinds
        zeros = self._cache.get("zeros")
        if zeros is None:
            zeros = np.zeros(len(self), dtype=np.uint8)
            zeros.flags.writeable = False
            self._cache["zeros"] = zeros
        return zeros

    @property
    def has_kinds(self) -> bool:
        """Whether some id is not a track (a tag or title column)."""
        return self._kinds is not None

    def columns(self, *kinds: ItemKind) -> IdxArray:
        """Indices of the ids of the given kinds, ascending (read-only, computed once)."""
        key = ("columns", frozenset(ItemKind(k) for k in kinds))
        found = self._cache.get(key)
        if found is None:
            if self._kinds is None:
                every = ItemKind.TRACK in key[1]
                found = np.arange(len(self) if every else 0, dtype=np.int32)
            else:
                found = np.flatnonzero(np.isin(self._kinds, list(key[1]))).astype(np.int32)
            found.flags.writeable = False
            self._cache[key] = found
        return found

    def count(self, kind: ItemKind) -> int:
        """How many ids are of ``kind``."""
        return len(self.columns(kind))

    def numbers(
        self, ids: ExternalIds, *, missing: Missing = "raise", json_types: bool = False
    ) -> IdxArray:
        """Map external ids to int32 indices; unknown ids raise or become -1.

        ``json_types=True`` also finds an id given as the other JSON type: ``"12"`` in a
        vocabulary of integers (Melon song ids) and ``12`` in one of strings, as ids arrive
        from an HTTP request (``"007"`` is not ``7``).
        """
        if missing not in ("raise", "negative"):
            raise ParameterError(f"missing must be 'raise' or 'negative', got {missing!r}")
        if _by_distinct(ids):
            return self._numbers_by_distinct(ids, missing=missing, json_types=json_types)
        if isinstance(ids, list | tuple):
            query = np.empty(len(ids), dtype=object)
            query[:] = list(ids)  # lists of lists stay one id each, never a 2-D array
        else:
            query = np.asarray(ids, dtype=object)
        if query.ndim == 0:
            query = query.reshape(1)
        idx = self._index.get_indexer(query).astype(np.int32, copy=False)
        if json_types and (idx < 0).any():
            self._retry_other_type(query, idx)
        if missing == "raise" and (idx < 0).any():
            unknown = query[idx < 0]
            raise UnknownIdError(self.kind, unknown[:5].tolist(), len(unknown))
        return idx

    def _numbers_by_distinct(self, ids: Any, *, missing: Missing, json_types: bool) -> IdxArray:
        """:meth:`numbers` of a column: each distinct value is looked up once, then taken.

        A pandas column (string, categorical, integer) or a numeric array of tens of millions
        of entries is never turned into as many Python objects: it is factorised (codes and
        distinct values, by pandas' typed hash tables or the Arrow dictionary), only the
        distinct values are looked up, and the codes pick their indices (issue 16: the MPD's
        66M entries took 17 GiB as Python strings).
        """
        codes, uniques = pd.factorize(ids, use_na_sentinel=True)
        found = self.numbers(
            np.asarray(uniques, dtype=object), missing="negative", json_types=json_types
        )
        # one slot more for the NA code -1: a missing value is an unknown id
        idx = np.append(found, np.int32(-1))[codes]
        if missing == "raise" and (idx < 0).any():
            where = np.flatnonzero(idx < 0)
            first = pd.Series(ids).iloc[where[:5]].tolist()
            raise UnknownIdError(self.kind, first, len(where))
        return idx

    def _retry_other_type(self, query: np.ndarray, idx: np.ndarray) -> None:
        has = self._cache.get("json_types")
        if has is None:
            plain = [v.item() if isinstance(v, np.generic) else v for v in self._ids]
            has = (
                any(isinstance(v, int) and not isinstance(v, bool) for v in plain),
                any(isinstance(v, str) for v in plain),
            )
            self._cache["json_types"] = has
        has_int, has_str = has
        retry = [(i, _other_type(query[i])) for i in np.flatnonzero(idx < 0)]
        retry = [
            (i, v)
            for i, v in retry
            if (isinstance(v, int) and has_int) or (isinstance(v, str) and has_str)
        ]
        if retry:
            alt = np.empty(len(retry), dtype=object)
            alt[:] = [v for _, v in retry]
            idx[[i for i, _ in retry]] = self._index.get_indexer(alt)

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


def _by_distinct(ids: Any) -> bool:
    """Whether ``ids`` is a column best looked up by its distinct values (no object array)."""
    if isinstance(ids, pd.Series | pd.Index | pd.Categorical):
        return True
    return isinstance(ids, np.ndarray) and ids.ndim == 1 and ids.dtype.kind in "iuU"


def _other_type(value: Any) -> Any:
    """The same id in the other JSON type (``"12"`` <-> ``12``), or None when there is none."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        as_int = int(value)
        return as_int if str(as_int) == value else None  # "007" is not 7
    return None
