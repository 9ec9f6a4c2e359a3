"""Save and load fitted models as a directory of safe formats, never as pickle.

Layout (format version 2)::

    MODEL_DIR/manifest.json       class (``module:Class``), params, format and library versions,
                                  and, for every learned attribute, the codec that stored it
    MODEL_DIR/arrays.npz          NumPy arrays, sparse matrices and item kinds
                                  (read with ``allow_pickle=False``)
    MODEL_DIR/NAME.safetensors    a dict of tensors (NumPy or torch), e.g. a network's weights
    MODEL_DIR/NAME.txt            a LightGBM model, in LightGBM's own text format
    MODEL_DIR/NAME/               a nested model (a first-stage model of the two-stage one)
    MODEL_DIR/NAME/KEY/           a dict of nested models

Learned state is every attribute ending in ``_`` (:meth:`BaseRecommender.learned_state`); each
value is stored by the first codec that takes it (:func:`register_codec` adds codecs, as
:mod:`segue.ranking.lambdarank` does for LightGBM boosters). The manifest records which codec
wrote each attribute and under which npz keys, so no key is ever parsed for meaning. A model may
adapt what is stored with ``state_to_save`` / ``restore_state`` (the two-stage model stores its
feature context as arrays). Only classes registered with
:func:`segue.models.registry.register` are loaded.

A directory is written to a temporary sibling and renamed into place, so a failed save never
leaves a half-written model.
"""

from __future__ import annotations

import json
import os
import platform
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from segue._atomic import atomic_dir
from segue._version import __version__
from segue.data.vocab import IdMap
from segue.exceptions import ModelFormatError, NotFittedError, ParameterError

if TYPE_CHECKING:
    from segue.models.base import BaseRecommender

__all__ = [
    "Codec",
    "checked_file",
    "load",
    "load_model",
    "read_manifest",
    "register_codec",
    "save",
    "save_model",
    "saved_file",
]

FORMAT = "segue.model"
FORMAT_VERSION = 2
_READABLE = (1, 2)
_SPARSE_PARTS = ("data", "indices", "indptr", "shape")


@dataclass
class _Writer:
    """What one save collects: npz arrays and the directory files are written to."""

    root: Path
    arrays: dict[str, np.ndarray]
    libraries: set[str]


@dataclass
class _Reader:
    """What one load reads from: the npz arrays and the directory."""

    root: Path
    arrays: dict[str, np.ndarray]


@dataclass(frozen=True)
class Codec:
    """How one kind of learned value is stored: a test, a writer and a reader.

    ``save(value, name, writer)`` returns the JSON entry of the manifest (the codec name is
    added); ``load(entry, reader)`` returns the value.
    """

    name: str
    takes: Callable[[Any], bool]
    save: Callable[[Any, str, _Writer], dict[str, Any]]
    load: Callable[[dict[str, Any], _Reader], Any]


_CODECS: dict[str, Codec] = {}


def register_codec(codec: Codec) -> Codec:
    """Add a codec (tried after the built-in ones, in order of registration)."""
    _CODECS[codec.name] = codec
    return codec


# built-in codecs ---------------------------------------------------------------------------------
def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


def _save_array(value: np.ndarray, name: str, w: _Writer) -> dict[str, Any]:
    if value.dtype == object:
        raise ModelFormatError(f"learned array {name} has dtype object; cannot save safely")
    w.arrays[name] = value
    return {"key": name}


def _save_csr(value: Any, name: str, w: _Writer) -> dict[str, Any]:
    csr = sp.csr_array(value)
    keys = {}
    for part in _SPARSE_PARTS:
        keys[part] = f"{name}.{part}"
        w.arrays[keys[part]] = np.asarray(getattr(csr, part))
    return {"keys": keys}


def _load_csr(entry: dict[str, Any], r: _Reader) -> sp.csr_array:
    parts = {p: r.arrays[entry["keys"][p]] for p in _SPARSE_PARTS}
    return _checked_csr(parts["data"], parts["indices"], parts["indptr"], parts["shape"])


