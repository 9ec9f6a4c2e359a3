"""Recommenders behind one contract (:class:`~segue.models.base.BaseRecommender`)."""

from segue.models.base import BaseRecommender, Recs
from segue.models.ease import EASE
from segue.models.popularity import MostPopular
from segue.models.registry import MODELS, model_class
from segue.models.topk import topk

__all__ = ["EASE", "MODELS", "BaseRecommender", "MostPopular", "Recs", "model_class", "topk"]
