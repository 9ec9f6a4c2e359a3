"""The epoch loop of every neural model: early stopping on validation NDCG, and progress.

A model hands :func:`fit_epochs` one function that trains an epoch and returns its mean loss,
and one that returns the validation NDCG (see :mod:`segue.nn.holdout`). The loop keeps the
weights of the best epoch and stops after ``patience`` epochs without improvement. Each epoch is
logged to the ``segue.nn`` logger and given to the reporter a caller installed with
:func:`report_epochs` (the CLI draws a progress bar with the loss and the metric).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from segue.exceptions import ModelFitError

__all__ = ["Epoch", "fit_epochs", "report_epochs"]

log = logging.getLogger("segue.nn")


@dataclass(frozen=True)
class Epoch:
    """One finished epoch: its number (1-based), mean loss, validation metric, seconds."""

    model: str
    epoch: int
    epochs: int
    loss: float
    metric: float | None
    seconds: float

    def __str__(self) -> str:
        metric = "" if self.metric is None else f", valid ndcg@100 {self.metric:.4f}"
        return (
            f"{self.model} epoch {self.epoch}/{self.epochs}: loss {self.loss:.5f}{metric} "
            f"({self.seconds:.1f} s)"
        )


_reporter: ContextVar[Callable[[Epoch], None] | None] = ContextVar(
    "segue_nn_reporter", default=None
)


@contextlib.contextmanager
def report_epochs(callback: Callable[[Epoch], None]) -> Iterator[None]:
    """Call ``callback(epoch)`` after every epoch of every neural fit inside the block."""
    token = _reporter.set(callback)
    try:
        yield
    finally:
        _reporter.reset(token)


def fit_epochs(
    *,
    model: str,
    epochs: int,
    run_epoch: Callable[[int], float],
    validate: Callable[[], float] | None = None,
    patience: int = 3,
    snapshot: Callable[[], Any] | None = None,
    restore: Callable[[Any], None] | None = None,
) -> list[Epoch]:
    """Train up to ``epochs`` epochs; with ``validate``, keep the best epoch's weights.

    ``snapshot()`` returns a copy of the weights and ``restore(copy)`` puts it back; without a
    ``validate`` the last epoch's weights are kept. A non-finite loss stops the fit with
    :class:`ModelFitError` (lower the learning rate), never a model full of NaN.
    """
    history: list[Epoch] = []
    best, best_state, stale = -math.inf, None, 0
    for number in range(1, epochs + 1):
        start = time.perf_counter()
        loss = float(run_epoch(number))
        if not math.isfinite(loss):
            raise ModelFitError(
                f"{model}: the training loss became {loss} in epoch {number}; "
                "lower the learning rate (lr) or the loss weights"
            )
        metric = float(validate()) if validate is not None else None
        epoch = Epoch(model, number, epochs, loss, metric, time.perf_counter() - start)
        history.append(epoch)
        log.info("%s", epoch)
        reporter = _reporter.get()
        if reporter is not None:
            reporter(epoch)
        if metric is None:
            continue
        if metric > best:
            best, stale = metric, 0
            best_state = snapshot() if snapshot is not None else None
        else:
            stale += 1
            if stale >= patience:
                break
    if best_state is not None and restore is not None and history[-1].metric != best:
        restore(best_state)
    return history
