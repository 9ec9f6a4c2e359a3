"""The recommender contract: public ``fit`` / ``score`` / ``retrieve`` / ``recommend`` written once.

Subclasses implement ``_fit(data)`` and ``_score(user_idx, history)`` and nothing else: id
mapping, batching, cold-start fallback, filtering of seen items, top-k and timing live here.
Every way from a query to a top-k list (``segue recommend``, playlist continuation, the HTTP
service, the two-stage candidate generator) goes through :meth:`BaseRecommender.retrieve`,
whose one overridable hook, :meth:`BaseRecommender._retrieve`, turns a batch of rows into the
top-k lists; a model with a faster kernel (faiss, ``torch.topk`` on a GPU, a re-ranker)
overrides that hook, never the batch loop.

Hyper-parameters are keyword arguments of ``__init__`` stored unchanged (scikit-learn style), so
``get_params``, ``clone``, ``repr`` and saved manifests are generic. Learned state is every
attribute whose name ends in ``_``; :mod:`segue.serialization` saves it by type (arrays, sparse
matrices, vocabularies, tensors, LightGBM models, nested models).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

import numpy as np
import scipy.sparse as sp

from segue._types import ExternalIds, IdxArray, ScoreMatrix
from segue.data.interactions import Interactions, take_rows
from segue.data.vocab import IdMap
from segue.exceptions import ModelFormatError, NotFittedError, ParameterError, UnknownIdError
from segue.models.topk import topk

if TYPE_CHECKING:
    import pandas as pd

    from segue.data.playlists import Playlists

__all__ = [
    "BaseRecommender",
    "FitData",
    "QueryBatch",
    "Recs",
    "Target",
    "TopK",
    "Unknown",
    "excluded_items",
]

Unknown = Literal["raise", "skip", "fallback"]
"""What ``recommend`` does with a user it has no history for: raise :class:`UnknownIdError`,
leave the user out of the result, or give the cold-start list (items by number of listeners)."""

_BATCH_FLOATS = 1 << 25  # 32M float32 scores (128 MiB) per scoring batch

TopK = tuple[IdxArray, ScoreMatrix]
"""``(n, k)`` int32 item indices (``-1`` padding) and float32 scores (``-inf`` padding)."""


class Target(NamedTuple):
    """One list to retrieve for every query: the best ``k`` items among ``allow``.

    ``allow=None`` lets every item through. A playlist model asks for its track columns (and,
    for Melon, its tag columns as a second target) from one scoring pass.
    """

    k: int
    allow: IdxArray | None = None


@dataclass(frozen=True)
class QueryBatch:
    """One batch of queries as the retrieval hook sees it.

    Attributes
    ----------
    user_idx
        Training row of each query, or -1 for a row folded in from ``rows``.
    rows
        ``(n, n_items)`` CSR: the queries' rows over the model's items.
    mask
        ``(n, n_items)`` CSR of the items each query must not get back, or None.
    playlists
        The queries as playlists (one per row), for models that read them; else None.
    """

    user_idx: IdxArray
    rows: sp.csr_array
    mask: sp.csr_array | None = None
    playlists: Playlists | None = None

    def __len__(self) -> int:
        return len(self.user_idx)


@dataclass(frozen=True)
class FitData:
    """What ``fit`` hands a model's ``_fit``.

    Attributes
    ----------
    train
        The training interactions (``train.playlists`` holds the playlists they came from,
        with the order of their tracks, when they were encoded from playlists).
    valid
        Held-out interactions for early stopping (aligned to ``train``'s items), or None.
    """

    train: Interactions
    valid: Interactions | None = None

    @property
    def matrix(self) -> sp.csr_array:
        """The training matrix (users or playlists x items)."""
        return self.train.matrix

    @property
    def playlists(self) -> Playlists | None:
        """The training playlists, in row order, when the rows are playlists."""
        return self.train.playlists

    def order(self) -> sp.csr_array | None:
        """``(rows, items)`` CSR: the 1-based position of each item's first occurrence.

        The order of songs in each playlist, for sequence models; None when the training
        rows were not encoded from playlists. Items outside the vocabulary are left out.
        """
        playlists = self.playlists
        if playlists is None:
            return None
        entries = playlists.entries
        rows = self.train.users.numbers(entries["pid"], missing="negative")
        cols = self.train.items.numbers(entries["track"], missing="negative")
        pos = entries["pos"].to_numpy(dtype=np.int64) + 1
        keep = (rows >= 0) & (cols >= 0)
        rows, cols, pos = rows[keep], cols[keep], pos[keep]
        first = np.lexsort((pos, cols, rows))  # each (row, col) pair's smallest position first
        rows, cols, pos = rows[first], cols[first], pos[first]
        new = np.ones(len(rows), dtype=bool)
        new[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        shape = self.train.matrix.shape
        out = sp.csr_array(
            (pos[new].astype(np.float32), (rows[new], cols[new])), shape=shape, dtype=np.float32
        )
        out.sort_indices()
        return out


class Recs(NamedTuple):
    """Top-k lists as fixed-shape arrays; rows with fewer than k items are padded.

    Attributes
    ----------
    users
        External user ids, one per row.
    items
        ``(n, k)`` int32 item indices into ``item_ids``, best first, ``-1`` as padding.
    scores
        ``(n, k)`` float32 scores, ``-inf`` as padding.
    item_ids
        The vocabulary that ``items`` index into.
    """

    users: np.ndarray
    items: IdxArray
    scores: ScoreMatrix
    item_ids: IdMap

    def lists(self) -> Iterator[tuple[Any, list[Any]]]:
        """Yield ``(user_id, [item_id, ...])`` per row, best first, padding removed."""
        ids = self.item_ids.ids
        for user, row in zip(self.users, self.items, strict=True):
            yield user, ids[row[row >= 0]].tolist()

    def to_frame(self) -> pd.DataFrame:
        """Long format: ``user_id``, ``item_id``, ``score``, ``rank`` (1-based)."""
        import pandas as pd

        n, k = self.items.shape
        valid = self.items >= 0
        return pd.DataFrame(
            {
                "user_id": np.repeat(self.users, k)[valid.ravel()],
                "item_id": self.item_ids.ids[self.items[valid]],
                "score": self.scores[valid],
                "rank": np.tile(np.arange(1, k + 1), n)[valid.ravel()],
            }
        )


def excluded_items(
    rows: sp.csr_array,
    exclude: sp.csr_array | None,
    start: int,
    stop: int,
    *,
    exclude_seen: bool,
) -> sp.csr_array | None:
    """The items a batch ``[start, stop)`` must not return: its history and/or ``exclude``."""
    mask = rows if exclude_seen else None
    if exclude is not None:
        extra = sp.csr_array(exclude[start:stop])
        mask = extra if mask is None else sp.csr_array(mask + extra)
    return mask


class BaseRecommender:
    """Base class of every segue model (see the module docstring for the contract)."""

    #: learned state that ``fit`` must set; checked to decide ``is_fitted``
    _fitted_marker: ClassVar[str] = "items_"
    #: short name under which :func:`segue.models.registry.register` recorded the class
    registry_name: ClassVar[str | None] = None
    #: whether ``_retrieve`` reads the queries' playlists (titles, order, metadata), not only
    #: their rows; callers that have them pass them, others get playlists built from the rows
    needs_playlists: ClassVar[bool] = False
    #: libraries whose versions the saved manifest records (besides numpy, scipy, segue)
    libraries: ClassVar[tuple[str, ...]] = ()
    #: seconds per step of the last retrieval, for models whose hook has steps worth timing
    #: (the two-stage model: first stage, features, ranker); set per instance by the hook
    last_timings: Mapping[str, float] = {}

    # parameters -----------------------------------------------------------------------------
    @classmethod
    def param_names(cls) -> list[str]:
        """Names of the hyper-parameters (the keyword arguments of ``__init__``)."""
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters as given to ``__init__``."""
        return {name: getattr(self, name) for name in self.param_names()}

    def set_params(self, **params: Any) -> BaseRecommender:
        """Change hyper-parameters; unknown names raise :class:`ParameterError`."""
        valid = set(self.param_names())
        for name, value in params.items():
            if name not in valid:
                raise ParameterError(
                    f"{type(self).__name__} has no parameter {name!r}; valid: {sorted(valid)}"
                )
            setattr(self, name, value)
        return self

    def clone(self) -> BaseRecommender:
        """A new unfitted model with the same hyper-parameters."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def validate_params(self) -> BaseRecommender:
        """Raise :class:`ParameterError` for hyper-parameters out of range; returns ``self``.

        ``fit`` calls it; call it earlier to reject a configuration before loading data.
        """
        self._validate_params()
        return self

    def _validate_params(self) -> None:
        """Raise :class:`ParameterError` for hyper-parameters out of range (called by fit)."""

    # fitting --------------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        """Whether the model has learned state (from ``fit`` or ``load``)."""
        return hasattr(self, self._fitted_marker)

    def check_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless the model has learned state."""
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load()")

    def learned_state(self) -> dict[str, Any]:
        """Every learned attribute (names ending in ``_``)."""
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    #: learned attributes :mod:`segue.serialization` leaves out (reports, derived values)
    unsaved_state: ClassVar[frozenset[str]] = frozenset()
    #: learned attributes a fitted model must have, besides the base class's
    required_state: ClassVar[tuple[str, ...]] = ()
    #: expected shapes of learned arrays: each dimension an int, ``"users"``, ``"items"``,
    #: ``"len:ATTR"`` (the length of another attribute), a parameter name, or None (any)
    state_shapes: ClassVar[Mapping[str, tuple[Any, ...]]] = {}
    #: learned arrays that hold indices, and the dimension they index (``"items"``, ...)
    state_indices: ClassVar[Mapping[str, str]] = {}

    def check_state(self) -> None:
        """Raise :class:`ModelFormatError` unless the learned state fits together.

        Run on every loaded model, so that a tampered or truncated directory is refused with a
        message instead of crashing later (a wrong index inside a sparse product can kill the
        process): required attributes, shapes against the vocabularies and parameters, index
        ranges, finite floats.
        """
        base = ("users_", "items_", "history_", "fallback_scores_")
        missing = [n for n in (*base, *self.required_state) if not hasattr(self, n)]
        if missing:
            raise ModelFormatError(f"learned state lacks {missing}")
        for name in ("users_", "items_"):
            if not isinstance(getattr(self, name), IdMap):
                raise ModelFormatError(f"{name} is not an id map")
        shapes = {
            "history_": ("users", "items"),
            "fallback_scores_": ("items",),
            **self.state_shapes,
        }
        for name, dims in shapes.items():
            value = getattr(self, name, None)
            if value is None:
                continue
            want = tuple(self._dimension(d) for d in dims)
            got = tuple(getattr(value, "shape", ()))
            if len(got) != len(want) or any(
                w is not None and g != w for g, w in zip(got, want, strict=True)
            ):
                raise ModelFormatError(f"{name} has shape {got}, expected {want}")
            if isinstance(value, np.ndarray):
                if value.dtype.kind not in "biuf":
                    raise ModelFormatError(f"{name} has dtype {value.dtype}, expected numbers")
                if value.dtype.kind == "f" and not np.isfinite(value).all():
                    raise ModelFormatError(f"{name} holds NaN or infinite values")
        for name, dim in self.state_indices.items():
            value = getattr(self, name, None)
            if value is None:
                continue
            bound = self._dimension(dim)
            if value.dtype.kind not in "iu" or (
                len(value) and (value.min() < 0 or value.max() >= bound)
            ):
                raise ModelFormatError(f"{name} holds indices outside 0..{bound - 1}")

    def _dimension(self, dim: Any) -> int | None:
        if dim is None or isinstance(dim, int):
            return dim
        if dim == "users":
            return len(self.users_)
        if dim == "items":
            return len(self.items_)
        if dim.startswith("len:"):
            return len(getattr(self, dim[4:]))
        return int(getattr(self, dim))

    def state_to_save(self) -> dict[str, Any]:
        """The learned state :func:`segue.save` stores; override to store a value in another form.

        Each value must be one a codec of :mod:`segue.serialization` takes (arrays, sparse
        matrices, id maps, JSON values, dicts of tensors, LightGBM rankers, nested models).
        """
        return {k: v for k, v in self.learned_state().items() if k not in self.unsaved_state}

    def restore_state(self, state: dict[str, Any]) -> None:
        """Set the state read back by :func:`segue.serialization.load` (see ``state_to_save``)."""
        for name, value in state.items():
            setattr(self, name, value)

    def fit(self, train: Interactions, /, *, valid: Interactions | None = None) -> BaseRecommender:
        """Learn from ``train``; previous learned state is discarded. Returns ``self``.

        Parameters
        ----------
        train
            Users (or playlists) x items. Encoded from playlists, it carries them
            (``train.playlists``): the order of their songs, titles and metadata.
        valid
            Held-out interactions for models that stop early on a validation metric (re-indexed
            to ``train``'s items; unknown items are dropped). Other models ignore it.
        """
        if not isinstance(train, Interactions):
            raise ParameterError(f"fit expects Interactions, got {type(train).__name__}")
        if valid is not None:
            if not isinstance(valid, Interactions):
                raise ParameterError(f"valid must be Interactions, got {type(valid).__name__}")
            valid, _ = valid.align(train.items)
        self._validate_params()
        for name in list(self.learned_state()):
            delattr(self, name)
        start = time.perf_counter()
        self._set_training_view(train)
        view = self._fit(FitData(train, valid))
        if view is not None and view is not train:  # the model encoded its own view of the data
            self._set_training_view(view)
        self.items_ = (view or train).items  # set last: marks the model as fitted
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _set_training_view(self, train: Interactions) -> None:
        matrix = train.matrix
        self.users_ = train.users
        self.history_ = matrix
        # cold-start list: items by number of distinct listeners
        self.fallback_scores_ = np.bincount(matrix.indices, minlength=train.n_items).astype(
            np.float32
        )

    def _fit(self, data: FitData) -> Interactions | None:
        """Learn the model's state from ``data``.

        Returns None, or the :class:`Interactions` the model actually learned from when it
        encodes the playlists itself (the two-stage model): its users, items and history then
        become the model's.
        """
        raise NotImplementedError

    # scoring --------------------------------------------------------------------------------
    def score(self, user_idx: IdxArray, history: sp.csr_array, /) -> ScoreMatrix:
        """Raw ``(len(user_idx), n_items)`` float32 scores, seen items not removed.

        ``user_idx`` are training indices, or -1 for a row that must be folded in from
        ``history`` (a user or playlist not in training, or a known user with new listens).
        ``history`` holds the same rows, aligned to the model's items. A row with
        ``user_idx >= 0`` carries exactly that user's training history, so models with learned
        per-user state (factors, self-similarity) may use it instead of the history.
        """
        self.check_fitted()
        user_idx = np.asarray(user_idx, dtype=np.int32)
        if history.shape != (len(user_idx), len(self.items_)):
            raise ParameterError(
                f"history shape {history.shape} != ({len(user_idx)}, {len(self.items_)})"
            )
        scores = np.asarray(self._score(user_idx, sp.csr_array(history)), dtype=np.float32)
        empty = np.diff(history.indptr) == 0
        if empty.any():
            scores[empty] = self.fallback_scores_
        return scores

    def _score(self, user_idx: IdxArray, history: sp.csr_array) -> ScoreMatrix:
        raise NotImplementedError

    def default_batch_size(self) -> int:
        """Users per scoring batch so that one batch of scores takes about 128 MiB."""
        return int(max(1, min(4096, _BATCH_FLOATS // max(1, len(self.items_)))))

    def retrieve(
        self,
        user_idx: IdxArray,
        history: sp.csr_array,
        targets: Mapping[str, Target],
        *,
        exclude_seen: bool = True,
        exclude: sp.csr_array | None = None,
        playlists: Playlists | None = None,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, TopK]:
        """Top-k lists of every target for every query row, in batches: the one inference path.

        Parameters
        ----------
        user_idx
            Training row of each query, or -1 for a row folded in from ``history``.
        history
            The queries' rows over the model's items (same order as ``user_idx``).
        targets
            ``{name: Target(k, allow)}``: the lists to return, all from one scoring pass.
        exclude_seen
            Never return an item of the query's own row.
        exclude
            More items not to return (a CSR of the same shape as ``history``).
        playlists
            The queries as playlists (one per row, same order), for models that read them
            (:attr:`needs_playlists`); others ignore it.
        batch_size
            Queries per batch (default :meth:`default_batch_size`).
        progress
            Called with the number of queries finished after every batch.

        Returns
        -------
        dict
            ``{name: (items, scores)}`` with ``(n, k)`` arrays per target.
        """
        self.check_fitted()
        user_idx = np.asarray(user_idx, dtype=np.int32)
        n = len(user_idx)
        if history.shape[0] != n:
            raise ParameterError(f"history has {history.shape[0]} rows for {n} queries")
        for name, target in targets.items():
            if target.k < 1:
                raise ParameterError(f"k must be at least 1, got {target.k} ({name})")
        batch = batch_size or self.default_batch_size()
        if batch < 1:
            raise ParameterError(f"batch_size must be at least 1, got {batch}")
        out = {
            name: (
                np.full((n, t.k), -1, dtype=np.int32),
                np.full((n, t.k), -np.inf, dtype=np.float32),
            )
            for name, t in targets.items()
        }
        for start in range(0, n, batch):
            stop = min(n, start + batch)
            rows = sp.csr_array(history[start:stop])
            mask = excluded_items(rows, exclude, start, stop, exclude_seen=exclude_seen)
            part = None
            if self.needs_playlists and playlists is not None:
                part = playlists.slice(start, stop)
            found = self._retrieve(QueryBatch(user_idx[start:stop], rows, mask, part), targets)
            for name, (items, scores) in found.items():
                out[name][0][start:stop], out[name][1][start:stop] = items, scores
            if progress is not None:
                progress(stop - start)
        return out

    def _retrieve(self, batch: QueryBatch, targets: Mapping[str, Target]) -> dict[str, TopK]:
        """The hook behind :meth:`retrieve`: one batch of queries to its top-k lists.

        The default scores every item once (:meth:`score`) and takes each target's top k with
        :func:`~segue.models.topk.topk`, the batch's ``mask`` removed. Override it for a faster
        kernel (an approximate-neighbour index, ``torch.topk``) or a re-ranker.
        """
        scores = self.score(batch.user_idx, batch.rows)
        names = list(targets)
        return {
            name: topk(
                scores,
                targets[name].k,
                exclude=batch.mask,
                allow=targets[name].allow,
                copy=name != names[-1],
            )
            for name in names
        }

    def recommend_idx(
        self,
        user_idx: IdxArray,
        history: sp.csr_array,
        k: int = 10,
        *,
        allow: IdxArray | None = None,
        exclude_seen: bool = True,
        exclude: sp.csr_array | None = None,
        playlists: Playlists | None = None,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> TopK:
        """Top-k at the index level: :meth:`retrieve` with one target.

        ``history`` rows belong to ``user_idx`` (same order); with ``exclude_seen`` its items
        are never returned, nor are ``exclude``'s (another CSR of the same shape); ``allow``
        restricts the items that may be returned.
        """
        found = self.retrieve(
            user_idx,
            history,
            {"items": Target(k, allow)},
            exclude_seen=exclude_seen,
            exclude=exclude,
            playlists=playlists,
            batch_size=batch_size,
            progress=progress,
        )
        return found["items"]

    def _query(
        self, users: ExternalIds, history: Interactions | None, unknown: Unknown
    ) -> tuple[np.ndarray, IdxArray, sp.csr_array, IdxArray]:
        """External ids -> (ids kept, training indices or -1, source matrix, its row indices).

        Rows are not gathered here: callers take ``take_rows(source, source_idx[a:b])`` batch
        by batch, so a streamed run never holds every user's history twice.
        """
        self.check_fitted()
        if unknown not in ("raise", "skip", "fallback"):
            raise ParameterError(f"unknown must be 'raise', 'skip' or 'fallback', got {unknown!r}")
        ids = np.asarray(users, dtype=object).reshape(-1)
        user_idx = self.users_.numbers(ids, missing="negative")
        if history is None:
            source, source_idx = self.history_, user_idx
            known = user_idx >= 0
        else:
            aligned, _ = history.align(self.items_)
            source = aligned.matrix
            source_idx = aligned.users.numbers(ids, missing="negative")
            known = (source_idx >= 0) | (user_idx >= 0)
            # a row taken from ``history`` is new information: models fold it in rather than
            # reuse what they learned for that user in training
            user_idx = np.where(source_idx >= 0, -1, user_idx).astype(np.int32)
        if not known.all():
            if unknown == "raise":
                missing = ids[~known]
                raise UnknownIdError("user", missing[:5].tolist(), len(missing))
            if unknown == "skip":
                ids, user_idx, source_idx = ids[known], user_idx[known], source_idx[known]
        return ids, user_idx, source, source_idx

    def recommend(
        self,
        users: ExternalIds,
        k: int = 10,
        *,
        history: Interactions | None = None,
        exclude_seen: bool = True,
        unknown: Unknown = "raise",
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Recs:
        """Top-``k`` items for each external user id.

        Parameters
        ----------
        users
            External user ids.
        k
            Length of each list.
        history
            The users' current items. Defaults to the training interactions; pass it to score
            users or playlists that were not in training (fold-in), or with newer listens.
        exclude_seen
            Never return an item already in the user's history.
        unknown
            Users with no history at all (see :data:`Unknown`).
        batch_size
            Users scored at once (default: about 128 MiB of scores).
        progress
            Called with the number of users finished after every batch.
        """
        parts = list(
            self.iter_recommend(
                users,
                k,
                history=history,
                exclude_seen=exclude_seen,
                unknown=unknown,
                batch_size=batch_size,
                progress=progress,
            )
        )
        if not parts:
            empty = np.empty(0, dtype=object)
            items = np.full((0, k), -1, dtype=np.int32)
            return Recs(empty, items, items.astype(np.float32), self.items_)
        return Recs(
            np.concatenate([p.users for p in parts]),
            np.concatenate([p.items for p in parts]),
            np.concatenate([p.scores for p in parts]),
            self.items_,
        )

    def iter_recommend(
        self,
        users: ExternalIds,
        k: int = 10,
        *,
        history: Interactions | None = None,
        exclude_seen: bool = True,
        unknown: Unknown = "raise",
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Iterator[Recs]:
        """:meth:`recommend` one batch at a time, so memory does not grow with the user count.

        Writers of large recommendation files consume the batches as they come; the scores of
        only one batch (about 128 MiB by default) exist at any moment.
        """
        ids, user_idx, source, source_idx = self._query(users, history, unknown)
        batch = batch_size or self.default_batch_size()
        if batch < 1:
            raise ParameterError(f"batch_size must be at least 1, got {batch}")
        for start in range(0, len(ids), batch):
            stop = min(len(ids), start + batch)
            items, scores = self.recommend_idx(
                user_idx[start:stop],
                take_rows(source, source_idx[start:stop]),
                k,
                exclude_seen=exclude_seen,
                batch_size=batch,
                progress=progress,
            )
            yield Recs(ids[start:stop], items, scores, self.items_)
