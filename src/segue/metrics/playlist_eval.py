"""Score challenge submissions against a split's answers: overall, per bucket, as PNG plots.

The files are the ones the challenges use: an MPD submission CSV against the ``answers.json``
that ``segue split mpd`` writes (with ``challenge_set.json`` and ``tracks.parquet`` beside it:
seeds for the submission check, artists for R-precision's artist credit), or a Melon
``results.json`` against Melon answers (full playlists) and the questions they came from.
Several runs can be scored together so their per-bucket results share one table and one plot.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segue.exceptions import DataFormatError
from segue.metrics.buckets import bucket_table, length_buckets, plot_bucket_metrics
from segue.metrics.challenges import melon_metrics, mpd_metrics

__all__ = [
    "MPD_METRICS",
    "MELON_METRICS",
    "PlaylistEvaluation",
    "evaluate_melon",
    "evaluate_mpd",
    "is_mpd_answers",
    "read_mpd_answers",
]

MPD_METRICS = ["r_precision", "ndcg", "clicks"]
MELON_METRICS = ["song_ndcg", "tag_ndcg", "score"]
ANSWERS_FORMAT = "segue.mpd_answers"

PathLike = str | os.PathLike[str]


@dataclass
class PlaylistEvaluation:
    """Per-playlist values, overall means and bucket tables of one or more runs."""

    metrics: list[str]
    per_playlist: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    buckets: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)
    """``{bucket kind: {run: table}}``, e.g. ``"category"`` and ``"seed length"``."""

    def plot(self, path_stem: PathLike) -> list[Path]:
        """One PNG per bucket kind, ``{stem}.{kind}.png``; returns the paths written."""
        written = []
        for kind, tables in self.buckets.items():
            path = Path(f"{os.fspath(path_stem)}.{kind.replace(' ', '_')}.png")
            plot_bucket_metrics(tables, self.metrics, path, title=f"by {kind}")
            written.append(path)
        return written


def _load_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DataFormatError("file not found", path=path) from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"not valid JSON: {exc.msg}", path=path, line=exc.lineno) from None
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"not UTF-8 text: {exc.reason}", path=path) from None


def is_mpd_answers(path: PathLike) -> bool:
    """Whether ``path`` is an ``answers.json`` written by ``segue split mpd``."""
    try:
        with open(path, encoding="utf-8") as fh:
            head = fh.read(4096)
    except (OSError, UnicodeDecodeError):
        return False
    return ANSWERS_FORMAT in head


def read_mpd_answers(path: PathLike) -> pd.DataFrame:
    """``pid``, ``category``, ``category_name``, ``num_samples``, ``tracks`` (held-out list)."""
    path = Path(path)
    doc = _load_json(path)
    if not isinstance(doc, dict) or doc.get("format") != ANSWERS_FORMAT:
        raise DataFormatError(
            f"not a {ANSWERS_FORMAT} file (written by segue split mpd)", path=path
        )
    rows = doc.get("playlists")
    if not isinstance(rows, list) or not rows:
        raise DataFormatError("'playlists' must be a non-empty list", path=path)
    for n, row in enumerate(rows):
        if not isinstance(row, dict) or not {"pid", "category", "tracks"} <= set(row):
            raise DataFormatError(f"playlist entry {n} lacks pid, category or tracks", path=path)
    frame = pd.DataFrame(rows)
    if "category_name" not in frame:
        frame["category_name"] = frame["category"].astype(str)
    if "num_samples" not in frame:
        frame["num_samples"] = -1
    return frame[["pid", "category", "category_name", "num_samples", "tracks"]]


def _track_artists(path: Path | None) -> Mapping[str, str] | None:
    if path is None or not path.is_file():
        return None
    tracks = pd.read_parquet(path, columns=["track", "artist"])
    return dict(zip(tracks["track"].to_numpy(), tracks["artist"].to_numpy(), strict=True))


def _challenge_seeds(path: Path | None) -> dict[int, set[str]] | None:
    if path is None or not path.is_file():
        return None
    doc = _load_json(path)
    return {
        int(p["pid"]): {t["track_uri"] for t in p.get("tracks", [])}
        for p in doc.get("playlists", [])
    }


def evaluate_mpd(
    submissions: Mapping[str, PathLike],
    answers: PathLike,
    *,
    challenge: PathLike | None = None,
    track_artists: PathLike | None = None,
) -> PlaylistEvaluation:
    """Score MPD submission files (``{run name: path}``) against ``answers.json``.

    ``challenge`` (default: ``challenge_set.json`` beside the answers) supplies the seeds that a
    submission must not repeat; ``track_artists`` (default: ``tracks.parquet`` beside them) the
    artists for R-precision's artist credit. Without it, no artist credit is given and a warning
    says so. Buckets: challenge category and seed length.
    """
    from segue.metrics.submission import read_mpd_submission

    answers = Path(answers)
    truth = read_mpd_answers(answers)
    challenge = Path(challenge) if challenge else answers.parent / "challenge_set.json"
    seeds = _challenge_seeds(challenge)
    artists_path = Path(track_artists) if track_artists else answers.parent / "tracks.parquet"
    artists = _track_artists(artists_path)
    if artists is None:
        warnings.warn(
            f"no track artists at {artists_path}: R-precision without the artist credit",
            RuntimeWarning,
            stacklevel=2,
        )
    pids = truth["pid"].astype(np.int64).tolist()
    # "3: title and first 5 tracks", ordered by the challenge's category number
    labels = truth["category"].astype(str) + ": " + truth["category_name"].astype(str)
    order = labels.iloc[np.argsort(truth["category"].to_numpy(), kind="stable")].unique()
    categories = pd.Categorical(labels, categories=order, ordered=True)
    result = PlaylistEvaluation(metrics=list(MPD_METRICS))
    for name, path in submissions.items():
        lists = read_mpd_submission(path, expected_pids=pids, seeds=seeds)
        per = mpd_metrics([lists[p] for p in pids], truth["tracks"].tolist(), artists, index=pids)
        per["category"] = categories
        per["seed length"] = length_buckets(truth["num_samples"].clip(lower=0).to_numpy())
        result.per_playlist[name] = per
        result.summary[name] = {m: float(per[m].mean()) for m in MPD_METRICS}
        result.summary[name]["playlists"] = float(len(per))
    _add_buckets(result, ["category", "seed length"])
    return result


def _melon_questions(path: Path | None) -> dict[int, dict] | None:
    if path is None or not path.is_file():
        return None
    return {int(q["id"]): q for q in _load_json(path)}


def _question_type(question: Mapping[str, Any]) -> str:
    from segue.data.melon_split import question_type

    return question_type(question)


def evaluate_melon(
    results: Mapping[str, PathLike],
    answers: PathLike,
    *,
    questions: PathLike | None = None,
) -> PlaylistEvaluation:
    """Score Melon ``results.json`` files (``{run name: path}``) against full-playlist answers.

    ``questions`` (default: ``questions.json`` beside the answers) gives the seeds a result must
    not repeat and each playlist's question type (songs and tags, songs only, ...) for buckets.
    """
    from segue.metrics.submission import read_melon_results

    answers = Path(answers)
    truth = _load_json(answers)
    if not isinstance(truth, list) or not all(isinstance(p, dict) and "id" in p for p in truth):
        raise DataFormatError("Melon answers must be a list of playlists with 'id'", path=answers)
    ids = [int(p["id"]) for p in truth]
    qpath = Path(questions) if questions else answers.parent / "questions.json"
    asked = _melon_questions(qpath)
    given = (
        None
        if asked is None
        else {i: (set(q.get("songs", [])), set(q.get("tags", []))) for i, q in asked.items()}
    )
    result = PlaylistEvaluation(metrics=list(MELON_METRICS))
    for name, path in results.items():
        got = read_melon_results(path, expected_ids=ids, questions=given)
        per = melon_metrics(
            [got[i].songs for i in ids],
            [got[i].tags for i in ids],
            [p.get("songs", []) for p in truth],
            [p.get("tags", []) for p in truth],
            index=ids,
        )
        if asked is not None:
            per["question"] = [_question_type(asked[i]) if i in asked else "?" for i in ids]
            per["seed length"] = length_buckets(
                np.array([len(asked.get(i, {}).get("songs", [])) for i in ids])
            )
        empty = int(per["score"].isna().sum())
        if empty:
            # the official ArenaEvaluator divides by zero on such a playlist and stops; segue
            # scores the others and says how many were left out, rather than invent a value
            warnings.warn(
                f"{answers}: {empty} of {len(per)} playlists have an empty song or tag answer; "
                "their score is NaN and they are left out of the means (the official "
                "evaluator stops with a division by zero on them)",
                RuntimeWarning,
                stacklevel=2,
            )
        result.per_playlist[name] = per
        result.summary[name] = {m: float(per[m].mean()) for m in MELON_METRICS}
        result.summary[name]["playlists"] = float(len(per))
    if asked is not None:
        _add_buckets(result, ["question", "seed length"])
    return result


def _add_buckets(result: PlaylistEvaluation, kinds: list[str]) -> None:
    for kind in kinds:
        result.buckets[kind] = {
            name: bucket_table(per, kind, result.metrics)
            for name, per in result.per_playlist.items()
        }
