"""Validation splits written in exactly the format of the task's evaluation data."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from segue._atomic import atomic_dir
from segue.data.readers.listens import write_listens, write_targets
from segue.exceptions import ParameterError

__all__ = ["ListenSplit", "split_listens", "write_listen_split"]

SPLIT_FILES = ("listen_count.txt", "target_users.txt", "answers.txt")


@dataclass(frozen=True)
class ListenSplit:
    """The three files of a listen-count evaluation, as frames.

    ``listens`` is what a model may see (every non-target user whole, plus each target's kept
    listens); ``targets`` the target user ids; ``answers`` the held-out ``uid sid count`` rows.
    """

    listens: pd.DataFrame
    targets: np.ndarray
    answers: pd.DataFrame


def split_listens(
    df: pd.DataFrame,
    *,
    target_fraction: float = 0.2,
    holdout_fraction: float = 0.5,
    min_items: int = 10,
    seed: int = 0,
) -> ListenSplit:
    """Hide part of some users' listens, mimicking the listen-count task.

    Among users with at least ``min_items`` distinct songs, ``target_fraction`` of them (at least
    one) become targets; for each, ``holdout_fraction`` of their distinct songs (at least one, at
    most all but one) are moved, with their counts, to the answers. Duplicate (uid, sid) rows are
    summed first, so a song is never both seen and held out. Deterministic for a seed.
    """
    if not 0 < target_fraction <= 1:
        raise ParameterError(f"target_fraction must be in (0, 1], got {target_fraction}")
    if not 0 < holdout_fraction < 1:
        raise ParameterError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    if min_items < 2:
        raise ParameterError(f"min_items must be at least 2, got {min_items}")
    rng = np.random.default_rng(seed)
    pairs = df.groupby(["user_id", "item_id"], sort=False, as_index=False)["count"].sum()
    per_user = pairs.groupby("user_id", sort=False)["item_id"].size()
    eligible = per_user.index[per_user.to_numpy() >= min_items].to_numpy(dtype=object)
    if len(eligible) == 0:
        raise ParameterError(f"no user has at least {min_items} distinct items to hold out from")
    n_targets = max(1, int(round(target_fraction * len(eligible))))
    targets = eligible[np.sort(rng.choice(len(eligible), size=n_targets, replace=False))]
    is_target = pairs["user_id"].isin(targets).to_numpy()
    # Random rank of each pair within its user; hold out the first ceil-ish share of each target.
    tkey = rng.random(len(pairs))
    sub = pairs.loc[is_target, ["user_id"]].assign(key=tkey[is_target])
    rank = sub.groupby("user_id", sort=False)["key"].rank(method="first").to_numpy()
    size = sub.groupby("user_id", sort=False)["key"].transform("size").to_numpy()
    n_hold = np.clip(np.round(holdout_fraction * size), 1, size - 1)
    held = np.zeros(len(pairs), dtype=bool)
    held[np.flatnonzero(is_target)] = rank <= n_hold
    return ListenSplit(
        listens=pairs.loc[~held].reset_index(drop=True),
        targets=np.asarray(targets, dtype=object),
        answers=pairs.loc[held].reset_index(drop=True),
    )


def write_listen_split(
    split: ListenSplit,
    out_dir: str | os.PathLike[str],
    *,
    source: str | os.PathLike[str] | None = None,
) -> Path:
    """Write ``out_dir/listen_count.txt``, ``target_users.txt`` and ``answers.txt`` atomically.

    The three files are written into a temporary folder that replaces ``out_dir`` only once all
    of them are complete (:func:`segue._atomic.atomic_dir`), so an interrupted run (an error,
    SIGTERM, SIGKILL) leaves the previous split as it was: never new training listens beside
    old answers. An existing ``out_dir`` must be empty or something segue wrote (a split, a
    model, a dataset); anything else, and an ``out_dir`` that is or holds ``source`` (the input
    file), raises :class:`segue._atomic.OutputError` and is left untouched. Call
    :func:`segue._atomic.check_output_dir` first to fail before the work.
    """
    with atomic_dir(out_dir, kind="listens-split", keep=[source]) as tmp:
        write_listens(tmp / SPLIT_FILES[0], split.listens)
        write_targets(tmp / SPLIT_FILES[1], split.targets)
        write_listens(tmp / SPLIT_FILES[2], split.answers)
    return Path(out_dir)
