"""The recommender contract: public ``fit`` / ``score`` / ``recommend`` written once.

Subclasses implement ``_fit(matrix)`` and ``_score(user_idx, history)`` and nothing else: id
mapping, batching, cold-start fallback, filtering of seen items, top-k and timing live here.

Hyper-parameters are keyword arguments of ``__init__`` stored unchanged (scikit-learn style), so
``get_params``, ``clone``, ``repr`` and saved manifests are generic. Learned state is every
attribute whose name ends in ``_``.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue._types import ExternalIds, IdxArray, ScoreMatrix
from segue.data.interactions import Interactions, take_rows
from segue.data.vocab import IdMap
from segue.exceptions import NotFittedError, ParameterError, UnknownIdError
from segue.models.topk import topk

__all__ = ["BaseRecommender", "Recs", "Unknown", "excluded_items"]

Unknown = Literal["raise", "skip", "fallback"]
"""What ``recommend`` does with a user it has no history for: raise :class:`UnknownIdError`,
leave the user out of the result, or give the cold-start list (items by number of listeners)."""

_BATCH_FLOATS = 1 << 25  # 32M float32 scores (128 MiB) per scoring batch


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

    # parameters -----------------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters as given to ``__init__``."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> BaseRecommender:
        """Change hyper-parameters; unknown names raise :class:`ParameterError`."""
        valid = set(self._param_names())
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

    def _validate_params(self) -> None:
        """Raise :class:`ParameterError` for hyper-parameters out of range (called by fit)."""

    # fitting --------------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        """Whether the model has learned state (from ``fit`` or ``load``)."""
        return hasattr(self, self._fitted_marker)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load()")

    def learned_state(self) -> dict[str, Any]:
        """Every learned attribute (names ending in ``_``)."""
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def fit(self, train: Interactions, /) -> BaseRecommender:
        """Learn from ``train``; previous learned state is discarded. Returns ``self``."""
        if not isinstance(train, Interactions):
            raise ParameterError(f"fit expects Interactions, got {type(train).__name__}")
        self._validate_params()
        for name in list(self.learned_state()):
            delattr(self, name)
        start = time.perf_counter()
        matrix = train.matrix
        self.users_ = train.users
        self.history_ = matrix
        # cold-start list: items by number of distinct listeners
        self.fallback_scores_ = np.bincount(matrix.indices, minlength=train.n_items).astype(
            np.float32
        )
        self._fit(matrix)
        self.items_ = train.items  # set last: marks the model as fitted
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _fit(self, matrix: sp.csr_array) -> None:
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
        self._check_fitted()
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

    def recommend_idx(
        self,
        user_idx: IdxArray,
        history: sp.csr_array,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        exclude: sp.csr_array | None = None,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[IdxArray, ScoreMatrix]:
        """Top-k at the index level, in batches: the kernel behind :meth:`recommend`.

        ``history`` rows belong to ``user_idx`` (same order); with ``exclude_seen`` its items
        are never returned, nor are ``exclude``'s (another CSR of the same shape).
        """
        self._check_fitted()
        n = len(user_idx)
        batch = batch_size or self.default_batch_size()
        if batch < 1:
            raise ParameterError(f"batch_size must be at least 1, got {batch}")
        items = np.full((n, k), -1, dtype=np.int32)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        for start in range(0, n, batch):
            stop = min(n, start + batch)
            rows = history[start:stop]
            s = self.score(user_idx[start:stop], rows)
            mask = excluded_items(rows, exclude, start, stop, exclude_seen=exclude_seen)
            items[start:stop], scores[start:stop] = topk(s, k, exclude=mask)
            if progress is not None:
                progress(stop - start)
        return items, scores

    def _query(
        self, users: ExternalIds, history: Interactions | None, unknown: Unknown
    ) -> tuple[np.ndarray, IdxArray, sp.csr_array, IdxArray]:
        """External ids -> (ids kept, training indices or -1, source matrix, its row indices).

        Rows are not gathered here: callers take ``take_rows(source, source_idx[a:b])`` batch
        by batch, so a streamed run never holds every user's history twice.
        """
        self._check_fitted()
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
        ids, user_idx, source, source_idx = self._query(users, history, unknown)
        rows = take_rows(source, source_idx)
        items, scores = self.recommend_idx(
            user_idx, rows, k, exclude_seen=exclude_seen, batch_size=batch_size, progress=progress
        )
        return Recs(ids, items, scores, self.items_)

    def iter_recommend(
        self,
        users: ExternalIds,
        k: int = 10,
        *,
        history: Interactions | None = None,
        exclude_seen: bool = True,
        unknown: Unknown = "raise",
        batch_size: int | None = None,
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
            )
            yield Recs(ids[start:stop], items, scores, self.items_)
