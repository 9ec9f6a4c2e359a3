"""The playlist path through the CLI: generate, split, train, submit, score, on both tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from segue.cli.main import app

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def ok(*args: object) -> str:
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def mpd_split(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mpd")
    ok("generate", "mpd", "--out", root / "gen", "--playlists", 1500, "--tracks", 2000)
    ok("split", "mpd", root / "gen", "--out", root / "val", "--playlists", 200, "--seed", 0)
    return root / "val"


@pytest.fixture(scope="module")
def mpd_submissions(mpd_split: Path, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("mpd-models")
    paths = {}
    for model in ("popularity", "itemknn"):
        ok("train", "--mpd", mpd_split / "train", "--model", model, "--out", root / model)
        out = root / f"{model}.csv"
        ok("recommend", root / model, "--challenge", mpd_split / "challenge_set.json", "--out", out)
        paths[model] = out
    return paths


def test_submission_is_in_the_official_format(mpd_split, mpd_submissions) -> None:
    lines = mpd_submissions["itemknn"].read_text().splitlines()
    assert lines[0] == "team_info,segue,main,segue@example.org"
    challenge = json.loads((mpd_split / "challenge_set.json").read_text())
    assert len(lines) - 1 == len(challenge["playlists"]) == 200
    seeds = {p["pid"]: {t["track_uri"] for t in p["tracks"]} for p in challenge["playlists"]}
    for line in lines[1:]:
        pid, *tracks = [f.strip() for f in line.split(",")]
        assert len(tracks) == 500 == len(set(tracks))
        assert not seeds[int(pid)] & set(tracks)


def test_evaluate_scores_categories_and_draws_plots(mpd_split, mpd_submissions, tmp_path) -> None:
    res = invoke(
        "evaluate",
        mpd_submissions["popularity"],
        mpd_submissions["itemknn"],
        "--answers",
        mpd_split / "answers.json",
        "--plots",
        tmp_path / "mpd",
        "--json",
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    pop, knn = doc["summary"]["popularity"], doc["summary"]["itemknn"]
    assert knn["ndcg"] > pop["ndcg"] and knn["r_precision"] > pop["r_precision"]
    categories = doc["buckets"]["category"]["itemknn"]
    assert len(categories) == 11  # ten categories and "all"
    for plot in doc["plots"]:
        assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_writes_one_html_report(mpd_split, mpd_submissions, tmp_path) -> None:
    report = tmp_path / "report.html"
    models = mpd_submissions["itemknn"].parent
    ok(
        "evaluate",
        mpd_submissions["popularity"],
        mpd_submissions["itemknn"],
        *("--answers", mpd_split / "answers.json", "--plots", tmp_path / "mpd"),
        *(
            "--report",
            report,
            "--model-dir",
            models / "popularity",
            "--model-dir",
            models / "itemknn",
        ),
    )
    html = report.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".html"] == ["report.html"]
    assert html.count("data:image/png;base64,") == 2  # category and seed length
    assert "by category" in html and "by seed length" in html and "ItemKNN" in html
    assert "--report" in html and "challenge playlists" in html
    res = invoke(
        "evaluate",
        mpd_submissions["popularity"],
        "--answers",
        mpd_split / "answers.json",
        "--report",
        report,
        "--model-dir",
        models / "popularity",
        "--model-dir",
        models / "itemknn",
    )
    assert res.exit_code == 1 and "--model-dir was given 2 times for 1 runs" in res.output


def test_a_broken_submission_is_rejected(mpd_split, mpd_submissions, tmp_path) -> None:
    lines = mpd_submissions["popularity"].read_text().splitlines()
    pid, *tracks = lines[1].split(",")
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join([lines[0], ",".join([pid, *tracks[:-1]]), *lines[2:]]) + "\n")
    res = invoke("evaluate", broken, "--answers", mpd_split / "answers.json")
    assert res.exit_code == 1
    assert "broken.csv:2" in res.output


def test_recommend_needs_exactly_one_target_kind(mpd_split, mpd_submissions, tmp_path) -> None:
    model = mpd_submissions["popularity"].parent / "popularity"
    res = invoke("recommend", model, "--out", tmp_path / "x.csv")
    assert res.exit_code == 1 and "exactly one of" in res.output
    res = invoke("train", "--model", "popularity", "--out", tmp_path / "m")
    assert res.exit_code == 1 and "exactly one of" in res.output


def test_import_mpd_then_train_from_parquet(mpd_split, tmp_path) -> None:
    ok("data", "import-mpd", mpd_split / "train", "--out", tmp_path / "imported")
    assert (tmp_path / "imported" / "entries.parquet").is_file()
    ok("train", "--mpd", tmp_path / "imported", "--model", "popularity", "--out", tmp_path / "m")


def test_melon_end_to_end(tmp_path) -> None:
    ok("generate", "melon", "--out", tmp_path / "gen", "--playlists", 600, "--songs", 1500)
    ok("split", "melon", tmp_path / "gen", "--out", tmp_path / "val", "--seed", 0)
    results = {}
    for model in ("popularity", "itemknn"):
        ok("train", "--melon", tmp_path / "val", "--model", model, "--out", tmp_path / model)
        out = tmp_path / f"{model}.json"
        ok(
            "recommend",
            tmp_path / model,
            "--questions",
            tmp_path / "val" / "questions.json",
            "--out",
            out,
        )
        results[model] = out
    rows = json.loads(results["itemknn"].read_text())
    assert all(len(r["songs"]) == 100 and len(r["tags"]) == 10 for r in rows)
    res = invoke(
        "evaluate", *results.values(), "--answers", tmp_path / "val" / "answers.json", "--json"
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)["summary"]
    assert summary["itemknn"]["score"] > summary["popularity"]["score"]
    assert summary["itemknn"]["tag_ndcg"] > summary["popularity"]["tag_ndcg"]
