"""save_interactions / load_interactions: a directory of schema.json plus Parquet files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp

from segue.data.interactions import Interactions
from segue.data.io import is_dataset_dir, load_interactions, save_interactions
from segue.data.vocab import IdMap
from segue.exceptions import DataFormatError

ODD_IDS = ["00123", "NA", "null", "nan", "None", "", "ütf-8 ✓", "日本語", "a b", "123"]


def make_data() -> Interactions:
    # Vocabularies in an order that is neither sorted nor first-appearance of the pairs.
    users = IdMap(["zeta", "00123", "NA", "null", "ü"], kind="user")
    items = IdMap(ODD_IDS, kind="item")
    rng = np.random.default_rng(7)
    dense = rng.integers(0, 4, size=(len(users), len(items))).astype(np.float32)
    dense[dense > 0] += 0.25  # non-integer weights survive
    dense[1] = 0  # a user with nothing
    return Interactions(users, items, sp.csr_array(dense))


def test_round_trip_preserves_order_ids_values(tmp_path: Path) -> None:
    data = make_data()
    out = save_interactions(data, tmp_path / "ds")
    assert out == tmp_path / "ds"
    assert is_dataset_dir(out)
    back = load_interactions(out)
    assert back.users.to_list() == data.users.to_list()
    assert back.items.to_list() == ODD_IDS
    assert all(isinstance(i, str) for i in back.items.to_list())
    assert back.users.kind == "user" and back.items.kind == "item"
    assert back.matrix.dtype == np.float32
    assert back.matrix.shape == data.matrix.shape
    np.testing.assert_array_equal(back.matrix.toarray(), data.matrix.toarray())
    assert back.matrix.has_sorted_indices


def test_schema_json(tmp_path: Path) -> None:
    data = make_data()
    save_interactions(data, tmp_path / "ds")
    schema = json.loads((tmp_path / "ds" / "schema.json").read_text())
    assert schema["format"] == "segue.interactions"
    assert schema["version"] == 1
    assert schema["users"] == data.n_users
    assert schema["items"] == data.n_items
    assert schema["interactions"] == data.nnz
    names = sorted(p.name for p in (tmp_path / "ds").iterdir())
    assert names == ["interactions.parquet", "items.parquet", "schema.json", "users.parquet"]


def test_empty_dataset_round_trip(tmp_path: Path) -> None:
    data = Interactions.from_arrays([], [])
    back = load_interactions(save_interactions(data, tmp_path / "e"))
    assert back.n_users == 0 and back.n_items == 0 and back.nnz == 0


def _rewrite_schema(path: Path, **changes: object) -> None:
    f = path / "schema.json"
    schema = json.loads(f.read_text())
    schema.update(changes)
    f.write_text(json.dumps(schema))


@pytest.mark.parametrize(
    "changes", [{"version": 2}, {"version": "1"}, {"format": "other"}, {"format": None}]
)
def test_wrong_format_or_version(tmp_path: Path, changes: dict[str, object]) -> None:
    save_interactions(make_data(), tmp_path / "ds")
    _rewrite_schema(tmp_path / "ds", **changes)
    with pytest.raises(DataFormatError, match="unsupported dataset format") as info:
        load_interactions(tmp_path / "ds")
    assert str(tmp_path / "ds" / "schema.json") in str(info.value)


def test_missing_schema(tmp_path: Path) -> None:
    save_interactions(make_data(), tmp_path / "ds")
    (tmp_path / "ds" / "schema.json").unlink()
    assert not is_dataset_dir(tmp_path / "ds")
    with pytest.raises(DataFormatError, match="schema.json") as info:
        load_interactions(tmp_path / "ds")
    assert str(tmp_path / "ds") in str(info.value)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError):
        load_interactions(tmp_path / "nothing")


def test_invalid_json(tmp_path: Path) -> None:
    save_interactions(make_data(), tmp_path / "ds")
    (tmp_path / "ds" / "schema.json").write_text('{\n  "format": \n')
    with pytest.raises(DataFormatError, match="invalid JSON") as info:
        load_interactions(tmp_path / "ds")
    assert info.value.line == 3


def test_schema_not_an_object(tmp_path: Path) -> None:
    save_interactions(make_data(), tmp_path / "ds")
    (tmp_path / "ds" / "schema.json").write_text("[1, 2]")
    with pytest.raises(DataFormatError, match="unsupported"):
        load_interactions(tmp_path / "ds")


def test_missing_parquet_file(tmp_path: Path) -> None:
    save_interactions(make_data(), tmp_path / "ds")
    (tmp_path / "ds" / "items.parquet").unlink()
    with pytest.raises(DataFormatError, match="cannot read dataset"):
        load_interactions(tmp_path / "ds")


def test_missing_parquet_column(tmp_path: Path) -> None:
    save_interactions(make_data(), tmp_path / "ds")
    pq.write_table(pa.table({"user": [0]}), tmp_path / "ds" / "interactions.parquet")
    with pytest.raises(DataFormatError, match="cannot read dataset"):
        load_interactions(tmp_path / "ds")


def test_indices_out_of_range(tmp_path: Path) -> None:
    save_interactions(make_data(), tmp_path / "ds")
    table = pa.table(
        {
            "user_idx": pa.array([0, 99], pa.int32()),
            "item_idx": pa.array([0, 0], pa.int32()),
            "weight": pa.array([1, 1], pa.float32()),
        }
    )
    pq.write_table(table, tmp_path / "ds" / "interactions.parquet")
    with pytest.raises(DataFormatError, match="out of range"):
        load_interactions(tmp_path / "ds")


def test_save_replaces_existing_directory_atomically(tmp_path: Path) -> None:
    target = tmp_path / "ds"
    save_interactions(make_data(), target)
    (target / "stale.txt").write_text("left over")
    small = Interactions.from_arrays(["x"], ["y"], [3])
    save_interactions(small, target)
    assert not (target / "stale.txt").exists()
    back = load_interactions(target)
    assert back.users.to_list() == ["x"] and back.items.to_list() == ["y"]
    assert back.matrix.toarray().tolist() == [[3.0]]
    # no temporary or backup directories are left beside the target
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_failed_save_keeps_previous_dataset(tmp_path: Path) -> None:
    target = tmp_path / "ds"
    data = make_data()
    save_interactions(data, target)
    # Non-string ids cannot be written as the string id column: the save fails midway.
    bad = Interactions(IdMap([1, 2]), IdMap(["a"]), sp.csr_array(np.ones((2, 1), np.float32)))
    with pytest.raises(Exception):  # noqa: B017 - any failure will do
        save_interactions(bad, target)
    back = load_interactions(target)
    assert back.users.to_list() == data.users.to_list()
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]
