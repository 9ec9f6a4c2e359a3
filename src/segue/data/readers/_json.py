"""One JSON document from bytes, with errors that name the file and the line.

Shared by the MPD and Melon readers: both read whole JSON files (slices, challenge sets,
``train.json``) whose problems must come out as ``FILE:LINE: reason``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections.abc import Iterator
from typing import Any

from segue.exceptions import DataFormatError

__all__ = ["gc_paused", "parse_json"]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of small containers are created.

    Parsing ``train.json`` allocates about six million lists, dicts and ints; every few
    thousand allocations the collector would walk all of them again, which costs more than the
    parsing itself. Nothing made here is cyclic, so pausing it is safe.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_json(raw: bytes, path: str | os.PathLike[str], what: str) -> Any:
    """Parse ``raw`` (UTF-8, a BOM allowed); empty, undecodable or malformed is an error."""
    if not raw.removeprefix(b"\xef\xbb\xbf").strip():  # a BOM alone is still empty
        raise DataFormatError(f"the file is empty: no {what}", path=path)
    try:
        with gc_paused():
            return json.loads(raw)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataFormatError(f"not valid UTF-8 ({exc.reason})", path=path, line=line) from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            f"not valid JSON: {exc.msg} (column {exc.colno})", path=path, line=exc.lineno
        ) from None
    except RecursionError:
        raise DataFormatError("not valid JSON: nested too deeply", path=path) from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise DataFormatError(f"not valid JSON: {exc}", path=path) from None
