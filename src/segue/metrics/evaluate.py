"""Evaluate top-k lists against held-out answers, from files or from memory."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue.data.interactions import Interactions
from segue.data.readers.listens import read_listen_interactions, read_listens
from segue.data.vocab import IdMap
from segue.exceptions import DataFormatError, ParameterError
from segue.metrics.ranking import all_metrics, catalog_coverage

__all__ = ["Evaluation", "evaluate_files", "evaluate_lists", "read_recommendations"]


@dataclass(frozen=True)
class Evaluation:
    """Per-user metric values and their summary.

    ``summary`` holds the mean of every metric over the users that have answers (a user the
    recommendations leave out counts as all misses), ``users``, ``missing_users`` (answer users
    with no list), ``extra_users`` (lists for users with no answers, ignored) and, when the
    training catalogue is known, ``coverage@k`` and ``seen_share`` (share of recommended items
    the user already had: should be 0).
    """

    per_user: pd.DataFrame
    summary: dict[str, float] = field(default_factory=dict)


def read_recommendations(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Read ``uid sid_1 ... sid_n`` lines; a repeated user or song in a line is an error."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("no such file", path=path)
    out: dict[str, list[str]] = {}
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                fields = raw.decode("utf-8").split()
            except UnicodeDecodeError as exc:
                raise DataFormatError(
                    f"not valid UTF-8 ({exc.reason} at byte {exc.start})", path=path, line=number
                ) from None
            if not fields:
                continue
            user, items = fields[0], fields[1:]
            if user in out:
                raise DataFormatError(f"user {user!r} has a second line", path=path, line=number)
            if len(set(items)) != len(items):
                dup = pd.Series(items)[pd.Series(items).duplicated()].iloc[0]
                raise DataFormatError(
                    f"song {dup!r} is recommended twice to {user!r}", path=path, line=number
                )
            out[user] = items
    return out


def evaluate_lists(
    recs: Mapping[Any, Sequence[Any]],
    answers: Interactions,
    ks: Sequence[int] = (100,),
    *,
    train: Interactions | None = None,
) -> Evaluation:
    """Score ranked lists of external item ids against ``answers`` (users x held-out items).

    ``train`` (the input the recommender saw) enables catalogue coverage and the seen-item
    check.
    """
    if not ks or min(ks) < 1:
        raise ParameterError(f"ks must be positive integers, got {list(ks)}")
    kmax = max(ks)
    for user, items in recs.items():
        if len(set(items[:kmax])) != len(items[:kmax]):
            raise ParameterError(f"the list for user {user!r} recommends an item twice")
    users = answers.users.ids
    rec_users = np.asarray(list(recs.keys()), dtype=object)
    lengths = np.fromiter(
        (min(len(v), kmax) for v in recs.values()), dtype=np.int64, count=len(recs)
    )
    flat = np.asarray([item for v in recs.values() for item in list(v)[:kmax]], dtype=object)
    # one vocabulary for everything that appears: answer items first, then the rest
    extra = pd.Index(flat).difference(pd.Index(answers.items.ids)) if len(flat) else []
    items = IdMap(np.concatenate([answers.items.ids, np.asarray(extra, dtype=object)]))
    row_of = answers.users.numbers(rec_users, missing="negative")
    matrix = np.full((len(users), kmax), -1, dtype=np.int64)
    flat_idx = items.numbers(flat)
    rows = np.repeat(row_of, lengths)
    cols = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    valid = rows >= 0
    matrix[rows[valid], cols[valid]] = flat_idx[valid]
    truth = sp.csr_array(
        (answers.matrix.data, answers.matrix.indices, answers.matrix.indptr),
        shape=(len(users), len(items)),
    )
    per_user = {"user_id": users}
    summary: dict[str, float] = {}
    for k in sorted(ks):
        for name, values in all_metrics(matrix, truth, k).items():
            per_user[name] = values
            summary[name] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    summary["users"] = float(np.count_nonzero(np.diff(answers.matrix.indptr)))
    summary["missing_users"] = float(np.count_nonzero(np.isin(users, rec_users, invert=True)))
    summary["extra_users"] = float(np.count_nonzero(row_of < 0))
    if train is not None:
        catalogue = train.items.numbers(items.ids, missing="negative")
        for k in sorted(ks):
            in_cat = np.where(matrix[:, :k] >= 0, catalogue[np.maximum(matrix[:, :k], 0)], -1)
            summary[f"coverage@{k}"] = catalog_coverage(in_cat, train.n_items)
        summary["seen_share"] = _seen_share(matrix, users, catalogue, train)
    return Evaluation(pd.DataFrame(per_user), summary)


def _seen_share(
    matrix: np.ndarray, users: np.ndarray, catalogue: np.ndarray, train: Interactions
) -> float:
    """Share of recommended items that the user already had in the training input."""
    train_rows = train.users.numbers(users, missing="negative")
    rec = matrix >= 0
    if not rec.any():
        return 0.0
    r, c = np.nonzero(rec)
    items = catalogue[matrix[r, c]]
    urow = train_rows[r]
    ok = (items >= 0) & (urow >= 0)
    seen = np.zeros(len(r), dtype=bool)
    if ok.any():
        seen[ok] = np.asarray(train.matrix[urow[ok], items[ok]]).ravel() > 0
    return float(seen.mean())


def evaluate_files(
    recs_path: str | os.PathLike[str],
    answers_path: str | os.PathLike[str],
    ks: Sequence[int] = (100,),
    *,
    listens_path: str | os.PathLike[str] | None = None,
) -> Evaluation:
    """:func:`evaluate_lists` on a recommendations file and an answers file (``uid sid count``)."""
    recs = read_recommendations(recs_path)
    df = read_listens(answers_path)
    answers = Interactions.from_arrays(df["user_id"].to_numpy(), df["item_id"].to_numpy())
    train = read_listen_interactions(listens_path) if listens_path is not None else None
    return evaluate_lists(recs, answers, ks, train=train)
