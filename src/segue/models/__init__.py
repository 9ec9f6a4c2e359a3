"""Recommenders behind one contract (:class:`~segue.models.base.BaseRecommender`)."""

from segue.models.base import BaseRecommender, Recs
from segue.models.ease import EASE
from segue.models.knn import ItemKNN, UserKNN
from segue.models.popularity import MostPopular
from segue.models.registry import MODELS, model_class
from segue.models.topk import topk
from segue.models.wrmf import WRMF

__all__ = [
    "EASE",
    "MODELS",
    "WRMF",
    "BaseRecommender",
    "ItemKNN",
    "MostPopular",
    "Recs",
    "UserKNN",
    "model_class",
    "topk",
]
