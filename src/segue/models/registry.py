"""Which model classes segue knows, by short name: the allow-list of the CLI and of loading.

A model class registers itself with the :func:`register` decorator::

    @register("ease")
    class EASE(BaseRecommender): ...

Names are resolved lazily: the modules of segue's own models (:data:`BUILTIN_MODULES`) and of
plugins are imported only when a name is looked up, so ``import segue`` loads no model and no
optional extra. Plugins are modules outside segue that register models; they are named in the
``SEGUE_PLUGINS`` environment variable (comma-separated module names) or declared as
``segue.models`` entry points of an installed package.

Loading a saved model accepts only a class registered here (the manifest's ``module:Class``
must be one of them): a file never makes segue import an arbitrary name.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from segue.exceptions import ModelFormatError, ParameterError

if TYPE_CHECKING:
    from segue.models.base import BaseRecommender

__all__ = [
    "BUILTIN_MODULES",
    "PLUGINS_ENV",
    "class_path",
    "model_class",
    "model_names",
    "register",
    "resolve_class_path",
]

BUILTIN_MODULES = (
    "segue.models.popularity",
    "segue.models.ease",
    "segue.models.wrmf",
    "segue.models.knn",
    "segue.models.content_autoencoder",
    "segue.models.densified",
    "segue.models.autoencoder",
    "segue.models.tcn",
    "segue.models.youtube_dnn",
    "segue.models.ncf",
    "segue.ranking.two_stage",
)
"""Modules whose import registers segue's own models, in the order the CLI lists them."""

PLUGINS_ENV = "SEGUE_PLUGINS"
"""Environment variable: comma-separated modules that register more models."""

ENTRY_POINT_GROUP = "segue.models"

_REGISTRY: dict[str, type[BaseRecommender]] = {}
_loaded = False

T = TypeVar("T", bound="type[BaseRecommender]")


def register(name: str) -> Callable[[T], T]:
    """Class decorator: make a model class known to the CLI and to loading as ``name``."""
    if (
        not isinstance(name, str)
        or not name
        or not name.replace("-", "").replace("_", "").isalnum()
    ):
        raise ParameterError(f"a model name is letters, digits, '-' and '_', got {name!r}")

    def decorate(cls: T) -> T:
        known = _REGISTRY.get(name)
        if known is not None and class_path(known) != class_path(cls):
            raise ParameterError(
                f"model name {name!r} is taken by {class_path(known)}; cannot register "
                f"{class_path(cls)}"
            )
        _REGISTRY[name] = cls
        cls.registry_name = name
        return cls

    return decorate


def _load_all() -> None:
    """Import the built-in model modules and the plugins, once."""
    global _loaded
    if _loaded:
        return
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ParameterError(f"{PLUGINS_ENV}: cannot import {module!r} ({exc})") from None
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        point.load()
    _loaded = True


def model_names() -> list[str]:
    """Every registered short name, built-in models first."""
    _load_all()
    return list(_REGISTRY)


def model_class(name: str) -> type[BaseRecommender]:
    """The class registered under a short name (``"ease"``)."""
    if name not in _REGISTRY:
        _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ParameterError(f"unknown model {name!r}; choose one of {model_names()}") from None


def class_path(cls: type) -> str:
    """``module:Class`` of a model class, as written in manifests."""
    return f"{cls.__module__}:{cls.__qualname__}"


def resolve_class_path(path: str) -> type[BaseRecommender]:
    """The class of a manifest, accepted only if it is a registered segue model.

    Loading never imports an arbitrary class named in a file.
    """
    for cls in list(_REGISTRY.values()):
        if class_path(cls) == path:
            return cls
    _load_all()
    for cls in _REGISTRY.values():
        if class_path(cls) == path:
            return cls
    raise ModelFormatError(f"model class {path!r} is not a registered segue model")
