"""Sparse rows to tensors, and a network's weights to and from plain arrays.

Weights leave torch as float32 NumPy arrays in a dict, which :mod:`segue.serialization` saves as
one safetensors file; a network is rebuilt from its hyper-parameters and these arrays, never
from a pickled object.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from segue.exceptions import ModelFormatError
from segue.nn.runtime import torch

__all__ = ["dense_rows", "load_weights", "sparse_rows", "weights_of"]


def sparse_rows(rows: sp.csr_array, device: Any, *, binary: bool = False) -> Any:
    """A CSR batch as a torch sparse COO tensor (for ``torch.sparse.mm`` into a first layer)."""
    t = torch()
    rows = sp.csr_array(rows)
    rows.sum_duplicates()  # sorted, unique indices: the COO below is coalesced as built
    coo = rows.tocoo()
    values = np.ones(coo.nnz, dtype=np.float32) if binary else coo.data.astype(np.float32)
    index = np.vstack([coo.row, coo.col]).astype(np.int64)
    return t.sparse_coo_tensor(
        t.from_numpy(index),
        t.from_numpy(values),
        size=rows.shape,
        device=device,
        is_coalesced=True,
        check_invariants=False,  # built from a canonical CSR: valid by construction
    )


def dense_rows(rows: sp.csr_array, device: Any, *, binary: bool = False) -> Any:
    """A CSR batch as a dense float32 tensor on ``device``."""
    t = torch()
    out = np.zeros(rows.shape, dtype=np.float32)
    coo = sp.coo_array(rows)
    out[coo.row, coo.col] = 1.0 if binary else coo.data
    return t.from_numpy(out).to(device)


def weights_of(module: Any) -> dict[str, np.ndarray]:
    """A module's parameters and buffers as contiguous float32 NumPy arrays, by name."""
    return {
        name: np.ascontiguousarray(value.detach().to("cpu").numpy().astype(np.float32))
        for name, value in module.state_dict().items()
    }


def load_weights(module: Any, weights: dict[str, Any]) -> Any:
    """Copy saved arrays into ``module``; a missing, extra or mis-shaped tensor is refused.

    Raises :class:`ModelFormatError` naming the tensor, so a damaged or mismatched directory
    fails at load time with a message instead of deep inside torch.
    """
    t = torch()
    own = module.state_dict()
    missing = sorted(set(own) - set(weights))
    extra = sorted(set(weights) - set(own))
    if missing or extra:
        raise ModelFormatError(f"network weights: missing {missing}, unexpected {extra}")
    state = {}
    for name, target in own.items():
        value = weights[name]
        array = value if isinstance(value, np.ndarray) else value.detach().cpu().numpy()
        if tuple(array.shape) != tuple(target.shape):
            raise ModelFormatError(
                f"network weight {name} has shape {tuple(array.shape)}, "
                f"expected {tuple(target.shape)}"
            )
        if array.dtype.kind != "f" or not np.isfinite(array).all():
            raise ModelFormatError(f"network weight {name} is not finite floats")
        state[name] = t.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    module.load_state_dict(state)
    return module
