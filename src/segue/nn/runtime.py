"""Device choice and repeatable randomness for the neural models."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from segue._extras import require
from segue.exceptions import ParameterError

__all__ = ["DEVICES", "check_device", "resolve_device", "seeded", "torch"]

DEVICES = ("auto", "cpu", "cuda")
"""Values of a neural model's ``device`` parameter (``cuda:N`` is accepted too)."""


def torch() -> Any:
    """The torch module, or :class:`MissingExtraError` naming ``pip install 'segue[neural]'``."""
    return require("torch", "the neural models")


def check_device(device: str) -> None:
    """Raise :class:`ParameterError` for a ``device`` that is not auto, cpu, cuda or cuda:N."""
    if not isinstance(device, str) or not (
        device in DEVICES or (device.startswith("cuda:") and device[5:].isdigit())
    ):
        raise ParameterError(
            f"device must be one of {', '.join(DEVICES)} or cuda:N, got {device!r}"
        )


def resolve_device(device: str) -> Any:
    """``auto`` is the first GPU when torch sees one, else the CPU; ``cuda`` without one fails."""
    check_device(device)
    t = torch()
    if device == "auto":
        return t.device("cuda" if t.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not t.cuda.is_available():
        raise ParameterError(f"device={device!r} but torch sees no GPU on this machine")
    return t.device(device)


@contextlib.contextmanager
def seeded(seed: int, device: Any) -> Iterator[Any]:
    """Run a block with torch's random state seeded, restoring the caller's state after.

    Yields a :class:`torch.Generator` on the CPU for shuffling and sampling. Weight
    initialisation and dropout draw from the global generators, which are forked (saved and
    restored), so fitting a model never changes a user's own random stream. On the CPU, the
    same seed and thread count give the same model.
    """
    t = torch()
    devices = [device] if getattr(device, "type", "cpu") == "cuda" else []
    with t.random.fork_rng(devices=devices):
        t.manual_seed(seed)
        yield t.Generator().manual_seed(seed)
