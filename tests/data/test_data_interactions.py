"""Interactions: id maps plus one canonical float32 CSR matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from segue.data.interactions import Interactions, canonical_csr, take_rows
from segue.data.vocab import IdMap
from segue.exceptions import DataFormatError, ParameterError, UnknownIdError


def assert_canonical(m: sp.csr_array) -> None:
    assert m.format == "csr"
    assert m.dtype == np.float32
    assert m.has_sorted_indices
    for r in range(m.shape[0]):
        cols = m.indices[m.indptr[r] : m.indptr[r + 1]]
        assert np.all(np.diff(cols) > 0), f"row {r} has unsorted or duplicate columns: {cols}"
    assert np.all(m.data != 0)


USERS = ["u1", "u2", "u1", "u3", "u1", "u2"]
ITEMS = ["b", "a", "b", "c", "a", "a"]
WEIGHTS = [2, 5, 3, 1, 4, 1]


def dense(data: Interactions) -> dict[tuple[str, str], float]:
    f = data.to_frame()
    return {(u, i): float(w) for u, i, w in zip(f.user_id, f.item_id, f.weight, strict=True)}


def test_from_arrays_sum() -> None:
    data = Interactions.from_arrays(USERS, ITEMS, WEIGHTS)
    assert data.users.to_list() == ["u1", "u2", "u3"]
    assert data.items.to_list() == ["b", "a", "c"]
    assert data.users.kind == "user" and data.items.kind == "item"
    # (u1,b)=2+3, (u1,a)=4, (u2,a)=5+1, (u3,c)=1
    assert dense(data) == {("u1", "b"): 5, ("u1", "a"): 4, ("u2", "a"): 6, ("u3", "c"): 1}
    assert data.nnz == 4 and data.n_users == 3 and data.n_items == 3
    assert_canonical(data.matrix)


def test_from_arrays_count_ignores_weights() -> None:
    data = Interactions.from_arrays(USERS, ITEMS, WEIGHTS, agg="count")
    assert dense(data) == {("u1", "b"): 2, ("u1", "a"): 1, ("u2", "a"): 2, ("u3", "c"): 1}


def test_from_arrays_no_weights_counts_rows() -> None:
    data = Interactions.from_arrays(USERS, ITEMS)
    assert dense(data) == {("u1", "b"): 2, ("u1", "a"): 1, ("u2", "a"): 2, ("u3", "c"): 1}


def test_from_arrays_max() -> None:
    data = Interactions.from_arrays(USERS, ITEMS, WEIGHTS, agg="max")
    assert dense(data) == {("u1", "b"): 3, ("u1", "a"): 4, ("u2", "a"): 5, ("u3", "c"): 1}
    assert_canonical(data.matrix)


def test_from_arrays_max_random_matches_pandas() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    u = rng.integers(0, 30, n).astype(str)
    i = rng.integers(0, 40, n).astype(str)
    w = rng.random(n) + 0.1
    data = Interactions.from_arrays(u, i, w, agg="max")
    ref = pd.DataFrame({"u": u, "i": i, "w": w}).groupby(["u", "i"])["w"].max()
    got = dense(data)
    assert len(got) == len(ref)
    for (uu, ii), ww in ref.items():
        assert got[(uu, ii)] == pytest.approx(ww, rel=1e-6)
    assert_canonical(data.matrix)


def test_from_arrays_bad_agg() -> None:
    with pytest.raises(ParameterError, match="agg"):
        Interactions.from_arrays(["u"], ["i"], [1], agg="mean")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), -float("inf")])
def test_non_positive_or_non_finite_weights_raise(bad: float) -> None:
    with pytest.raises(DataFormatError, match="row 2") as info:
        Interactions.from_arrays(["a", "b", "c"], ["x", "y", "z"], [1.0, 2.0, bad])
    assert "positive" in str(info.value)


def test_shape_mismatch() -> None:
    with pytest.raises(ParameterError):
        Interactions.from_arrays(["a", "b"], ["x"])
    with pytest.raises(ParameterError, match="weights"):
        Interactions.from_arrays(["a", "b"], ["x", "y"], [1.0])


def test_given_vocabularies_are_used_and_checked() -> None:
    users = IdMap(["u3", "u2", "u1", "u0"], kind="user")
    items = IdMap(["c", "b", "a", "z"], kind="item")
    data = Interactions.from_arrays(USERS, ITEMS, WEIGHTS, user_ids=users, item_ids=items)
    assert data.users is users and data.items is items
    assert data.matrix.shape == (4, 4)
    assert data.matrix[2, 1] == 5  # (u1, b)
    assert data.matrix[3].sum() == 0  # u0 has nothing
    with pytest.raises(UnknownIdError):
        Interactions.from_arrays(["u9"], ["a"], user_ids=users)


def test_canonical_csr_sorts_and_sums_duplicates() -> None:
    raw = sp.csr_array(
        (np.array([1.0, 2.0, 3.0, 0.0]), np.array([2, 0, 2, 1]), np.array([0, 4, 4])),
        shape=(2, 3),
    )
    m = canonical_csr(raw)
    assert_canonical(m)
    assert m.toarray().tolist() == [[2.0, 0.0, 4.0], [0.0, 0.0, 0.0]]
    assert m.nnz == 2


def test_post_init_validation() -> None:
    users, items = IdMap(["u"]), IdMap(["a", "b"])
    with pytest.raises(ParameterError, match="shape"):
        Interactions(users, items, sp.csr_array((2, 2), dtype=np.float32))
    with pytest.raises(ParameterError, match="float32"):
        Interactions(users, items, sp.csr_array((1, 2), dtype=np.float64))
    with pytest.raises(ParameterError, match="CSR"):
        Interactions(users, items, sp.csc_array((1, 2), dtype=np.float32))


def test_align_drops_unknown_items_and_counts_them() -> None:
    data = Interactions.from_arrays(USERS, ITEMS, WEIGHTS)  # items b, a, c
    target = IdMap(["a", "z", "b"])
    aligned, dropped = data.align(target)
    assert dropped == 1  # (u3, c)
    assert aligned.items is target
    assert aligned.users is data.users
    assert aligned.matrix.shape == (3, 3)
    assert_canonical(aligned.matrix)
    assert aligned.matrix.toarray().tolist() == [[4, 0, 5], [6, 0, 0], [0, 0, 0]]


def test_align_to_equal_vocabulary_is_identity() -> None:
    data = Interactions.from_arrays(USERS, ITEMS, WEIGHTS)
    same, dropped = data.align(IdMap(["b", "a", "c"]))
    assert same is data and dropped == 0


def test_rows_with_minus_one_give_empty_rows() -> None:
    data = Interactions.from_arrays(USERS, ITEMS, WEIGHTS)
    full = data.matrix.toarray()
    out = data.rows(np.array([2, -1, 0, -1, 0], dtype=np.int32))
    assert out.shape == (5, 3)
    assert out.dtype == np.float32
    expected = np.stack([full[2], np.zeros(3), full[0], np.zeros(3), full[0]])
    np.testing.assert_array_equal(out.toarray(), expected)
    np.testing.assert_array_equal(data.rows(np.array([1, 0])).toarray(), full[[1, 0]])
    assert data.rows(np.array([], dtype=np.int32)).shape == (0, 3)
    assert data.rows(np.array([-1, -1])).nnz == 0


def test_take_rows_random_against_dense() -> None:
    rng = np.random.default_rng(0)
    m = canonical_csr(sp.random(50, 20, density=0.2, random_state=1, format="csr"))
    idx = rng.integers(-1, 50, 200)
    got = take_rows(m, idx).toarray()
    ref = np.where((idx >= 0)[:, None], m.toarray()[np.maximum(idx, 0)], 0)
    np.testing.assert_array_equal(got, ref)


def test_to_frame_round_trip() -> None:
    data = Interactions.from_arrays(USERS, ITEMS, WEIGHTS)
    frame = data.to_frame()
    assert list(frame.columns) == ["user_id", "item_id", "weight"]
    # row-major: u1 (b then a, by column index), u2, u3
    assert frame.user_id.tolist() == ["u1", "u1", "u2", "u3"]
    assert frame.item_id.tolist() == ["b", "a", "a", "c"]
    back = Interactions.from_frame(frame, weight="weight")
    assert back.users == data.users and back.items == data.items
    assert (back.matrix != data.matrix).nnz == 0


def test_from_frame_columns_and_string_ids() -> None:
    df = pd.DataFrame({"uid": [1, 2, 1], "sid": ["007", "NA", "007"], "n": [1.5, 2.0, 0.5]})
    data = Interactions.from_frame(df, user="uid", item="sid", weight="n")
    assert data.users.to_list() == ["1", "2"]
    assert data.items.to_list() == ["007", "NA"]
    assert dense(data) == {("1", "007"): 2.0, ("2", "NA"): 2.0}


def test_from_frame_missing_column() -> None:
    df = pd.DataFrame({"user_id": ["a"], "song": ["x"]})
    with pytest.raises(DataFormatError) as info:
        Interactions.from_frame(df, weight="plays")
    msg = str(info.value)
    assert "item_id" in msg and "plays" in msg
    assert "song" in msg  # names the columns it does have


def test_describe() -> None:
    d = Interactions.from_arrays(USERS, ITEMS, WEIGHTS).describe()
    assert d["users"] == 3 and d["items"] == 3 and d["interactions"] == 4
    assert d["density"] == pytest.approx(4 / 9)
    assert d["weight_sum"] == pytest.approx(16.0)
    assert d["items_per_user_median"] == 1.0
