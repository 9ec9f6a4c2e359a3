"""Model names for the CLI and configs, resolved lazily so optional extras stay unimported."""

from __future__ import annotations

import importlib

from segue.exceptions import ModelFormatError, ParameterError
from segue.models.base import BaseRecommender

__all__ = ["MODELS", "class_path", "model_class", "resolve_class_path"]

MODELS: dict[str, str] = {
    "popularity": "segue.models.popularity:MostPopular",
    "ease": "segue.models.ease:EASE",
    "wrmf": "segue.models.wrmf:WRMF",
    "itemknn": "segue.models.knn:ItemKNN",
    "userknn": "segue.models.knn:UserKNN",
}
"""Short name -> ``module:Class`` of every model segue ships."""


def _import(path: str) -> type[BaseRecommender]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def model_class(name: str) -> type[BaseRecommender]:
    """The class registered under a short name (``"ease"``)."""
    try:
        return _import(MODELS[name])
    except KeyError:
        raise ParameterError(f"unknown model {name!r}; choose one of {sorted(MODELS)}") from None


def class_path(cls: type) -> str:
    """``module:Class`` of a model class, as written in manifests."""
    return f"{cls.__module__}:{cls.__qualname__}"


def resolve_class_path(path: str) -> type[BaseRecommender]:
    """The class of a manifest, accepted only if it is a registered segue model.

    Loading never imports an arbitrary class named in a file.
    """
    if path not in MODELS.values():
        raise ModelFormatError(f"model class {path!r} is not a registered segue model")
    return _import(path)
