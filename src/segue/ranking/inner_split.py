"""Challenge-style queries carved out of in-memory training playlists, for the re-ranker.

Why: a learning-to-rank model must learn from questions that look like the ones it will be
asked (same ten categories, same seed rules) but whose answers are not the evaluation answers.
:func:`inner_split` applies the rules of :mod:`segue.data.mpd_split` (:data:`CATEGORIES`, the
eligibility lengths, first-N or random-N seeds, titles hidden for the no-title categories) to a
:class:`~segue.data.playlists.Playlists` already in memory, the way ``split_mpd(unseen="drop")``
does to files: the chosen playlists leave training, their held-out tracks that no remaining
playlist holds are dropped from the answers, and a query left with no held-out track is dropped.

Selection: each playlist gets a random key from ``seed``; the categories are filled one after
another, the one with the fewest eligible playlists first, each taking up to ``per_category``
eligible playlists not yet taken, in key order. Deterministic for a given seed and input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from segue.data.melon_split import make_questions, question_type
from segue.data.mpd_split import CATEGORIES, ChallengeCategory
from segue.data.playlists import Playlists
from segue.data.readers.melon import melon_playlists
from segue.data.titles import normalize_title
from segue.exceptions import ParameterError

__all__ = ["InnerSplit", "inner_split", "inner_split_melon"]


@dataclass(frozen=True)
class InnerSplit:
    """The result of :func:`inner_split`.

    Attributes
    ----------
    train
        The playlists not chosen, whole (with the full track table).
    queries
        The chosen playlists with only their seeds as entries (original ``pos``), ``name`` set
        to None in the no-title categories, and columns ``category``, ``num_samples``,
        ``num_holdouts``; ordered by category, then selection order.
    answers
        ``{pid: [held-out track, ...]}`` in playlist order, only tracks present in ``train``.
    categories
        ``pid -> category``, in the order of ``queries``: the challenge category number (1 to
        10) for the MPD, the question type (:func:`~segue.data.melon_split.question_type`)
        for Melon.
    tag_answers
        Melon only: ``{pid: [held-out tag, ...]}``, only tags present in ``train``.
    """

    train: Playlists
    queries: Playlists
    answers: dict[Any, list[Any]]
    categories: pd.Series
    tag_answers: dict[Any, list[Any]] | None = None


def _titled(names: pd.Series) -> np.ndarray:
    return np.fromiter((normalize_title(n) != "" for n in names), bool, len(names))


def inner_split(
    playlists: Playlists,
    per_category: int = 100,
    *,
    seed: int = 0,
    categories: tuple[ChallengeCategory, ...] = CATEGORIES,
    exclude: np.ndarray | None = None,
) -> InnerSplit:
    """Carve challenge-style queries out of ``playlists`` (see the module docstring).

    Parameters
    ----------
    playlists
        The training playlists to split.
    per_category
        Queries wanted per category (fewer when not enough playlists are eligible).
    seed
        Seed of the random keys and of the random seed positions.
    categories
        The categories to fill (default: the challenge's ten).
    exclude
        Playlist ids never made queries (they stay in ``train``): the queries of earlier
        folds, so that folds ask disjoint questions.

    Returns
    -------
    InnerSplit
    """
    if per_category < 1:
        raise ParameterError(f"per_category must be at least 1, got {per_category}")
    rng = np.random.default_rng(seed)
    table = playlists.playlists
    pids = table["pid"].to_numpy()
    lengths = playlists.lengths()
    titled = _titled(table["name"])
    keys = rng.random(len(pids))
    eligible = {
        c.number: np.flatnonzero(
            (lengths >= c.min_tracks) & (lengths <= c.max_tracks) & (titled | (not c.title))
        )
        for c in categories
    }
    taken = np.zeros(len(pids), dtype=bool)
    barred = np.zeros(len(pids), dtype=bool) if exclude is None else np.isin(pids, exclude)
    chosen: dict[int, np.ndarray] = {}
    for c in sorted(categories, key=lambda c: (len(eligible[c.number]), c.number)):
        idx = eligible[c.number]
        idx = idx[np.argsort(keys[idx], kind="stable")]
        idx = idx[~taken[idx] & ~barred[idx]][:per_category]
        taken[idx] = True
        chosen[c.number] = idx

    entries = playlists.entries
    train_pids = pids[~taken]
    train = Playlists(
        playlists=table[~taken].reset_index(drop=True),
        entries=entries[entries["pid"].isin(train_pids)].reset_index(drop=True),
        tracks=playlists.tracks,
    )
    known = set(train.entries["track"].unique().tolist())
    by_pid = entries[entries["pid"].isin(pids[taken])].groupby("pid", sort=False)
    tracks_of = {pid: (g["pos"].to_numpy(), g["track"].to_numpy()) for pid, g in by_pid}

    q_rows: list[dict[str, Any]] = []
    seed_frames: list[pd.DataFrame] = []
    answers: dict[Any, list[Any]] = {}
    cats: dict[Any, int] = {}
    for c in sorted(categories, key=lambda c: c.number):
        for i in chosen[c.number]:
            pid = pids[i]
            pos, tracks = tracks_of[pid]
            if c.random:
                shown = np.zeros(len(pos), dtype=bool)
                shown[rng.choice(len(pos), size=c.n_seeds, replace=False)] = True
            else:
                shown = np.arange(len(pos)) < c.n_seeds
            hidden = [t for t in tracks[~shown].tolist() if t in known]
            if not hidden:
                continue
            answers[pid] = hidden
            cats[pid] = c.number
            seed_frames.append(
                pd.DataFrame({"pid": pid, "pos": pos[shown], "track": tracks[shown]})
            )
            row = table.iloc[i].to_dict()
            if not c.title:
                row["name"] = None
            row.update(category=c.number, num_samples=int(shown.sum()), num_holdouts=len(hidden))
            q_rows.append(row)
    q_table = pd.DataFrame(
        q_rows, columns=[*table.columns, "category", "num_samples", "num_holdouts"]
    )
    q_entries = (
        pd.concat(seed_frames, ignore_index=True)
        if seed_frames
        else pd.DataFrame({"pid": [], "pos": [], "track": []})
    )
    q_entries = q_entries.astype({"pos": entries["pos"].dtype})
    queries = Playlists(playlists=q_table, entries=q_entries, tracks=playlists.tracks)
    return InnerSplit(
        train=train,
        queries=queries,
        answers=answers,
        categories=pd.Series(cats, name="category", dtype=np.int64),
    )


def _melon_records(playlists: Playlists, rows: np.ndarray) -> list[dict[str, Any]]:
    """Melon playlist records (as in ``train.json``) of the playlists at ``rows``."""
    table = playlists.playlists.iloc[rows]
    pids = table["pid"].to_numpy()
    entries = playlists.entries
    entries = entries[entries["pid"].isin(pids)].sort_values(["pid", "pos"], kind="stable")
    songs = entries.groupby("pid", sort=False)["track"].agg(list).to_dict()
    tags = table["tags"] if "tags" in table.columns else pd.Series([[]] * len(table))
    dates = table["updt_date"] if "updt_date" in table.columns else pd.Series([None] * len(table))
    return [
        {
            "id": pid,
            "plylst_title": "" if not isinstance(name, str) else name,
            "songs": songs.get(pid, []),
            "tags": list(tag_list) if isinstance(tag_list, list | np.ndarray) else [],
            "updt_date": None if pd.isna(date) else str(pd.Timestamp(date)),
        }
        for pid, name, tag_list, date in zip(pids.tolist(), table["name"], tags, dates, strict=True)
    ]


def inner_split_melon(
    playlists: Playlists,
    n_questions: int,
    *,
    seed: int = 0,
    mode: str = "baseline",
    exclude: np.ndarray | None = None,
) -> InnerSplit:
    """Melon-style questions carved out of training playlists (the official masking rules).

    ``n_questions`` playlists (at most a quarter of them) are drawn at random, turned into
    questions by :func:`~segue.data.melon_split.make_questions` (the question-type mix of
    ``mode``, half of a shown column kept) and leave training. Hidden songs and tags that no
    remaining playlist holds are dropped from the answers; a question left with neither is
    dropped. Queries are read back through the Melon reader's record path, so they look exactly
    like a question file (``pos`` from 0, ``name`` the possibly blanked title). Playlists whose
    ids are in ``exclude`` are never questions (as in :func:`inner_split`).
    """
    if n_questions < 1:
        raise ParameterError(f"n_questions must be at least 1, got {n_questions}")
    rng = np.random.default_rng(seed)
    table = playlists.playlists
    n = len(table)
    order = rng.permutation(n)
    if exclude is not None:
        order = order[~np.isin(table["pid"].to_numpy()[order], exclude)]
    take = np.sort(order[: min(n_questions, n // 4)])
    taken = np.zeros(n, dtype=bool)
    taken[take] = True
    questions, hidden, _ = make_questions(_melon_records(playlists, take), mode=mode, seed=rng)

    entries = playlists.entries
    train_table = table[~taken].reset_index(drop=True)
    train = Playlists(
        playlists=train_table,
        entries=entries[entries["pid"].isin(train_table["pid"])].reset_index(drop=True),
        tracks=playlists.tracks,
    )
    known_songs = set(train.entries["track"].unique().tolist())
    known_tags = (
        set(train_table["tags"].explode().dropna().tolist())
        if "tags" in train_table.columns
        else set()
    )
    kept, answers, tag_answers, cats = [], {}, {}, {}
    for question, answer in zip(questions, hidden, strict=True):
        songs = [t for t in answer["songs"] if t in known_songs]
        tags = [t for t in answer["tags"] if t in known_tags]
        if not songs and not tags:
            continue
        pid = question["id"]
        kept.append(question)
        answers[pid] = songs
        tag_answers[pid] = tags
        cats[pid] = question_type(question)
    queries = melon_playlists(kept, playlists.tracks)
    return InnerSplit(
        train=train,
        queries=queries,
        answers=answers,
        categories=pd.Series(cats, name="category", dtype=object),
        tag_answers=tag_answers,
    )
