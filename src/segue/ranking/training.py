"""Fitting the two-stage model: inner questions, first stage, fusion, cold start, rankers.

Why this is apart from :mod:`segue.ranking.two_stage`: fitting is the long, many-step part
(inner questions carved out of the training playlists, the first stage fit per fold, candidate
retrieval, fusion weights, the cold-start half-life, features and LightGBM lambdarank), while
the model class only holds the parameters and the learned state. Nothing here ever sees
evaluation answers: every question is made from training playlists.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from segue.data.interactions import Interactions
from segue.data.kinds import ItemKind, item_id
from segue.data.playlists import Playlists
from segue.exceptions import ParameterError
from segue.inference.encode import playlist_interactions
from segue.models.base import BaseRecommender
from segue.models.registry import model_class
from segue.ranking.answering import rank_targets
from segue.ranking.candidates import (
    CandidateSet,
    answer_matrix,
    candidate_recall,
    fit_fusion_weights,
    pair_labels,
    query_history,
    retrieve_candidate_sets,
)
from segue.ranking.features import FeatureContext, build_features, recent_popularity
from segue.ranking.inner_split import InnerSplit, inner_split, inner_split_melon
from segue.ranking.lambdarank import LambdaRanker

if TYPE_CHECKING:
    from segue.ranking.two_stage import TwoStage

__all__ = [
    "COLD_HALF_LIVES",
    "first_stage_model",
    "first_stage_models",
    "fit_first_stage",
    "fit_two_stage",
    "inner_questions",
    "labelled_features",
    "pick_cold_half_life",
    "train_ranker",
]

COLD_HALF_LIVES = (30.0, 90.0, 365.0, 1095.0)
"""Half-lives (days) of the recency-weighted cold-start list tried on the inner queries."""


def first_stage_model(name: str, spec: Any) -> BaseRecommender:
    """An unfitted model from a first-stage entry: a model object (cloned) or a spec.

    A spec is ``{"model": NAME, "params": {...}}`` with a name of ``segue train --model``;
    anything else, an unknown name or an unknown parameter is a :class:`ParameterError` that
    names the entry (``[first_stage.NAME]``, as written in ``two-stage.toml``).
    """
    if isinstance(spec, BaseRecommender):
        return spec.clone()
    if not isinstance(spec, dict):
        raise ParameterError(f"[first_stage.{name}] must be a table with a 'model' key")
    if set(spec) - {"model", "params"} or "model" not in spec:
        raise ParameterError(f"[first_stage.{name}] takes 'model' and 'params', got {sorted(spec)}")
    return model_class(spec["model"])().set_params(**spec.get("params", {}))


def first_stage_models(model: TwoStage) -> dict[str, BaseRecommender]:
    """Unfitted first-stage models from ``model.first_stage`` (specs or model objects)."""
    return {name: first_stage_model(name, spec) for name, spec in model.first_stage.items()}


def encode(model: TwoStage, playlists: Playlists) -> Interactions:
    """Playlists as the first stage's rows: tags for Melon, title columns when asked."""
    return playlist_interactions(
        playlists, with_tags=model.task_ == "melon", with_titles=model.with_titles
    )


def fit_first_stage(
    model: TwoStage, playlists: Playlists, inter: Interactions | None = None
) -> tuple[Interactions, dict[str, BaseRecommender], dict[str, float]]:
    """Every first-stage model fit on ``playlists`` (or their given encoding ``inter``)."""
    inter = encode(model, playlists) if inter is None else inter
    models, seconds = {}, {}
    for name, source in first_stage_models(model).items():
        start = time.perf_counter()
        models[name] = source.fit(inter)
        seconds[name] = time.perf_counter() - start
    return inter, models, seconds


def inner_questions(
    model: TwoStage, playlists: Playlists, fold: int, exclude: np.ndarray
) -> InnerSplit:
    """Fold ``fold``'s questions, in the task's own format, none of them in ``exclude``."""
    seed = model.seed + fold
    if model.task_ == "melon":
        return inner_split_melon(playlists, 4 * model.per_category, seed=seed, exclude=exclude)
    return inner_split(playlists, model.per_category, seed=seed, exclude=exclude)


def pick_cold_half_life(model: TwoStage, split: InnerSplit, matrix: Any, items: Any) -> None:
    """The half-life whose recency-weighted top 100 recalls most inner answers."""
    truth = answer_matrix(split.answers, np.asarray(list(split.answers)), items)
    n_truth = np.diff(truth.indptr)
    ok = n_truth > 0
    allow = items.columns(ItemKind.TRACK)
    scores: dict[str, float] = {}
    best, best_score = None, -1.0
    for half_life in (None, *COLD_HALF_LIVES):
        pop = recent_popularity(split.train, matrix, half_life)[allow]
        top = allow[np.argsort(-pop, kind="stable")[:100]]
        hits = np.asarray(truth[:, top].sum(axis=1)).ravel()
        score = float(np.mean(hits[ok] / n_truth[ok])) if ok.any() else 0.0
        scores["all-time" if half_life is None else f"{half_life:g} days"] = score
        if score > best_score + 1e-12:
            best, best_score = half_life, score
    model.cold_half_life_ = best
    model.cold_scores_ = scores


