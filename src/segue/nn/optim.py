"""Adam for the dense layers and sparse Adam for sparse embedding tables, as one optimizer.

Why: a catalogue of 200,000 songs makes tables of millions of weights, and dense Adam would
update every row at every step; a step of sparse Adam touches only the rows its batch met.
``weight_decay`` applies to the dense layers (sparse Adam has none).
"""

from __future__ import annotations

from typing import Any

from segue.nn.runtime import torch

__all__ = ["MixedAdam"]


class MixedAdam:
    """``torch.optim.Adam`` over dense parameters, ``SparseAdam`` over ``sparse=True`` tables."""

    def __init__(self, net: Any, lr: float, weight_decay: float) -> None:
        t = torch()
        sparse_ids = {
            id(m.weight)
            for m in net.modules()
            if isinstance(m, t.nn.Embedding | t.nn.EmbeddingBag) and m.sparse
        }
        sparse = [p for p in net.parameters() if id(p) in sparse_ids]
        dense = [p for p in net.parameters() if id(p) not in sparse_ids]
        self.parts = []
        if dense:
            self.parts.append(t.optim.Adam(dense, lr=lr, weight_decay=weight_decay))
        if sparse:
            self.parts.append(t.optim.SparseAdam(sparse, lr=lr))

    def zero_grad(self) -> None:
        """Clear every part's gradients."""
        for part in self.parts:
            part.zero_grad()

    def step(self) -> None:
        """One step of every part."""
        for part in self.parts:
            part.step()
