"""Playlist titles as tokens: the signal a title-only playlist has.

Titles are noisy ("Chill Vibes 🌴", "chill vibes!!", "CHILL   VIBES"): they are normalised
(Unicode NFKC, lower case, emoji and punctuation removed, spaces collapsed) and split into
words. Each playlist then carries its words (``title:chill``, ``title:vibes``) and its whole
normalised title (``title=chill vibes``) as extra item columns, so any collaborative model
learns title -> track co-occurrence the same way it learns track -> track.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import chain

import numpy as np
import pandas as pd

from segue.data.kinds import ItemKind, item_id

__all__ = ["normalize_title", "title_items", "title_pairs"]

_NOT_WORD = re.compile(r"[^\w\s]+")  # punctuation, emoji, symbols
_SPACES = re.compile(r"[\s_]+")


def normalize_title(title: object) -> str:
    """Lower-case words separated by single spaces; ``""`` for a missing or symbol-only title."""
    if not isinstance(title, str):
        return ""
    text = unicodedata.normalize("NFKC", title).lower()
    text = _NOT_WORD.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def title_items(pids: np.ndarray, titles: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(pid, item)`` pairs: each distinct title word and the whole normalised title."""
    rows, cols, _ = title_pairs(pids, titles)
    return rows, cols


def title_pairs(pids: np.ndarray, titles: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pid, item, kind)`` triples: the title words first, then the whole titles."""
    norm = pd.Series([normalize_title(t) for t in titles], dtype=object)
    has = norm.str.len().to_numpy() > 0
    pids, norm = np.asarray(pids, dtype=object)[has], norm[has].reset_index(drop=True)
    words = norm.str.split().apply(lambda w: list(dict.fromkeys(w)))  # distinct, in order
    counts = words.str.len().to_numpy()
    word_rows = np.repeat(pids, counts)
    # chain, not np.concatenate: that makes a fixed-width '<U{longest word}' array, so one
    # 1 MB word cost 4 MB per title word of the whole file (1.5 GB for the MPD sample)
    word_cols = item_id(
        ItemKind.TITLE_WORD, pd.Series(list(chain.from_iterable(words)), dtype=object)
    ).to_numpy(dtype=object)
    whole_cols = item_id(ItemKind.TITLE, norm).to_numpy(dtype=object)
    kinds = np.concatenate(
        [
            np.full(len(word_cols), ItemKind.TITLE_WORD, dtype=np.uint8),
            np.full(len(whole_cols), ItemKind.TITLE, dtype=np.uint8),
        ]
    )
    return np.concatenate([word_rows, pids]), np.concatenate([word_cols, whole_cols]), kinds
