"""Grid search on a validation split of the training input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from segue import EASE, Interactions, MostPopular, ParameterError
from segue.cli.main import app
from segue.cli.tune import parse_grid
from segue.data.readers.listens import write_listens
from segue.data.synthetic.listens import generate_listens
from segue.tuning import expand_grid, grid_search


@pytest.fixture(scope="module")
def listens():
    return generate_listens(300, 400, n_clusters=6, seed=1)


@pytest.fixture(scope="module")
def data(listens) -> Interactions:
    return Interactions.from_frame(listens, weight="count")


def test_expand_grid_is_the_cartesian_product() -> None:
    points = expand_grid({"a": [1, 2], "b": ["x", "y", "z"]})
    assert len(points) == 6 and points[0] == {"a": 1, "b": "x"} and points[-1] == {"a": 2, "b": "z"}
    with pytest.raises(ParameterError, match="no values"):
        expand_grid({"a": []})


def test_grid_search_ranks_points_by_the_metric(data: Interactions) -> None:
    result = grid_search(data, EASE, {"l2": [0.01, 50.0, 1e6]}, k=50, metric="ndcg@50")
    scores = result.table["ndcg@50"].to_numpy()
    assert len(scores) == 3 and np.all(np.diff(scores) <= 0)
    assert result.best_params == {"l2": result.table["l2"].iloc[0]}
    # an absurd l2 makes EASE near-popularity; a sane one must beat it on clustered data
    assert result.table["l2"].iloc[-1] in (0.01, 1e6) and result.best_params["l2"] == 50.0


def test_validation_targets_come_from_the_training_input_only(data: Interactions) -> None:
    result = grid_search(data, MostPopular, {"weighting": ["users", "count"]})
    assert 0 < result.split["targets"] <= data.n_users
    assert result.split["visible_pairs"] + result.split["held_out_pairs"] == data.nnz


def test_fixed_parameters_are_part_of_the_best(data: Interactions) -> None:
    result = grid_search(data, EASE, {"l2": [10.0, 100.0]}, fixed={"binarize": False})
    assert result.best_params["binarize"] is False


@pytest.mark.parametrize(
    ("grid", "kwargs", "match"),
    [
        ({"alpha": [1]}, {}, "no parameter"),
        ({"l2": [10.0]}, {"fixed": {"nope": 1}}, "no parameter"),
        ({"l2": [10.0]}, {"metric": "accuracy"}, "unknown metric"),
    ],
)
def test_bad_requests_are_clear_errors(data, grid, kwargs, match) -> None:
    with pytest.raises(ParameterError, match=match):
        grid_search(data, EASE, grid, **kwargs)


def test_parse_grid() -> None:
    assert parse_grid(["l2=10,100", "binarize=true,false"]) == {
        "l2": [10, 100],
        "binarize": [True, False],
    }
    for bad in (["l2"], ["=1,2"], ["l2="], ["l2=1", "l2=2"]):
        with pytest.raises(ParameterError):
            parse_grid(bad)


def test_cli_tune_writes_parameters_that_train_takes_back(listens, tmp_path: Path) -> None:
    runner = CliRunner()
    write_listens(tmp_path / "listen_count.txt", listens)
    res = runner.invoke(
        app,
        [
            "tune",
            "--listens",
            str(tmp_path / "listen_count.txt"),
            "--model",
            "ease",
            "--grid",
            "l2=1,100",
            "--out",
            str(tmp_path / "best.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "best ndcg@100" in res.output
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["model"] == "ease" and best["l2"] in (1, 100)
    args = ["train", "--listens", str(tmp_path / "listen_count.txt"), "--out"]
    res = runner.invoke(
        app,
        [
            *args,
            str(tmp_path / "m"),
            "--model",
            "ease",
            "--params-file",
            str(tmp_path / "best.json"),
        ],
    )
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["params"]["l2"] == best["l2"]
    res = runner.invoke(
        app,
        [
            *args,
            str(tmp_path / "p"),
            "--model",
            "popularity",
            "--params-file",
            str(tmp_path / "best.json"),
        ],
    )
    assert res.exit_code == 1 and "not 'popularity'" in res.output
