"""Listen-count files: ``uid sid count`` lines, and files of target user ids.

The format of Kakao's listen-count task and of the Echo Nest Taste Profile triplets: one
interaction per line, three whitespace-separated fields (tabs or spaces), ids are strings and
``count`` is a positive integer. Blank lines are ignored. Duplicate ``(uid, sid)`` lines are
summed.

Parsing takes the C fast path of pandas; when it finds anything wrong, the file is scanned again
line by line to report the first bad line exactly (``FILE:LINE: reason``). Behaviour at the edges:

- an empty listens file (no interaction) raises :class:`~segue.exceptions.DataFormatError`;
- a targets file lists ids separated by any whitespace; duplicates are dropped (first kept) and
  an empty targets file raises :class:`~segue.exceptions.DataFormatError`; a UTF-8 byte order
  mark at the start of either file is not part of the first id;
- an id longer than :data:`~segue.data.readers._limits.MAX_ID_CHARS` (1,000) characters or
  holding a NUL character is an error naming the file and the line.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from segue._atomic import atomic_open
from segue.data.interactions import Interactions
from segue.data.readers._limits import MAX_ID_CHARS, bad_id_reason
from segue.exceptions import DataFormatError

__all__ = [
    "read_listens",
    "read_listen_interactions",
    "read_targets",
    "write_listens",
    "write_targets",
]

COLUMNS = ["user_id", "item_id", "count"]
_CHUNK_ROWS = 2_000_000
_COUNT_LIMIT = 2.0**63  # counts are stored as int64; larger values would wrap around

Progress = Callable[[int], None]
"""Called with the number of bytes read since the last call."""


class _CountingReader:
    """File wrapper that reports bytes read, so readers can drive a progress bar.

    It also notes, at the cost of one byte scan per block, whether the file holds a NUL byte or
    a line longer than ``MAX_ID_CHARS`` bytes: the only ways an id can break the id rules, which
    the fast parser does not check. Then the exact line scan runs.
    """

    def __init__(self, fh, progress: Progress | None) -> None:
        self._fh = fh
        self._progress = progress
        self.suspect = False
        self._run = 0  # bytes of the line still open at the end of the last block

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        if self._progress is not None:
            self._progress(len(data))
        if data and not self.suspect:
            self._scan(data)
        return data

    def _scan(self, data: bytes) -> None:
        if b"\x00" in data:
            self.suspect = True
            return
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
        if ends.size == 0:
            self._run += len(data)
        else:
            longest = self._run + int(ends[0])
            if ends.size > 1:
                longest = max(longest, int(np.diff(ends).max()) - 1)
            self._run = len(data) - int(ends[-1]) - 1
            self.suspect = longest > MAX_ID_CHARS
        self.suspect = self.suspect or self._run > MAX_ID_CHARS

    def __iter__(self) -> Iterator[bytes]:  # pandas checks for it
        return iter(self._fh)


def _check_fields(fields: list[str]) -> str | None:
    """The reason a split line is not a valid ``uid sid count`` record, or None."""
    if len(fields) != 3:
        return f"expected 3 fields (uid sid count), found {len(fields)}"
    count = fields[2]
    # float() accepts "1_000" and non-ASCII digits, which the pandas fast path rejects
    if not count.isascii() or "_" in count:
        return f"count {count!r} is not a number"
    try:
        value = float(count)
    except ValueError:
        return f"count {count!r} is not a number"
    if not math.isfinite(value):
        return f"count {count!r} is not a finite number"
    if value <= 0:
        return f"count {count!r} is not positive"
    if value != int(value):
        return f"count {count!r} is not an integer"
    if value >= _COUNT_LIMIT:
        return f"count {count!r} is too large"
    for name, value in zip(("uid", "sid"), fields[:2], strict=False):
        reason = bad_id_reason(value, name)
        if reason is not None:
            return reason
    return None


def _first_bad_line(path: Path) -> tuple[int, str] | None:
    """Slow exact scan: the 1-based number and reason of the first malformed line."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, f"not valid UTF-8 ({exc.reason} at byte {exc.start})"
            fields = text.split()
            if not fields:
                continue
            reason = _check_fields(fields)
            if reason is not None:
                return number, reason
    return None


def _raise_bad(path: Path, fallback: str) -> None:
    found = _first_bad_line(path)
    if found is None:  # the fast and the exact rules disagree: still say where it came from
        raise DataFormatError(f"cannot parse listens file: {fallback}", path=path)
    line, reason = found
    raise DataFormatError(reason, path=path, line=line)


