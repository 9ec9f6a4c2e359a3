"""EASE's weights by mini-batch gradient descent instead of a matrix inverse (``solver="gd"``).

The same objective as the closed form, ``||X - X B||^2 + l2 ||B||^2`` with ``diag(B) = 0``,
minimised by Adam over mini-batches of rows, as the Kakao "jukebox" solution trained its
linear autoencoder. A batch costs two sparse-dense products (``X_b B`` and ``X_b^T R``), so an
epoch costs ``O(nnz(X) n)`` plus Adam's ``O(n^2)`` per step, never the inverse's ``O(n^3)``,
and no LAPACK call sees the ``n x n`` matrix: it runs wherever ``B`` fits in memory (on a GPU,
in its memory). The batch loss is scaled by ``rows / batch`` so that its expectation is the
full objective, whose ``l2`` then means what it means in the closed form.

With ``validation_rows``, questions carved from the training rows (:mod:`segue.nn.holdout`)
choose the number of epochs (early stopping on their NDCG@100), and the weights are then trained
again from zero on every row for that many epochs: the carved answers are a few percent of the
data, and a model fitted without them stays below the closed form. Trained on all rows it
reaches the closed form (``bench/ease_gd.py``: Last.fm's 2,000 most-listened artists, NDCG@100
0.4528 after 10 epochs and 0.4536 after 25, against 0.4538).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from segue.nn.holdout import Holdout, carve_holdout, holdout_ndcg
from segue.nn.runtime import resolve_device, seeded, torch
from segue.nn.tensors import dense_rows, sparse_rows
from segue.nn.training import Epoch, fit_epochs

__all__ = ["fit_ease_gd"]


def fit_ease_gd(
    x: sp.csr_array,
    *,
    l2: float,
    epochs: int,
    lr: float,
    batch_size: int,
    patience: int,
    validation_rows: int,
    seed: int,
    device: str,
) -> tuple[np.ndarray, list[Epoch]]:
    """``(n, n)`` float32 weights with a zero diagonal, and the epochs it took."""
    dev = resolve_device(device)
    x = sp.csr_array(x, dtype=np.float32)
    holdout = carve_holdout(x, n_rows=validation_rows, seed=seed) if validation_rows else None
    if holdout is not None:
        _, chosen = _train(holdout.train, holdout, l2, epochs, lr, batch_size, patience, seed, dev)
        best = max(range(len(chosen)), key=lambda i: chosen[i].metric or 0.0)
        epochs = best + 1
    weights, history = _train(x, None, l2, epochs, lr, batch_size, patience, seed, dev)
    return weights, history


def _train(
    train: sp.csr_array,
    holdout: Holdout | None,
    l2: float,
    epochs: int,
    lr: float,
    batch_size: int,
    patience: int,
    seed: int,
    dev: Any,
) -> tuple[np.ndarray, list[Epoch]]:
    t = torch()
    n_rows, n = train.shape
    with seeded(seed, dev) as gen:
        weights = t.zeros((n, n), device=dev)
        # the objective divided by 2 * rows/batch, whose gradient is X_b^T R + (l2 / scale) W:
        # Adam's (coupled) weight decay adds the second term inside its fused kernel, so a step
        # makes one n x n gradient and one optimizer pass, and autograd is not needed
        scale = n_rows / min(batch_size, n_rows)
        optimizer = _adam(weights, lr=lr, weight_decay=l2 / scale)

        def run_epoch(_: int) -> float:
            order = t.randperm(n_rows, generator=gen).numpy()
            total = 0.0
            for start in range(0, n_rows, batch_size):
                batch = sp.csr_array(train[order[start : start + batch_size]])
                if batch.nnz == 0:
                    continue
                residual = t.sparse.mm(sparse_rows(batch, dev), weights)
                residual -= dense_rows(batch, dev)
                total += float((residual**2).sum())
                weights.grad = t.sparse.mm(sparse_rows(sp.csr_array(batch.T), dev), residual)
                optimizer.step()
                weights.fill_diagonal_(0.0)
            # the full objective per row: squared error of the epoch's batches plus the penalty
            return (total + l2 * float((weights**2).sum())) / n_rows

        def score(_: Any, queries: sp.csr_array) -> np.ndarray:
            with t.no_grad():
                return t.sparse.mm(sparse_rows(queries, dev), weights).cpu().numpy()

        def snapshot() -> Any:
            return weights.clone()

        def restore(saved: Any) -> None:
            weights.copy_(saved)

        history = fit_epochs(
            model="ease[gd]" if holdout is None else "ease[gd] choosing epochs",
            epochs=epochs,
            run_epoch=run_epoch,
            validate=(lambda: holdout_ndcg(score, holdout)) if holdout is not None else None,
            patience=patience,
            snapshot=snapshot,
            restore=restore,
        )
    return np.ascontiguousarray(weights.cpu().numpy(), dtype=np.float32), history


def _adam(weights: Any, *, lr: float, weight_decay: float) -> Any:
    """Adam with its fused kernel where torch has one for the device, else the default."""
    t = torch()
    try:
        return t.optim.Adam([weights], lr=lr, weight_decay=weight_decay, fused=True)
    except RuntimeError:  # no fused kernel for this device or dtype
        return t.optim.Adam([weights], lr=lr, weight_decay=weight_decay)
