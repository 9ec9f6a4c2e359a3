"""Optional dependencies: imported on first use, with the extra to install when missing.

``import segue`` imports none of torch, lightgbm, faiss, implicit, fastapi, uvicorn, typer or
pyspark. A model or command that needs one calls :func:`require`, which either returns the
module or raises :class:`~segue.exceptions.MissingExtraError` naming the ``pip install``
line (as httpx's CLI does).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from segue.exceptions import MissingExtraError

__all__ = ["EXTRAS", "require"]

EXTRAS: dict[str, tuple[str, str]] = {
    # module: (distribution on PyPI, segue extra that installs it)
    "implicit": ("implicit", "als"),
    "faiss": ("faiss-cpu", "faiss"),
    "lightgbm": ("lightgbm", "ranking"),
    "fastapi": ("fastapi", "serve"),
    "uvicorn": ("uvicorn", "serve"),
    "typer": ("typer", "cli"),
    "rich": ("rich", "cli"),
    "matplotlib": ("matplotlib", "plots"),
    "torch": ("torch==2.13.0", "neural"),
    "pyspark": ("pyspark", "spark"),
    "jinja2": ("jinja2", "report"),
    "prometheus_client": ("prometheus-client", "serve"),
}
"""Top-level module -> (PyPI distribution, segue extra)."""


def require(module: str, what: str = "this") -> ModuleType:
    """Import ``module`` (e.g. ``"lightgbm"`` or ``"faiss"``), or say which extra installs it.

    Parameters
    ----------
    module
        Dotted module name; its top-level package must be in :data:`EXTRAS`.
    what
        What needs it, for the message ("the two-stage ranker").
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.partition(".")[0]
        dist, extra = EXTRAS.get(top, (top, "all"))
        raise MissingExtraError(
            f"{what} needs the package {dist} ({exc}); install it with pip install 'segue[{extra}]'"
        ) from None
