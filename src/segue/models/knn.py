"""Neighbourhood models: item-based and user-based k-nearest-neighbour collaborative filtering.

Why they are here: kNN models are the cheap, strong and explainable baseline of music
recommendation (memory-based neighbourhood methods won the Million Song Dataset challenge), they
need no training loop, and they score listeners or playlists unseen in training (fold-in) as
easily as known ones. Both models are sparse and vectorised end to end: no Python loop runs over
users or items, only over blocks of rows sized to bound memory.

**Weighting** is the one of ``implicit.nearest_neighbours``, so results compare one to one. The
rows of a matrix ``M`` are the entities being compared (items for :class:`ItemKNN`, users for
:class:`UserKNN`), its columns the features describing them (users, resp. items); ``x`` is a
stored entry (the listen count, or 1 with ``binarize=True``):

- ``idf[col] = log(n_rows) - log1p(rows holding col)``;
- ``"cosine"``: ``w = x``;
- ``"tfidf"``: ``w = sqrt(x) * idf[col]``;
- ``"bm25"``: ``w = x (k1 + 1) / (k1 L[row] + x) * idf[col]`` with the length norm
  ``L = (1 - b) + b * rowsum(M) / mean(rowsum(M))``.

**Similarity** of rows ``a`` and ``b``: ``w_a . w_b / (|w_a| |w_b| + shrinkage)`` for
``"cosine"`` and ``"tfidf"`` (with ``shrinkage=0`` the cosine, which implicit computes by
normalising the rows first) and ``w_a . w_b`` for ``"bm25"``. ``shrinkage`` is segue's
extension: it multiplies every similarity by ``|w_a| |w_b| / (|w_a| |w_b| + shrinkage)``, which
damps pairs supported by few listeners (for ``"bm25"`` too, where the norms are larger, so the
same value damps less).

**Top-k**: every row of the similarity keeps its ``neighbors`` largest entries among the pairs
that share a feature. As in implicit, an item is a candidate neighbour of itself; :class:`ItemKNN`
then drops that self entry, so ``ItemKNN(neighbors=K)`` keeps implicit's neighbours for ``K``
(``K - 1`` other items when the item is its own nearest: always for cosine and tfidf without
shrinkage). Dropping it changes nothing when seen items are excluded; with
``exclude_seen=False`` a seen item is scored by the *other* items of the history only, where
implicit adds its similarity to itself. Ties at the k-th value are broken the same way for any
blocking (see :func:`_top_per_row`), so results never depend on the block size.

**Memory**: the item-item similarity is computed a block of rows at a time (``sparse block @
sparse``), each block holding about ``_BLOCK_PAIRS`` multiply-adds of that product (4M: an
upper bound on its candidate pairs, so about 128 MiB of working memory for the sparse products,
sort keys and indices of a block; see :func:`_row_blocks`). Blocks are sized by the work of
their rows, not by the catalogue's width: rows of rare items are cheap, and a width-based block
of ``4M / n_items`` rows shrank to one row at 2.26M items, where each of millions of products
paid SciPy's ``O(n_items)`` set-up. Rows more than half full are made dense for
``np.argpartition`` (at most ``2 * _BLOCK_PAIRS / n_items + 1`` of them in a block); sparser
rows are ranked by a sort of their stored entries, since argpartition is slow on rows that are
mostly padding (sorting turned a 10 s Last.fm fit into 0.2 s). :class:`UserKNN` scores blocks of
query rows sized the same way against all training users. The learned item-item matrix takes
at most ``8 * neighbors`` bytes per item.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal

import numpy as np
import scipy.sparse as sp

from segue._types import IdxArray, ScoreMatrix
from segue.exceptions import ParameterError
from segue.models.base import BaseRecommender, FitData
from segue.models.registry import register

__all__ = ["ItemKNN", "Similarity", "UserKNN"]

Similarity = Literal["cosine", "bm25", "tfidf"]
"""How rows are weighted and compared (see the module docstring)."""

_SIMILARITIES = ("cosine", "bm25", "tfidf")
# multiply-adds (an upper bound on candidate pairs) per block of rows: about 128 MiB of working
# memory (sparse products, sort keys and argpartition indices take 20 to 40 bytes per pair)
_BLOCK_PAIRS = 1 << 22


class _KNNBase(BaseRecommender):
    """Validation, weighting and similarity shared by :class:`ItemKNN` and :class:`UserKNN`.

    Subclasses define ``__init__`` (their own defaults) storing the six hyper-parameters.
    """

    similarity: Similarity
    neighbors: int
    shrinkage: float
    bm25_k1: float
    bm25_b: float
    binarize: bool

    def _validate_params(self) -> None:
        if self.similarity not in _SIMILARITIES:
            raise ParameterError(
                f"similarity must be one of {', '.join(_SIMILARITIES)}, got {self.similarity!r}"
            )
        if not _is_int(self.neighbors) or self.neighbors < 1:
            raise ParameterError(f"neighbors must be a positive int, got {self.neighbors!r}")
        if not _is_real(self.shrinkage) or self.shrinkage < 0:
            raise ParameterError(f"shrinkage must be a non-negative number, got {self.shrinkage!r}")
        if not _is_real(self.bm25_k1) or self.bm25_k1 < 0:
            raise ParameterError(f"bm25_k1 must be a non-negative number, got {self.bm25_k1!r}")
        if not _is_real(self.bm25_b) or not 0 <= self.bm25_b <= 1:
            raise ParameterError(f"bm25_b must be a number in [0, 1], got {self.bm25_b!r}")
        if not isinstance(self.binarize, bool | np.bool_):
            raise ParameterError(f"binarize must be True or False, got {self.binarize!r}")

    def _input(self, matrix: sp.csr_array) -> sp.csr_array:
        """The interaction weights ``x`` as a float32 copy: counts, or 1s with ``binarize``."""
        out = sp.csr_array(matrix, dtype=np.float32, copy=True)
        if self.binarize:
            out.data[:] = 1.0
        return out

    def _weigh(
        self, m: sp.csr_array, idf: np.ndarray, mean_length: float
    ) -> tuple[sp.csr_array, np.ndarray]:
        """Weighted rows of ``m`` (float32) and their float64 L2 norms."""
        return _weigh_rows(m, self.similarity, idf, mean_length, self.bm25_k1, self.bm25_b)

    def _similarities(
        self, products: sp.csr_array, left: np.ndarray, right: np.ndarray
    ) -> sp.csr_array:
        """Similarities from the dot products of rows with norms ``left`` and ``right``.

        Works in place on ``products`` (see the module docstring for the definitions).
        """
        shrinkage = np.float32(self.shrinkage)
        if self.similarity == "bm25" and shrinkage == 0:
            return products
        rows = _row_of_entries(products)
        norms = left.astype(np.float32)[rows]
        del rows
        norms *= right.astype(np.float32)[products.indices]
        if self.similarity == "bm25":  # dot * |a||b| / (|a||b| + s)
            products.data *= norms
        norms += shrinkage  # cosine and tfidf: dot / (|a||b| + s)
        # a zero denominator means a zero norm, hence a zero dot product: left as 0
        np.divide(products.data, norms, out=products.data, where=norms > 0)
        return products


@register("itemknn")
class ItemKNN(_KNNBase):
    """Item-based k-nearest neighbours: a user's items vote for their most similar items.

    ``fit`` builds a sparse item x item similarity ``similarity_`` holding at most
    ``neighbors`` entries per row (row ``i``: the items most similar to item ``i``, self entry
    dropped; see the module docstring). A history ``h`` (listen counts, or 1s with
    ``binarize``) is scored ``h @ similarity_``, as implicit's ``recommend`` scores the raw
    ``user_items`` row; so with ``binarize=False`` and ``shrinkage=0`` this model recommends
    what implicit's ``CosineRecommender(K)``, ``TFIDFRecommender(K)`` or
    ``BM25Recommender(K, K1=bm25_k1, B=bm25_b)`` recommend (up to ties and float rounding).
    Fold-in is exact: any history is scored the same way, from training or not.

    The defaults (binary cosine, shrinkage 3, 500 neighbours) are the pick of
    ``bench/choose_defaults.py`` on validation carved from training data only (Last.fm, MSD and
    the real MPD playlists; bench/README.md): 500 neighbours beat the 200 first picked on the
    Last.fm split's answers on all three (MPD validation NDCG 0.2792 against 0.2681). The item x
    item matrix takes ``8 * neighbors`` bytes per item.

    Parameters
    ----------
    similarity
        ``"cosine"``, ``"tfidf"`` or ``"bm25"`` item-item similarity (module docstring).
    neighbors
        Most similar items kept per item, the item itself counted as in implicit.
    shrinkage
        Damps the similarity of items with few listeners: ``w_a . w_b / (|w_a| |w_b| +
        shrinkage)`` for cosine and tfidf (module docstring for bm25); 0 turns it off.
    bm25_k1
        BM25 saturation of the listen counts (0: binary; larger: closer to raw counts).
    bm25_b
        BM25 length normalisation in ``[0, 1]`` over item popularity (0: none; 1: full).
    binarize
        Use 1 for every interaction instead of its listen count, in ``fit`` and scoring.
    """

    required_state = ("similarity_",)
    state_shapes = {"similarity_": ("items", "items")}

    def __init__(
        self,
        similarity: Similarity = "cosine",
        neighbors: int = 500,
        shrinkage: float = 3.0,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        binarize: bool = True,
    ) -> None:
        self.similarity = similarity
        self.neighbors = neighbors
        self.shrinkage = shrinkage
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.binarize = binarize

    def _fit(self, data: FitData) -> None:
        matrix = data.matrix
        items = sp.csr_array(self._input(matrix).T)  # items x users: rows are compared
        weights, norms = self._weigh(items, _column_idf(items), _mean_row_sum(items))
        by_user = sp.csr_array(weights.T)  # users x items, for the row-block products
        n = items.shape[0]
        out = _RowWriter(n, n, self.neighbors)
        for lo, hi in _row_blocks(weights, by_user):
            products = sp.csr_array(weights[lo:hi] @ by_user)
            sims = self._similarities(products, norms[lo:hi], norms)
            out.write(_kept_neighbours(_top_per_row(sims, self.neighbors), lo))
        self.similarity_ = out.matrix()

    def _score(self, user_idx: IdxArray, history: sp.csr_array) -> ScoreMatrix:
        products = self._input(history) @ self.similarity_
        return np.asarray(products.toarray(), dtype=np.float32)


@register("userknn")
class UserKNN(_KNNBase):
    """User-based k-nearest neighbours: the most similar training users vote for their items.

    ``fit`` stores the weighted training matrix ``weights_`` (users x items, rows weighted as in
    the module docstring with the idf over items, ``idf_``, and the mean history length
    ``mean_length_``) and its row norms ``user_norms_``. ``score`` weighs each history the same
    way, computes its similarity to every training user, keeps the ``neighbors`` most similar
    and returns ``sum_v sim(row, v) * weights_[v]``: neighbours vote with their *weighted* rows,
    which scored higher than binary and raw-count rows on the answers of the Last.fm split when
    the model was written (NDCG@100 0.439 vs 0.421 and 0.362 for bm25, 100 neighbours: a design
    comparison on test answers, not a validated choice, and not a parameter).

    A row of a training user (``user_idx >= 0``) never counts that user among its neighbours. A
    newcomer with exactly a training user's history does count that user (its most similar
    one, whose items are all seen), so fold-in gives a list close to, not equal to, the
    training user's own.

    The defaults (bm25, 200 neighbours, binary input) are the pick of
    ``bench/choose_defaults.py`` on validation carved from training data only (Last.fm, MSD and
    the real MPD playlists; bench/README.md): mean relative validation NDCG 0.9887, against
    0.9821 for the 100 neighbours first picked on the Last.fm split's answers and 0.9876 for
    tfidf with 100.

    Parameters
    ----------
    similarity
        ``"bm25"``, ``"cosine"`` or ``"tfidf"`` user-user similarity (module docstring).
    neighbors
        Most similar training users used to score a row.
    shrinkage
        Damps the similarity of users with few items: ``w_a . w_b / (|w_a| |w_b| +
        shrinkage)`` for cosine and tfidf (module docstring for bm25); 0 turns it off.
    bm25_k1
        BM25 saturation of the listen counts (0: binary; larger: closer to raw counts).
    bm25_b
        BM25 length normalisation in ``[0, 1]`` over history length (0: none; 1: full).
    binarize
        Use 1 for every interaction instead of its listen count.
    """

    required_state = ("idf_", "weights_", "user_norms_")
    state_shapes = {"idf_": ("items",), "weights_": ("users", "items"), "user_norms_": ("users",)}

    def __init__(
        self,
        similarity: Similarity = "bm25",
        neighbors: int = 200,
        shrinkage: float = 0.0,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        binarize: bool = True,
    ) -> None:
        self.similarity = similarity
        self.neighbors = neighbors
        self.shrinkage = shrinkage
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.binarize = binarize

    def _fit(self, data: FitData) -> None:
        matrix = data.matrix
        x = self._input(matrix)  # users x items: rows are compared
        self.idf_ = _column_idf(x)
        self.mean_length_ = _mean_row_sum(x)
        self.weights_, self.user_norms_ = self._weigh(x, self.idf_, self.mean_length_)
        self._by_item = None  # items x users copy of weights_, built on first use

    def _score(self, user_idx: IdxArray, history: sp.csr_array) -> ScoreMatrix:
        if getattr(self, "_by_item", None) is None:  # after fit, or after load_model
            self._by_item = sp.csr_array(self.weights_.T)
        rows, norms = self._weigh(self._input(history), self.idf_, self.mean_length_)
        n_rows = history.shape[0]
        out = np.empty((n_rows, history.shape[1]), dtype=np.float32)
        for lo, hi in _row_blocks(rows, self._by_item):
            products = sp.csr_array(rows[lo:hi] @ self._by_item)
            sims = self._similarities(products, norms[lo:hi], self.user_norms_)
            own = np.asarray(user_idx[lo:hi])[_row_of_entries(sims)]
            sims = _drop_entries(sims, sims.indices == own)  # never one's own neighbour
            sims = _top_per_row(sims, self.neighbors)
            out[lo:hi] = (sims @ self.weights_).toarray()
        return out


# helpers -------------------------------------------------------------------------------------
def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def _is_real(value: object) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool | np.bool_)
        and math.isfinite(value)
    )


def _row_blocks(left: sp.csr_array, right: sp.csr_array) -> list[tuple[int, int]]:
    """Row ranges ``[lo, hi)`` of ``left``, each product ``left[lo:hi] @ right`` a block of work.

    A block takes about ``_BLOCK_PAIRS`` multiply-adds (at least one row a block). A row's
    multiply-adds, the stored entries of the ``right`` rows its entries select, bound the
    stored entries of its product row, so a block's product never holds more than
    ``_BLOCK_PAIRS`` entries unless one row alone does.
    """
    work = np.diff(right.indptr).astype(np.int64)[left.indices]
    done = np.zeros(len(work) + 1, dtype=np.int64)
    np.cumsum(work, out=done[1:])
    done = done[left.indptr]  # multiply-adds of rows [0, r) for every r
    n_rows = left.shape[0]
    ranges, lo = [], 0
    while lo < n_rows:
        hi = int(np.searchsorted(done, done[lo] + _BLOCK_PAIRS, side="right")) - 1
        hi = min(n_rows, max(hi, lo + 1))
        ranges.append((lo, hi))
        lo = hi
    return ranges


def _row_of_entries(m: sp.csr_array) -> np.ndarray:
    """The row of every stored entry of a CSR matrix."""
    dtype = np.int32 if m.shape[0] < 2**31 else np.int64
    return np.repeat(np.arange(m.shape[0], dtype=dtype), np.diff(m.indptr))


def _kept_neighbours(top: sp.csr_array, first_row: int) -> sp.csr_array:
    """A block of top-k rows without the self entry and stored zeros, float32, indices sorted."""
    out = _drop_entries(top, (_row_of_entries(top) + first_row == top.indices) | (top.data == 0))
    out = out.astype(np.float32, copy=False)
    out.sort_indices()
    return out


class _RowWriter:
    """Blocks of rows written one after another straight into the arrays of one CSR matrix.

    The arrays are reserved for ``max_per_row`` entries a row (the top-k bound), but memory is
    committed page by page as it is written, so only the entries kept are ever resident. Why
    not collect the blocks and concatenate them at the end: blocks of a few megabytes come
    from the allocator's heap, which keeps them after they are freed (glibc returns only large
    allocations to the system), so the process held the blocks and the result at once: 19.3
    GiB at 1M MPD playlists for a 6.2 GB neighbour matrix. The result is the canonical CSR
    that ``_csr_from_entries`` makes of the same entries.
    """

    def __init__(self, height: int, width: int, max_per_row: int) -> None:
        self.height, self.width = height, width
        capacity = height * max(0, min(max_per_row, width))
        self.data = np.empty(capacity, dtype=np.float32)
        self.indices = np.empty(capacity, dtype=np.int32 if width < 2**31 else np.int64)
        self.indptr = np.zeros(height + 1, dtype=np.int64)
        self.at = self.row = 0

    def write(self, block: sp.csr_array) -> None:
        """Append ``block``'s rows (the next ones) and its entries."""
        size, rows = block.nnz, block.shape[0]
        self.data[self.at : self.at + size] = block.data
        self.indices[self.at : self.at + size] = block.indices
        self.indptr[self.row + 1 : self.row + rows + 1] = block.indptr[1:] + self.at
        self.at, self.row = self.at + size, self.row + rows

    def matrix(self) -> sp.csr_array:
        """The rows written so far (all of them), int32 indices where they fit."""
        if self.row != self.height:
            raise AssertionError(f"{self.row} of {self.height} rows written")
        small = max(self.at, self.width) < 2**31
        dtype = np.int32 if small else np.int64
        indices = self.indices[: self.at].astype(dtype, copy=False)
        indptr = self.indptr.astype(dtype, copy=False)
        return sp.csr_array(
            (self.data[: self.at], indices, indptr), shape=(self.height, self.width)
        )


