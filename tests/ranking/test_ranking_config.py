"""two-stage.toml: strict parsing, and the CLI path train --model two-stage -> recommend."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from segue import DataFormatError, ParameterError, UserKNN
from segue.cli.main import app
from segue.ranking.config import load_two_stage_config, two_stage_from_config


def test_config_builds_the_first_stage_and_settings(tmp_path: Path) -> None:
    path = tmp_path / "ts.toml"
    path.write_text(
        'n = 50\nper_category = 5\n[first_stage.u]\nmodel = "userknn"\n'
        "params = { neighbors = 7 }\n[ranker_params]\nlearning_rate = 0.1\n"
    )
    model = load_two_stage_config(path)
    assert model.n == 50 and model.per_category == 5
    assert isinstance(model.first_stage["u"], UserKNN)
    assert model.first_stage["u"].neighbors == 7
    assert model.ranker_params == {"learning_rate": 0.1}


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"bogus": 1}, "unknown two-stage setting"),
        ({"first_stage": {"a": {"model": "nope"}}}, "unknown model"),
        ({"first_stage": {"a": {"model": "ease", "params": {"l3": 1}}}}, "no parameter"),
        ({"first_stage": {"a": {"modle": "ease"}}}, "takes 'model' and 'params'"),
        ({"first_stage": {"a": 3}}, "must be a table"),
    ],
)
def test_config_errors_name_the_problem(doc: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        two_stage_from_config(doc)


def test_bad_toml_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("n = 5\nn = = 3\n")
    with pytest.raises(DataFormatError, match="bad.toml:2"):
        load_two_stage_config(path)


def test_cli_trains_and_submits_with_the_two_stage_model(tmp_path: Path) -> None:
    def ok(*args: object) -> str:
        res = CliRunner().invoke(app, [str(a) for a in args])
        assert res.exit_code == 0, res.output
        return res.output

    ok("generate", "mpd", "--out", tmp_path / "gen", "--playlists", 1500, "--tracks", 2000)
    ok("split", "mpd", tmp_path / "gen", "--out", tmp_path / "val", "--playlists", 100)
    config = tmp_path / "ts.toml"
    config.write_text(
        'n = 200\nper_category = 20\n[first_stage.userknn]\nmodel = "userknn"\n'
        '[first_stage.popularity]\nmodel = "popularity"\n'
    )
    ok(
        "train",
        "--mpd",
        tmp_path / "val" / "train",
        "--model",
        "two-stage",
        "--config",
        config,
        "--out",
        tmp_path / "ts",
    )
    assert (tmp_path / "ts" / "ranker_.txt").read_text().startswith("tree")
    ok(
        "recommend",
        tmp_path / "ts",
        "--challenge",
        tmp_path / "val" / "challenge_set.json",
        "--out",
        tmp_path / "ts.csv",
    )
    out = ok("evaluate", tmp_path / "ts.csv", "--answers", tmp_path / "val" / "answers.json")
    assert "r_precision" in out
    res = CliRunner().invoke(
        app,
        ["train", "--listens", str(config), "--model", "two-stage", "--out", str(tmp_path / "x")],
    )
    # two-stage trains on listens too (the listen-count task): a TOML file is not a listens file
    assert res.exit_code == 1 and "expected 3 fields" in res.output