def _checked_csr(data: Any, indices: Any, indptr: Any, shape: Any) -> sp.csr_array:
    """A CSR matrix from stored parts, refused unless it is well formed and canonical.

    Why: scipy trusts the parts; an index out of range makes a later sparse product read
    outside its buffers (a crash, not an error), and a negative one silently changes results.
    """
    shape = np.asarray(shape)
    if shape.shape != (2,) or shape.dtype.kind not in "iu" or (shape < 0).any():
        raise ModelFormatError(f"sparse shape {shape.tolist()} is not two sizes")
    n_rows, n_cols = (int(v) for v in shape)
    for name, part in (("indices", indices), ("indptr", indptr)):
        if part.ndim != 1 or part.dtype.kind not in "iu":
            raise ModelFormatError(f"sparse {name} must be 1-D integers, got {part.dtype}")
    if data.ndim != 1 or data.dtype.kind not in "biuf" or len(data) != len(indices):
        raise ModelFormatError("sparse data must be numbers, one per index")
    if data.dtype.kind == "f" and not all(np.isfinite(data[c]).all() for c in _chunks(len(data))):
        raise ModelFormatError("sparse data hold NaN or infinite values")
    if len(indptr) != n_rows + 1 or (
        len(indptr) and (indptr[0] != 0 or indptr[-1] != len(indices))
    ):
        raise ModelFormatError("sparse indptr does not match the shape and the indices")
    if (np.diff(indptr) < 0).any():
        raise ModelFormatError("sparse indptr is not non-decreasing")
    if len(indices) and (indices.min() < 0 or indices.max() >= n_cols):
        raise ModelFormatError(f"sparse indices outside 0..{n_cols - 1}")
    if not _sorted_within_rows(indices, indptr):
        raise ModelFormatError("sparse indices are not sorted and unique within each row")
    return sp.csr_array((data, indices, indptr), shape=(n_rows, n_cols))


_CHECK_CHUNK = 1 << 24  # entries checked at a time: whole-array temporaries were 14 GB at 1M


def _chunks(n: int, start: int = 0) -> Iterator[slice]:
    """Slices of ``range(start, n)`` of ``_CHECK_CHUNK`` entries."""
    for lo in range(start, n, _CHECK_CHUNK):
        yield slice(lo, min(n, lo + _CHECK_CHUNK))


def _sorted_within_rows(indices: np.ndarray, indptr: np.ndarray) -> bool:
    """Whether every entry's column is above the previous entry's, except at a row's start.

    Checked a chunk at a time: an upcast copy and a difference of the whole index array held
    14 GB while a 6.5 GB model of the full MPD was loaded.
    """
    for part in _chunks(len(indices), start=1):
        at = np.flatnonzero(indices[part] <= indices[part.start - 1 : part.stop - 1]) + part.start
        if len(at):  # allowed only where a row starts
            first = np.minimum(np.searchsorted(indptr, at), len(indptr) - 1)
            if (indptr[first] != at).any():
                return False
    return True


def _save_idmap(value: IdMap, name: str, w: _Writer) -> dict[str, Any]:
    ids = value.to_list()
    if not _is_json(ids):
        raise ModelFormatError(f"ids of {name} are not JSON strings or integers")
    entry: dict[str, Any] = {"kind": value.kind, "ids": ids}
    if value.has_kinds:
        entry["kinds_key"] = f"{name}.kinds"
        w.arrays[entry["kinds_key"]] = np.asarray(value.kinds)
    return entry


def _load_idmap(entry: dict[str, Any], r: _Reader) -> IdMap:
    kinds = r.arrays[entry["kinds_key"]] if "kinds_key" in entry else None
    ids = entry["ids"]
    if not isinstance(ids, list) or not all(
        isinstance(i, str | int) and not isinstance(i, bool) for i in ids
    ):
        raise ModelFormatError("ids must be a list of strings or integers")
    try:
        return IdMap(ids, kind=str(entry.get("kind", "item")), kinds=kinds)
    except ParameterError as exc:
        raise ModelFormatError(str(exc)) from None


