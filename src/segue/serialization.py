"""Save and load fitted models as a directory, never as pickle.

Layout (format version 1)::

    MODEL_DIR/manifest.json   class, params, format and library versions, training summary,
                              scalar learned state and the user and item id maps
    MODEL_DIR/arrays.npz      every learned array (read with allow_pickle=False), including the
                              training history used to filter already-seen items

A directory is written to a temporary sibling and renamed into place, so a failed save never
leaves a half-written model.
"""

from __future__ import annotations

import json
import os
import platform
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from segue import __version__
from segue._atomic import atomic_dir
from segue.data.vocab import IdMap
from segue.exceptions import ModelFormatError, NotFittedError
from segue.models.base import BaseRecommender
from segue.models.registry import class_path, resolve_class_path

__all__ = ["load_model", "read_manifest", "save_model"]

FORMAT = "segue.model"
FORMAT_VERSION = 1
_SPARSE_PARTS = ("data", "indices", "indptr", "shape")


def save_model(model: BaseRecommender, path: str | os.PathLike[str]) -> Path:
    """Write a fitted model to the directory ``path`` (replaced atomically if present)."""
    if not model.is_fitted:
        raise NotFittedError(f"cannot save an unfitted {type(model).__name__}")
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, Any] = {}
    maps: dict[str, list[Any]] = {}
    for name, value in model.learned_state().items():
        if isinstance(value, IdMap):
            maps[name] = value.to_list()
        elif sp.issparse(value):
            csr = sp.csr_array(value)
            arrays.update({f"{name}.{p}": np.asarray(getattr(csr, p)) for p in _SPARSE_PARTS})
        elif isinstance(value, np.ndarray):
            if value.dtype == object:
                raise ModelFormatError(f"learned array {name} has dtype object; cannot save safely")
            arrays[name] = value
        elif isinstance(value, bool | int | float | str) or value is None:
            scalars[name] = value
        else:
            raise ModelFormatError(f"learned attribute {name} of type {type(value).__name__}")
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": class_path(type(model)),
        "params": model.get_params(),
        "segue_version": __version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "state": scalars,
        "id_maps": maps,
    }
    with atomic_dir(path) as tmp:
        np.savez(tmp / "arrays.npz", **arrays)
        with open(tmp / "manifest.json", "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, ensure_ascii=False)
    return Path(path)


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a saved model, checked for format and version."""
    file = Path(path) / "manifest.json"
    try:
        with open(file, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: not a segue model directory (no manifest.json)") from None
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{file}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    if manifest.get("format") != FORMAT:
        raise ModelFormatError(f"{file}: not a segue model manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(
            f"{file}: model format version {manifest.get('format_version')!r}; this segue "
            f"reads version {FORMAT_VERSION}"
        )
    return manifest


def load_model(path: str | os.PathLike[str]) -> BaseRecommender:
    """Read a model written by :func:`save_model`."""
    manifest = read_manifest(path)
    cls = resolve_class_path(manifest["class"])
    if manifest.get("segue_version") != __version__:
        warnings.warn(
            f"model saved with segue {manifest.get('segue_version')}, loading with {__version__}",
            UserWarning,
            stacklevel=2,
        )
    model = cls(**manifest["params"])
    for name, value in manifest["state"].items():
        setattr(model, name, value)
    for name, ids in manifest["id_maps"].items():
        setattr(model, name, IdMap(ids, kind=name.rstrip("s_")))
    try:
        with np.load(Path(path) / "arrays.npz", allow_pickle=False) as npz:
            stored = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{path}: cannot read arrays.npz ({exc})") from None
    sparse_names = {k.rsplit(".", 1)[0] for k in stored if "." in k}
    for name in sparse_names:
        parts = {p: stored.pop(f"{name}.{p}") for p in _SPARSE_PARTS}
        setattr(
            model,
            name,
            sp.csr_array(
                (parts["data"], parts["indices"], parts["indptr"]), shape=tuple(parts["shape"])
            ),
        )
    for name, value in stored.items():
        setattr(model, name, value)
    if not model.is_fitted:
        raise ModelFormatError(f"{path}: the saved state is incomplete")
    return model
