"""split_listens: a validation split in the format of the listen-count task."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segue.data.split import ListenSplit, split_listens
from segue.exceptions import ParameterError

MIN_ITEMS = 5


def make_listens(seed: int = 0, n_users: int = 300) -> pd.DataFrame:
    """Users with 1..30 distinct songs, some (uid, sid) lines repeated."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        n = int(rng.integers(1, 31))
        songs = rng.choice(200, size=n, replace=False)
        for s in songs:
            rows.append((f"u{u:03d}", f"s{s}", int(rng.integers(1, 6))))
        for s in rng.choice(songs, size=int(rng.integers(0, 3))):  # duplicate lines
            rows.append((f"u{u:03d}", f"s{s}", int(rng.integers(1, 6))))
    order = rng.permutation(len(rows))
    return pd.DataFrame([rows[i] for i in order], columns=["user_id", "item_id", "count"])


@pytest.fixture(scope="module")
def listens() -> pd.DataFrame:
    return make_listens()


def split(df: pd.DataFrame, **kw: object) -> ListenSplit:
    params = {"target_fraction": 0.3, "holdout_fraction": 0.4, "min_items": MIN_ITEMS, "seed": 1}
    params.update(kw)
    return split_listens(df, **params)  # type: ignore[arg-type]


def summed(df: pd.DataFrame) -> pd.Series:
    return df.groupby(["user_id", "item_id"])["count"].sum().sort_index()


def test_deterministic_for_a_seed(listens: pd.DataFrame) -> None:
    a, b = split(listens, seed=5), split(listens, seed=5)
    pd.testing.assert_frame_equal(a.listens, b.listens)
    pd.testing.assert_frame_equal(a.answers, b.answers)
    np.testing.assert_array_equal(a.targets, b.targets)


def test_seeds_differ(listens: pd.DataFrame) -> None:
    a, b = split(listens, seed=5), split(listens, seed=6)
    assert set(a.targets) != set(b.targets)
    assert not a.answers.equals(b.answers)


def test_targets_are_a_share_of_eligible_users(listens: pd.DataFrame) -> None:
    distinct = listens.groupby("user_id")["item_id"].nunique()
    eligible = set(distinct.index[distinct >= MIN_ITEMS])
    for fraction in (0.1, 0.3, 1.0):
        s = split(listens, target_fraction=fraction)
        targets = list(s.targets)
        assert len(targets) == len(set(targets))
        assert set(targets) <= eligible
        assert len(targets) == max(1, round(fraction * len(eligible)))
        assert s.targets.dtype == object


def test_each_target_keeps_and_holds_out(listens: pd.DataFrame) -> None:
    holdout = 0.4
    s = split(listens, holdout_fraction=holdout)
    kept = s.listens.groupby("user_id")["item_id"].nunique()
    held = s.answers.groupby("user_id")["item_id"].nunique()
    assert set(held.index) == set(s.targets)  # answers hold only targets, every one of them
    distinct = listens.groupby("user_id")["item_id"].nunique()
    for user in s.targets:
        assert kept.get(user, 0) >= 1
        assert held[user] >= 1
        n = distinct[user]
        assert kept[user] + held[user] == n
        assert held[user] == min(max(round(holdout * n), 1), n - 1)
    share = held.sum() / distinct[list(s.targets)].sum()
    assert share == pytest.approx(holdout, abs=0.05)


def test_extreme_holdout_keeps_one_and_holds_one() -> None:
    df = make_listens(seed=3, n_users=60)
    for holdout, check in ((0.01, "held"), (0.99, "kept")):
        s = split(df, holdout_fraction=holdout, target_fraction=1.0)
        kept = s.listens.groupby("user_id")["item_id"].nunique()
        held = s.answers.groupby("user_id")["item_id"].nunique()
        counts = held if check == "held" else kept
        assert (counts[list(s.targets)] == 1).all()


def test_listens_and_answers_partition_the_input(listens: pd.DataFrame) -> None:
    s = split(listens)
    assert list(s.listens.columns) == ["user_id", "item_id", "count"]
    assert list(s.answers.columns) == ["user_id", "item_id", "count"]
    kept_pairs = set(zip(s.listens.user_id, s.listens.item_id, strict=True))
    held_pairs = set(zip(s.answers.user_id, s.answers.item_id, strict=True))
    assert len(kept_pairs) == len(s.listens)  # duplicates were summed
    assert len(held_pairs) == len(s.answers)
    assert not kept_pairs & held_pairs
    union = pd.concat([s.listens, s.answers], ignore_index=True)
    pd.testing.assert_series_equal(summed(union), summed(listens))


def test_non_target_users_fully_kept(listens: pd.DataFrame) -> None:
    s = split(listens)
    others = ~listens.user_id.isin(s.targets)
    kept = s.listens[~s.listens.user_id.isin(s.targets)]
    pd.testing.assert_series_equal(summed(kept), summed(listens[others]))


def test_small_users_never_targets() -> None:
    df = pd.DataFrame(
        {
            "user_id": ["a"] * 3 + ["b"] * 2 + ["c"] * 4,
            # b listens to one song twice: 1 distinct item; c has 2 distinct items
            "item_id": ["x", "y", "z", "x", "x", "x", "x", "y", "y"],
            "count": [1, 2, 3, 1, 1, 5, 1, 1, 1],
        }
    )
    s = split_listens(df, min_items=3, target_fraction=1.0, holdout_fraction=0.5, seed=0)
    assert s.targets.tolist() == ["a"]
    assert len(s.answers) == 2  # round(0.5 * 3) = 2 of a's 3 songs held out
    assert sorted(s.listens[s.listens.user_id == "c"]["count"]) == [2, 6]


@pytest.mark.parametrize(
    "kw",
    [
        {"target_fraction": 0},
        {"target_fraction": -0.1},
        {"target_fraction": 1.5},
        {"holdout_fraction": 0},
        {"holdout_fraction": 1},
        {"holdout_fraction": 1.2},
        {"min_items": 1},
        {"min_items": 0},
        {"min_items": 10_000},  # nobody is eligible
    ],
)
def test_parameter_errors(listens: pd.DataFrame, kw: dict[str, object]) -> None:
    with pytest.raises(ParameterError):
        split(listens, **kw)
