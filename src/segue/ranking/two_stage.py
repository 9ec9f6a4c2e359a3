"""The two-stage playlist continuation model: first-stage candidates, LightGBM re-ranking.

Why: see :mod:`segue.ranking`. ``fit`` never sees evaluation answers: it carves challenge-style
queries out of the training playlists (the MPD's ten categories with
:func:`~segue.ranking.inner_split.inner_split`, Melon's question types with
:func:`~segue.ranking.inner_split.inner_split_melon`), fits the first-stage models on the rest,
fits the fusion weights of the candidate merge and learns the ranker on those queries'
candidates (early stopping on a held-out part of them), then refits the first-stage models on
all the playlists so that recommendations use every training playlist
(:mod:`segue.ranking.training`).

Melon (``task="melon"``, or ``"auto"`` on playlists with tags): tags are item columns of every
first-stage model, and a second ranker, learned the same way on tag candidates, picks the tags
to return. Song metadata (genre, release date against the playlist's update date) are features.

Cold start with nothing at all (no known seed, tag or title word): the recency-weighted
popularity list, whose half-life is picked on the inner queries (plain popularity when the
playlists have no dates or recency does not help there).

:class:`TwoStage` is a segue model like any other: ``fit(Interactions | Playlists)``, the one
inference path (its retrieval hook runs :func:`~segue.ranking.answering.rank`), and
:func:`segue.save` / :func:`segue.load` (first-stage models as nested model directories, the
rankers in LightGBM's text format, the feature context as arrays).

Listen counts (``task="listens"``, or ``"auto"`` on rows that were not encoded from playlists,
as ``segue train --listens`` gives): users' histories, inner questions made by
:func:`~segue.data.split.split_listens` from the training listens, features of the users and
items, labels that follow play counts, and optional ``scorers`` (models such as NCF that only
score the candidates, as ranker features): :mod:`segue.ranking.listens`.

Known limitation: the ranker learns on scores of models fit on the inner training part and is
applied to models refit on all playlists (slightly more data, so slightly larger kNN scores);
the relative features (``score_rel``, ranks) are the ones that transfer unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue._types import IdxArray, ScoreMatrix
from segue.data.interactions import Interactions
from segue.data.kinds import ItemKind
from segue.data.playlists import Playlists
from segue.exceptions import ModelFormatError, ParameterError
from segue.models.base import BaseRecommender, FitData, QueryBatch, Target, TopK
from segue.models.registry import register
from segue.ranking.answering import RankedLists, rank, rank_candidates
from segue.ranking.features import FeatureContext
from segue.ranking.listens import fit_listens, rank_listens
from segue.ranking.training import (
    COLD_HALF_LIVES,
    encode,
    first_stage_model,
    first_stage_models,
    fit_two_stage,
)

__all__ = [
    "COLD_HALF_LIVES",
    "RankedLists",
    "TwoStage",
    "default_first_stage",
    "playlists_from_rows",
    "rank_candidates",
]

_BATCH_CANDIDATES = 2_000_000
"""Candidate rows ranked at once (features are built for a batch at a time): 2,000 queries at
``n=1000``. Ranking a whole 10,000-query challenge set at once peaked at 6.2 GiB, against 1.2
GiB for 1,000 queries (bench/README.md, scale section), so memory must not follow the count."""


def default_first_stage() -> dict[str, dict[str, Any]]:
    """UserKNN, ItemKNN, WRMF and popularity with their defaults (EASE: add it yourself)."""
    return {
        "userknn": {"model": "userknn"},
        "itemknn": {"model": "itemknn"},
        "wrmf": {"model": "wrmf"},
        "pop": {"model": "popularity"},
    }


def playlists_from_rows(rows: sp.csr_array, items: Any, pids: Any = None) -> Playlists:
    """Rows (listens, or playlists known only as rows) as untitled playlists of their tracks.

    Tracks come in column order (the rows carry no order); title and tag columns are left out.
    """
    rows = sp.csr_array(rows)
    n = rows.shape[0]
    pids = np.arange(n) if pids is None else np.asarray(pids, dtype=object)
    is_track = items.kinds[rows.indices] == ItemKind.TRACK
    row_of = np.repeat(np.arange(n), np.diff(rows.indptr))[is_track]
    cols = rows.indices[is_track]
    pos = np.arange(len(cols)) - np.searchsorted(row_of, row_of)
    tracks = items.ids[cols]
    return Playlists(
        pd.DataFrame({"pid": pd.Series(pids, dtype=object), "name": [None] * n}),
        pd.DataFrame(
            {
                "pid": pd.Series(pids[row_of], dtype=object),
                "pos": pos,
                "track": pd.Series(tracks, dtype=object),
            }
        ),
        pd.DataFrame({"track": pd.Series(pd.unique(tracks), dtype=object)}),
    )


@register("two-stage")
class TwoStage(BaseRecommender):
    """Two-stage continuation (module docstring).

    Parameters
    ----------
    first_stage
        ``{name: {"model": NAME, "params": {...}}}`` (a name of ``segue train --model``), or
        ``{name: unfitted model}``; default :func:`default_first_stage`. Names become
        feature names: letters, digits and ``_``.
    n
        Merged candidates re-ranked per query.
    n_per_source
        Items each source retrieves (default ``n``).
    per_category
        Inner queries per challenge category.
    folds
        Inner splits with disjoint queries (each fits the first stage once more): more
        questions for the ranker without taking more playlists out of any first-stage fit.
    valid_fraction
        Share of the inner queries used for early stopping.
    last_k
        Seeds counted as "last" by the co-occurrence feature.
    with_titles
        Train the first stage with title columns (title-only queries need them).
    task
        ``"mpd"``, ``"melon"`` (tags as items, a tag ranker, Melon-style inner questions:
        ``4 * per_category`` of them, in the official question-type mix), ``"listens"``
        (listen-count users: :mod:`segue.ranking.listens`) or ``"auto"`` (``"melon"`` when
        the training playlists have tags, ``"listens"`` for rows not encoded from playlists).
    n_tags
        Melon: tag candidates each source retrieves for the tag ranker.
    fusion
        Fit per-source fusion weights on the inner queries (else plain reciprocal rank fusion).
    refit
        Refit the first-stage models on all playlists after the ranker is trained.
    labels
        Listens: ``"counts"`` (held-out items played at least the user's median count rank
        above the other held-out items) or ``"binary"``.
    scorers
        Listens: ``{name: spec}`` of models fit beside the first stage that only score the
        merged candidates, as ranker features (e.g. ``{"ncf": {"model": "ncf"}}``).
    seed
        Seed of the inner split, of the validation queries and of LightGBM.
    num_threads
        LightGBM threads.
    num_boost_round, early_stopping_rounds, ranker_params
        See :class:`~segue.ranking.lambdarank.LambdaRanker`. Listens: ``ranker_params`` go
        over :data:`segue.ranking.listens.LISTEN_RANKER_PARAMS` (smaller trees).
    """

    needs_playlists = True
    #: ``segue train --listens`` may fit it too (the listen-count task)
    fits_listens = True
    libraries = ("lightgbm", "implicit", "faiss-cpu")
    unsaved_state = frozenset({"inner_recall_", "inner_tag_recall_"})
    required_state = ("models_", "ranker_", "context_", "task_")

    def __init__(
        self,
        first_stage: Mapping[str, Any] | None = None,
        *,
        n: int = 1000,
        n_per_source: int | None = None,
        per_category: int = 100,
        folds: int = 3,
        valid_fraction: float = 0.2,
        last_k: int = 5,
        with_titles: bool = True,
        task: str = "auto",
        n_tags: int = 100,
        fusion: bool = True,
        refit: bool = True,
        labels: str = "counts",
        scorers: Mapping[str, Any] | None = None,
        seed: int = 0,
        num_threads: int = 2,
        num_boost_round: int = 500,
        early_stopping_rounds: int = 30,
        ranker_params: dict[str, Any] | None = None,
    ) -> None:
        self.first_stage = default_first_stage() if first_stage is None else dict(first_stage)
        self.n = n
        self.n_per_source = n_per_source
        self.per_category = per_category
        self.folds = folds
        self.valid_fraction = valid_fraction
        self.last_k = last_k
        self.with_titles = with_titles
        self.task = task
        self.n_tags = n_tags
        self.fusion = fusion
        self.refit = refit
        self.labels = labels
        self.scorers = None if scorers is None else dict(scorers)
        self.seed = seed
        self.num_threads = num_threads
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.ranker_params = dict(ranker_params or {})

    def _validate_params(self) -> None:
        for name in ("n", "folds", "n_tags", "per_category", "num_boost_round", "last_k"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ParameterError(f"{name} must be a positive int, got {value!r}")
        if self.task not in ("auto", "mpd", "melon", "listens"):
            raise ParameterError(
                f"task must be 'auto', 'mpd', 'melon' or 'listens', got {self.task!r}"
            )
        if self.labels not in ("counts", "binary"):
            raise ParameterError(f"labels must be 'counts' or 'binary', got {self.labels!r}")
        if not isinstance(self.valid_fraction, int | float) or not 0.0 < self.valid_fraction < 1:
            raise ParameterError(f"valid_fraction must be in (0, 1), got {self.valid_fraction}")
        if not isinstance(self.first_stage, dict) or not self.first_stage:
            raise ParameterError("first_stage needs at least one model")
        bad = [name for name in self.first_stage if not re.fullmatch(r"[A-Za-z0-9_]+", name)]
        if bad:
            raise ParameterError(
                f"first-stage names must be letters, digits and '_' (feature names), got {bad}"
            )
        first_stage_models(self)  # bad entries, names and parameters fail here, before fitting
        if self.scorers is not None:
            if not isinstance(self.scorers, dict):
                raise ParameterError("scorers must be a table of {name: {model, params}}")
            bad = [n for n in self.scorers if not re.fullmatch(r"[A-Za-z0-9_]+", n)]
            clash = sorted(set(self.scorers) & set(self.first_stage))
            if bad or clash:
                raise ParameterError(
                    f"scorer names must be letters, digits and '_' and differ from the "
                    f"first-stage names, got {bad or clash}"
                )
            for name, spec in self.scorers.items():
                first_stage_model(name, spec)

    # fitting ---------------------------------------------------------------------------------
    def _task(self, playlists: Playlists) -> str:
        if self.task != "auto":
            return self.task
        table = playlists.playlists
        has_tags = "tags" in table.columns and bool(
            table["tags"].map(len, na_action="ignore").gt(0).any()
        )
        return "melon" if has_tags else "mpd"

    def fit(
        self, train: Interactions | Playlists, /, *, valid: Interactions | None = None
    ) -> TwoStage:
        """Learn from training playlists (or their encoding); never from evaluation answers."""
        if isinstance(train, Playlists):
            self.task_ = self._task(train)
            train = encode(self, train)
        super().fit(train, valid=valid)
        return self

    def _fit(self, data: FitData) -> Interactions:
        playlists = data.playlists
        full = data.train
        if self.task == "listens" or (self.task == "auto" and playlists is None):
            self.task_ = "listens"
            return fit_listens(self, full)
        if self.scorers:
            raise ParameterError("scorers are used by the listen-count task only")
        if playlists is None:  # plain rows: each one an untitled playlist of its items
            playlists = playlists_from_rows(full.matrix, full.items, full.users.ids)
            full = Interactions(full.users, full.items, full.matrix, playlists)
        self.task_ = self._task(playlists)
        if data.playlists is not None and not self._encoded_like(full):
            full = encode(self, playlists)
        return fit_two_stage(self, playlists, full)

    def _encoded_like(self, train: Interactions) -> bool:
        """Whether ``train`` has the columns this model's own encoding would give."""
        has_tags = train.items.count(ItemKind.TAG) > 0
        has_titles = len(train.items.columns(ItemKind.TITLE_WORD, ItemKind.TITLE)) > 0
        return has_tags == (self.task_ == "melon") and has_titles == bool(self.with_titles)

    # answering -------------------------------------------------------------------------------
    def default_batch_size(self) -> int:
        """Queries ranked at once: about two million candidate rows (2,000 at ``n=1000``)."""
        return int(max(100, min(10_000, _BATCH_CANDIDATES // max(1, self.n))))

    def rank(
        self,
        queries: Playlists,
        n: int = 500,
        n_tags: int = 0,
        exclude: sp.csr_array | None = None,
    ) -> RankedLists:
        """Tracks (and, for a Melon model, ``n_tags`` tags) of every query, one scoring pass.

        Lists hold item indices into :attr:`items_`, best first, ``-1`` padded; the result
        also holds the merged candidates and the time per step (for benchmarks).
        """
        from segue.inference.encode import QueryEncoder

        self.check_fitted()
        if n < 1:
            raise ParameterError(f"n must be at least 1, got {n}")
        if n_tags and self.tag_ranker_ is None:
            raise ParameterError("this two-stage model was trained without tags (not Melon)")
        rows = QueryEncoder(self.items_).playlists(queries).matrix
        return rank(self, rows, queries, n, n_tags, exclude)

    def continue_playlists(self, queries: Playlists, n: int = 500) -> dict[Any, list[Any]]:
        """``{pid: [track, ...]}``: ``n`` tracks per query, best first, no seed repeated.

        A convenience over :func:`segue.inference.continue_playlists` (the same lists).
        """
        from segue.inference.continuation import continue_playlists

        out: dict[Any, list[Any]] = {}
        for batch in continue_playlists(self, queries, n):
            out.update(zip(batch.pids.tolist(), batch.tracks, strict=True))
        return out

    def answer_questions(
        self, queries: Playlists, n_songs: int = 100, n_tags: int = 10
    ) -> list[dict[str, Any]]:
        """Melon results: ``[{"id", "songs", "tags"}]``, no given song or tag repeated."""
        from segue.inference.continuation import continue_playlists

        out = []
        for batch in continue_playlists(self, queries, n_songs, n_tags=n_tags):
            assert batch.tags is not None
            out += [
                {"id": pid, "songs": songs, "tags": tags}
                for pid, songs, tags in zip(
                    batch.pids.tolist(), batch.tracks, batch.tags, strict=True
                )
            ]
        return out

    def _retrieve(self, batch: QueryBatch, targets: Mapping[str, Target]) -> dict[str, TopK]:
        """Re-ranked lists for one batch: tracks, and tags for a target over tag columns."""
        user_idx, rows, mask, playlists = batch.user_idx, batch.rows, batch.mask, batch.playlists
        if self.task_ == "listens":
            return self._retrieve_listens(batch, targets)
        if playlists is None:
            pids = np.where(user_idx >= 0, user_idx, -1 - np.arange(len(user_idx)))
            playlists = playlists_from_rows(rows, self.items_, pids)
        kinds = self.items_.kinds
        tag_target = {
            name: t
            for name, t in targets.items()
            if t.allow is not None and len(t.allow) and (kinds[t.allow] == ItemKind.TAG).all()
        }
        track_targets = {name: t for name, t in targets.items() if name not in tag_target}
        n = max([t.k for t in track_targets.values()], default=1)
        n_tags = max([t.k for t in tag_target.values()], default=0)
        if n_tags and self.tag_ranker_ is None:
            raise ParameterError("this two-stage model was trained without tags (not Melon)")
        # the first stage leaves out the seeds the mask holds (as a challenge query does); the
        # mask's other items are dropped from the ranked lists, which are made longer for it
        if mask is None:
            first_stage_mask = sp.csr_array(rows.shape, dtype=np.float32)
        else:
            first_stage_mask = sp.csr_array(mask.multiply(rows) != 0, dtype=np.float32)
        extra = 0
        if mask is not None:
            extra = int(np.max(np.diff(mask.indptr) - np.diff(first_stage_mask.indptr), initial=0))
        ranked = rank(self, rows, playlists, n + extra, n_tags, exclude=first_stage_mask)
        self.last_timings = ranked.seconds
        out: dict[str, TopK] = {}
        for name, t in track_targets.items():
            out[name] = _cut(ranked.tracks, mask if extra > 0 else None, t.k)
        for name, t in tag_target.items():
            assert ranked.tags is not None
            out[name] = _cut(ranked.tags, None, t.k)
        return out

    def _retrieve_listens(
        self, batch: QueryBatch, targets: Mapping[str, Target]
    ) -> dict[str, TopK]:
        """Listen-count users: re-ranked candidates of each row (trained users by index)."""
        k = max(t.k for t in targets.values())
        items, scores = rank_listens(self, batch.user_idx, batch.rows, batch.mask, k)
        out: dict[str, TopK] = {}
        for name, t in targets.items():
            if t.allow is None:
                out[name] = (items[:, : t.k].copy(), scores[:, : t.k].copy())
                continue
            keep = np.isin(items, t.allow) & (items >= 0)
            lists = np.full((len(items), t.k), -1, dtype=np.int32)
            for r in range(len(items)):
                row = items[r][keep[r]][: t.k]
                lists[r, : len(row)] = row
            ranks = -np.arange(1, t.k + 1, dtype=np.float32)
            out[name] = (lists, np.where(lists >= 0, ranks, -np.inf).astype(np.float32))
        return out

    def _score(self, user_idx: IdxArray, history: sp.csr_array) -> ScoreMatrix:
        """Minus the rank of each of the ``n`` re-ranked tracks; ``-inf`` for the others."""
        batch = QueryBatch(user_idx, sp.csr_array(history), sp.csr_array(history))
        lists = self._retrieve(batch, {"t": Target(self.n)})["t"]
        scores = np.full(history.shape, -np.inf, dtype=np.float32)
        items, ranks = lists
        rows, cols = np.nonzero(items >= 0)
        scores[rows, items[rows, cols]] = ranks[rows, cols]
        return scores

    # saving ----------------------------------------------------------------------------------
    def state_to_save(self) -> dict[str, Any]:
        """The base state, with the feature context as arrays (its matrix stored once)."""
        state = super().state_to_save()
        if self.task_ == "listens":
            return state
        arrays = self.context_.to_arrays()
        shared = self._history_source()
        if shared is not None:  # the matrix is that first-stage model's history_: keep one copy
            arrays = {k: v for k, v in arrays.items() if not k.startswith("matrix.")}
        state["context_"] = arrays
        state["context_matrix_from_"] = shared
        for name in ("users_", "history_", "fallback_scores_"):  # the first stage holds them
            if shared is not None:
                state.pop(name, None)
        return state

    def restore_state(self, state: dict[str, Any]) -> None:
        """Rebuild the feature context; share one item vocabulary among the sources."""
        state = dict(state)
        models = state["models_"]
        if state.get("task_") == "listens":
            first = next(iter(models.values()))
            for other in (*models.values(), *(state.get("scorers_") or {}).values()):
                if other.items_ == first.items_:
                    other.items_ = first.items_
            state["items_"] = first.items_
            state["ranker_"].num_threads = self.num_threads
            super().restore_state(state)
            return
        # one shared vocabulary object: every query checks that the sources share their items,
        # and an identity test is free where comparing 200K ids is not
        first = next(iter(models.values()))
        for other in models.values():
            if other.items_ == first.items_:
                other.items_ = first.items_
        arrays = dict(state.pop("context_"))
        shared = state.pop("context_matrix_from_", None)
        if shared is not None:
            source = models[shared]
            history = sp.csr_array(source.history_)
            arrays["matrix.data"] = np.ones(history.nnz, dtype=np.float32)
            arrays["matrix.indices"] = history.indices
            arrays["matrix.indptr"] = history.indptr
            arrays["matrix.shape"] = np.asarray(history.shape, dtype=np.int64)
            state.setdefault("users_", source.users_)
            state.setdefault("history_", source.history_)
            state.setdefault("fallback_scores_", source.fallback_scores_)
        state["items_"] = first.items_
        for name in ("ranker_", "tag_ranker_"):
            if state.get(name) is not None:
                state[name].num_threads = self.num_threads
        super().restore_state(state)
        self.context_ = FeatureContext.from_arrays(arrays)

    def check_state(self) -> None:
        """The base checks, then the parts of a two-stage model that must agree."""
        super().check_state()
        if self.task_ not in ("mpd", "melon", "listens"):
            raise ModelFormatError(f"task_ is {self.task_!r}, not 'mpd', 'melon' or 'listens'")
        if not isinstance(self.models_, dict) or not self.models_:
            raise ModelFormatError("models_ holds no first-stage model")
        for name, model in self.models_.items():
            if model.items_ != self.items_:
                raise ModelFormatError(f"first-stage model {name!r} has other items")
        weights = self.fusion_weights_
        if weights is not None and np.shape(weights) != (len(self.models_),):
            raise ModelFormatError(
                f"fusion_weights_ has shape {np.shape(weights)}, one per source expected "
                f"({len(self.models_)})"
            )
        n_features = self.ranker_.num_features()
        if n_features != len(self.feature_names_):
            raise ModelFormatError(
                f"the ranker takes {n_features} features, feature_names_ names "
                f"{len(self.feature_names_)}"
            )
        if (self.task_ == "melon") != (self.tag_ranker_ is not None):
            raise ModelFormatError("a Melon model needs a tag ranker, and only a Melon model")
        if self.task_ == "listens":
            self._check_listens()
            return
        if self.context_.matrix.shape != self.history_.shape:
            raise ModelFormatError("context_ does not match the training matrix")

    def _check_listens(self) -> None:
        scorers = getattr(self, "scorers_", None)
        stats = getattr(self, "item_stats_", None)
        if not isinstance(scorers, dict):
            raise ModelFormatError("a listen-count model needs scorers_ (a table of models)")
        for name, model in scorers.items():
            if model.items_ != self.items_:
                raise ModelFormatError(f"scorer {name!r} has other items")
        if not isinstance(stats, np.ndarray) or stats.shape != (2, len(self.items_)):
            raise ModelFormatError(f"item_stats_ must have shape (2, {len(self.items_)})")
        for name, model in self.models_.items():
            if model.users_ != self.users_:
                raise ModelFormatError(f"first-stage model {name!r} has other users")

    def _history_source(self) -> str | None:
        """A first-stage model whose ``history_`` has the context matrix's entries, if any."""
        m = self.context_.matrix
        for name, model in self.models_.items():
            h = sp.csr_array(model.history_)
            if (
                h.shape == m.shape
                and h.nnz == m.nnz
                and np.array_equal(h.indptr, m.indptr)
                and np.array_equal(h.indices, m.indices)
                and np.all(m.data == 1.0)
            ):
                return name
        return None


def _cut(lists: np.ndarray, mask: sp.csr_array | None, k: int) -> TopK:
    """The first ``k`` of ranked lists, with ``mask``'s items removed.

    Scores are minus the rank (1-based), ``-inf`` for padding.
    """
    lists = np.array(lists, dtype=np.int32)
    if mask is not None and mask.nnz:
        row_of = np.repeat(np.arange(mask.shape[0]), np.diff(mask.indptr))
        banned = set(zip(row_of.tolist(), mask.indices.tolist(), strict=True))
        for r in range(lists.shape[0]):
            keep = [i for i in lists[r] if i >= 0 and (r, i) not in banned]
            lists[r] = -1
            lists[r, : len(keep)] = keep
    items = np.full((lists.shape[0], k), -1, dtype=np.int32)
    width = min(k, lists.shape[1])
    items[:, :width] = lists[:, :width]
    scores = np.where(items >= 0, -np.arange(1, k + 1, dtype=np.float32), -np.inf).astype(
        np.float32
    )
    return items, scores
