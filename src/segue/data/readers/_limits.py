"""Length and content bounds every reader applies to ids and free text.

Why: one hostile or broken value must not cost gigabytes or crash a later step. A 1 MB
playlist title once made ``train --mpd --model popularity`` peak at 1.5 GB, and a string with
a lone surrogate (such as U+D800, which a JSON escape can spell) passed every check and then
failed inside pyarrow. The rules, the same in every reader:

- **ids** (listen and table user/item ids, target ids, MPD track/artist/album URIs, Melon
  tags) longer than :data:`MAX_ID_CHARS` characters, or holding a NUL character, are an error
  naming the file and the line (or record). Cutting an id would merge different ids.
- **text** (MPD playlist names and descriptions, track, artist and album names; Melon
  titles) longer than :data:`MAX_TEXT_CHARS` characters is cut to that length, and one warning
  per file says how many values were cut. Real titles are far shorter (at most 75 characters in
  the MPD sample, 40 in the Melon one), so only junk is cut, and a 1,000-character title still
  tokenises into a useful item.
- a lone surrogate in any string the readers keep is an error: it is not Unicode text and
  cannot be written to Parquet or to a submission.
"""

from __future__ import annotations

import re
import warnings
from os import PathLike

__all__ = [
    "MAX_ID_CHARS",
    "MAX_TEXT_CHARS",
    "bad_id_reason",
    "bad_text_reason",
    "has_surrogate",
    "warn_cut",
]

MAX_ID_CHARS = 1_000
"""Longest id accepted, in characters (Spotify URIs have 36, Melon tags at most 15)."""
MAX_TEXT_CHARS = 1_000
"""Titles and names longer than this are cut to it, with a warning."""

_SURROGATE = re.compile("[\ud800-\udfff]")


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate code point (never true for decoded UTF-8)."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def _shown(text: str) -> str:
    return repr(text[:30] + "...") if len(text) > 30 else repr(text)


def bad_id_reason(value: str, what: str = "id") -> str | None:
    """Why ``value`` is not a usable id (too long, NUL, lone surrogate), or None."""
    if len(value) > MAX_ID_CHARS:
        return f"{what} {_shown(value)} has {len(value):,} characters (at most {MAX_ID_CHARS:,})"
    if "\x00" in value:
        return f"{what} {_shown(value)} holds a NUL character"
    if has_surrogate(value):
        return f"{what} {_shown(value)} is not valid Unicode (a lone surrogate)"
    return None


def bad_text_reason(value: str, what: str) -> str | None:
    """Why the free text ``value`` cannot be kept (a lone surrogate), or None."""
    if has_surrogate(value):
        return f"{what} {_shown(value)} is not valid Unicode (a lone surrogate)"
    return None


def warn_cut(path: str | PathLike[str], count: int, what: str = "titles or names") -> None:
    """One warning for a file whose ``count`` text values were cut to :data:`MAX_TEXT_CHARS`."""
    if count:
        warnings.warn(
            f"{path}: {count} {what} longer than {MAX_TEXT_CHARS:,} characters "
            f"cut to {MAX_TEXT_CHARS:,}",
            RuntimeWarning,
            stacklevel=3,
        )
