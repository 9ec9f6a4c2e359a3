"""A model written only for this test trains, saves, loads and serves with no other file changed.

``ItemMeans`` is the smallest useful model: ``_fit``, ``_score``, and learned state that is a
dict of float arrays (saved as safetensors). It reaches ``segue train``, ``segue recommend``
and the HTTP service through its registration alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from contract import RecommenderContract
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from segue import BaseRecommender, load, register, save
from segue.models.base import FitData
from segue.service.app import create_app


@register("test-item-means")
class ItemMeans(BaseRecommender):
    """Mean listen count of each item, shrunk towards zero: the same list for everyone."""

    def __init__(self, shrinkage: float = 1.0) -> None:
        self.shrinkage = shrinkage

    def _fit(self, data: FitData) -> None:
        m = data.matrix
        total = np.bincount(m.indices, weights=m.data, minlength=m.shape[1])
        count = np.bincount(m.indices, minlength=m.shape[1])
        self.weights_ = {"mean": (total / (count + self.shrinkage)).astype(np.float32)}

    def _score(self, user_idx: np.ndarray, history) -> np.ndarray:
        return np.tile(self.weights_["mean"], (len(user_idx), 1))


class TestItemMeansContract(RecommenderContract):
    folds_in_exactly = True

    def make_model(self) -> BaseRecommender:
        return ItemMeans(shrinkage=2.0)


def test_state_is_saved_as_safetensors(planted, tmp_path: Path) -> None:
    model = ItemMeans().fit(planted)
    save(model, tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["name"] == "test-item-means"
    entry = manifest["state"]["weights_"]
    assert entry["codec"] == "tensors" and entry["framework"] == "numpy"
    assert entry["file"] == "weights_.safetensors" and len(entry["sha256"]) == 64
    assert manifest["versions"]["safetensors"]
    loaded = load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.weights_["mean"], model.weights_["mean"])


def test_trains_recommends_and_serves_through_cli_and_http(tmp_path: Path) -> None:
    from segue.cli.main import app

    def ok(*args: object) -> str:
        res = CliRunner().invoke(app, [str(a) for a in args])
        assert res.exit_code == 0, res.output
        return res.output

    ok("generate", "listens", "--out", tmp_path / "lc.txt", "--users", 200, "--items", 300)
    ok("split", "listens", tmp_path / "lc.txt", "--out", tmp_path / "val")
    ok(
        "train",
        "--listens",
        tmp_path / "val" / "listen_count.txt",
        "--model",
        "test-item-means",
        "--param",
        "shrinkage=3",
        "--out",
        tmp_path / "model",
    )
    ok(
        "recommend",
        tmp_path / "model",
        "--users",
        tmp_path / "val" / "target_users.txt",
        "--out",
        tmp_path / "recs.txt",
    )
    lines = (tmp_path / "recs.txt").read_text().splitlines()
    model = load(tmp_path / "model")
    assert isinstance(model, ItemMeans) and model.shrinkage == 3
    user = lines[0].split()[0]
    _, expected = next(model.recommend([user], 100).lists())
    assert lines[0].split()[1:] == [str(i) for i in expected]
    with TestClient(create_app(tmp_path / "model")) as client:
        info = client.get("/v1/model").json()
        assert info["model"] == "ItemMeans" and info["params"] == {"shrinkage": 3}
        got = client.post("/v1/recommend", json={"user": user, "n": 100}).json()
        assert got["tracks"] == lines[0].split()[1:]
        cold = client.post("/v1/continue", json={"tracks": [], "n": 5}).json()
        assert cold["cold_start"] is True and len(cold["tracks"]) == 5


def test_unregistered_name_in_a_manifest_is_refused(planted, tmp_path: Path) -> None:
    from segue import ModelFormatError

    save(ItemMeans().fit(planted), tmp_path / "m")
    path = tmp_path / "m" / "manifest.json"
    doc = json.loads(path.read_text())
    doc["class"] = "tests.models.test_model_plugin:NotRegistered"
    path.write_text(json.dumps(doc))
    with pytest.raises(ModelFormatError, match="not a registered"):
        load(tmp_path / "m")
