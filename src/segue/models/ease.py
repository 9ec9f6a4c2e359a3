"""EASE: the closed-form linear autoencoder of Steck (WWW 2019), zero diagonal.

``B = argmin ||X - X B||^2 + l2 ||B||^2  s.t. diag(B) = 0`` has the solution
``P = (X^T X + l2 I)^-1``, ``B_ij = -P_ij / P_jj``. A user (or a new playlist) is scored by
one sparse row times ``B``, so fold-in of unseen histories is free.

Cost: the dense item-item matrix takes ``n_items^2`` floats (4 bytes each in float32: 20K items
take 1.6 GB) and one inverse, ``O(n_items^3)``: one LAPACK Cholesky inverse up to 8,192 items,
and above that a blocked one whose LAPACK calls never see more than a 1,024-item block
(:func:`_blocked_spd_inverse`), because a single LAPACK call on a large matrix crashes the
process (SIGSEGV in OpenBLAS's threaded ``potrf`` from about 27K float32 items with 2 threads,
and 32-bit LAPACK indices overflow past 46,340). Two things keep the cost in reach:

- **float32 where it is safe**: with ``dtype="auto"`` the Gram matrix is built in float32 when a
  Gershgorin bound on its condition number, ``(l2 + max row sum) / l2``, is below 1e4 (always
  the case for binarised data with a usual ``l2``); otherwise float64.
- **item pruning with back-fill**: ``max_items`` keeps the most-listened items. Without it,
  EASE keeps at most ``AUTO_MAX_ITEMS`` (32,768: a 4 GiB float32 weight matrix, which every
  ``recommend`` and every ``serve`` worker holds; on the real MPD sample the whole fit,
  back-fill included, takes 11 minutes on the 2-core reference VM) and at most what fits in
  70% of the available memory, and a warning says how many it kept and why. An explicit
  ``max_items`` may go above 32,768 (it is only bounded by memory: above that it is a
  :class:`~segue.exceptions.ParameterError`). Each pruned item ``j`` is then back-filled by the
  ridge regression of its column on the kept items, ``b_j = P X_K^T x_j``, which reuses the inverse
  ``P`` already computed (``P = (I - B) D`` with ``D = diag(P)``, so no second inverse) and is
  the EASE column of ``j`` without the zero-diagonal constraint it does not need. Only the
  ``backfill_neighbors`` largest weights per pruned item are kept (a sparse
  ``kept x pruned`` matrix), so pruned items are scored on the same scale as kept ones.

  What it costs: fit time grows by ``kept x nnz(X_K^T X_p)`` multiply-adds (the co-occurrences
  of pruned with kept items: about 0.5 s for 4K kept and 12.5K pruned Last.fm artists, 22 s for
  6K kept and 186K pruned MPD tracks, on 2 cores) and memory by one ``block x kept`` dense block
  plus the sparse weights. Accuracy on pruned items is below full EASE's because they do not
  enter the regressions of other items (Last.fm, l2=500, 4K of 16.5K artists kept: NDCG@100 0.4169
  without back-fill, 0.4183 with, 0.4202 for full EASE).
  ``backfill_neighbors=0`` turns it off (pruned items are then never recommended).
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Literal

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from segue._types import IdxArray, ScoreMatrix
from segue.exceptions import ModelFitError, ParameterError
from segue.models.base import BaseRecommender, FitData
from segue.models.registry import register

__all__ = ["EASE", "available_memory"]

_SAFE_FLOAT32_COND = 1e4
_MEMORY_SHARE = 0.7
_BLOCK_FLOATS = 1 << 24  # dense Gram block of 64 MiB (float32)
_BACKFILL_BLOCK_FLOATS = 1 << 25  # kept x block dense products for the back-fill (128 MiB)
_DIRECT_MAX = 8192  # one LAPACK call up to this size (256 MiB float32), blocked beyond it
_SWEEP_BLOCK = 1024  # pivot block of the blocked inverse
AUTO_MAX_ITEMS = 32_768
"""Most items EASE keeps without ``max_items`` (a 4 GiB float32 matrix; module docstring)."""


def available_memory() -> int:
    """Bytes of memory available to this process (``MemAvailable``, else free pages)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