def _is_tensor_dict(value: Any) -> bool:
    if not isinstance(value, dict) or not value:
        return False
    if not all(isinstance(k, str) for k in value):
        return False
    if all(isinstance(v, np.ndarray) and v.dtype != object for v in value.values()):
        return True
    return all(type(v).__module__.startswith("torch") for v in value.values())


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def saved_file(root: Path, name: str) -> dict[str, str]:
    """The manifest entry of a file a codec wrote in ``root``: its name and its checksum.

    Why a checksum: some readers (LightGBM's) abort the whole process on a damaged file, so a
    truncated or altered file must be refused before it reaches them.
    """
    return {"file": name, "sha256": _sha256(root / name)}


def checked_file(root: Path, entry: dict[str, Any]) -> Path:
    """The path of a codec's file, refused unless it lies in ``root`` and has its checksum."""
    path = _inside(root, entry.get("file"))
    if not path.is_file():
        raise ModelFormatError(f"{entry.get('file')} is missing")
    if entry.get("sha256") is not None and _sha256(path) != entry["sha256"]:
        raise ModelFormatError(f"{entry.get('file')} does not match its checksum (damaged?)")
    return path


def _inside(root: Path, name: Any) -> Path:
    """``root / name`` for a relative name that stays inside ``root`` (no ``..``, no link out)."""
    if not isinstance(name, str) or not name or name.startswith(("/", "\\")):
        raise ModelFormatError(f"{name!r} is not a file name inside the model directory")
    path = root / name
    parts = Path(name).parts
    if ".." in parts or not path.resolve().is_relative_to(root.resolve()):
        raise ModelFormatError(f"{name!r} points outside the model directory")
    return path


def _save_tensors(value: dict[str, Any], name: str, w: _Writer) -> dict[str, Any]:
    from segue._extras import require

    file = f"{name}.safetensors"
    if all(isinstance(v, np.ndarray) for v in value.values()):
        require("safetensors.numpy", "saving tensors").save_file(
            {k: np.ascontiguousarray(v) for k, v in value.items()}, str(w.root / file)
        )
        framework = "numpy"
    else:
        require("safetensors.torch", "saving torch tensors").save_file(
            {k: v.detach().contiguous().cpu() for k, v in value.items()}, str(w.root / file)
        )
        framework = "torch"
        w.libraries.add("torch")
    w.libraries.add("safetensors")
    return {**saved_file(w.root, file), "framework": framework}


def _load_tensors(entry: dict[str, Any], r: _Reader) -> dict[str, Any]:
    from segue._extras import require

    module = "safetensors.torch" if entry.get("framework") == "torch" else "safetensors.numpy"
    path = checked_file(r.root, entry)
    return dict(require(module, "loading tensors").load_file(str(path)))


def _is_model(value: Any) -> bool:
    from segue.models.base import BaseRecommender

    return isinstance(value, BaseRecommender)


def _save_nested(value: BaseRecommender, name: str, w: _Writer) -> dict[str, Any]:
    _write_model(value, w.root / name)
    return {"dir": name}


def _load_nested(entry: dict[str, Any], r: _Reader) -> BaseRecommender:
    return _read_model(_inside(r.root, entry["dir"]))


