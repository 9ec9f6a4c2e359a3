from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from segue.data.synthetic.listens import generate_listens
from segue.exceptions import ParameterError

SMALL = {"n_users": 800, "n_items": 1500, "n_clusters": 15}


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return generate_listens(**SMALL, seed=0)


def _codes(ids: pd.Series) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(ids)
    return codes.astype(np.int64), len(uniques)


def test_same_seed_same_frame_and_other_seed_other_frame() -> None:
    a = generate_listens(**SMALL, seed=7)
    b = generate_listens(**SMALL, seed=7)
    c = generate_listens(**SMALL, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_schema_dtypes_and_order(small: pd.DataFrame) -> None:
    assert list(small.columns) == ["user_id", "item_id", "count"]
    assert isinstance(small.index, pd.RangeIndex)
    assert small["count"].dtype == np.int64
    assert (small["count"] > 0).all()
    for column, prefix in [("user_id", "u"), ("item_id", "s")]:
        assert pd.api.types.is_string_dtype(small[column])
        assert small[column].map(type).eq(str).all()
        assert small[column].str.fullmatch(prefix + r"\d{6}").all()
    assert not small.duplicated(["user_id", "item_id"]).any()
    assert small["user_id"].nunique() == SMALL["n_users"]
    assert small["item_id"].nunique() <= SMALL["n_items"]
    # Sorted by user, then by descending count.
    assert small["user_id"].is_monotonic_increasing
    assert (small.groupby("user_id", sort=False)["count"].diff().dropna() <= 0).all()


def test_ids_are_one_based_and_widen_past_six_digits() -> None:
    df = generate_listens(3, 10, n_clusters=2, seed=0)
    assert set(df["user_id"]) == {"u000001", "u000002", "u000003"}
    assert set(df["item_id"]) <= {f"s{i:06d}" for i in range(1, 11)}
    wide = generate_listens(2, 1_000_000, n_clusters=3, mean_items_per_user=5, seed=0)
    assert wide["item_id"].str.len().eq(8).all()


def test_items_per_user_heavy_tailed_and_bounded(small: pd.DataFrame) -> None:
    per_user = small.groupby("user_id").size()
    assert per_user.min() >= 5
    assert per_user.max() <= SMALL["n_items"] // 2
    assert 30 <= per_user.mean() <= 55  # asked for 40, clipped at 5
    assert per_user.max() >= 4 * per_user.median()


def test_tiny_catalogue_caps_users_at_half_of_the_items() -> None:
    df = generate_listens(50, 10, n_clusters=10, mean_items_per_user=1000, seed=3)
    assert df.groupby("user_id").size().eq(5).all()
    assert not df.duplicated(["user_id", "item_id"]).any()


def test_long_tail_of_item_popularity(small: pd.DataFrame) -> None:
    listens = small.groupby("item_id")["count"].sum().sort_values(ascending=False)
    top = SMALL["n_items"] // 10
    assert listens.iloc[:top].sum() > 0.4 * listens.sum()


def test_item_id_order_carries_no_popularity(small: pd.DataFrame) -> None:
    users_per_item = small.groupby("item_id").size()
    number = users_per_item.index.str[1:].astype(int).to_numpy()
    rho = pd.Series(number).corr(pd.Series(users_per_item.to_numpy()), method="spearman")
    assert abs(rho) < 0.15


def test_counts_heavy_tailed(small: pd.DataFrame) -> None:
    counts = small["count"]
    assert 1 <= counts.median() <= 10
    assert counts.max() >= 20 * counts.median()
    assert (counts == 1).mean() > 0.05


def test_favourite_items_get_more_plays(small: pd.DataFrame) -> None:
    """Within a user, songs liked more (here: the more popular ones) get more plays on average."""
    by_user = small["user_id"]
    log_count = np.log(small["count"].astype(float))
    log_pop = np.log(small.groupby("item_id")["user_id"].transform("size").astype(float))
    count_dev = log_count - log_count.groupby(by_user).transform("mean")
    pop_dev = log_pop - log_pop.groupby(by_user).transform("mean")
    assert np.corrcoef(count_dev, pop_dev)[0, 1] > 0.1


def test_default_call_shape() -> None:
    df = generate_listens()
    assert df["user_id"].nunique() == 3000
    assert 90_000 <= len(df) <= 160_000
    assert df["count"].max() >= 100


def test_clusters_are_learnable_by_co_occurrence(small: pd.DataFrame) -> None:
    """Item co-occurrence beats popularity on held-out items: taste structure is real."""
    users, n_users = _codes(small["user_id"])
    items, n_items = _codes(small["item_id"])
    # Hold out a random half of every user's items.
    key = pd.Series(np.random.default_rng(0).random(len(small)))
    rank = key.groupby(users).rank(method="first").to_numpy()
    held = rank <= np.bincount(users)[users] / 2
    x_train = sp.csr_array(
        (np.ones(int((~held).sum())), (users[~held], items[~held])), shape=(n_users, n_items)
    )
    truth = np.zeros((n_users, n_items), dtype=bool)
    truth[users[held], items[held]] = True
    seen = x_train.toarray() > 0

    co = (x_train.T @ x_train).toarray()
    np.fill_diagonal(co, 0.0)
    co_scores = np.asarray(x_train @ co, dtype=np.float64)
    pop_scores = np.tile(np.asarray(x_train.sum(axis=0), dtype=np.float64), (n_users, 1))

    def recall_at(scores: np.ndarray, k: int = 50) -> float:
        scores = np.where(seen, -np.inf, scores)
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        hits = np.take_along_axis(truth, top, axis=1).sum(axis=1)
        n_true = truth.sum(axis=1)
        ok = n_true > 0
        return float(np.mean(hits[ok] / np.minimum(n_true[ok], k)))

    co_recall, pop_recall = recall_at(co_scores), recall_at(pop_scores)
    assert pop_recall > 0.02  # popularity is a real baseline, not a strawman
    assert co_recall >= 1.3 * pop_recall, (co_recall, pop_recall)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_users": 0}, "n_users"),
        ({"n_users": -3}, "n_users"),
        ({"n_users": 2.5}, "n_users"),
        ({"n_users": True}, "n_users"),
        ({"n_items": 0}, "n_items"),
        ({"n_items": 9}, "n_items"),
        ({"n_clusters": 0}, "n_clusters"),
        ({"n_items": 20, "n_clusters": 21}, "n_clusters"),
        ({"mean_items_per_user": 0.0}, "mean_items_per_user"),
        ({"mean_items_per_user": -1.0}, "mean_items_per_user"),
        ({"mean_items_per_user": float("nan")}, "mean_items_per_user"),
        ({"mean_items_per_user": float("inf")}, "mean_items_per_user"),
        ({"mean_items_per_user": "40"}, "mean_items_per_user"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_invalid_arguments_raise_value_error(kwargs: dict, match: str) -> None:
    args = {"n_users": 10, "n_items": 50, "n_clusters": 3} | kwargs
    with pytest.raises(ValueError, match=match) as info:
        generate_listens(**args)
    assert isinstance(info.value, ParameterError)


def test_numpy_integers_are_accepted() -> None:
    df = generate_listens(np.int64(5), np.int32(40), n_clusters=np.int64(2), seed=np.uint8(1))
    assert df["user_id"].nunique() == 5