@register("ease")
class EASE(BaseRecommender):
    """Embarrassingly shallow autoencoder (closed form, zero diagonal).

    Parameters
    ----------
    l2
        L2 regularisation added to the Gram diagonal; larger for denser data (100 to 5000).
        The default, 250, is the pick of ``bench/choose_defaults.py`` on validation carved from
        the Last.fm and MSD training listens (bench/README.md); it was 500 before.
    binarize
        Fit and score on 0/1 membership rather than raw listen counts.
    dtype
        ``"auto"`` (float32 when safe, see the module docstring), ``"float32"`` or ``"float64"``.
    max_items
        Keep only this many most-listened items. ``None``: all of them up to
        ``AUTO_MAX_ITEMS`` (32,768) and what fits in memory; a larger catalogue is cut with a
        warning. An explicit value that does not fit in memory is an error at fit time.
    backfill_neighbors
        Weights kept per pruned item for its back-fill regression (0: pruned items are never
        recommended). Unused when nothing is pruned, and by ``solver="gd"`` (the back-fill
        reuses the inverse, which gradient descent never computes).
    solver
        ``"closed"``: the Cholesky inverse. ``"gd"``: mini-batch gradient descent on the same
        objective (:mod:`segue.models.ease_gd`), with no ``n x n`` inverse; it runs on a GPU
        with ``device="cuda"``.
    epochs, lr, batch_size, patience, validation_rows, seed, device
        ``solver="gd"`` only: most epochs, Adam's learning rate, rows per step, epochs without
        a better validation NDCG before stopping, training rows carved out as validation
        questions to choose the number of epochs (0: train ``epochs``), the seed, and the
        torch device.
    """

    required_state = ("weights_", "kept_items_")
    state_shapes = {
        "weights_": ("len:kept_items_", "len:kept_items_"),
        "kept_items_": (None,),
        "backfill_": ("len:kept_items_", "len:backfill_items_"),
        "backfill_items_": (None,),
    }
    state_indices = {"kept_items_": "items", "backfill_items_": "items"}

    def __init__(
        self,
        l2: float = 250.0,
        binarize: bool = True,
        dtype: Literal["auto", "float32", "float64"] = "auto",
        max_items: int | None = None,
        backfill_neighbors: int = 200,
        solver: Literal["closed", "gd"] = "closed",
        epochs: int = 20,
        lr: float = 1e-3,
        batch_size: int = 256,
        patience: int = 3,
        validation_rows: int = 0,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        self.l2 = l2
        self.binarize = binarize
        self.dtype = dtype
        self.max_items = max_items
        self.backfill_neighbors = backfill_neighbors
        self.solver = solver
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.patience = patience
        self.validation_rows = validation_rows
        self.seed = seed
        self.device = device

    def _validate_params(self) -> None:
        if not (isinstance(self.l2, int | float) and math.isfinite(self.l2) and self.l2 > 0):
            raise ParameterError(f"l2 must be a positive number, got {self.l2!r}")
        if self.dtype not in ("auto", "float32", "float64"):
            raise ParameterError(f"dtype must be auto, float32 or float64, got {self.dtype!r}")
        if self.max_items is not None and (
            not isinstance(self.max_items, int)
            or isinstance(self.max_items, bool)
            or self.max_items < 1
        ):
            raise ParameterError(
                f"max_items must be a positive int or None, got {self.max_items!r}"
            )
        if not isinstance(self.backfill_neighbors, int) or self.backfill_neighbors < 0:
            raise ParameterError(
                f"backfill_neighbors must be a non-negative int, got {self.backfill_neighbors!r}"
            )
        if self.solver not in ("closed", "gd"):
            raise ParameterError(f"solver must be 'closed' or 'gd', got {self.solver!r}")
        from segue.nn.params import check_params  # no torch import: plain range checks

        check_params(
            self,
            ints={"epochs": 1, "batch_size": 1, "patience": 1, "validation_rows": 0, "seed": 0},
            positive=("lr",),
        )
        if self.solver == "gd":
            from segue.nn.runtime import check_device

            check_device(self.device)

    # fitting --------------------------------------------------------------------------------
    def _prepare(self, matrix: sp.csr_array) -> sp.csr_array:
        if not self.binarize:
            return matrix
        out = matrix.copy()
        out.data = np.ones_like(out.data)
        return out

    def _item_limit(self, n_items: int, itemsize: int) -> int:
        """How many items to keep: all, ``max_items``, or what memory and the default allow.

        Without ``max_items`` a catalogue above ``AUTO_MAX_ITEMS`` or the memory bound is cut to
        it with a warning that says which bound and how many items are kept; an explicit
        ``max_items`` that does not fit in memory is a :class:`ParameterError` (a wish the fit
        cannot honour is not silently changed).
        """
        wanted = n_items if self.max_items is None else min(self.max_items, n_items)
        fits = int(math.sqrt(_MEMORY_SHARE * available_memory() / itemsize))
        if self.max_items is not None:
            if wanted > fits:
                raise ParameterError(
                    f"EASE with max_items={self.max_items} needs a {wanted}x{wanted} matrix "
                    f"({wanted * wanted * itemsize / 2**30:.1f} GiB); at most {fits} items fit "
                    "in the available memory"
                )
            return wanted
        limit = min(wanted, fits, AUTO_MAX_ITEMS)
        if limit == wanted:
            return wanted
        gib = n_items * n_items * itemsize / 2**30
        if fits < AUTO_MAX_ITEMS:
            reason = f"({gib:.1f} GiB) does not fit in memory"
        else:
            reason = (
                f"({gib:.1f} GiB) is above the default size, {AUTO_MAX_ITEMS} items "
                f"({AUTO_MAX_ITEMS**2 * itemsize / 2**30:.0f} GiB)"
            )
        warnings.warn(
            f"EASE: a {n_items}x{n_items} item matrix {reason}; keeping the {limit} "
            "most-listened items and back-filling the others (set max_items to choose)",
            RuntimeWarning,
            stacklevel=5,
        )
        return limit

    def _choose_items(self, matrix: sp.csr_array, itemsize: int) -> np.ndarray:
        n_items = matrix.shape[1]
        listeners = np.bincount(matrix.indices, minlength=n_items)
        limit = self._item_limit(n_items, itemsize)
        if limit >= n_items:
            return np.arange(n_items, dtype=np.int32)
        order = np.lexsort((np.arange(n_items), -listeners))  # most listeners, then index
        return np.sort(order[:limit]).astype(np.int32)

    def _gram_dtype(self, x: sp.csr_array) -> np.dtype:
        if self.dtype != "auto":
            return np.dtype(self.dtype)
        # Gershgorin: lambda_max(X^T X) <= max_j sum_i |G_ij| = max_j (X^T (X 1))_j
        row_sums = np.asarray(x.sum(axis=1), dtype=np.float64).ravel()
        bound = float((x.T @ row_sums).max()) if x.nnz else 0.0
        cond = (self.l2 + bound) / self.l2
        return np.dtype(np.float32 if cond < _SAFE_FLOAT32_COND else np.float64)

    def _fit(self, data: FitData) -> None:
        matrix = data.matrix
        full = self._prepare(matrix)
        if self.solver == "gd":
            self._fit_gd(full)
            return
        dtype = self._gram_dtype(full)
        keep = self._choose_items(full, dtype.itemsize)
        x = full if len(keep) == full.shape[1] else sp.csr_array(full[:, keep])
        n = x.shape[1]
        gram = np.empty((n, n), dtype=dtype)
        xt = sp.csr_array(x.T.astype(dtype))
        xd = sp.csr_array(x.astype(dtype))
        step = max(1, _BLOCK_FLOATS // max(1, n))
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            gram[lo:hi] = (xt[lo:hi] @ xd).toarray()
        gram[np.diag_indices(n)] += dtype.type(self.l2)
        weights = _spd_inverse_inplace(gram)
        diag = np.diag(weights).copy()
        weights /= -diag  # column j divided by -P_jj
        weights[np.diag_indices(n)] = 0.0
        if not np.isfinite(weights.sum(dtype=np.float64)):  # any inf/NaN, no n x n temporary
            raise ModelFitError("EASE weights are not finite; raise l2 or use dtype='float64'")
        self.weights_ = weights.astype(np.float32, copy=False)
        self.kept_items_ = keep
        self.gram_dtype_ = dtype.name
        pruned = np.setdiff1d(np.arange(full.shape[1], dtype=np.int32), keep)
        if len(pruned) and self.backfill_neighbors > 0:
            self.backfill_ = self._backfill(x, sp.csr_array(full[:, pruned]), diag)
            self.backfill_items_ = pruned

    def _fit_gd(self, full: sp.csr_array) -> None:
        from segue.models.ease_gd import fit_ease_gd

        # weights, gradient and Adam's two moments: four float32 n x n matrices
        keep = self._choose_items(full, 16)
        x = full if len(keep) == full.shape[1] else sp.csr_array(full[:, keep])
        weights, epochs = fit_ease_gd(
            x,
            l2=float(self.l2),
            epochs=self.epochs,
            lr=float(self.lr),
            batch_size=self.batch_size,
            patience=self.patience,
            validation_rows=self.validation_rows,
            seed=self.seed,
            device=self.device,
        )
        self.weights_ = weights
        self.kept_items_ = keep
        self.gram_dtype_ = "float32"
        self.epochs_trained_ = len(epochs)
        self.seconds_per_epoch_ = float(np.mean([e.seconds for e in epochs]))

    def _backfill(self, xk: sp.csr_array, xp: sp.csr_array, diag: np.ndarray) -> sp.csr_array:
        """Sparse ``kept x pruned`` ridge weights ``P X_K^T X_p``, top ``backfill_neighbors``.

        ``X_K^T x_j`` is sparse (the kept items that co-occur with ``j``), so each block costs
        ``nnz x kept`` multiply-adds through ``P = (I - B) D``, not a dense ``kept^2`` GEMM.
        """
        n_kept, n_pruned = xk.shape[1], xp.shape[1]
        w = self.weights_  # B, C-ordered: the sparse @ dense product below reads its rows
        d = diag.astype(np.float32)
        keep_k = min(self.backfill_neighbors, n_kept)
        xpt = sp.csr_array(xp.T.astype(np.float32))
        xk32 = sp.csc_array(xk.astype(np.float32))
        step = max(1, _BACKFILL_BLOCK_FLOATS // max(1, n_kept))
        rows, cols, vals = [], [], []
        for lo in range(0, n_pruned, step):
            hi = min(n_pruned, lo + step)
            co = sp.csr_array(xpt[lo:hi] @ xk32)  # (block, kept) co-occurrence x_j^T X_K
            # P is symmetric and P = (I - B) D, so (P X_K^T x_j)^T = (c - c B) D for c = x_j^T X_K
            block = co.toarray()
            block -= np.asarray(co @ w)
            block *= d[None, :]
            top = np.argpartition(-block, keep_k - 1, axis=1)[:, :keep_k]
            top_vals = np.take_along_axis(block, top, axis=1)
            nonzero = top_vals != 0
            rows.append(top[nonzero])
            cols.append(np.repeat(np.arange(lo, hi, dtype=np.int32), keep_k)[nonzero.ravel()])
            vals.append(top_vals[nonzero])
        coo = sp.coo_array(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_kept, n_pruned),
        )
        return sp.csr_array(coo, dtype=np.float32)

    # scoring --------------------------------------------------------------------------------
    def _score(self, user_idx: IdxArray, history: sp.csr_array) -> ScoreMatrix:
        x = self._prepare(history).astype(np.float32)
        n_items = x.shape[1]
        keep = self.kept_items_
        if len(keep) == n_items:
            return np.asarray(x @ self.weights_, dtype=np.float32)
        xk = sp.csr_array(x[:, keep])
        out = np.full((x.shape[0], n_items), -np.inf, dtype=np.float32)
        out[:, keep] = xk @ self.weights_
        if hasattr(self, "backfill_"):
            out[:, self.backfill_items_] = (xk @ self.backfill_).toarray()
        no_info = np.diff(xk.indptr) == 0  # only pruned items in the history
        if no_info.any():
            out[no_info] = self.fallback_scores_
            if not hasattr(self, "backfill_"):
                out[np.ix_(no_info, np.setdiff1d(np.arange(n_items), keep))] = -np.inf
        return out


def _spd_inverse_inplace(
    a: np.ndarray, *, direct_max: int | None = None, block: int | None = None
) -> np.ndarray:
    """Inverse of a symmetric positive definite C-ordered matrix, overwriting ``a``.

    Up to ``direct_max`` rows, LAPACK ``potrf`` + ``potri`` run on the Fortran view ``a.T``
    (the same memory, since ``a`` is symmetric), so no copy of the n x n matrix is made; then
    the triangle is mirrored. Larger matrices go through :func:`_blocked_spd_inverse`: one
    LAPACK call on a large matrix crashes the process in OpenBLAS's threaded ``potrf`` (SIGSEGV
    from about 27K float32 rows with 2 threads on the reference VM, 64K on others; and 32-bit
    LAPACK indices overflow past 46,340 rows), which no exception can catch.
    """
    n = a.shape[0]
    if n > (_DIRECT_MAX if direct_max is None else direct_max):
        _blocked_spd_inverse(a, _SWEEP_BLOCK if block is None else block)
        return a
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (a,))
    f = a.T  # F-contiguous view of the same memory
    c, info = potrf(f, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise ModelFitError(f"Gram matrix is not positive definite (potrf info={info})")
    inv, info = potri(c, lower=False, overwrite_c=True)
    if info != 0:
        raise ModelFitError(f"cannot invert the Gram matrix (potri info={info})")
    if not np.shares_memory(inv, a):  # LAPACK wrapper copied after all: keep its result
        a[...] = inv.T
    _mirror_lower_to_upper(a)
    return a


def _small_spd_inverse(block: np.ndarray, offset: int) -> np.ndarray:
    """The full (symmetric) inverse of a small SPD block, by LAPACK on one thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # a loaded machine slows threaded potrf 10x or more
        potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (block,))
        c, info = potrf(block, lower=True, overwrite_a=True, clean=True)
        if info != 0:
            raise ModelFitError(
                f"Gram matrix is not positive definite (potrf info={offset + info})"
            )
        d, info = potri(c, lower=True, overwrite_c=True)
        if info != 0:
            raise ModelFitError(f"cannot invert the Gram matrix (potri info={offset + info})")
    d = np.tril(d)
    d += np.tril(d, -1).T
    return d


def _blocked_spd_inverse(a: np.ndarray, block: int) -> None:
    """In-place inverse of a large SPD matrix by the block sweep operator (Gauss-Jordan).

    Sweeping pivot block ``K`` (with ``R`` the other rows) maps ``D = A_KK^-1``,
    ``A_RR -= A_RK D A_KR``, ``A_RK = A_RK D``, ``A_KR = D A_KR``, ``A_KK = -D``; after every
    block is swept, ``A = -G^-1``. Pivots are Schur complements of an SPD matrix, so they are
    SPD and need no pivoting; a pivot that is not is reported as not positive definite. Only the
    lower triangle is updated (``n^3`` multiply-adds in all, as ``potrf`` + ``potri``), in
    ``block``-row slabs with one matrix product each, and LAPACK only ever sees a
    ``block x block`` matrix. Extra memory: three ``n x block`` arrays.
    """
    n = a.shape[0]
    block = min(block, n)
    # reused buffers: fresh n x block temporaries on every pivot cost page faults
    panel_buf = np.empty((n, block), dtype=a.dtype)
    w_buf = np.empty((n, block), dtype=a.dtype)
    product = np.empty((block, n), dtype=a.dtype)
    for k0 in range(0, n, block):
        k1 = min(n, k0 + block)
        panel = panel_buf[:, : k1 - k0]  # A[:, K], read from the lower triangle
        panel[:k0] = a[k0:k1, :k0].T
        pivot = a[k0:k1, k0:k1]
        panel[k0:k1] = np.tril(pivot) + np.tril(pivot, -1).T
        panel[k1:] = a[k1:, k0:k1]
        d = _small_spd_inverse(np.asfortranarray(panel[k0:k1]), k0)
        w = w_buf[:, : k1 - k0]
        np.matmul(panel, d, out=w)  # A_RK D
        for r0 in range(0, n, block):  # slabs aligned with the pivot blocks
            r1 = min(n, r0 + block)
            if r0 != k0:  # the K columns of slabs below K are overwritten just after
                out = product[: r1 - r0, :r1]
                np.matmul(w[r0:r1], panel[:r1].T, out=out)
                a[r0:r1, :r1] -= out
        a[k1:, k0:k1] = w[k1:]
        a[k0:k1, :k0] = w[:k0].T
        a[k0:k1, k0:k1] = -d
    del panel_buf, w_buf, product
    for r0 in range(0, n, block):
        r1 = min(n, r0 + block)
        np.negative(a[r0:r1, :r1], out=a[r0:r1, :r1])
    _mirror_lower_to_upper(a)


def _mirror_lower_to_upper(a: np.ndarray, block: int = 1024) -> None:
    """Fill the strict upper triangle of C-ordered ``a`` from its lower one, block by block.

    The upper triangle of the Fortran view is the lower triangle of the C view.
    """
    n = a.shape[0]
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        diag = a[lo:hi, lo:hi]
        diag[...] = np.tril(diag) + np.tril(diag, -1).T
        if hi < n:
            a[lo:hi, hi:] = a[hi:, lo:hi].T
