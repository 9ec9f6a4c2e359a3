"""What comes back to the driver: the training matrix, and a model made fitted from Spark state.

Why the matrix comes back: a segue model carries its training rows (``history_``, the items a
user must not be recommended again) and the cold-start popularity, and the model format stores
them. At the MPD's 66M entries that is 0.5 GB of CSR, well inside one driver; the steps that do
not fit (the ALS solves, the item-item products) stay on the executors.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from segue.data.interactions import Interactions, canonical_csr
from segue.data.vocab import IdMap
from segue.models.base import BaseRecommender

__all__ = ["finish_fit", "to_interactions"]


def to_interactions(users: IdMap, items: IdMap, coded: Any) -> Interactions:
    """The coded ``(u, i, count)`` DataFrame as segue :class:`Interactions` (Arrow transfer)."""
    table = coded.select("u", "i", "count").toArrow()
    rows = table.column("u").to_numpy().astype(np.int32, copy=False)
    cols = table.column("i").to_numpy().astype(np.int32, copy=False)
    values = table.column("count").to_numpy().astype(np.float32)
    shape = (len(users), len(items))
    matrix = canonical_csr(sp.coo_array((values, (rows, cols)), shape=shape).tocsr(), shape)
    return Interactions(users, items, matrix)


def finish_fit(
    model: BaseRecommender, train: Interactions, state: dict[str, Any], started: float
) -> BaseRecommender:
    """Make ``model`` fitted with learned ``state`` computed elsewhere (on Spark).

    Sets what :meth:`BaseRecommender.fit` sets around ``_fit`` (training view, items, fit
    time), so the model saves, loads and serves like one fitted on one machine.
    """
    model.validate_params()
    for name in list(model.learned_state()):
        delattr(model, name)
    model._set_training_view(train)
    for name, value in state.items():
        setattr(model, name, value)
    model.items_ = train.items
    model.fit_seconds_ = time.perf_counter() - started
    model.check_state()
    return model
