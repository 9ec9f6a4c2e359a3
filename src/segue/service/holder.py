"""The model being served, and how it is replaced without a failed request.

Why it looks like this:

- **Load beside, then swap one reference.** A reload (``SIGHUP``, ``POST /admin/reload``)
  reads the new directory, builds and warms its :class:`~segue.inference.Continuer` and
  checks that it answers, all while the old model keeps serving; only then does
  :attr:`ModelHolder.current` point at the new state, in one assignment. A request takes the
  state once, at its start, and finishes on it, so no request ever mixes two models and none
  waits for a reload. For the time of a reload the process holds both models in memory.
- **A bad model is never served.** Any error while loading or checking the new directory
  (missing file, tampered arrays, a model that returns no list) leaves the old model in
  place; the error is logged, counted in ``/metrics`` and returned to the admin request.
- **Reloads are serialised** by a lock: two triggers at once load one after the other.
- **The first load may run in the background** (``segue serve``): ``/health`` answers at
  once, ``/ready`` says 503 until the model is usable, and model requests wait for it.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segue._version import __version__
from segue.exceptions import SegueError

if TYPE_CHECKING:
    from segue.inference.continuer import Continuer
    from segue.service.metrics import ServiceMetrics

__all__ = ["ModelHolder", "ModelNotReadyError", "ReloadError", "ServiceState", "load_state"]

log = logging.getLogger("segue.service")


class ReloadError(SegueError):
    """A new model could not be loaded; the previous one is still served."""


class ModelNotReadyError(SegueError):
    """No model is loaded yet (or the first load failed)."""


@dataclass(frozen=True)
class ServiceState:
    """One loaded model: the continuer, the model's name and description, where it came from."""

    continuer: Continuer
    name: str
    info: dict[str, Any]
    model_dir: Path = Path()
    loaded_at: float = 0.0
    load_seconds: float = 0.0


def load_state(model_dir: str | os.PathLike[str]) -> ServiceState:
    """Load the model of ``model_dir``, build its :class:`~segue.inference.Continuer`, warm it."""
    from segue.inference.continuer import Continuer
    from segue.serialization import load, read_manifest

    start = time.perf_counter()
    manifest = read_manifest(model_dir)
    model = load(model_dir)
    continuer = Continuer(model)
    continuer.warm_up()
    name = type(model).__name__
    versions = manifest.get("versions", {})
    fit_seconds = manifest["state"].get("fit_seconds_", {}).get("value")
    info = {
        "model": name,
        "class_path": manifest["class"],
        "params": manifest.get("params", {}),
        "training": {
            "rows": len(model.users_),
            "items": len(model.items_),
            "tracks": int(continuer.n_tracks),
            "tags": int(len(continuer.tag_idx)),
            "interactions": int(model.history_.nnz),
            "fit_seconds": fit_seconds,
            **_nested_models(manifest),
        },
        "version": {
            "segue": __version__,
            "saved_with_segue": versions.get("segue"),
            "saved_with_numpy": versions.get("numpy"),
            "saved_with_python": versions.get("python"),
            "saved_with": versions,
            "format_version": manifest.get("format_version"),
            "created": manifest.get("created"),
        },
        "uses_title": continuer.uses_title,
        "has_tags": bool(continuer.has_tags),
    }
    seconds = time.perf_counter() - start
    log.info(
        "loaded %s from %s in %.2f s (%d rows, %d items)",
        name,
        model_dir,
        seconds,
        len(model.users_),
        len(model.items_),
    )
    return ServiceState(
        continuer=continuer,
        name=name,
        info=info,
        model_dir=Path(model_dir),
        loaded_at=time.time(),
        load_seconds=seconds,
    )


def _nested_models(manifest: dict[str, Any]) -> dict[str, list[str]]:
    """``{"sources": [...]}``: the names of the nested models (a two-stage model's first stage)."""
    names = [
        key
        for entry in manifest["state"].values()
        if isinstance(entry, dict) and entry.get("codec") == "models"
        for key in entry.get("dirs", {})
    ]
    return {"sources": names} if names else {}


