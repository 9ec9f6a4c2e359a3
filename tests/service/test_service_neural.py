"""The neural models behind the HTTP service: ``/v1/continue`` answers what ``segue recommend``
writes for the same Melon questions (songs and tags), from a saved directory (safetensors)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from segue import save_model
from segue.cli.main import app as cli_app
from segue.data.melon_split import split_melon
from segue.data.readers.melon import read_melon
from segue.data.synthetic.melon import generate_melon
from segue.inference import playlist_interactions
from segue.models.registry import model_class
from segue.service.app import create_app

pytest.importorskip("torch")

TINY = {
    "autoencoder": {"layers": [16, 8], "epochs": 2, "validation_rows": 0},
    "autoencoder-song": {
        "orientation": "song",
        "layers": [16, 8],
        "epochs": 2,
        "validation_rows": 0,
        "n_neighbors": 10,
    },
    "ease-gd": {"l2": 20.0, "solver": "gd", "epochs": 2},
}
MODEL = {"autoencoder-song": "autoencoder", "ease-gd": "ease"}


@pytest.fixture(scope="module")
def melon(tmp_path_factory):
    root = tmp_path_factory.mktemp("melon")
    generate_melon(root / "gen", n_playlists=300, n_songs=400, n_tags=40, seed=0)
    split_melon(root / "gen" / "train.json", root / "val", fraction=0.1, seed=0)
    train = playlist_interactions(
        read_melon(root / "val" / "train.json"), with_tags=True, with_titles=True
    )
    return root, train


@pytest.mark.parametrize("name", sorted(TINY))
def test_continue_over_http_equals_recommend(melon, name) -> None:
    root, train = melon
    model = model_class(MODEL.get(name, name))(**TINY[name]).fit(train)
    save_model(model, root / name)
    out = root / f"{name}.json"
    questions_file = root / "val" / "questions.json"
    res = CliRunner().invoke(
        cli_app,
        ["recommend", str(root / name), "--questions", str(questions_file), "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    results = {r["id"]: r for r in json.loads(out.read_text())}
    questions = json.loads(questions_file.read_text())[:15]
    with TestClient(create_app(root / name)) as client:
        for q in questions:
            body = {"tracks": q["songs"], "tags": q["tags"], "title": q["plylst_title"]}
            got = client.post("/v1/continue", json={**body, "n": 100, "n_tags": 10}).json()
            assert got["tracks"] == results[q["id"]]["songs"], q["id"]
            assert got["tags"] == results[q["id"]]["tags"], q["id"]
