"""Validation questions for the Melon challenge, made the way Kakao made them.

The challenge never published answers for ``val.json`` and ``test.json``, so every model is tuned
on questions cut from ``train.json``. A validation score only predicts the leaderboard when the
questions look like the real ones, so this module follows the official procedure:
``split_data.py`` of the arena's baseline repository (github.com/kakao-arena/
melon-playlist-continuation, ``ArenaSplitter``):

1. **Which playlists.** The playlists are shuffled and a held-out share becomes questions; the
   rest is the new training file, complete. (The baseline holds out 20 %; here ``fraction`` or
   ``n_questions`` says how many.)
2. **Question types.** The held-out playlists are cut, in order, into four groups: 30 % "song
   only" (tags hidden), 50 % "song+tag", 15 % "tag only" (songs hidden) and 5 % "title only"
   (songs and tags hidden). The questions are then shuffled.
3. **Masking.** A column that the question shows keeps ``len // 2`` of its items, picked at
   random, in their original order; the other half is the answer. A column that the question
   hides is empty, and the answer holds its first 100 songs or first 10 tags. So a one-tag
   playlist asked as "song+tag" shows no tag (it becomes "song only"), as in the original.
4. **Answers.** ``answers/val.json`` of the baseline holds, per playlist, only what is hidden
   (the ground truth its ``evaluate.py`` scores against: a recommended song that was in the
   question would otherwise count as a hit), with every other field as in the playlist.

The baseline keeps every title. The real ``val.json`` and ``test.json`` do not: there, the
questions that show songs have an empty title and the others keep it, in the proportions
42 % song only, 39 % song+tag, 12 % tag+title and 7 % title only (as participants counted
them, e.g. ``eda_data_distribution.ipynb`` of sr-study/melon-playlist-continuation-2020:
9,661 / 8,975 / 2,628 / 1,745 of the 23,015 ``val.json`` questions, and 4,507 / 4,190 / 1,232 /
809 of the 10,740 ``test.json`` ones). ``mode="leaderboard"`` makes questions like those:
same masking, those proportions, titles blanked when songs are shown, and types that show songs
(tags) given to playlists with at least two songs (tags) first, so that halving leaves something
to show and the proportions hold after masking too. ``mode="baseline"`` (the default) is the
official split as written: its proportions are those of the types *assigned*; after masking
about a quarter of the "song+tag" questions show no tag (on the real data, where about a quarter
of the playlists have one tag).

:func:`split_melon` writes ``train.json``, ``questions.json`` and ``answers.json`` in the Melon
schema (``answers="full"`` writes whole playlists instead of the hidden parts) and links or
copies ``song_meta.json`` and ``genre_gn_all.json`` beside them, so that
``read_melon(out_dir / "train.json")`` finds its metadata. :func:`question_type` names the kind
of a question for per-bucket reports. All randomness comes from one
:func:`numpy.random.default_rng` seeded with ``seed``: a seed gives the same files every time
(the baseline seeds only ``random``, so its masks, drawn with ``np.random``, are not repeatable).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from segue._atomic import atomic_dir, check_output_dir
from segue.data.readers.melon import load_melon_json, write_melon_json
from segue.exceptions import ParameterError

__all__ = [
    "QUESTION_MIXES",
    "QUESTION_TYPES",
    "make_questions",
    "question_type",
    "split_melon",
]

Mode = Literal["baseline", "leaderboard"]
AnswerKind = Literal["hidden", "full"]

QUESTION_TYPES = ("song+tag", "song only", "tag only", "title only", "nothing")
"""What a question shows, as :func:`question_type` names it (the title counts only without
songs and tags)."""

QUESTION_MIXES: dict[str, dict[str, float]] = {
    "baseline": {"song only": 0.30, "song+tag": 0.50, "tag only": 0.15, "title only": 0.05},
    "leaderboard": {"song only": 0.42, "song+tag": 0.39, "tag only": 0.12, "title only": 0.07},
}
"""Share of every question type, in the order the held-out playlists are cut into groups."""

_SHOWS = {
    "song only": (True, False),
    "song+tag": (True, True),
    "tag only": (False, True),
    "title only": (False, False),
}
"""Whether each type shows (part of) the songs and the tags."""
_MAX_SONGS = 100
_MAX_TAGS = 10
"""A hidden column's answer is cut to what a submission can recommend (100 songs, 10 tags)."""
_SIDE_FILES = ("song_meta.json", "genre_gn_all.json")


def question_type(question: Mapping[str, Any]) -> str:
    """Name what a question shows, for per-bucket reports.

    One of ``"song+tag"``, ``"song only"``, ``"tag only"``, ``"title only"``, ``"nothing"``.
    Songs and tags decide; the title counts only when there are neither (a title of blanks does
    not count). A real "tag+title" question is therefore ``"tag only"``.
    """
    has_songs = bool(question.get("songs"))
    has_tags = bool(question.get("tags"))
    if has_songs:
        return "song+tag" if has_tags else "song only"
    if has_tags:
        return "tag only"
    title = question.get("plylst_title")
    return "title only" if isinstance(title, str) and title.strip() else "nothing"


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.default_rng(int(seed))


