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