def _is_model_dict(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(_is_model(v) for v in value.values())


def _save_models(value: dict[str, Any], name: str, w: _Writer) -> dict[str, Any]:
    dirs = {}
    for key, model in value.items():
        if not key or "/" in key or key.startswith("."):
            raise ModelFormatError(f"nested model name {key!r} of {name} is not a folder name")
        dirs[key] = f"{name}/{key}"
        _write_model(model, w.root / dirs[key])
    return {"dirs": dirs}


def _load_models(entry: dict[str, Any], r: _Reader) -> dict[str, Any]:
    return {key: _read_model(_inside(r.root, d)) for key, d in entry["dirs"].items()}


for _codec in (
    Codec("json", _is_json, lambda v, n, w: {"value": v}, lambda e, r: e["value"]),
    Codec(
        "array",
        lambda v: isinstance(v, np.ndarray),
        _save_array,
        lambda e, r: r.arrays[e["key"]],
    ),
    Codec("csr", sp.issparse, _save_csr, _load_csr),
    Codec("idmap", lambda v: isinstance(v, IdMap), _save_idmap, _load_idmap),
    Codec("tensors", _is_tensor_dict, _save_tensors, _load_tensors),
    Codec("model", _is_model, _save_nested, _load_nested),
    Codec("models", _is_model_dict, _save_models, _load_models),
):
    register_codec(_codec)


def _codec_for(name: str, value: Any) -> Codec:
    for codec in _CODECS.values():
        if codec.takes(value):
            return codec
    raise ModelFormatError(
        f"learned attribute {name} of type {type(value).__name__} has no codec; register one "
        "with segue.serialization.register_codec or adapt state_to_save"
    )


# manifest ----------------------------------------------------------------------------------------
def _jsonable_params(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as JSON: a model given as a parameter is written as its name and params."""

    def convert(value: Any) -> Any:
        if _is_model(value):
            if value.registry_name is None:
                raise ModelFormatError(f"{type(value).__name__} is not a registered model")
            return {"model": value.registry_name, "params": _jsonable_params(value.get_params())}
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [convert(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        return value

    out = convert(params)
    if not _is_json(out):
        raise ModelFormatError(f"parameters are not JSON-able: {out!r}")
    return out


def _versions(libraries: set[str]) -> dict[str, str | None]:
    found: dict[str, str | None] = {
        "segue": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": metadata.version("scipy"),
    }
    for name in sorted(libraries):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


# saving ------------------------------------------------------------------------------------------
def _write_model(model: BaseRecommender, root: Path) -> None:
    from segue.models.registry import class_path

    if not model.is_fitted:
        raise NotFittedError(f"cannot save an unfitted {type(model).__name__}")
    if model.registry_name is None:
        raise ModelFormatError(
            f"{class_path(type(model))} is not registered (segue.models.registry.register); "
            "only registered models can be loaded again"
        )
    root.mkdir(parents=True, exist_ok=True)
    writer = _Writer(root, {}, set(type(model).libraries))
    state = {}
    for name, value in model.state_to_save().items():
        codec = _codec_for(name, value)
        state[name] = {"codec": codec.name, **codec.save(value, name, writer)}
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": class_path(type(model)),
        "name": model.registry_name,
        "params": _jsonable_params(model.get_params()),
        "versions": _versions(writer.libraries),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "state": state,
    }
    np.savez(root / "arrays.npz", **writer.arrays)
    with open(root / "manifest.json", "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, ensure_ascii=False)


def save(model: BaseRecommender, path: str | os.PathLike[str]) -> Path:
    """Write a fitted model to the directory ``path`` (replaced atomically if present)."""
    with atomic_dir(path) as tmp:
        _write_model(model, tmp)
    return Path(path)


# loading -----------------------------------------------------------------------------------------
def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of a saved model, checked for format and version."""
    file = Path(path) / "manifest.json"
    try:
        with open(file, encoding="utf-8") as fh:
            manifest = json.load(fh)
    except FileNotFoundError:
        raise ModelFormatError(f"{path}: not a segue model directory (no manifest.json)") from None
    except NotADirectoryError:
        raise ModelFormatError(f"{path}: not a segue model directory") from None
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{file}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    except RecursionError:
        raise ModelFormatError(f"{file}: invalid JSON (nested too deeply)") from None
    except (UnicodeDecodeError, OSError, ValueError) as exc:
        raise ModelFormatError(f"{file}: cannot read the manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFormatError(f"{file}: not a segue model manifest")
    if manifest.get("format_version") not in _READABLE:
        raise ModelFormatError(
            f"{file}: model format version {manifest.get('format_version')!r}; this segue "
            f"reads versions {', '.join(map(str, _READABLE))}"
        )
    for key, kind in (("class", str), ("params", dict), ("state", dict)):
        if not isinstance(manifest.get(key), kind):
            raise ModelFormatError(f"{file}: {key!r} is missing or not a {kind.__name__}")
    return manifest


def _read_arrays(root: Path) -> dict[str, np.ndarray]:
    import zipfile

    try:
        with np.load(root / "arrays.npz", allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise ModelFormatError(f"{root}: arrays.npz is missing") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        reason = str(exc).split(";")[0].replace("allow_pickle=False", "safe loading")
        raise ModelFormatError(
            f"{root / 'arrays.npz'}: not a readable npz file ({reason})"
        ) from None


def _read_model(root: Path) -> BaseRecommender:
    from segue.models.registry import resolve_class_path

    manifest = read_manifest(root)
    try:
        cls = resolve_class_path(manifest["class"])
    except ModelFormatError as exc:
        raise ModelFormatError(f"{root / 'manifest.json'}: {exc}") from None
    saved_with = (manifest.get("versions") or {}).get("segue", manifest.get("segue_version"))
    if saved_with != __version__:
        warnings.warn(
            f"{root}: model saved with segue {saved_with}, loading with {__version__}",
            UserWarning,
            stacklevel=3,
        )
    try:
        model = cls(**manifest["params"])
        model.set_params(**manifest["params"]).validate_params()
    except (TypeError, ParameterError) as exc:
        raise ModelFormatError(f"{root / 'manifest.json'}: bad parameters ({exc})") from None
    arrays = _read_arrays(root)
    if manifest["format_version"] == 1:
        state = _legacy_state(manifest, arrays)
    else:
        reader = _Reader(root, arrays)
        state = {}
        for name, entry in manifest["state"].items():
            codec = _CODECS.get(entry.get("codec")) if isinstance(entry, dict) else None
            if codec is None or not name.endswith("_"):
                raise ModelFormatError(f"{root / 'manifest.json'}: bad state entry {name!r}")
            try:
                state[name] = codec.load(entry, reader)
            except ModelFormatError as exc:
                if str(root) in str(exc):  # a nested model's error already names its directory
                    raise
                raise ModelFormatError(f"{root}: {name}: {exc}") from None
            except Exception as exc:  # a library's own error on a damaged file (safetensors...)
                raise ModelFormatError(
                    f"{root}: cannot read {name} ({type(exc).__name__}: {exc})"
                ) from None
    try:
        model.restore_state(state)
        model.check_state()
    except ModelFormatError as exc:
        raise ModelFormatError(f"{root}: {exc}") from None
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ModelFormatError(f"{root}: the saved state does not fit together ({exc})") from None
    return model


def _legacy_state(manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """State of a format-1 directory: scalars and id maps in the manifest, dotted npz keys."""
    from segue.data.kinds import kinds_from_prefixes

    state: dict[str, Any] = dict(manifest["state"])
    for name, ids in manifest.get("id_maps", {}).items():
        values = np.asarray(ids, dtype=object)
        kinds = kinds_from_prefixes(values) if name == "items_" else None
        state[name] = IdMap(values, kind=name.rstrip("s_"), kinds=kinds)
    stored = dict(arrays)
    for name in {k.rsplit(".", 1)[0] for k in stored if "." in k}:
        keys = {p: f"{name}.{p}" for p in _SPARSE_PARTS}
        state[name] = _load_csr({"keys": keys}, _Reader(Path(), stored))
        for key in keys.values():
            stored.pop(key)
    state.update(stored)
    return state


def load(path: str | os.PathLike[str]) -> BaseRecommender:
    """Read any model written by :func:`save`: the manifest names its (registered) class."""
    return _read_model(Path(path))


save_model = save
load_model = load