def _check_choice(name: str, value: object, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ParameterError(f"{name} must be one of {list(allowed)}, got {value!r}")


def _half(items: list[Any], rng: np.random.Generator) -> tuple[list[Any], list[Any]]:
    """``len // 2`` items picked at random (shown) and the rest (hidden), both in order."""
    n = len(items)
    shown = np.zeros(n, dtype=bool)
    shown[rng.permutation(n)[: n // 2]] = True
    return (
        [item for item, keep in zip(items, shown.tolist(), strict=True) if keep],
        [item for item, keep in zip(items, shown.tolist(), strict=True) if not keep],
    )


def make_questions(
    playlists: Sequence[Mapping[str, Any]],
    *,
    mode: Mode = "baseline",
    answers: AnswerKind = "hidden",
    seed: int | np.random.Generator = 0,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """Turn complete playlists into questions and answers (the module docstring has the rules).

    Parameters
    ----------
    playlists
        Complete Melon playlist records (dicts with ``songs`` and ``tags`` lists).
    mode
        ``"baseline"``: the official ``split_data.py`` (30/50/15/5 %, titles kept).
        ``"leaderboard"``: like the real ``val.json``/``test.json`` (42/39/12/7 %, the title
        blanked when songs are shown).
    answers
        ``"hidden"`` (official): an answer holds only the hidden songs and tags.
        ``"full"``: the whole playlist.
    seed
        Seed of :func:`numpy.random.default_rng`, or a generator to draw from.

    Returns
    -------
    questions, answers, assigned
        The questions and their answers (same order, shuffled), and the type each question was
        made as (a key of :data:`QUESTION_MIXES`; :func:`question_type` can differ, as when a
        one-tag playlist asked as "song+tag" shows no tag). Every other field is copied.
    """
    _check_choice("mode", mode, tuple(QUESTION_MIXES))
    _check_choice("answers", answers, ("hidden", "full"))
    rng = _rng(seed)
    n = len(playlists)
    order, kinds = _assign(playlists, mode, rng)
    names = list(QUESTION_MIXES[mode])
    questions: list[dict[str, Any]] = []
    answer_list: list[dict[str, Any]] = []
    assigned: list[str] = []
    for index, kind in zip(order.tolist(), kinds.tolist(), strict=True):
        playlist = playlists[index]
        name = names[kind]
        question, answer = _mask(playlist, name, mode, answers, rng)
        questions.append(question)
        answer_list.append(answer)
        assigned.append(name)
    shuffle = rng.permutation(n).tolist()
    return (
        [questions[i] for i in shuffle],
        [answer_list[i] for i in shuffle],
        [assigned[i] for i in shuffle],
    )


def _assign(
    playlists: Sequence[Mapping[str, Any]], mode: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Which playlist becomes which type: playlist indices and type numbers (mix order).

    ``"baseline"`` cuts a random order into consecutive groups, with the boundaries of
    ``split_data.py`` (``int(n * 0.3)``, ``int(n * 0.8)``, ``int(n * 0.95)``), whatever the
    playlists hold. ``"leaderboard"`` fills the same counts but gives a type that shows songs
    (tags) to playlists with at least two songs (tags) while there are such, so that halving
    leaves something to show, as in the real question files (where "song+tag" questions are
    39 %, as planned, although a quarter of the playlists have one tag).
    """
    mix = QUESTION_MIXES[mode]
    n = len(playlists)
    bounds = np.floor(np.cumsum([0.0, *mix.values()]) * n + 1e-9).astype(np.int64)
    bounds[-1] = n
    counts = np.diff(bounds)
    order = rng.permutation(n)
    if mode == "baseline":
        return order, np.repeat(np.arange(len(mix)), counts)
    names = list(mix)
    songs = np.array([len(playlists[i]["songs"]) >= 2 for i in order.tolist()], dtype=bool)
    tags = np.array([len(playlists[i]["tags"]) >= 2 for i in order.tolist()], dtype=bool)
    kind = np.full(n, -1, dtype=np.int64)
    # The most demanding types pick first, each from the eligible playlists in random order.
    for name in sorted(names, key=lambda k: -sum(_SHOWS[k])):
        shows_songs, shows_tags = _SHOWS[name]
        ok = (kind < 0) & (songs | ~shows_songs) & (tags | ~shows_tags)
        kind[np.flatnonzero(ok)[: counts[names.index(name)]]] = names.index(name)
    left = np.flatnonzero(kind < 0)
    short = counts - np.bincount(kind[kind >= 0], minlength=len(names))
    kind[left] = np.repeat(np.arange(len(names)), short)  # too few eligible: anyone
    return order, kind


def _mask(
    playlist: Mapping[str, Any], kind: str, mode: str, answers: str, rng: np.random.Generator
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One question and its answer."""
    question = dict(playlist)
    answer = dict(playlist)
    for field, shown, limit in zip(
        ("songs", "tags"), _SHOWS[kind], (_MAX_SONGS, _MAX_TAGS), strict=True
    ):
        items = list(playlist[field])
        if shown:
            question[field], answer[field] = _half(items, rng)
        else:
            question[field], answer[field] = [], items[:limit]
        if answers == "full":
            answer[field] = items
    if mode == "leaderboard" and _SHOWS[kind][0]:
        question["plylst_title"] = ""
    return question, answer


def _place(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to the new ``dst`` (a copy across file systems)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def split_melon(
    train_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    fraction: float = 0.1,
    n_questions: int | None = None,
    mode: Mode = "baseline",
    answers: AnswerKind = "hidden",
    seed: int = 0,
) -> dict[str, Any]:
    """Hold out Melon playlists as questions, in the style of the official ``split_data.py``.

    Parameters
    ----------
    train_path
        A complete Melon playlist file (the challenge's ``train.json``).
    out_dir
        The folder to write: ``train.json`` (the other playlists, complete, in file order),
        ``questions.json`` (same schema as ``val.json``) and ``answers.json``, with
        ``song_meta.json`` and ``genre_gn_all.json`` hard-linked (or copied) from beside
        ``train_path``. The whole folder is written atomically (:func:`segue._atomic.atomic_dir`):
        an interrupted run leaves the previous split as it was, never a mix of old and new
        files. An existing ``out_dir`` must be empty or a split (or other output) segue wrote;
        a folder of other files is refused and left alone.
    fraction
        Share of the playlists that become questions (the baseline uses 0.2); rounded down.
    n_questions
        Exact number of questions; overrides ``fraction``.
    mode, answers
        As in :func:`make_questions`.
    seed
        Seed of :func:`numpy.random.default_rng`; the same seed gives the same files.

    Returns
    -------
    dict
        ``train``, ``questions``, ``answers`` (paths), ``copied`` (side files placed),
        ``n_playlists``, ``n_train``, ``n_questions``, ``mode``, ``answer_kind``, ``seed``,
        ``assigned`` (questions per type made) and ``observed`` (per :func:`question_type`).

    Raises
    ------
    segue.exceptions.ParameterError
        A fraction outside (0, 1), a question count that leaves no question or no training
        playlist, an unknown mode, or an ``out_dir`` whose ``train.json`` is the input itself.
    segue._atomic.OutputError
        ``out_dir`` is something segue must not replace (checked before reading the input).
    segue.exceptions.DataFormatError
        The input file is not a valid Melon playlist file (see
        :func:`~segue.data.readers.melon.load_melon_json`).
    """
    _check_choice("mode", mode, tuple(QUESTION_MIXES))
    _check_choice("answers", answers, ("hidden", "full"))
    rng = _rng(seed)
    if n_questions is None and (
        isinstance(fraction, bool)
        or not isinstance(fraction, int | float)
        or not 0.0 < fraction < 1.0
    ):
        raise ParameterError(f"fraction must be a number in (0, 1), got {fraction!r}")
    if n_questions is not None and (
        isinstance(n_questions, bool) or not isinstance(n_questions, int | np.integer)
    ):
        raise ParameterError(f"n_questions must be an integer, got {n_questions!r}")
    train_path, out_dir = Path(train_path), Path(out_dir)
    out_train = out_dir / "train.json"
    if out_train.exists() and train_path.exists() and os.path.samefile(out_train, train_path):
        raise ParameterError(f"{out_dir} holds the input {train_path.name}; choose another out_dir")
    check_output_dir(out_dir, keep=[train_path])

    data = load_melon_json(train_path)
    total = len(data)
    count = int(total * fraction) if n_questions is None else int(n_questions)
    if not 1 <= count < total:
        raise ParameterError(
            f"{count} question(s) out of {total} playlists: need at least 1 question and 1 "
            "training playlist"
        )
    held = np.zeros(total, dtype=bool)
    held[rng.permutation(total)[:count]] = True
    train = [p for p, h in zip(data, held.tolist(), strict=True) if not h]
    chosen = [p for p, h in zip(data, held.tolist(), strict=True) if h]
    questions, answer_list, assigned = make_questions(chosen, mode=mode, answers=answers, seed=rng)

    copied = []
    with atomic_dir(out_dir, kind="melon-split", keep=[train_path]) as tmp:
        write_melon_json(tmp / "train.json", train)
        write_melon_json(tmp / "questions.json", questions)
        write_melon_json(tmp / "answers.json", answer_list)
        for name in _SIDE_FILES:
            src = train_path.parent / name
            if src.is_file():
                _place(src, tmp / name)
                copied.append(name)
    observed = [question_type(q) for q in questions]
    return {
        "train": out_train,
        "questions": out_dir / "questions.json",
        "answers": out_dir / "answers.json",
        "copied": copied,
        "n_playlists": total,
        "n_train": len(train),
        "n_questions": count,
        "mode": mode,
        "answer_kind": answers,
        "seed": seed,
        "assigned": {name: assigned.count(name) for name in QUESTION_MIXES[mode]},
        "observed": {name: observed.count(name) for name in QUESTION_TYPES},
    }
