import numpy as np
import pytest
import scipy.sparse as sp

from segue import ModelFitError, ParameterError
from segue.models.topk import topk


def test_best_first_with_exclusions_and_padding() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [1.0, 2.0, 3.0, 4.0]], dtype=np.float32)
    exclude = sp.csr_array(np.array([[0, 1, 0, 0], [1, 1, 1, 0]], dtype=np.float32))
    items, top = topk(scores, 3, exclude=exclude, copy=True)
    np.testing.assert_array_equal(items, [[3, 2, 0], [3, -1, -1]])
    np.testing.assert_array_equal(top[0], np.array([0.7, 0.5, 0.1], dtype=np.float32))
    assert np.isneginf(top[1, 1:]).all()
    assert scores[0, 1] == np.float32(0.9)  # copy=True left the input alone


def test_allow_restricts_to_candidates() -> None:
    scores = np.arange(6, dtype=np.float32)[None, :]
    items, _ = topk(scores, 4, allow=np.array([0, 2, 3]))
    np.testing.assert_array_equal(items, [[3, 2, 0, -1]])


def test_ties_inside_the_top_are_ordered_by_index() -> None:
    scores = np.ones((2, 5), dtype=np.float32)
    items, _ = topk(scores, 5)
    np.testing.assert_array_equal(items, [[0, 1, 2, 3, 4]] * 2)


def test_matches_full_sort_on_random_scores() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random((50, 300)).astype(np.float32)
    items, top = topk(scores, 20, copy=True)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :20]
    np.testing.assert_array_equal(items, expected)
    np.testing.assert_array_equal(top, np.take_along_axis(scores, expected, 1))


def test_bad_input() -> None:
    with pytest.raises(ParameterError):
        topk(np.zeros((1, 3), dtype=np.float32), 0)
    with pytest.raises(ModelFitError, match="NaN"):
        topk(np.array([[np.nan, 1.0]], dtype=np.float32), 1)
    with pytest.raises(ParameterError, match="rows"):
        topk(np.zeros((2, 3), dtype=np.float32), 1, exclude=sp.csr_array((3, 3), dtype=np.float32))


def test_accepts_any_numeric_dtype() -> None:
    scores = np.array([[1, 3, 2]], dtype=np.int64)
    items, top = topk(scores, 2)
    np.testing.assert_array_equal(items, [[1, 2]])
    assert top.dtype == np.float32
    items64, _ = topk(np.array([[0.5, 0.1]]), 1)
    np.testing.assert_array_equal(items64, [[0]])


def test_ties_at_the_kth_place_keep_the_lower_index() -> None:
    scores = np.array([[1, 1, 1, 2, 1, 0], [0, 0, 0, 0, 0, 0]], dtype=np.float32)
    items, _ = topk(scores, 2, copy=True)
    np.testing.assert_array_equal(items, [[3, 0], [0, 1]])


@pytest.mark.parametrize("heap", [True, False])
def test_heap_and_partition_routes_agree(heap: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """faiss's heaps (when installed) and argpartition give the same lists, ties included."""
    from segue.models import topk as module

    if heap and not module._heap_library():
        pytest.skip("faiss is not installed")
    monkeypatch.setattr(module, "_faiss", module._heap_library() if heap else False)
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, (40, 200)).astype(np.float32)  # many ties
    scores[:, 150:] = -np.inf  # unrecommendable columns
    exclude = sp.random_array((40, 200), density=0.1, format="csr", random_state=rng)
    allow = rng.choice(200, 60, replace=False)
    for kw in ({}, {"exclude": exclude}, {"allow": allow}, {"exclude": exclude, "allow": allow}):
        items, top = topk(scores, 30, copy=True, **kw)
        masked = scores.copy()
        if "exclude" in kw:
            masked[exclude.toarray() != 0] = -np.inf
        if "allow" in kw:
            keep = np.zeros(200, dtype=bool)
            keep[allow] = True
            masked[:, ~keep] = -np.inf
        expected = np.argsort(-masked, axis=1, kind="stable")[:, :30]
        best = np.take_along_axis(masked, expected, 1)
        expected[np.isneginf(best)] = -1
        np.testing.assert_array_equal(items, expected)
        np.testing.assert_array_equal(top, best)
