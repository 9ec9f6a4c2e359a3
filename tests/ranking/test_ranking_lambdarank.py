"""LambdaRanker: learns a planted signal, early stops, reports importance, round-trips as text."""

from __future__ import annotations

import numpy as np
import pytest

from segue.exceptions import NotFittedError, ParameterError
from segue.ranking.lambdarank import LambdaRanker


def _data(seed: int, n_queries: int = 60, size: int = 30):
    rng = np.random.default_rng(seed)
    query = np.repeat(np.arange(n_queries), size)
    signal = rng.random(len(query))
    noise = rng.random((len(query), 2))
    y = (signal + 0.2 * rng.random(len(query)) > 0.8).astype(np.float32)
    x = np.column_stack([signal, noise]).astype(np.float32)
    x[rng.random(len(query)) < 0.1, 1] = np.nan  # missing values are allowed
    return x, y, query


def _fit(**kw) -> LambdaRanker:
    x, y, q = _data(0)
    vx, vy, vq = _data(1, 20)
    ranker = LambdaRanker(200, 10, seed=0, num_threads=1, params={"min_data_in_leaf": 5, **kw})
    return ranker.fit(x, y, q, feature_names=["signal", "noise1", "noise2"], valid=(vx, vy, vq))


def test_learns_the_signal_and_reports_importance():
    ranker = _fit()
    x, y, _ = _data(2, 10)
    scores = ranker.predict(x)
    assert np.corrcoef(scores, x[:, 0])[0, 1] > 0.8
    imp = ranker.feature_importance()
    assert imp["feature"].iloc[0] == "signal"
    assert set(imp.columns) == {"feature", "gain", "split"}


def test_learning_curve_and_early_stopping():
    ranker = _fit()
    curve = ranker.learning_curve()
    assert "valid:ndcg@100" in curve.columns and "train:ndcg@100" in curve.columns
    assert 1 <= ranker.best_iteration <= len(curve) <= 200


def test_deterministic():
    a, b = _fit(), _fit()
    x, _, _ = _data(3, 5)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))


def test_save_load_text_format(tmp_path):
    ranker = _fit()
    path = ranker.save(tmp_path / "ranker.txt")
    assert path.read_text().startswith("tree")
    loaded = LambdaRanker.load(path, num_threads=1)
    x, _, _ = _data(4, 5)
    np.testing.assert_allclose(loaded.predict(x), ranker.predict(x), rtol=1e-6)


def test_unsorted_groups_and_unfitted():
    x, y, q = _data(0, 4, 5)
    with pytest.raises(ParameterError):
        LambdaRanker().fit(x, y, q[::-1], feature_names=["a", "b", "c"])
    with pytest.raises(NotFittedError):
        LambdaRanker().predict(x)
