import numpy as np
import pytest
from contract import RecommenderContract

from segue import Interactions, MostPopular, ParameterError


class TestMostPopular(RecommenderContract):
    def make_model(self) -> MostPopular:
        return MostPopular()


class TestMostPopularByCount(RecommenderContract):
    def make_model(self) -> MostPopular:
        return MostPopular(weighting="count")


def test_orders_by_listeners_or_by_total_count() -> None:
    # song a: 3 listeners, 3 plays; song b: 1 listener, 100 plays; song c: 2 listeners, 2 plays
    data = Interactions.from_arrays(
        ["u1", "u2", "u3", "u1", "u2", "u3"], ["a", "a", "a", "b", "c", "c"], [1, 1, 1, 100, 1, 1]
    )
    by_users = MostPopular().fit(data).recommend(["u1"], 3, exclude_seen=False)
    assert list(by_users.lists())[0][1] == ["a", "c", "b"]
    by_count = MostPopular(weighting="count").fit(data).recommend(["u1"], 3, exclude_seen=False)
    assert list(by_count.lists())[0][1] == ["b", "a", "c"]


def test_invalid_weighting_raises(planted: Interactions) -> None:
    with pytest.raises(ParameterError, match="weighting"):
        MostPopular(weighting="plays").fit(planted)
    assert not np.isnan(MostPopular().fit(planted).popularity_).any()
