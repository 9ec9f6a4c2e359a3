"""segue: music recommendation from implicit feedback.

Listen counts or the first songs of a playlist in, the next 100 songs out: readers for the
public music datasets, popularity / EASE / kNN / WRMF / two-stage models behind one API, the
challenges' metrics, a CLI and an HTTP service for the whole path.

``import segue`` stays light: the names below are imported on first use (PEP 562), so neither
pandas nor any optional extra (implicit, faiss, lightgbm, torch, fastapi, pyspark) is loaded
until something needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from segue._version import __version__

_LAZY: dict[str, str] = {
    "Interactions": "segue.data.interactions",
    "IdMap": "segue.data.vocab",
    "ItemKind": "segue.data.kinds",
    "Playlists": "segue.data.playlists",
    "DataFormatError": "segue.exceptions",
    "MissingExtraError": "segue.exceptions",
    "ModelFitError": "segue.exceptions",
    "ModelFormatError": "segue.exceptions",
    "NotFittedError": "segue.exceptions",
    "ParameterError": "segue.exceptions",
    "SegueError": "segue.exceptions",
    "UnknownIdError": "segue.exceptions",
    "BaseRecommender": "segue.models.base",
    "Recs": "segue.models.base",
    "Autoencoder": "segue.models.autoencoder",
    "EASE": "segue.models.ease",
    "ItemKNN": "segue.models.knn",
    "UserKNN": "segue.models.knn",
    "MostPopular": "segue.models.popularity",
    "WRMF": "segue.models.wrmf",
    "TwoStage": "segue.ranking.two_stage",
    "register": "segue.models.registry",
    "load": "segue.serialization",
    "save": "segue.serialization",
    "load_model": "segue.serialization",
    "save_model": "segue.serialization",
}

__all__ = sorted([*_LAZY, "__version__"])

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from segue.data.interactions import Interactions
    from segue.data.kinds import ItemKind
    from segue.data.playlists import Playlists
    from segue.data.vocab import IdMap
    from segue.exceptions import (
        DataFormatError,
        MissingExtraError,
        ModelFitError,
        ModelFormatError,
        NotFittedError,
        ParameterError,
        SegueError,
        UnknownIdError,
    )
    from segue.models.autoencoder import Autoencoder
    from segue.models.base import BaseRecommender, Recs
    from segue.models.ease import EASE
    from segue.models.knn import ItemKNN, UserKNN
    from segue.models.popularity import MostPopular
    from segue.models.registry import register
    from segue.models.wrmf import WRMF
    from segue.ranking.two_stage import TwoStage
    from segue.serialization import load, load_model, save, save_model


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'segue' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
