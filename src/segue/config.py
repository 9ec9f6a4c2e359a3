"""Parameter files: a TOML or JSON table of a model's hyper-parameters, read strictly.

``segue train --config FILE`` gives any model its parameters from a file (``--param`` wins);
unknown names are errors (the model's ``set_params`` says which), so a typo never falls back
to a default silently. Syntax errors name the file and the line.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from segue.exceptions import DataFormatError

__all__ = ["read_config"]


def read_config(path: str | os.PathLike[str], *, fmt: str = "auto") -> dict[str, Any]:
    """The table of a ``.toml`` file, or the object of a ``.json`` file (``fmt`` forces one)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataFormatError("file not found", path=path) from None
    except OSError as exc:
        raise DataFormatError(f"cannot read it ({exc.strerror})", path=path) from None
    if fmt == "json" or (fmt == "auto" and path.suffix.lower() == ".json"):
        try:
            doc = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise DataFormatError("not UTF-8 text", path=path) from None
        except json.JSONDecodeError as exc:
            raise DataFormatError(
                f"not valid JSON: {exc.msg}", path=path, line=exc.lineno
            ) from None
        if not isinstance(doc, dict):
            raise DataFormatError("expected a JSON object of parameters", path=path)
        return doc
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise DataFormatError("not UTF-8 text", path=path) from None
    except tomllib.TOMLDecodeError as exc:
        # Python < 3.14 puts the position only in the message: "... (at line 2, column 5)"
        found = re.search(r"at line (\d+)", str(exc))
        line = getattr(exc, "lineno", None) or (int(found.group(1)) if found else None)
        raise DataFormatError(f"not valid TOML: {exc}", path=path, line=line) from None
