"""Array aliases shared across segue: int32 indices, float32 scores, external ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

IdxArray: TypeAlias = npt.NDArray[np.int32]
"""Internal user or item indices (int32); -1 marks a missing id or padding."""

ScoreMatrix: TypeAlias = npt.NDArray[np.float32]
"""Dense (n_users, n_items) float32 scores; -inf marks an item that may not be recommended."""

ExternalIds: TypeAlias = Sequence[Any] | npt.NDArray[Any]
"""Ids as they appear in the user's files (strings in every reader segue ships)."""

RandomState: TypeAlias = int | np.random.Generator | None
"""Seed or generator, resolved with :func:`numpy.random.default_rng`."""
