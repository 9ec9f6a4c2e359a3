"""Recommenders behind one contract (:class:`~segue.models.base.BaseRecommender`).

Model classes are imported on first use, like in :mod:`segue`, so importing this package
loads none of them (nor their optional extras).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Autoencoder": "segue.models.autoencoder",
    "BaseRecommender": "segue.models.base",
    "ContentAutoencoder": "segue.models.content_autoencoder",
    "Densified": "segue.models.densified",
    "FitData": "segue.models.base",
    "Recs": "segue.models.base",
    "Target": "segue.models.base",
    "EASE": "segue.models.ease",
    "ItemKNN": "segue.models.knn",
    "UserKNN": "segue.models.knn",
    "MostPopular": "segue.models.popularity",
    "NCF": "segue.models.ncf",
    "TCN": "segue.models.tcn",
    "WRMF": "segue.models.wrmf",
    "YouTubeDNN": "segue.models.youtube_dnn",
    "model_class": "segue.models.registry",
    "model_names": "segue.models.registry",
    "register": "segue.models.registry",
    "topk": "segue.models.topk",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'segue.models' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