def check_state(state: ServiceState) -> None:
    """Raise unless the loaded model answers a cold-start query with a list of finite scores."""
    answer = state.continuer.continue_playlist((), n=1)
    if len(answer.tracks) != 1 or not all(math.isfinite(s) for s in answer.scores):
        raise ReloadError(
            f"{state.model_dir}: the model answered a cold-start query with "
            f"{len(answer.tracks)} tracks and scores {answer.scores[:3]}"
        )


class ModelHolder:
    """The served :class:`ServiceState`, replaced whole by :meth:`load` (module docstring).

    Parameters
    ----------
    model_dir
        The directory loaded first, and re-read by a reload that names no directory.
    metrics
        Where loads and reload outcomes are counted.
    loader
        Reads a directory into a :class:`ServiceState` (:func:`load_state`; tests slow it).
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        metrics: ServiceMetrics,
        loader: Callable[[Path], ServiceState] = load_state,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.metrics = metrics
        self._loader = loader
        self._state: ServiceState | None = None
        self._loaded = threading.Event()
        self._lock = threading.Lock()
        self.error: str | None = None

    def current(self) -> ServiceState | None:
        """The state serving now (None before the first successful load)."""
        return self._state

    def wait(self, timeout: float) -> ServiceState:
        """The state serving now, waiting up to ``timeout`` seconds for the first load."""
        state = self._state
        if state is not None:
            return state
        if self.error is None:
            self._loaded.wait(timeout)
        state = self._state
        if state is None:
            raise ModelNotReadyError(self.not_ready_reason())
        return state

    def not_ready_reason(self) -> str:
        """Why no model answers yet: still loading, or the first load's error."""
        if self.error is not None:
            return f"no model is loaded: {self.error}"
        return f"the model in {self.model_dir} is still loading"

    def load(
        self, model_dir: str | os.PathLike[str] | None = None, *, trigger: str
    ) -> ServiceState:
        """Load ``model_dir`` (default: the current directory again) and serve it if it works.

        Parameters
        ----------
        model_dir
            The directory to serve from now on; None re-reads the current one.
        trigger
            ``"start"``, ``"sighup"`` or ``"admin"`` (a label of the reload counter).

        Raises
        ------
        ReloadError
            The new model could not be loaded or failed its check; the old one still serves.
        """
        with self._lock:
            target = Path(model_dir) if model_dir is not None else self.model_dir
            try:
                state = self._loader(target)
                check_state(state)
            except Exception as exc:  # whatever went wrong, the old model keeps serving
                old = self._state
                keeps = f"still serving {old.name} from {old.model_dir}" if old else "no model"
                message = f"could not load {target} ({type(exc).__name__}: {exc}); {keeps}"
                log.error("%s reload failed: %s", trigger, message, exc_info=_unexpected(exc))
                if trigger == "start":
                    self.error = message
                else:
                    self.metrics.reloads.labels(trigger=trigger, result="failure").inc()
                raise ReloadError(message) from exc
            self._state = state  # the swap: requests that start from now on use the new model
            self.model_dir = target
            self.error = None
            self._loaded.set()
            self.metrics.model_loaded(state)
            if trigger != "start":
                self.metrics.reloads.labels(trigger=trigger, result="success").inc()
                log.info("%s reload: now serving %s from %s", trigger, state.name, target)
            return state

    def load_logged(self, trigger: str) -> None:
        """:meth:`load` for a trigger that cannot answer (a signal): errors are only logged."""
        try:
            self.load(trigger=trigger)
        except ReloadError:
            pass  # logged and counted by load()


def _unexpected(exc: Exception) -> bool:
    """Log a traceback only for errors that are not segue's own one-line messages."""
    return not isinstance(exc, SegueError | OSError)
