"""Range checks of the hyper-parameters the neural models share (ints, rates, sizes).

One place for the messages, so every neural model refuses ``epochs=0`` or ``lr=-1`` in the same
words, and NumPy scalars from a grid pass where Python numbers do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from segue.exceptions import ParameterError

__all__ = ["check_params", "check_sizes", "is_int", "is_number"]


def is_int(value: Any, low: int) -> bool:
    """An int (not a bool) of at least ``low``."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= low


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def check_params(
    model: Any,
    *,
    ints: Mapping[str, int] = {},
    positive: Iterable[str] = (),
    non_negative: Iterable[str] = (),
) -> None:
    """Raise :class:`ParameterError` for the first of ``model``'s parameters out of range.

    ``ints`` maps a name to its lowest allowed value; ``positive`` numbers must be above 0 and
    ``non_negative`` ones at least 0 (all finite).
    """
    for name, low in ints.items():
        value = getattr(model, name)
        if not is_int(value, low):
            raise ParameterError(f"{name} must be an int >= {low}, got {value!r}")
    for name in positive:
        value = getattr(model, name)
        if not is_number(value) or value <= 0:
            raise ParameterError(f"{name} must be a positive number, got {value!r}")
    for name in non_negative:
        value = getattr(model, name)
        if not is_number(value) or value < 0:
            raise ParameterError(f"{name} must be a number >= 0, got {value!r}")


def check_sizes(name: str, value: Any) -> None:
    """A non-empty list (or tuple) of positive ints: layer widths."""
    if (
        isinstance(value, str | bytes)
        or not isinstance(value, Sequence)
        or not value
        or not all(is_int(v, 1) for v in value)
    ):
        raise ParameterError(f"{name} must be a non-empty list of ints >= 1, got {value!r}")
