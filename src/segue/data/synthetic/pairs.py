"""Pair helpers shared by the synthetic generators: distinct pairs, positions within runs."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["first_distinct", "rank_within"]

IntArray = npt.NDArray[np.int64]


def first_distinct(users: IntArray, items: IntArray, n_items: int) -> tuple[IntArray, IntArray]:
    """Keep the first occurrence of every (user, item) pair: grouped by user, in draw order."""
    _, first = np.unique(users * n_items + items, return_index=True)
    first = np.sort(first)
    first = first[np.argsort(users[first], kind="stable")]
    return users[first], items[first]


def rank_within(users: IntArray) -> IntArray:
    """Return the position of every element within its run of equal, grouped ``users``."""
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    lengths = np.diff(np.r_[starts, users.size])
    return np.arange(users.size) - np.repeat(starts, lengths)