def read_listens(path: str | os.PathLike[str], *, progress: Progress | None = None) -> pd.DataFrame:
    """Read a listen-count file into a frame ``user_id, item_id, count`` (duplicates kept).

    Raises
    ------
    DataFormatError
        The file is missing or empty, or a line is malformed; the message names the file, the
        line and the reason.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("no such file", path=path)
    chunks: list[pd.DataFrame] = []
    try:
        with open(path, "rb") as raw:
            counting = _CountingReader(raw, progress)
            reader = pd.read_csv(
                counting,
                sep=r"\s+",
                header=None,
                dtype={0: str, 1: str, 2: "float64"},
                quoting=csv.QUOTE_NONE,
                na_filter=False,
                index_col=False,
                engine="c",
                encoding="utf-8",
                chunksize=_CHUNK_ROWS,
            )
            for chunk in reader:
                if chunk.shape[1] != 3:
                    _raise_bad(path, f"{chunk.shape[1]} columns")
                counts = chunk[2].to_numpy(dtype=np.float64)
                valid = np.isfinite(counts) & (counts > 0) & (counts == np.floor(counts))
                if not (valid & (counts < _COUNT_LIMIT)).all():
                    _raise_bad(path, "invalid count")
                chunks.append(
                    pd.DataFrame(
                        {
                            "user_id": chunk[0].to_numpy(dtype=object),
                            "item_id": chunk[1].to_numpy(dtype=object),
                            "count": counts.astype(np.int64),
                        }
                    )
                )
    except pd.errors.EmptyDataError:
        raise DataFormatError("the file is empty: no interactions", path=path) from None
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        if isinstance(exc, DataFormatError):
            raise
        _raise_bad(path, str(exc).strip())
    if not chunks or sum(len(c) for c in chunks) == 0:
        raise DataFormatError("the file is empty: no interactions", path=path)
    if counting.suspect:  # a NUL byte or a long line: check every id exactly
        found = _first_bad_line(path)
        if found is not None:
            raise DataFormatError(found[1], path=path, line=found[0])
    return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]


def read_listen_interactions(
    path: str | os.PathLike[str], *, progress: Progress | None = None
) -> Interactions:
    """Read a listen-count file straight into :class:`Interactions` (duplicates summed)."""
    df = read_listens(path, progress=progress)
    return Interactions.from_arrays(
        df["user_id"].to_numpy(), df["item_id"].to_numpy(), df["count"].to_numpy(), agg="sum"
    )


def read_targets(path: str | os.PathLike[str]) -> np.ndarray:
    """Read target user ids (any whitespace between them), duplicates dropped, order kept.

    A UTF-8 byte order mark at the start is skipped. An id over ``MAX_ID_CHARS`` (1,000)
    characters or holding a NUL character is an error naming the file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("no such file", path=path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")  # a leading BOM is not part of the first id
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataFormatError(f"not valid UTF-8 ({exc.reason})", path=path, line=line) from None
    del raw
    ids = text.split()
    if not ids:
        raise DataFormatError("the file is empty: no target user ids", path=path)
    if "\x00" in text or max(map(len, ids)) > MAX_ID_CHARS:
        for number, line in enumerate(text.split("\n"), start=1):
            for uid in line.split():
                reason = bad_id_reason(uid, "user id")
                if reason is not None:
                    raise DataFormatError(reason, path=path, line=number)
    return pd.unique(np.asarray(ids, dtype=object))


def write_listens(path: str | os.PathLike[str], df: pd.DataFrame) -> None:
    """Write ``user_id item_id count`` lines (space separated), atomically.

    Refuses what could not be read back: ids with whitespace, counts that are not positive
    whole numbers.
    """
    raw = np.asarray(df["count"], dtype=np.float64)
    bad = ~np.isfinite(raw) | (raw <= 0) | (raw != np.floor(raw))
    if bad.any():
        value = np.asarray(df["count"])[np.flatnonzero(bad)[0]]
        raise DataFormatError(
            f"cannot write count {value!r}: not a positive whole number", path=path
        )
    counts = raw.astype(np.int64)
    columns = []
    for col in ("user_id", "item_id"):
        ids = pd.Series(df[col], dtype=object).astype(str)
        spaced = ids.str.contains(r"\s", regex=True).to_numpy()
        if spaced.any() or (ids == "").any():
            value = ids[spaced | (ids == "").to_numpy()].iloc[0]
            raise DataFormatError(
                f"cannot write {col} {value!r}: ids must be non-empty, without whitespace",
                path=path,
            )
        columns.append(ids.to_numpy(dtype=object))
    lines = columns[0] + " " + columns[1] + " " + counts.astype(str).astype(object)
    with atomic_open(path) as fh:
        if len(lines):
            fh.write("\n".join(lines.tolist()))
            fh.write("\n")


def write_targets(path: str | os.PathLike[str], user_ids: np.ndarray) -> None:
    """Write one target user id per line, atomically."""
    with atomic_open(path) as fh:
        for uid in user_ids:
            fh.write(f"{uid}\n")
