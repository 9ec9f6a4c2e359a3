"""The contract every segue model must pass: inherit and set ``make_model``.

A new model's test file is then a few lines plus its model-specific checks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import planted_interactions
from segue import (
    Interactions,
    NotFittedError,
    ParameterError,
    UnknownIdError,
    load_model,
    save_model,
)
from segue.models.base import BaseRecommender


class RecommenderContract:
    """Mixin of contract tests; subclasses define ``make_model()``."""

    #: whether a new user given only as history gets exactly a trained user's list
    folds_in_exactly = True
    #: whether every item of the catalogue can be recommended (False for a pruned model)
    recommends_every_item = True

    def make_model(self) -> BaseRecommender:
        raise NotImplementedError

    def other_data(self) -> Interactions:
        """A second, different training set (for the refit test)."""
        return planted_interactions(seed=7, n_users=25, n_items=40)

    @pytest.fixture
    def data(self) -> Interactions:
        return planted_interactions()

    @pytest.fixture
    def fitted(self, data: Interactions) -> BaseRecommender:
        return self.make_model().fit(data)

    def test_unfitted_model_raises(self, data: Interactions) -> None:
        model = self.make_model()
        assert not model.is_fitted
        with pytest.raises(NotFittedError):
            model.recommend(data.users.ids[:2], 5)

    def test_fit_returns_self_and_sets_state(self, data: Interactions) -> None:
        model = self.make_model()
        assert model.fit(data) is model
        assert model.is_fitted
        assert model.items_ == data.items and model.users_ == data.users
        assert model.fit_seconds_ >= 0

    def test_params_are_init_arguments(self) -> None:
        model = self.make_model()
        params = model.get_params()
        clone = model.clone()
        assert clone.get_params() == params and not clone.is_fitted
        with pytest.raises(ParameterError):
            model.set_params(no_such_parameter=1)

    def test_score_shape_and_dtype(self, fitted: BaseRecommender, data: Interactions) -> None:
        idx = np.arange(5, dtype=np.int32)
        scores = fitted.score(idx, data.rows(idx))
        assert scores.shape == (5, data.n_items) and scores.dtype == np.float32

    def test_batch_equals_single(self, fitted: BaseRecommender, data: Interactions) -> None:
        users = data.users.ids
        whole = fitted.recommend(users, 7, batch_size=1000)
        single = fitted.recommend(users, 7, batch_size=1)
        np.testing.assert_array_equal(whole.items, single.items)
        np.testing.assert_allclose(whole.scores, single.scores, rtol=1e-5)

    def test_streamed_batches_equal_recommend(
        self, fitted: BaseRecommender, data: Interactions
    ) -> None:
        users = data.users.ids
        whole = fitted.recommend(users, 7)
        parts = list(fitted.iter_recommend(users, 7, batch_size=6))
        assert len(parts) == -(-len(users) // 6)
        np.testing.assert_array_equal(np.concatenate([p.users for p in parts]), whole.users)
        np.testing.assert_array_equal(np.concatenate([p.items for p in parts]), whole.items)

    def test_no_seen_item_returned(self, fitted: BaseRecommender, data: Interactions) -> None:
        recs = fitted.recommend(data.users.ids, 10)
        for row, items in enumerate(recs.items):
            seen = set(data.matrix.indices[data.matrix.indptr[row] : data.matrix.indptr[row + 1]])
            assert not seen & set(items[items >= 0].tolist())

    def test_k_larger_than_catalogue(self, fitted: BaseRecommender, data: Interactions) -> None:
        k = data.n_items + 5
        recs = fitted.recommend(data.users.ids, k)
        assert recs.items.shape == (data.n_users, k)
        for row, items in enumerate(recs.items):
            seen = set(data.matrix.indices[data.matrix.indptr[row] : data.matrix.indptr[row + 1]])
            listed = items[items >= 0].tolist()
            assert len(listed) == len(set(listed))  # no duplicates
            assert set(listed) == set(range(data.n_items)) - seen  # every unseen item, once
            assert (items[len(listed) :] == -1).all()
            assert np.isneginf(recs.scores[row, len(listed) :]).all()
            assert np.all(np.diff(recs.scores[row, : len(listed)]) <= 0)  # best first

    def test_save_load_gives_identical_recommendations(
        self, fitted: BaseRecommender, data: Interactions, tmp_path: Path
    ) -> None:
        save_model(fitted, tmp_path / "model")
        manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
        assert manifest["params"] == fitted.get_params()
        with np.load(tmp_path / "model" / "arrays.npz", allow_pickle=False) as npz:
            assert len(npz.files) > 0
        loaded = load_model(tmp_path / "model")
        assert type(loaded) is type(fitted) and loaded.get_params() == fitted.get_params()
        a = fitted.recommend(data.users.ids, 10)
        b = loaded.recommend(data.users.ids, 10)
        np.testing.assert_array_equal(a.items, b.items)
        np.testing.assert_array_equal(a.scores, b.scores)

    def test_refit_does_not_leak_state(self, data: Interactions) -> None:
        other = self.other_data()
        model = self.make_model().fit(other).fit(data)
        fresh = self.make_model().fit(data)
        assert model.items_ == data.items
        a = model.recommend(data.users.ids, 10)
        b = fresh.recommend(data.users.ids, 10)
        np.testing.assert_array_equal(a.items, b.items)

    def test_unknown_users(self, fitted: BaseRecommender, data: Interactions) -> None:
        users = [data.users.ids[0], "nobody"]
        with pytest.raises(UnknownIdError, match="nobody"):
            fitted.recommend(users, 5)
        skipped = fitted.recommend(users, 5, unknown="skip")
        assert skipped.users.tolist() == [data.users.ids[0]]
        fallback = fitted.recommend(users, 5, unknown="fallback")
        cold = np.argsort(-fitted.fallback_scores_, kind="stable")[:5]
        assert set(fallback.items[1].tolist()) == set(cold.tolist())

    def test_new_history_is_folded_in(self, fitted: BaseRecommender, data: Interactions) -> None:
        # the first training user's songs, given as the history of a user unseen in training
        row = data.matrix[[0]]
        songs = data.items.ids[row.indices]
        history = Interactions.from_arrays(["newcomer"] * len(songs), songs, row.data)
        new = fitted.recommend(["newcomer"], 10, history=history)
        seen = set(row.indices.tolist())
        assert not seen & set(new.items[0].tolist())
        if self.folds_in_exactly:
            old = fitted.recommend([data.users.ids[0]], 10)
            np.testing.assert_array_equal(new.items, old.items)

    def test_exclude_seen_false_can_return_seen(
        self, fitted: BaseRecommender, data: Interactions
    ) -> None:
        recs = fitted.recommend(data.users.ids, data.n_items, exclude_seen=False)
        if self.recommends_every_item:
            assert (recs.items >= 0).all()  # nothing filtered: full catalogue for everyone
        seen = data.matrix.toarray() > 0
        returned_seen = [seen[u, items[items >= 0]].any() for u, items in enumerate(recs.items)]
        assert any(returned_seen)
