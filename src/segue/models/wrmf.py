"""WRMF: weighted matrix factorisation by alternating least squares (Hu, Koren, Volinsky 2008).

Why this model: listen counts are implicit feedback. WRMF reads every (user, item) pair as a
preference ``p_ui`` (1 if listened, else 0) with a confidence ``c_ui`` that grows with the count,
and learns user vectors ``x_u`` and item vectors ``y_i`` minimising

    sum_ui c_ui (p_ui - x_u . y_i)^2 + lambda (sum_u |x_u|^2 + sum_i |y_i|^2)

Unlike EASE it needs no item-item matrix, so it scales to catalogues of millions of songs, and
its item vectors allow approximate nearest-neighbour retrieval (faiss).

Division of labour:

- **training** is the CPU solver of the ``implicit`` library
  (``implicit.cpu.als.AlternatingLeastSquares``, conjugate-gradient updates), untouched. implicit
  reads the values of its input matrix as the confidences themselves (an observed pair with
  value ``v`` gets ``c = v``, every other pair ``c = 1``) and adds ``lambda I`` unscaled, so segue
  passes ``c = 1 + alpha * count`` (or ``1 + alpha * log(1 + count / eps)``) with implicit's own
  ``alpha`` left at 1.
- **everything else** is segue's: id mapping, scoring, filtering, saving (the factors are plain
  float32 arrays) and fold-in. A user or playlist not seen in training is given the exact
  least-squares user step of ALS, ``x_u = (Y^T C_u Y + lambda I)^-1 Y^T C_u p_u``, solved for a
  whole batch at once (rows grouped by length, one batched ``numpy.linalg.solve``).
- **retrieval**: ``"dense"`` scores every item (``X Y^T``) and uses the shared top-k kernel;
  ``"faiss-exact"`` (``IndexFlatIP``) and ``"faiss-ivf"`` (``IndexIVFFlat``, inner product)
  search the item vectors for ``k`` plus the most items any row of the batch must exclude, then
  filter; a playlist model's track (or tag) columns are searched alone through a faiss ID
  selector. This is WRMF's override of the retrieval hook
  (:meth:`~segue.models.base.BaseRecommender._retrieve`), so every caller reaches it. The faiss
  index is built on first use and never saved.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from segue._extras import require
from segue._types import IdxArray, ScoreMatrix
from segue.exceptions import ModelFitError, ParameterError
from segue.models.base import BaseRecommender, FitData, QueryBatch, Target, TopK
from segue.models.registry import register
from segue.models.topk import topk

__all__ = ["WRMF"]

Confidence = Literal["linear", "log"]
Retrieval = Literal["dense", "faiss-exact", "faiss-ivf"]

_RETRIEVALS = ("dense", "faiss-exact", "faiss-ivf")
_FOLD_FLOATS = 1 << 22  # float64 working set per fold-in chunk (32 MiB)
_MAX_NLIST = 65536
_POINTS_PER_CENTROID = 39  # faiss k-means wants at least this many points per list
_EXACT_ALLOW = 4096  # allowed columns up to which exact scores beat a restricted search


_blas_controller: Any = None


def _one_blas_thread() -> Any:
    """Context that limits BLAS to one thread.

    Thousands of small f x f products and solves run faster serially (and far faster on a busy
    machine) than each one split across threads.
    """
    global _blas_controller
    if _blas_controller is None:  # scanning the loaded libraries takes milliseconds: once
        from threadpoolctl import ThreadpoolController

        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


@register("wrmf")
class WRMF(BaseRecommender):
    """Weighted regularised matrix factorisation for implicit feedback (ALS).

    The defaults (log confidence, ``factors=256``, ``alpha=8``, ``regularization=30``) are the
    pick of ``bench/choose_defaults.py --models wrmf`` on validation carved from training data
    only (Last.fm hetrec, the MSD sample and the real MPD playlists, 48 grid points; mean
    relative validation NDCG 0.9518 against 0.9010 for the earlier 64 / 2 / 10; bench/README.md).
    256 factors and ``alpha=8`` are the largest values of the grid: more was not tried, since
    training and scoring cost grow with the factor count. Linear confidence with implicit's usual
    ``alpha=1``, ``regularization=0.01`` scored about 20% lower NDCG@100 on Last.fm's raw play
    counts.
    ``regularization`` is not scaled by history length, so the best value grows with the
    confidence mass per user; too large a value for the factor count collapses towards
    popularity (Last.fm, 64 factors: 0.33 NDCG@100 at 100 against 0.43 at 10, while 128
    factors pick 30 on validation, see bench/README.md).

    Parameters
    ----------
    factors
        Length of the user and item vectors.
    alpha
        Confidence slope: an observed pair gets ``c = 1 + alpha * count`` (``"linear"``) or
        ``c = 1 + alpha * log(1 + count / eps)`` (``"log"``); unobserved pairs ``c = 1``.
    regularization
        ``lambda``, added unscaled to the diagonal of every least-squares system.
    iterations
        ALS sweeps (each solves all users, then all items).
    confidence
        ``"linear"`` or ``"log"`` (see ``alpha``). Log suits raw listen counts, whose heavy
        tail (one user playing one artist 100,000 times) would otherwise dominate.
    eps
        Count scale of the log confidence.
    seed
        Seed of the random initial factors (``None``: not reproducible).
    retrieval
        ``"dense"`` (score every item), ``"faiss-exact"`` or ``"faiss-ivf"`` (approximate).
    nprobe
        Inverted lists searched per query by ``"faiss-ivf"`` (more: slower, closer to exact).
    nlist
        Inverted lists of ``"faiss-ivf"``; ``None`` picks ``4 sqrt(n_items)``, at most one list
        per 39 items and at most 65536.
    """

    libraries = ("implicit", "faiss-cpu")

    required_state = ("user_factors_", "item_factors_")
    state_shapes = {"user_factors_": ("users", "factors"), "item_factors_": ("items", "factors")}

    def __init__(
        self,
        factors: int = 256,
        alpha: float = 8.0,
        regularization: float = 30.0,
        iterations: int = 15,
        confidence: Confidence = "log",
        eps: float = 1.0,
        seed: int | None = 0,
        retrieval: Retrieval = "dense",
        nprobe: int = 16,
        nlist: int | None = None,
    ) -> None:
        self.factors = factors
        self.alpha = alpha
        self.regularization = regularization
        self.iterations = iterations
        self.confidence = confidence
        self.eps = eps
        self.seed = seed
        self.retrieval = retrieval
        self.nprobe = nprobe
        self.nlist = nlist

    def _validate_params(self) -> None:
        if not _is_int(self.factors) or self.factors < 1:
            raise ParameterError(f"factors must be a positive int, got {self.factors!r}")
        if not _is_real(self.alpha) or self.alpha < 0:
            raise ParameterError(f"alpha must be a number >= 0, got {self.alpha!r}")
        if not _is_real(self.regularization) or self.regularization <= 0:
            raise ParameterError(
                f"regularization must be a positive number, got {self.regularization!r}"
            )
        if not _is_int(self.iterations) or self.iterations < 1:
            raise ParameterError(f"iterations must be a positive int, got {self.iterations!r}")
        if self.confidence not in ("linear", "log"):
            raise ParameterError(f"confidence must be 'linear' or 'log', got {self.confidence!r}")
        if not _is_real(self.eps) or self.eps <= 0:
            raise ParameterError(f"eps must be a positive number, got {self.eps!r}")
        if self.seed is not None and (not _is_int(self.seed) or self.seed < 0):
            raise ParameterError(f"seed must be an int >= 0 or None, got {self.seed!r}")
        self._validate_retrieval()

    def _validate_retrieval(self) -> None:
        if self.retrieval not in _RETRIEVALS:
            raise ParameterError(
                f"retrieval must be one of {', '.join(_RETRIEVALS)}, got {self.retrieval!r}"
            )
        if not _is_int(self.nprobe) or self.nprobe < 1:
            raise ParameterError(f"nprobe must be a positive int, got {self.nprobe!r}")
        if self.nlist is not None and (not _is_int(self.nlist) or self.nlist < 1):
            raise ParameterError(f"nlist must be a positive int or None, got {self.nlist!r}")

    # confidence -----------------------------------------------------------------------------
    def confidence_matrix(self, matrix: sp.csr_array | sp.csr_matrix) -> sp.csr_array:
        """Confidences ``c_ui`` of the stored pairs of a counts matrix (float32 CSR).

        Unstored pairs have confidence 1 implicitly (the convention of implicit's solver).
        """
        conf = sp.csr_array(matrix, dtype=np.float32, copy=True)
        conf.sum_duplicates()
        conf.eliminate_zeros()  # a stored zero is no listen
        counts = conf.data.astype(np.float64)
        if self.confidence == "log":
            counts = np.log1p(counts / self.eps)
        conf.data = (1.0 + self.alpha * counts).astype(np.float32)
        return conf

    # fitting --------------------------------------------------------------------------------
    def _fit(self, data: FitData) -> None:
        matrix = data.matrix
        AlternatingLeastSquares = require("implicit.cpu.als", "WRMF").AlternatingLeastSquares
        ImplicitFitError = require("implicit.recommender_base", "WRMF").ModelFitError
        from threadpoolctl import threadpool_limits

        conf = self.confidence_matrix(matrix)
        # implicit insists on the legacy csr_matrix class (anything else is converted, warning)
        cui = sp.csr_matrix((conf.data, conf.indices, conf.indptr), shape=conf.shape)
        self._caches: dict[str, Any] = {}
        with threadpool_limits(1, "blas"):
            als = AlternatingLeastSquares(
                factors=int(self.factors),
                regularization=float(self.regularization),
                alpha=1.0,  # confidences are already in the matrix
                dtype=np.float32,
                iterations=int(self.iterations),
                random_state=None if self.seed is None else int(self.seed),
            )
            try:
                als.fit(cui, show_progress=False)
            except ImplicitFitError as exc:
                raise ModelFitError(
                    f"ALS diverged ({exc}); raise regularization or lower alpha"
                ) from None
        self.user_factors_ = np.ascontiguousarray(als.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(als.item_factors, dtype=np.float32)

    # user vectors ---------------------------------------------------------------------------
    def _cached(self, name: str, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """A value derived from the item factors, rebuilt when they or ``key`` change."""
        caches = self.__dict__.setdefault("_caches", {})
        hit = caches.get(name)
        if hit is not None and hit[0] is self.item_factors_ and hit[1] == key:
            return hit[2]
        value = build()
        caches[name] = (self.item_factors_, key, value)
        return value

    def _regularized_gram(self) -> np.ndarray:
        """``Y^T Y + lambda I`` in float64, cached."""

        def build() -> np.ndarray:
            y = self.item_factors_
            gram = (y.T @ y).astype(np.float64)
            gram[np.diag_indices_from(gram)] += float(self.regularization)
            return gram

        return self._cached("gram", (float(self.regularization),), build)

    def fold_in(self, history: sp.csr_array | sp.csr_matrix) -> np.ndarray:
        """User vectors solved from history rows (counts aligned to the model's items).

        Each row gets the exact ALS user step against the learned item factors,
        ``x_u = (Y^T Y + Y^T (C_u - I) Y + lambda I)^-1 Y^T C_u p_u``; an empty row gets zeros.

        Returns
        -------
        numpy.ndarray
            ``(n_rows, factors)`` float32.
        """
        self.check_fitted()
        history = sp.csr_array(history)
        if history.shape[1] != len(self.items_):
            raise ParameterError(
                f"history has {history.shape[1]} columns, model {len(self.items_)}"
            )
        conf = self.confidence_matrix(history)
        y = self.item_factors_
        f = y.shape[1]
        out = np.zeros((history.shape[0], f), dtype=np.float32)
        lengths = np.diff(conf.indptr)
        order = np.argsort(lengths, kind="stable")
        order = order[lengths[order] > 0]  # empty rows keep x = 0
        if not len(order):
            return out
        gram = self._regularized_gram()
        sorted_len = lengths[order]
        start = 0
        with _one_blas_thread():
            while start < len(order):
                # rows sorted by length: r rows padded to the longest (m) take r * max(m, f) * f
                span = np.arange(1, len(order) - start + 1)
                cost = span * np.maximum(sorted_len[start:], f) * f
                stop = start + max(1, int(np.searchsorted(cost, _FOLD_FLOATS, side="right")))
                rows = order[start:stop]
                out[rows] = _solve_rows(conf, rows, y, gram)
                start = stop
        return out

    def user_vectors(self, user_idx: IdxArray, history: sp.csr_array) -> np.ndarray:
        """Learned vectors for ``user_idx >= 0``, folded-in ones for ``-1`` (see ``score``)."""
        self.check_fitted()
        user_idx = np.asarray(user_idx, dtype=np.int64)
        out = np.empty((len(user_idx), self.item_factors_.shape[1]), dtype=np.float32)
        known = user_idx >= 0
        out[known] = self.user_factors_[user_idx[known]]
        new = np.flatnonzero(~known)
        if len(new):
            out[new] = self.fold_in(sp.csr_array(history)[new])
        return out

    def _score(self, user_idx: IdxArray, history: sp.csr_array) -> ScoreMatrix:
        vectors = self.user_vectors(user_idx, history)
        return vectors @ self.item_factors_.T

    # faiss retrieval ------------------------------------------------------------------------
    def _auto_nlist(self) -> int:
        n_items = self.item_factors_.shape[0]
        if self.nlist is not None:
            return int(min(self.nlist, n_items))
        wanted = int(round(4 * math.sqrt(n_items)))
        return max(1, min(wanted, n_items // _POINTS_PER_CENTROID, _MAX_NLIST))

    def faiss_index(self) -> Any:
        """The faiss index over the item factors for the current ``retrieval`` (built once)."""
        self.check_fitted()
        self._validate_retrieval()
        if self.retrieval == "dense":
            raise ParameterError("retrieval='dense' uses no faiss index")
        nlist = self._auto_nlist() if self.retrieval == "faiss-ivf" else 0
        index = self._cached("index", (self.retrieval, nlist), lambda: self._build_index(nlist))
        if self.retrieval == "faiss-ivf":
            index.nprobe = int(min(self.nprobe, index.nlist))  # a search-time setting
        return index

    def _search_params(self, index: Any, allow: IdxArray | None) -> tuple[Any, int] | None:
        """Search parameters restricted to ``allow`` (None: search everything).

        Built once per allowed-column array and index: building an ID selector over a whole
        catalogue's track columns (a hash set of every id) costs more than the search of one
        served query.
        """
        if allow is None or len(allow) >= len(self.items_):
            return None

        def build() -> tuple[Any, Any, int, Any]:
            faiss = require("faiss", "WRMF's faiss retrieval")
            selector = faiss.IDSelectorBatch(np.asarray(allow, dtype=np.int64))
            if hasattr(index, "nprobe"):
                params = faiss.SearchParametersIVF(sel=selector, nprobe=int(index.nprobe))
            else:
                params = faiss.SearchParameters(sel=selector)
            return allow, params, len(allow), selector  # the selector must outlive params

        # one entry per allowed-column array, which the entry holds (so its id stays unique)
        key = (id(index), int(getattr(index, "nprobe", 0)))
        _, params, n_allowed, _ = self._cached(f"search_params:{id(allow)}", key, build)
        return params, n_allowed

    def _build_index(self, nlist: int) -> Any:
        faiss = require("faiss", "WRMF's faiss retrieval")
        y = np.ascontiguousarray(self.item_factors_, dtype=np.float32)
        d = y.shape[1]
        if self.retrieval == "faiss-exact":
            index = faiss.IndexFlatIP(d)
        else:
            quantizer = faiss.IndexFlatIP(d)
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(y)  # faiss's wrapper keeps the quantizer alive with the index
        index.add(y)
        return index

    def _retrieve(self, batch: QueryBatch, targets: Mapping[str, Target]) -> dict[str, TopK]:
        """Top-k per target (see :meth:`BaseRecommender._retrieve`), by faiss when asked.

        With ``retrieval="dense"`` this is the base hook. With faiss, the rows' user vectors
        are searched for ``k`` plus the largest number of items any row excludes, restricted
        to the target's ``allow`` items (a faiss ID selector), excluded items are dropped and
        the best ``k`` kept. Rows with an empty history get the cold-start list, as in
        ``score``.
        """
        self._validate_retrieval()
        if self.retrieval == "dense":
            return super()._retrieve(batch, targets)
        user_idx, rows, mask = batch.user_idx, batch.rows, batch.mask
        n, n_items = len(user_idx), len(self.items_)
        if mask is None:
            mask = sp.csr_array((n, n_items), dtype=np.float32)
        empty = np.diff(rows.indptr) == 0
        full, cold = np.flatnonzero(~empty), np.flatnonzero(empty)
        index = self.faiss_index()
        vectors = self.user_vectors(user_idx[full], rows[full]) if len(full) else None
        out: dict[str, TopK] = {}
        for name, target in targets.items():
            items = np.full((n, target.k), -1, dtype=np.int32)
            scores = np.full((n, target.k), -np.inf, dtype=np.float32)
            if vectors is not None:
                full_mask = sp.csr_array(mask[full])
                if target.allow is not None and len(target.allow) <= _EXACT_ALLOW:
                    # a few columns (Melon's tags): exact scores cost less than a search that
                    # an inverted-file index would answer from a handful of them
                    found = _exact(vectors, self.item_factors_, full_mask, target)
                else:
                    params = self._search_params(index, target.allow)
                    found = _search(index, vectors, full_mask, target.k, n_items, params)
                    if target.allow is not None:
                        found = _fill_short(found, vectors, self.item_factors_, full_mask, target)
                items[full], scores[full] = found
            if len(cold):
                fallback = np.tile(self.fallback_scores_, (len(cold), 1))
                found = topk(
                    fallback, target.k, exclude=sp.csr_array(mask[cold]), allow=target.allow
                )
                items[cold], scores[cold] = found
            out[name] = (items, scores)
        return out


def _exact(
    vectors: np.ndarray, item_factors: np.ndarray, mask: sp.csr_array, target: Target
) -> TopK:
    """Top-k by exact inner products over the target's allowed columns only."""
    allow = np.asarray(target.allow)
    sub = np.ascontiguousarray(vectors, dtype=np.float32) @ item_factors[allow].T
    scores = np.full((len(vectors), item_factors.shape[0]), -np.inf, dtype=np.float32)
    scores[:, allow] = sub
    return topk(scores, target.k, exclude=mask, allow=allow)


def _fill_short(
    found: TopK,
    vectors: np.ndarray,
    item_factors: np.ndarray,
    mask: sp.csr_array,
    target: Target,
) -> TopK:
    """Rows that an approximate search restricted to ``allow`` left short, scored exactly.

    Why: an inverted-file index probes ``nprobe`` lists, and those may hold fewer than ``k`` of
    the allowed columns; a list must not come back shorter than the allowed columns permit.
    """
    items, scores = found
    in_allow = np.isin(mask.indices, target.allow)
    rows_of = np.repeat(np.arange(mask.shape[0]), np.diff(mask.indptr))
    available = len(target.allow) - np.bincount(rows_of[in_allow], minlength=mask.shape[0])
    short = np.flatnonzero((items >= 0).sum(axis=1) < np.minimum(target.k, available))
    if len(short):
        exact = _exact(vectors[short], item_factors, sp.csr_array(mask[short]), target)
        items[short], scores[short] = exact
    return items, scores


def _solve_rows(conf: sp.csr_array, rows: np.ndarray, y: np.ndarray, gram: np.ndarray) -> Any:
    """Exact ALS user step for ``rows`` of the confidence matrix, padded to the longest row."""
    lengths = np.diff(conf.indptr)[rows]
    m = int(lengths.max())
    slot = np.arange(m)
    valid = slot < lengths[:, None]
    pos = np.where(valid, conf.indptr[rows][:, None] + slot, 0)
    c = np.where(valid, conf.data[pos], 0.0).astype(np.float64)  # padding: c = 0
    factors = y[conf.indices[pos]].astype(np.float64)  # (r, m, f)
    weighted = factors * np.where(valid, c - 1.0, 0.0)[:, :, None]
    a = gram + np.matmul(weighted.transpose(0, 2, 1), factors)  # Y^T C_u Y + lambda I
    b = np.matmul(c[:, None, :], factors)[:, 0, :]  # Y^T C_u p_u, p_u = 1 where observed
    try:
        return np.linalg.solve(a, b[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        raise ModelFitError("a fold-in system is singular; raise regularization") from None


def _search(
    index: Any,
    vectors: np.ndarray,
    mask: sp.csr_array,
    k: int,
    n_items: int,
    params: tuple[Any, int] | None = None,
) -> TopK:
    """Top-k by faiss inner-product search, ``mask``'s items removed.

    ``params`` restricts the search: ``(faiss search parameters, number of allowed items)``.
    """
    if not np.isfinite(vectors).all():
        raise ModelFitError("the model produced non-finite user vectors")
    r = vectors.shape[0]
    excluded = np.diff(mask.indptr)
    searchable = n_items if params is None else params[1]
    wanted = int(min(searchable, k + int(excluded.max(initial=0))))
    query = np.ascontiguousarray(vectors, dtype=np.float32)
    if wanted < 1:
        return np.full((r, k), -1, dtype=np.int32), np.full((r, k), -np.inf, dtype=np.float32)
    dist, labels = index.search(query, wanted, params=None if params is None else params[0])
    dist = np.asarray(dist, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    bad = labels < 0
    if mask.nnz:
        mask_rows = np.repeat(np.arange(r, dtype=np.int64), excluded)
        banned = mask_rows * n_items + mask.indices
        bad |= np.isin(np.arange(r, dtype=np.int64)[:, None] * n_items + labels, banned)
    dist[bad] = -np.inf
    labels[bad] = n_items  # sorts after every real item among the -inf
    order = np.lexsort((labels, -dist), axis=1)  # score descending, then index ascending
    labels = np.take_along_axis(labels, order, axis=1)[:, :k]
    dist = np.take_along_axis(dist, order, axis=1)[:, :k]
    labels[np.isneginf(dist)] = -1
    if labels.shape[1] < k:
        pad = k - labels.shape[1]
        labels = np.pad(labels, ((0, 0), (0, pad)), constant_values=-1)
        dist = np.pad(dist, ((0, 0), (0, pad)), constant_values=-np.inf)
    return labels.astype(np.int32), dist