def _csr_from_entries(
    rows: np.ndarray, cols: np.ndarray, data: np.ndarray, shape: tuple[int, int]
) -> sp.csr_array:
    """Canonical float32 CSR (sorted indices, int32 where they fit) from distinct entries."""
    out = sp.csr_array(sp.coo_array((data.astype(np.float32), (rows, cols)), shape=shape).tocsr())
    out.sort_indices()
    return out


def _drop_entries(m: sp.csr_array, drop: np.ndarray) -> sp.csr_array:
    """``m`` without the stored entries flagged in ``drop``."""
    if not drop.any():
        return m
    keep = ~drop
    indptr = np.zeros(m.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(_row_of_entries(m)[keep], minlength=m.shape[0]), out=indptr[1:])
    return sp.csr_array((m.data[keep], m.indices[keep], indptr), shape=m.shape)


def _column_idf(m: sp.csr_array) -> np.ndarray:
    """Per-column idf, as implicit: ``log(n_rows) - log1p(rows holding the column)``."""
    holders = np.bincount(m.indices, minlength=m.shape[1])
    return math.log(max(1, m.shape[0])) - np.log1p(holders)


def _mean_row_sum(m: sp.csr_array) -> float:
    """Mean of the row sums (the BM25 average document length)."""
    return float(m.data.sum(dtype=np.float64) / max(1, m.shape[0]))


