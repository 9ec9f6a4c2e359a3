import math

import numpy as np
import pytest
import scipy.sparse as sp

from segue.exceptions import ModelFitError, ModelFormatError, ParameterError
from segue.nn.holdout import carve_holdout, holdout_ndcg
from segue.nn.training import fit_epochs, report_epochs

torch = pytest.importorskip("torch")


def random_rows(n_rows=60, n_cols=40, density=0.3, seed=0) -> sp.csr_array:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_rows, n_cols)) < density).astype(np.float32)
    return sp.csr_array(dense)


def test_holdout_hides_entries_from_training_and_returns_them() -> None:
    matrix = random_rows()
    h = carve_holdout(matrix, n_rows=20, fraction=0.25, seed=1)
    assert h is not None and len(h.rows) == 20
    hidden = h.answers.toarray()
    kept = h.train[h.rows].toarray()
    original = matrix[h.rows].toarray()
    assert not (hidden * kept).any()  # nothing hidden is left in training
    np.testing.assert_array_equal(hidden + kept, original)  # nothing else removed
    assert (hidden.sum(axis=1) >= 1).all()
    other = np.setdiff1d(np.arange(matrix.shape[0]), h.rows)
    np.testing.assert_array_equal(h.train[other].toarray(), matrix[other].toarray())


def test_holdout_with_order_hides_the_last_songs() -> None:
    matrix = random_rows(density=0.5)
    order = matrix.copy()
    for r in range(order.shape[0]):  # positions 1..len in column order
        a, b = order.indptr[r], order.indptr[r + 1]
        order.data[a:b] = np.arange(1, b - a + 1)
    h = carve_holdout(matrix, n_rows=10, fraction=0.2, seed=0, order=order)
    for i, row in enumerate(h.rows):
        hidden = h.answers[[i]].indices
        shown = h.train[[row]].indices
        assert hidden.min() > shown.max()  # every hidden song comes after every shown one


def test_holdout_needs_enough_rows() -> None:
    assert carve_holdout(random_rows(n_rows=5), n_rows=5) is None


def test_holdout_ndcg_is_one_for_an_oracle() -> None:
    matrix = random_rows()
    h = carve_holdout(matrix, n_rows=15, seed=2)
    full = matrix.toarray()
    assert math.isclose(holdout_ndcg(lambda rows, _: full[rows], h), 1.0)


def test_fit_epochs_keeps_the_best_epoch_and_stops() -> None:
    metrics = iter([0.1, 0.3, 0.2, 0.25, 0.9])
    state = {"w": 0}
    seen = []

    def run_epoch(epoch: int) -> float:
        state["w"] = epoch
        return 1.0 / epoch

    with report_epochs(seen.append):
        history = fit_epochs(
            model="m",
            epochs=5,
            run_epoch=run_epoch,
            validate=lambda: next(metrics),
            patience=2,
            snapshot=lambda: dict(state),
            restore=lambda saved: state.update(saved),
        )
    assert [e.epoch for e in history] == [1, 2, 3, 4]  # two epochs without a better metric
    assert state["w"] == 2 and len(seen) == 4 and "epoch 2/5" in str(seen[1])


def test_fit_epochs_refuses_a_diverging_loss() -> None:
    with pytest.raises(ModelFitError, match="learning rate"):
        fit_epochs(model="m", epochs=3, run_epoch=lambda e: float("nan"))


def test_load_weights_refuses_mismatches() -> None:
    from segue.nn.tensors import load_weights, weights_of

    net = torch.nn.Linear(3, 2)
    weights = weights_of(net)
    load_weights(torch.nn.Linear(3, 2), weights)
    with pytest.raises(ModelFormatError, match="shape"):
        load_weights(torch.nn.Linear(4, 2), weights)
    with pytest.raises(ModelFormatError, match="missing"):
        load_weights(torch.nn.Linear(3, 2), {"weight": weights["weight"]})
    bad = {**weights, "bias": np.array([np.nan, 0.0], dtype=np.float32)}
    with pytest.raises(ModelFormatError, match="finite"):
        load_weights(torch.nn.Linear(3, 2), bad)


def test_devices() -> None:
    from segue.nn.runtime import check_device, resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    for bad in ("gpu", "cuda:x", 3):
        with pytest.raises(ParameterError):
            check_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="no GPU"):
            resolve_device("cuda")


def test_sparse_and_dense_rows_agree() -> None:
    from segue.nn.tensors import dense_rows, sparse_rows

    rows = random_rows(n_rows=7, n_cols=9)
    rows.data *= 3
    np.testing.assert_array_equal(sparse_rows(rows, "cpu").to_dense().numpy(), rows.toarray())
    np.testing.assert_array_equal(dense_rows(rows, "cpu", binary=True).numpy(), rows.toarray() > 0)
