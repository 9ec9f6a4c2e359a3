"""What a column of a playlist model is: a track, a tag, a title word or a whole title.

A playlist model learns from more than tracks: Melon tags and playlist titles become item
columns too, so one model learns track-track, tag-track and title-track co-occurrence, and a
tags-only or title-only query is scored from them. What each column *is* is data, stored in
the item vocabulary (:attr:`segue.data.vocab.IdMap.kinds`) and saved with the model, never
found by scanning ids for a prefix.

The external ids of non-track columns still carry a prefix (``tag:rock``, ``title:chill``,
``title=chill vibes``) so that a tag and a track (or a title word) with the same text stay two
distinct ids; :func:`item_id` writes them and :func:`tag_names` reads tags back. This module is
the only place that knows the prefixes.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ItemKind", "item_id", "kinds_from_prefixes", "tag_names"]


class ItemKind(IntEnum):
    """The kind of an item column (stored as uint8 codes)."""

    TRACK = 0
    TAG = 1
    TITLE_WORD = 2
    TITLE = 3

    @property
    def prefix(self) -> str:
        """What the external id of a column of this kind starts with (``""`` for tracks)."""
        return _PREFIXES[self]


_PREFIXES = {
    ItemKind.TRACK: "",
    ItemKind.TAG: "tag:",
    ItemKind.TITLE_WORD: "title:",
    ItemKind.TITLE: "title=",
}


def item_id(kind: ItemKind, values: Any) -> Any:
    """External column id(s) of ``values`` (a string, or a pandas Series of strings)."""
    prefix = _PREFIXES[ItemKind(kind)]
    if not prefix:
        return values
    if isinstance(values, pd.Series):
        return prefix + values.astype(str)
    return prefix + str(values)


def tag_names(ids: Iterable[Any]) -> list[str]:
    """The tags of tag-column ids, prefix dropped: what a Melon answer or response lists."""
    cut = len(_PREFIXES[ItemKind.TAG])
    return [str(i)[cut:] for i in ids]


def kinds_from_prefixes(ids: np.ndarray) -> np.ndarray:
    """Kinds read off the id prefixes: only for models saved before kinds were stored."""
    series = pd.Series(ids, dtype=object)
    out = np.zeros(len(ids), dtype=np.uint8)
    for kind in (ItemKind.TAG, ItemKind.TITLE_WORD, ItemKind.TITLE):
        starts = series.str.startswith(_PREFIXES[kind]).fillna(False).to_numpy(dtype=bool)
        out[starts] = kind
    return out