def labelled_features(
    model: TwoStage,
    cands: CandidateSet,
    queries: Playlists,
    context: FeatureContext,
    answers: dict[Any, list[Any]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``(features, labels, query row, feature names)`` of one fold's candidates."""
    feats = build_features(cands, queries, context, last_k=model.last_k)
    labels = pair_labels(cands, answer_matrix(answers, cands.pids, cands.items))
    return feats.values, labels, cands.query, feats.names


def train_ranker(
    model: TwoStage,
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]],
    params: dict[str, Any],
) -> LambdaRanker:
    """A lambdarank ranker on the folds' pairs, early stopping on held-out queries."""
    offsets = np.cumsum([0] + [int(q.max()) + 1 if len(q) else 0 for _, _, q, _ in parts])
    x = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts])
    query = np.concatenate(
        [p[2].astype(np.int64) + off for p, off in zip(parts, offsets[:-1], strict=True)]
    )
    # validation queries for early stopping; queries without a positive teach nothing
    n_q = int(offsets[-1])
    rng = np.random.default_rng(model.seed)
    is_valid = rng.random(n_q) < model.valid_fraction
    if is_valid.all() or not is_valid.any():
        is_valid[:] = False
        is_valid[rng.permutation(n_q)[: max(1, int(n_q * model.valid_fraction))]] = True
    positives = np.bincount(query[labels], minlength=n_q) > 0
    use = positives[query]
    tr = use & ~is_valid[query]
    va = use & is_valid[query]
    if not tr.any() or not va.any():
        raise ParameterError("too few inner queries with a held-out item among candidates")
    y = labels.astype(np.float32)
    ranker = LambdaRanker(
        model.num_boost_round,
        model.early_stopping_rounds,
        seed=model.seed,
        num_threads=model.num_threads,
        params=params,
    )
    ranker.fit(x[tr], y[tr], query[tr], feature_names=parts[0][3], valid=(x[va], y[va], query[va]))
    return ranker


def fit_two_stage(model: TwoStage, playlists: Playlists, full: Interactions) -> Interactions:
    """Learn ``model``'s state from training playlists (``full``: their encoding).

    Returns the encoding the final first-stage models were fit on.
    """
    timings: dict[str, float] = {}

    def clock(key: str, start: float) -> None:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - start

    melon = model.task_ == "melon"
    track_parts, tag_parts = [], []
    asked = playlists.playlists["pid"].to_numpy()[:0]
    for fold in range(model.folds):
        start = time.perf_counter()
        split = inner_questions(model, playlists, fold, asked)
        clock("inner_split", start)
        if not split.answers:
            if fold == 0:
                raise ParameterError("no playlist is eligible for any inner question")
            break  # too few playlists left for another fold
        asked = np.concatenate([asked, split.queries.playlists["pid"].to_numpy()])

        inter, models, seconds = fit_first_stage(model, split.train)
        for key, value in seconds.items():
            timings[f"inner_fit:{key}"] = timings.get(f"inner_fit:{key}", 0.0) + value
        start = time.perf_counter()
        targets = rank_targets(model, inter.items, model.n, model.n_tags if melon else 0)
        history = query_history(inter.items, split.queries)
        sets = retrieve_candidate_sets(
            models, history.matrix, history.users.ids, targets, playlists=split.queries
        )
        tracks = sets["tracks"]
        if fold == 0:  # the merge's weights and the cold-start list, from the first fold
            model.fusion_weights_ = (
                fit_fusion_weights(tracks, split.answers, model.n) if model.fusion else None
            )
            pick_cold_half_life(model, split, inter.matrix, inter.items)
        if model.fusion_weights_ is not None:
            tracks = tracks.reorder(model.fusion_weights_)
        if fold == 0:
            model.inner_recall_ = candidate_recall(
                tracks, split.answers, split.categories, cutoffs=(model.n,)
            )
        clock("inner_candidates", start)

        start = time.perf_counter()
        context = FeatureContext.build(
            split.train, inter.matrix, inter.items, half_life_days=model.cold_half_life_
        )
        track_parts.append(
            labelled_features(model, tracks.top(), split.queries, context, split.answers)
        )
        if melon:
            assert split.tag_answers is not None
            tag_answers = {
                p: [item_id(ItemKind.TAG, t) for t in ts] for p, ts in split.tag_answers.items()
            }
            if fold == 0:
                model.inner_tag_recall_ = candidate_recall(
                    sets["tags"], tag_answers, split.categories, cutoffs=(10, model.n_tags)
                )
            tag_parts.append(
                labelled_features(model, sets["tags"], split.queries, context, tag_answers)
            )
        clock("inner_features", start)

    start = time.perf_counter()
    ranker = train_ranker(model, track_parts, model.ranker_params)
    clock("ranker", start)
    tag_ranker = None
    if melon:
        start = time.perf_counter()
        tag_ranker = train_ranker(model, tag_parts, {"eval_at": [10], **model.ranker_params})
        clock("tag_ranker", start)
    names = track_parts[0][3]
    del track_parts, tag_parts

    if model.refit:
        inter, models, seconds = fit_first_stage(model, playlists, full)
        timings.update({f"refit:{k}": v for k, v in seconds.items()})
        start = time.perf_counter()
        context = FeatureContext.build(
            playlists, inter.matrix, inter.items, half_life_days=model.cold_half_life_
        )
        clock("refit:context", start)
    model.models_ = models
    model.context_ = context
    model.ranker_ = ranker
    model.tag_ranker_ = tag_ranker
    model.feature_names_ = names
    model.timings_ = timings
    return inter