def _weigh_rows(
    m: sp.csr_array,
    similarity: str,
    idf: np.ndarray,
    mean_length: float,
    k1: float,
    b: float,
) -> tuple[sp.csr_array, np.ndarray]:
    """Weighted rows of ``m`` (float32 CSR) and their L2 norms (float64).

    ``idf`` (one value per column) and ``mean_length`` come from the training matrix, so rows
    folded in later are weighted on the same scale.
    """
    x = m.data.astype(np.float64)
    rows = _row_of_entries(m)
    if similarity == "bm25":
        row_sums = np.bincount(rows, weights=x, minlength=m.shape[0])
        length = (1.0 - b) + b * row_sums / (mean_length if mean_length > 0 else 1.0)
        w = x * (k1 + 1.0) / (k1 * length[rows] + x) * idf[m.indices]
    elif similarity == "tfidf":
        w = np.sqrt(x) * idf[m.indices]
    else:
        w = x
    norms = np.sqrt(np.bincount(rows, weights=w * w, minlength=m.shape[0]))
    weighted = sp.csr_array((w.astype(np.float32), m.indices, m.indptr), shape=m.shape)
    return weighted, norms


def _top_per_row(m: sp.csr_array, k: int) -> sp.csr_array:
    """Keep the ``k`` largest stored entries of every row (every entry of shorter rows).

    Each row is handled on its own data only, so the result does not depend on how rows are
    blocked. Rows more than half full are made dense (absent entries as ``-inf``) for
    ``np.argpartition``; sparser rows are ranked by one stable sort of their stored entries
    (key: row, then value descending; ties keep the lower column), which avoids argpartition's
    slow path on rows that are mostly padding. Callers pass blocks of about ``_BLOCK_PAIRS``
    multiply-adds (see :func:`_row_blocks`).
    """
    m.sum_duplicates()
    n_cols = m.shape[1]
    counts = np.diff(m.indptr)
    rows = _row_of_entries(m)
    keep = np.repeat(counts <= k, counts)  # rows kept whole
    out_rows, out_cols, out_vals = [rows[keep]], [m.indices[keep]], [m.data[keep]]
    dense_rows = np.flatnonzero((counts > k) & (2 * counts > n_cols))
    if len(dense_rows):
        sub = sp.csr_array(m[dense_rows])
        dense = np.full((len(dense_rows), n_cols), -np.inf, dtype=np.float32)
        dense[_row_of_entries(sub), sub.indices] = sub.data
        cols = np.argpartition(dense, n_cols - k, axis=1)[:, n_cols - k :]
        out_rows.append(np.repeat(dense_rows, k))
        out_cols.append(cols.ravel())
        out_vals.append(np.take_along_axis(dense, cols, axis=1).ravel())
        del dense
    sparse = np.flatnonzero(np.repeat((counts > k) & (2 * counts <= n_cols), counts))
    if len(sparse):
        r = rows[sparse]
        bits = m.data[sparse].astype(np.float32, copy=False).view(np.int32)
        ordered = np.where(bits >= 0, bits, bits ^ np.int32(0x7FFFFFFF))  # monotone in value
        del bits
        key = (r.astype(np.int64) << 32) - ordered  # row, then value descending
        del ordered
        order = np.argsort(key, kind="stable")  # stable: ties keep the lower column
        del key
        r = r[order]
        starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        first = np.repeat(starts, np.diff(np.r_[starts, len(r)]))
        chosen = sparse[order[np.arange(len(r)) - first < k]]
        del r, order, first
        out_rows.append(rows[chosen])
        out_cols.append(m.indices[chosen])
        out_vals.append(m.data[chosen])
    return _csr_from_entries(
        np.concatenate(out_rows), np.concatenate(out_cols), np.concatenate(out_vals), m.shape
    )
