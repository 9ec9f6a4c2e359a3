"""The two-stage model for listen counts: the YouTube paper's ranking stage over user histories.

Why a path of its own: a listen-count user is not a playlist. There is no order, title or
artist metadata to read, and the questions are not the MPD's categories: a user's held-out
listens must be found from the rest (the task :func:`segue.data.split.split_listens` writes).
What carries over from the playlist model is the design: first-stage models retrieve
candidates for recall (EASE, WRMF, the kNNs, ...), and a LightGBM lambdarank ranker re-orders
them with features the sources do not use, learned on questions carved from the training
listens only.

Fitting (:func:`fit_listens`): for each of ``folds`` inner splits, ``split_listens`` (seed
``seed + fold``) picks 20% of the users with 10+ items and hides half of their items, in exactly
the format of the task; the first-stage models are fit on the rest (same user and item
vocabularies: the hidden pairs are simply removed), each retrieves ``n_per_source`` items for the
inner targets (from their trained state: the targets are training users), the union is ordered
by fusion weights fitted on fold 0 and cut to ``n``; pairs get features and labels; one ranker
learns on every fold's pairs (early stopping on a seeded share of the inner users). Then the
first-stage models are refit on all the listens.

Labels follow play counts (the paper weighs positives by watch time; LightGBM's lambdarank only
takes weights per query, so the counts enter the labels): a held-out item is relevant (1), and
one the user played at least as often as the median of its held-out items gets 2 (gain 3), so
among relevant items the ranker puts the heavily played ones first (``labels="binary"``: all 1).

Features of a (user, candidate) pair, all vectorised:

- per source ``s``: ``s__score``, ``s__rank``, ``s__score_rel`` (score over the user's best score
  from that source; NaN where the source did not retrieve the pair); ``n_sources``, ``rrf``;
- per scorer ``s`` (models that only score candidates, e.g. NCF): ``s__score``, ``s__score_rel``;
- user: ``u_items`` (``log1p`` distinct items), ``u_plays`` (``log1p`` total plays),
  ``u_plays_per_item``, ``u_pop_mean`` (mean ``log1p`` listeners of the user's items);
- item: ``i_users`` (``log1p`` listeners), ``i_plays`` (``log1p`` total plays),
  ``i_plays_per_user``; pair: ``i_pop_gap`` (``i_users`` minus ``u_pop_mean``: how mainstream the
  candidate is against the user's own taste).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from segue.data.interactions import Interactions
from segue.data.split import split_listens
from segue.exceptions import ParameterError
from segue.models.base import BaseRecommender, Target
from segue.ranking.candidates import (
    CandidateSet,
    _fused,
    _inverse_ranks,
    fit_fusion_weights,
    merge_candidates,
    pair_labels,
)
from segue.ranking.lambdarank import LambdaRanker

if TYPE_CHECKING:
    from segue.ranking.two_stage import TwoStage

__all__ = ["LISTEN_RANKER_PARAMS", "ItemStats", "fit_listens", "listen_features", "rank_listens"]

LABELS = ("counts", "binary")
#: LightGBM parameters under ``TwoStage.ranker_params`` for listen counts: smaller trees than
#: the playlist ranker's (63 leaves, 50 rows a leaf). A listen-count ranker learns from a few
#: hundred inner users a fold; on the validation splits of ``bench/two_stage_listens.py`` these
#: scored NDCG@100 0.2275 (MSD) and 0.3780 (Last.fm) with 5 folds, against 0.2235 and 0.3760
#: for the playlist trees with 5 folds too (bench/README.md).
LISTEN_RANKER_PARAMS: dict[str, int] = {"num_leaves": 15, "min_data_in_leaf": 100}


class ItemStats:
    """Per-item listeners and plays of the training listens (float32 arrays)."""

    def __init__(self, users: np.ndarray, plays: np.ndarray) -> None:
        self.users = np.asarray(users, dtype=np.float32)
        self.plays = np.asarray(plays, dtype=np.float32)

    @classmethod
    def of(cls, matrix: sp.csr_array) -> ItemStats:
        """The statistics of a users x items count matrix."""
        matrix = sp.csr_array(matrix)
        n_items = matrix.shape[1]
        users = np.bincount(matrix.indices, minlength=n_items)
        plays = np.bincount(matrix.indices, weights=matrix.data, minlength=n_items)
        return cls(users, plays)

    def to_array(self) -> np.ndarray:
        """``(2, n_items)`` float32: listeners, plays."""
        return np.vstack([self.users, self.plays]).astype(np.float32)

    @classmethod
    def from_array(cls, array: np.ndarray) -> ItemStats:
        """Read back :meth:`to_array`."""
        return cls(array[0], array[1])


def _scorer_models(model: TwoStage) -> dict[str, BaseRecommender]:
    from segue.ranking.training import first_stage_model

    return {name: first_stage_model(name, spec) for name, spec in (model.scorers or {}).items()}


def retrieve_listen_candidates(
    models: Mapping[str, BaseRecommender],
    user_idx: np.ndarray,
    rows: sp.csr_array,
    n: int,
    n_per_source: int,
    *,
    mask: sp.csr_array | None,
    weights: np.ndarray | None = None,
) -> CandidateSet:
    """Every source's top ``n_per_source`` for the rows (trained users by index), merged.

    ``mask`` holds the items no source may return (a user's own items, as the task asks).
    """
    names = list(models)
    items = next(iter(models.values())).items_
    tops_i, tops_s, seconds = [], [], {}
    for name in names:
        start = time.perf_counter()
        found = models[name].retrieve(
            user_idx, rows, {"t": Target(n_per_source)}, exclude_seen=False, exclude=mask
        )["t"]
        seconds[name] = time.perf_counter() - start
        tops_i.append(found[0])
        tops_s.append(found[1])
    pids = np.arange(rows.shape[0])
    return merge_candidates(names, tops_i, tops_s, n, items, rows, pids, seconds, weights)


def listen_features(
    cands: CandidateSet,
    rows: sp.csr_array,
    stats: ItemStats,
    scorer_scores: Mapping[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """``(n_pairs, n_features)`` float32 features of the pairs, and their names (module doc)."""
    q, it = cands.query.astype(np.int64), cands.item.astype(np.int64)
    n_q = rows.shape[0]
    cols: list[np.ndarray] = []
    names: list[str] = []

    def best_per_query(values: np.ndarray) -> np.ndarray:
        best = np.full(n_q, np.nan, dtype=np.float64)
        finite = np.isfinite(values)
        np.fmax.at(best, q[finite], values[finite])
        return best[q]

    for j, source in enumerate(cands.sources):
        score = cands.score[:, j].astype(np.float64)
        score[~np.isfinite(score)] = np.nan
        best = best_per_query(score)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.where(best > 0, score / best, np.nan)
        cols += [score, cands.rank[:, j], rel]
        names += [f"{source}__score", f"{source}__rank", f"{source}__score_rel"]
    cols.append(np.sum(~np.isnan(cands.rank), axis=1).astype(np.float64))
    names.append("n_sources")
    weights = cands.weights if cands.weights is not None else np.ones(len(cands.sources))
    cols.append(_fused(_inverse_ranks(cands.rank), np.asarray(weights, dtype=np.float64)))
    names.append("rrf")
    for source, score in (scorer_scores or {}).items():
        score = np.asarray(score, dtype=np.float64)
        best = best_per_query(score)
        cols += [score, score - best]
        names += [f"{source}__score", f"{source}__score_gap"]
    rows = sp.csr_array(rows)
    n_items_u = np.diff(rows.indptr).astype(np.float64)
    row_of = np.repeat(np.arange(n_q), np.diff(rows.indptr))
    plays_u = np.bincount(row_of, weights=rows.data, minlength=n_q)
    log_users = np.log1p(stats.users.astype(np.float64))
    pop_sum = np.bincount(row_of, weights=log_users[rows.indices], minlength=n_q)
    with np.errstate(invalid="ignore", divide="ignore"):
        pop_mean = np.where(n_items_u > 0, pop_sum / n_items_u, np.nan)
        per_item = np.where(n_items_u > 0, plays_u / n_items_u, np.nan)
        i_per_user = np.where(stats.users > 0, stats.plays / stats.users, np.nan)
    i_users = log_users[it]
    cols += [
        np.log1p(n_items_u)[q],
        np.log1p(plays_u)[q],
        np.log1p(per_item)[q],
        pop_mean[q],
        i_users,
        np.log1p(stats.plays.astype(np.float64))[it],
        np.log1p(i_per_user)[it],
        i_users - pop_mean[q],
    ]
    names += [
        "u_items",
        "u_plays",
        "u_plays_per_item",
        "u_pop_mean",
        "i_users",
        "i_plays",
        "i_plays_per_user",
        "i_pop_gap",
    ]
    return np.column_stack(cols).astype(np.float32), names


def _scorer_scores(
    scorers: Mapping[str, BaseRecommender],
    cands: CandidateSet,
    user_idx: np.ndarray,
    rows: sp.csr_array,
) -> dict[str, np.ndarray]:
    """Each scorer's score of every candidate pair (``score_pairs`` where the model has it)."""
    out = {}
    for name, scorer in scorers.items():
        if hasattr(scorer, "score_pairs"):
            out[name] = scorer.score_pairs(user_idx, rows, cands.query, cands.item)
        else:
            scores = scorer.score(user_idx, rows)
            out[name] = scores[cands.query, cands.item]
    return out


def _labels(cands: CandidateSet, answers: sp.csr_array, mode: str) -> np.ndarray:
    """Relevance of each pair: 0, 1 (held out), 2 (held out and played at least the median)."""
    hit = pair_labels(cands, answers)
    labels = hit.astype(np.float32)
    if mode == "binary" or not hit.any():
        return labels
    strong = answers.copy()
    for r in range(strong.shape[0]):
        a, b = strong.indptr[r], strong.indptr[r + 1]
        if b > a:
            counts = strong.data[a:b]
            strong.data[a:b] = (counts >= np.median(counts)).astype(np.float32)
    strong.eliminate_zeros()
    labels[pair_labels(cands, strong)] = 2.0
    return labels


def _inner_split(train: Interactions, seed: int) -> tuple[sp.csr_array, np.ndarray, sp.csr_array]:
    """One inner question set in the task's format: (visible matrix, target rows, answers)."""
    frame = train.to_frame().rename(columns={"weight": "count"})
    split = split_listens(frame, seed=seed)
    rows = train.users.numbers(split.answers["user_id"].to_numpy(dtype=object))
    cols = train.items.numbers(split.answers["item_id"].to_numpy(dtype=object))
    counts = split.answers["count"].to_numpy(dtype=np.float32)
    answers = sp.csr_array((counts, (rows, cols)), shape=train.matrix.shape, dtype=np.float32)
    answers.sum_duplicates()
    hidden = sp.csr_array(answers, copy=True)
    hidden.data[:] = 1.0
    full = sp.csr_array(train.matrix)
    visible = sp.csr_array(full - full.multiply(hidden))
    visible.eliminate_zeros()
    visible.sort_indices()
    targets = np.sort(train.users.numbers(np.asarray(split.targets, dtype=object))).astype(np.int32)
    return visible, targets, sp.csr_array(answers[targets])


def _fit_models(
    specs: Mapping[str, BaseRecommender], data: Interactions
) -> dict[str, BaseRecommender]:
    return {name: model.clone().fit(data) for name, model in specs.items()}


def fit_listens(model: TwoStage, train: Interactions) -> Interactions:
    """Learn ``model``'s listen-count state from ``train`` (module docstring); never answers."""
    from segue.ranking.training import first_stage_models

    if model.labels not in LABELS:
        raise ParameterError(f"labels must be one of {', '.join(LABELS)}, got {model.labels!r}")
    sources = first_stage_models(model)
    scorers = _scorer_models(model)
    n_per_source = max(model.n_per_source or model.n, model.n)
    timings: dict[str, float] = {}
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    names: list[str] = []
    weights = None
    for fold in range(model.folds):
        start = time.perf_counter()
        visible, targets, answers = _inner_split(train, model.seed + fold)
        inner = Interactions(train.users, train.items, visible)
        models = _fit_models(sources, inner)
        fold_scorers = _fit_models(scorers, inner)
        timings["inner_fit"] = timings.get("inner_fit", 0.0) + time.perf_counter() - start
        start = time.perf_counter()
        rows = sp.csr_array(visible[targets])
        cands = retrieve_listen_candidates(models, targets, rows, model.n, n_per_source, mask=rows)
        if fold == 0:
            truth = {
                i: answers.indices[answers.indptr[i] : answers.indptr[i + 1]]
                for i in range(len(targets))
            }
            ids = {k: list(train.items.ids[v]) for k, v in truth.items()}
            weights = fit_fusion_weights(cands, ids, model.n) if model.fusion else None
            model.inner_recall_ = _recall(cands.reorder(weights).top(), answers)
        if weights is not None:
            cands = cands.reorder(weights)
        cands = cands.top()
        timings["inner_candidates"] = (
            timings.get("inner_candidates", 0.0) + time.perf_counter() - start
        )
        start = time.perf_counter()
        extra = _scorer_scores(fold_scorers, cands, targets, rows)
        x, names = listen_features(cands, rows, ItemStats.of(visible), extra)
        parts.append((x, _labels(cands, answers, model.labels), cands.query.astype(np.int64)))
        timings["inner_features"] = timings.get("inner_features", 0.0) + time.perf_counter() - start
    start = time.perf_counter()
    ranker = _train(model, parts, names)
    timings["ranker"] = time.perf_counter() - start
    start = time.perf_counter()
    model.models_ = _fit_models(sources, train)
    model.scorers_ = _fit_models(scorers, train)
    timings["refit"] = time.perf_counter() - start
    model.ranker_ = ranker
    model.tag_ranker_ = None
    model.fusion_weights_ = weights
    model.feature_names_ = names
    model.item_stats_ = ItemStats.of(train.matrix).to_array()
    model.context_ = None
    model.cold_half_life_ = None
    model.timings_ = timings
    return train


def _recall(cands: CandidateSet, answers: sp.csr_array) -> float:
    """Mean share of each inner user's held-out items among its merged candidates."""
    hits = np.bincount(cands.query[pair_labels(cands, answers)], minlength=answers.shape[0])
    n = np.diff(answers.indptr)
    ok = n > 0
    return float(np.mean(hits[ok] / n[ok])) if ok.any() else float("nan")


def _train(
    model: TwoStage, parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], names: list[str]
) -> LambdaRanker:
    """One lambdarank ranker on the folds' pairs; early stopping on a seeded share of users."""
    offsets = np.cumsum([0] + [int(q.max()) + 1 if len(q) else 0 for _, _, q in parts])
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    query = np.concatenate([p[2] + off for p, off in zip(parts, offsets[:-1], strict=True)])
    n_q = int(offsets[-1])
    rng = np.random.default_rng(model.seed)
    is_valid = rng.random(n_q) < model.valid_fraction
    positives = np.bincount(query[y > 0], minlength=n_q) > 0
    use = positives[query]
    tr, va = use & ~is_valid[query], use & is_valid[query]
    if not tr.any() or not va.any():
        raise ParameterError(
            "too few inner users with a held-out item among the candidates to train the ranker"
        )
    ranker = LambdaRanker(
        model.num_boost_round,
        model.early_stopping_rounds,
        seed=model.seed,
        num_threads=model.num_threads,
        params={"eval_at": [100], **LISTEN_RANKER_PARAMS, **model.ranker_params},
    )
    ranker.fit(x[tr], y[tr], query[tr], feature_names=names, valid=(x[va], y[va], query[va]))
    return ranker


def rank_listens(
    model: TwoStage,
    user_idx: np.ndarray,
    rows: sp.csr_array,
    mask: sp.csr_array | None,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(n, k)`` re-ranked items (``-1`` padded) and scores (minus the rank) per query row."""
    from segue.ranking.answering import rank_candidates

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    n = max(model.n, k)
    cands = retrieve_listen_candidates(
        model.models_,
        user_idx,
        rows,
        n,
        max(model.n_per_source or model.n, n),
        mask=mask,
        weights=model.fusion_weights_,
    ).top(n)
    seconds["first_stage"] = time.perf_counter() - start
    start = time.perf_counter()
    extra = _scorer_scores(model.scorers_, cands, user_idx, rows)
    x, _ = listen_features(cands, rows, ItemStats.from_array(model.item_stats_), extra)
    seconds["features"] = time.perf_counter() - start
    start = time.perf_counter()
    scores = model.ranker_.predict(x) if len(x) else np.zeros(0)
    lists = rank_candidates(cands, scores, k)
    seconds["ranker"] = time.perf_counter() - start
    model.last_timings = seconds
    out = np.where(lists >= 0, -np.arange(1, k + 1, dtype=np.float32), -np.inf).astype(np.float32)
    return lists, out
