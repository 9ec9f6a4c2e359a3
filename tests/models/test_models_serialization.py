import json

import numpy as np
import pytest

from segue import EASE, ModelFormatError, MostPopular, NotFittedError, load_model, save_model


def test_unfitted_model_cannot_be_saved(tmp_path) -> None:
    with pytest.raises(NotFittedError):
        save_model(EASE(), tmp_path / "m")


def test_manifest_names_class_params_versions_and_id_maps(planted, tmp_path) -> None:
    save_model(EASE(l2=3.0).fit(planted), tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["class"] == "segue.models.ease:EASE"
    assert manifest["params"]["l2"] == 3.0
    assert manifest["format_version"] == 2 and manifest["versions"]["segue"]
    assert manifest["versions"]["numpy"] and manifest["versions"]["scipy"]
    assert manifest["state"]["items_"] == {
        "codec": "idmap",
        "kind": "item",
        "ids": planted.items.to_list(),
    }
    assert manifest["state"]["users_"]["ids"] == planted.users.to_list()
    assert manifest["state"]["weights_"]["codec"] == "array"
    files = sorted(p.name for p in (tmp_path / "m").iterdir() if not p.name.startswith("."))
    assert files == ["arrays.npz", "manifest.json"]


def test_foreign_class_is_refused(planted, tmp_path) -> None:
    save_model(MostPopular().fit(planted), tmp_path / "m")
    path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["class"] = "os:system"
    path.write_text(json.dumps(manifest))
    with pytest.raises(ModelFormatError, match="not a registered segue model"):
        load_model(tmp_path / "m")


def test_wrong_version_missing_and_corrupt(planted, tmp_path) -> None:
    with pytest.raises(ModelFormatError, match="no manifest.json"):
        load_model(tmp_path / "nothing")
    save_model(MostPopular().fit(planted), tmp_path / "m")
    path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps(manifest | {"format_version": 99}))
    with pytest.raises(ModelFormatError, match="version 99"):
        load_model(tmp_path / "m")
    path.write_text("{not json")
    with pytest.raises(ModelFormatError, match="invalid JSON"):
        load_model(tmp_path / "m")


def test_arrays_with_objects_are_refused_on_load(planted, tmp_path) -> None:
    save_model(MostPopular().fit(planted), tmp_path / "m")
    np.savez(tmp_path / "m" / "arrays.npz", popularity_=np.array([object()], dtype=object))
    with pytest.raises(ModelFormatError, match="arrays.npz"):
        load_model(tmp_path / "m")


def test_save_replaces_an_existing_model_atomically(planted, tmp_path) -> None:
    save_model(MostPopular().fit(planted), tmp_path / "m")
    save_model(EASE().fit(planted), tmp_path / "m")
    assert isinstance(load_model(tmp_path / "m"), EASE)
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary leftovers


@pytest.mark.parametrize("chunk", [3, 1 << 24])
def test_stored_sparse_parts_are_checked_chunk_by_chunk_like_whole(chunk, monkeypatch) -> None:
    """Sorted-within-rows and finite checks (done in chunks, to bound memory) refuse exactly the
    matrices a whole-array check refuses; rows may start below the previous row's last index."""
    import scipy.sparse as sp

    import segue.serialization as ser

    monkeypatch.setattr(ser, "_CHECK_CHUNK", chunk)
    rng = np.random.default_rng(0)
    for trial in range(60):
        dense = (rng.random((6, 9)) < 0.4) * rng.random((6, 9))
        dense[rng.integers(6)] = 0  # an empty row
        m = sp.csr_array(dense.astype(np.float32))
        data, indices, indptr = m.data.copy(), m.indices.copy(), m.indptr.copy()
        if trial % 3 == 1 and m.nnz > 1:  # a swap or a duplicate somewhere
            i = int(rng.integers(m.nnz - 1))
            indices[i + 1] = indices[i] if trial % 2 else indices[i + 1]
            indices[[i, i + 1]] = indices[[i + 1, i]] if not trial % 2 else indices[[i, i + 1]]
        if trial % 7 == 2 and m.nnz:
            data[int(rng.integers(m.nnz))] = np.nan
        rows = np.repeat(np.arange(6), np.diff(indptr))
        ordered = all(np.all(np.diff(indices[rows == r].astype(np.int64)) > 0) for r in range(6))
        finite = bool(np.isfinite(data).all())
        shape = np.array([6, 9])
        if ordered and finite:
            got = ser._checked_csr(data, indices, indptr, shape)
            np.testing.assert_array_equal(
                got.toarray(), sp.csr_array((data, indices, indptr), shape=(6, 9)).toarray()
            )
        else:
            with pytest.raises(ModelFormatError, match="NaN|not sorted"):
                ser._checked_csr(data, indices, indptr, shape)
