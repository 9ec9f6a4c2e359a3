"""Most popular items: the baseline every model must beat, and the cold-start fallback."""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp

from segue._types import IdxArray, ScoreMatrix
from segue.exceptions import ParameterError
from segue.models.base import BaseRecommender, FitData
from segue.models.registry import register

__all__ = ["MostPopular"]


@register("popularity")
class MostPopular(BaseRecommender):
    """Rank items by popularity in the training data, the same list for everyone.

    Parameters
    ----------
    weighting
        ``"users"`` counts distinct listeners per item (robust to a few heavy listeners);
        ``"count"`` sums the interaction weights (total listens).
    """

    required_state = ("popularity_",)
    state_shapes = {"popularity_": ("items",)}

    def __init__(self, weighting: Literal["users", "count"] = "users") -> None:
        self.weighting = weighting

    def _validate_params(self) -> None:
        if self.weighting not in ("users", "count"):
            raise ParameterError(f"weighting must be 'users' or 'count', got {self.weighting!r}")

    def _fit(self, data: FitData) -> None:
        matrix = data.matrix
        if self.weighting == "users":
            pop = np.bincount(matrix.indices, minlength=matrix.shape[1])
        else:
            pop = np.bincount(matrix.indices, weights=matrix.data, minlength=matrix.shape[1])
        self.popularity_ = pop.astype(np.float32)

    def _score(self, user_idx: IdxArray, history: sp.csr_array) -> ScoreMatrix:
        return np.tile(self.popularity_, (len(user_idx), 1))
