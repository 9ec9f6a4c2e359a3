"""segue: music recommendation from implicit feedback.

Listen counts or the first songs of a playlist in, the next 100 songs out: readers for the
public music datasets, popularity / EASE and more models behind one API, the challenges'
metrics and a CLI for the whole path. ``import segue`` stays light: heavy optional extras are
imported only by the modules that need them.
"""

from __future__ import annotations

__version__ = "0.1.0"

from segue.data.interactions import Interactions
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
from segue.models.base import BaseRecommender, Recs
from segue.models.ease import EASE
from segue.models.knn import ItemKNN, UserKNN
from segue.models.popularity import MostPopular
from segue.models.wrmf import WRMF
from segue.serialization import load_model, save_model

__all__ = [
    "EASE",
    "BaseRecommender",
    "DataFormatError",
    "IdMap",
    "Interactions",
    "ItemKNN",
    "MissingExtraError",
    "ModelFitError",
    "ModelFormatError",
    "MostPopular",
    "NotFittedError",
    "ParameterError",
    "Recs",
    "SegueError",
    "UnknownIdError",
    "UserKNN",
    "WRMF",
    "__version__",
    "load_model",
    "save_model",
]
