"""The one exception tree of segue.

Every error segue raises on purpose derives from :class:`SegueError`, so a caller (and the CLI)
can catch one type and show its message instead of a traceback::

    SegueError
    ├── DataFormatError      bad input data: names the file, the line and what was wrong
    ├── UnknownIdError       an external id not in a vocabulary, under missing="raise"
    ├── NotFittedError       a model used before fit() or load()
    ├── ParameterError       a hyper-parameter or argument out of its allowed range
    ├── ModelFormatError     a saved model directory that cannot be read back
    ├── ModelFitError        fitting produced an unusable result (NaN scores, singular matrix)
    └── MissingExtraError    an optional dependency is not installed; says which extra to add
"""

from __future__ import annotations

from os import PathLike

__all__ = [
    "DataFormatError",
    "MissingExtraError",
    "ModelFitError",
    "ModelFormatError",
    "NotFittedError",
    "ParameterError",
    "SegueError",
    "UnknownIdError",
]


class SegueError(Exception):
    """Base class of every error segue raises on purpose."""


class DataFormatError(SegueError, ValueError):
    """Input data that does not follow its format.

    The message reads ``FILE:LINE: REASON`` (or ``FILE: REASON`` when no line applies), the way
    compilers report errors, so editors and people can jump to the spot.
    """

    def __init__(
        self, reason: str, *, path: str | PathLike[str] | None = None, line: int | None = None
    ) -> None:
        self.reason = reason
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}:{line}"
        elif line is not None:
            where = f"line {line}"
        super().__init__(f"{where}: {reason}" if where else reason)


class UnknownIdError(SegueError, KeyError):
    """External ids that a vocabulary does not hold."""

    def __init__(self, kind: str, ids: list[object], total: int) -> None:
        self.kind = kind
        self.ids = ids
        self.total = total
        shown = ", ".join(repr(i) for i in ids[:5])
        more = f" and {total - 5} more" if total > 5 else ""
        super().__init__(f"{total} unknown {kind} id(s): {shown}{more}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class NotFittedError(SegueError, AttributeError):
    """A model was used before it was fitted or loaded."""


class ParameterError(SegueError, ValueError):
    """A hyper-parameter or argument outside its allowed values."""


class ModelFormatError(SegueError):
    """A saved model directory that is missing files, has the wrong version or a foreign class."""


class ModelFitError(SegueError, RuntimeError):
    """Fitting produced a model that would give meaningless results."""


class MissingExtraError(SegueError, ImportError):
    """An optional dependency is missing; the message names the pip extra to install."""
