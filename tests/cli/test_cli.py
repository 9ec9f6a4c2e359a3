"""The CLI end to end: files in, files out, honest errors, nothing half-written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from segue.cli.main import app
from segue.data.readers.listens import read_listens, write_listens
from segue.data.synthetic.listens import generate_listens

runner = CliRunner()


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def train(listens: Path, model: str, out: Path):
    return invoke("train", "--listens", listens, "--model", model, "--out", out)


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    write_listens(root / "listen_count.txt", generate_listens(400, 600, n_clusters=8, seed=3))
    result = invoke(
        "split",
        "listens",
        root / "listen_count.txt",
        "--out",
        root / "split",
        "--target-fraction",
        "0.2",
        "--holdout-fraction",
        "0.5",
        "--min-items",
        "10",
        "--seed",
        "0",
    )
    assert result.exit_code == 0, result.output
    return root / "split"


@pytest.mark.parametrize("model", ["popularity", "ease", "wrmf", "itemknn", "userknn"])
def test_train_recommend_evaluate(split_dir: Path, tmp_path: Path, model: str) -> None:
    res = train(split_dir / "listen_count.txt", model, tmp_path / "model")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "model" / "manifest.json").is_file()
    res = invoke(
        "recommend",
        tmp_path / "model",
        "--users",
        split_dir / "target_users.txt",
        "--n",
        "100",
        "--out",
        tmp_path / "recs.txt",
    )
    assert res.exit_code == 0, res.output
    lines = (tmp_path / "recs.txt").read_text().splitlines()
    targets = (split_dir / "target_users.txt").read_text().split()
    assert [line.split()[0] for line in lines] == targets  # one line per target, in order
    seen = read_listens(split_dir / "listen_count.txt").groupby("user_id")["item_id"].agg(set)
    for line in lines:
        uid, *songs = line.split()
        assert len(songs) == 100 and len(set(songs)) == 100
        assert not set(songs) & seen[uid]
    res = invoke(
        "evaluate",
        tmp_path / "recs.txt",
        "--answers",
        split_dir / "answers.txt",
        "--listens",
        split_dir / "listen_count.txt",
        "--json",
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert 0 < summary["ndcg@100"] <= 1 and summary["seen_share"] == 0
    assert summary["users"] == len(targets) and summary["missing_users"] == 0


def test_ease_beats_popularity_through_the_cli(split_dir: Path, tmp_path: Path) -> None:
    scores = {}
    for model in ("popularity", "ease"):
        train(split_dir / "listen_count.txt", model, tmp_path / model)
        invoke(
            "recommend",
            tmp_path / model,
            "--users",
            split_dir / "target_users.txt",
            "--out",
            tmp_path / f"{model}.txt",
        )
        res = invoke(
            "evaluate", tmp_path / f"{model}.txt", "--answers", split_dir / "answers.txt", "--json"
        )
        scores[model] = json.loads(res.stdout)["ndcg@100"]
    assert scores["ease"] > 1.3 * scores["popularity"]


def test_params_and_params_file(split_dir: Path, tmp_path: Path) -> None:
    res = invoke(
        "train",
        "--listens",
        split_dir / "listen_count.txt",
        "--model",
        "ease",
        "--param",
        "l2=50",
        "--param",
        "binarize=false",
        "--out",
        tmp_path / "m",
    )
    assert res.exit_code == 0, res.output
    params = json.loads((tmp_path / "m" / "manifest.json").read_text())["params"]
    assert params["l2"] == 50 and params["binarize"] is False
    (tmp_path / "p.json").write_text('{"l2": 7.5}')
    res = invoke(
        "train",
        "--listens",
        split_dir / "listen_count.txt",
        "--model",
        "ease",
        "--params-file",
        tmp_path / "p.json",
        "--out",
        tmp_path / "m2",
    )
    assert json.loads((tmp_path / "m2" / "manifest.json").read_text())["params"]["l2"] == 7.5
    res = invoke(
        "train",
        "--listens",
        split_dir / "listen_count.txt",
        "--model",
        "ease",
        "--param",
        "lambda=5",
        "--out",
        tmp_path / "m3",
    )
    assert res.exit_code == 1 and "no parameter 'lambda'" in res.output
    res = train(split_dir / "listen_count.txt", "svd", tmp_path / "m3")
    assert res.exit_code == 1 and "unknown model 'svd'" in res.output


def test_unknown_target_users(split_dir: Path, tmp_path: Path) -> None:
    train(split_dir / "listen_count.txt", "ease", tmp_path / "m")
    targets = tmp_path / "targets.txt"
    first = (split_dir / "target_users.txt").read_text().split()[0]
    targets.write_text(f"{first}\nstranger\n")
    res = invoke("recommend", tmp_path / "m", "--users", targets, "--out", tmp_path / "r.txt")
    assert res.exit_code == 0 and "1 users with no history given the cold-start list" in res.output
    lines = (tmp_path / "r.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines] == [first, "stranger"]
    assert len(lines[1].split()) == 101
    res = invoke(
        "recommend",
        tmp_path / "m",
        "--users",
        targets,
        "--unknown",
        "skip",
        "--out",
        tmp_path / "r2.txt",
    )
    assert [line.split()[0] for line in (tmp_path / "r2.txt").read_text().splitlines()] == [first]
    res = invoke(
        "recommend",
        tmp_path / "m",
        "--users",
        targets,
        "--unknown",
        "raise",
        "--out",
        tmp_path / "r3.txt",
    )
    assert res.exit_code == 1 and "stranger" in res.output
    assert not (tmp_path / "r3.txt").exists()


def test_history_option_folds_in_new_listens(split_dir: Path, tmp_path: Path) -> None:
    train(split_dir / "listen_count.txt", "ease", tmp_path / "m")
    df = read_listens(split_dir / "listen_count.txt")
    songs = df[df.user_id == df.user_id.iloc[0]].item_id.tolist()
    (tmp_path / "new.txt").write_text("".join(f"newbie {s} 3\n" for s in songs))
    (tmp_path / "t.txt").write_text("newbie\n")
    res = invoke(
        "recommend",
        tmp_path / "m",
        "--users",
        tmp_path / "t.txt",
        "--history",
        tmp_path / "new.txt",
        "--n",
        "10",
        "--out",
        tmp_path / "r.txt",
    )
    assert res.exit_code == 0, res.output
    rec = (tmp_path / "r.txt").read_text().split()
    assert rec[0] == "newbie" and len(rec) == 11 and not set(rec[1:]) & set(songs)


def test_malformed_input_gives_file_line_reason_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "listen_count.txt"
    bad.write_text("u1 s1 3\nu1 s2 3\nu2 s1 zero\n")
    res = invoke("train", "--listens", bad, "--model", "popularity", "--out", tmp_path / "m")
    assert res.exit_code == 1
    assert f"{bad}:3: count 'zero' is not a number" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "m").exists()


def test_failed_recommend_keeps_the_previous_output(split_dir: Path, tmp_path: Path) -> None:
    train(split_dir / "listen_count.txt", "popularity", tmp_path / "m")
    out = tmp_path / "recs.txt"
    out.write_text("previous content\n")
    (tmp_path / "empty.txt").write_text("  \n")
    res = invoke("recommend", tmp_path / "m", "--users", tmp_path / "empty.txt", "--out", out)
    assert res.exit_code == 1 and "empty" in res.output
    assert out.read_text() == "previous content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.txt", "m", "recs.txt"]


def test_table_inputs_and_dataset_dirs(tmp_path: Path) -> None:
    csv = tmp_path / "plays.csv"
    csv.write_text("listener,track,plays\na,x,3\na,y,1\nb,x,2\nb,z,5\nc,y,1\nc,z,2\n")
    res = invoke(
        "data",
        "convert",
        csv,
        "--out",
        tmp_path / "ds",
        "--user-col",
        "listener",
        "--item-col",
        "track",
        "--weight-col",
        "plays",
    )
    assert res.exit_code == 0, res.output
    res = invoke("data", "describe", tmp_path / "ds")
    assert json.loads(res.stdout)["interactions"] == 6
    res = invoke(
        "train", "--listens", tmp_path / "ds", "--model", "popularity", "--out", tmp_path / "m"
    )
    assert res.exit_code == 0, res.output
    res = invoke(
        "train",
        "--listens",
        csv,
        "--model",
        "ease",
        "--user-col",
        "listener",
        "--item-col",
        "track",
        "--out",
        tmp_path / "m2",
    )
    assert res.exit_code == 0, res.output
    res = invoke("train", "--listens", csv, "--model", "ease", "--out", tmp_path / "m3")
    assert res.exit_code == 1 and "missing column" in res.output


def test_generate_writes_a_readable_file(tmp_path: Path) -> None:
    res = invoke(
        "generate",
        "listens",
        "--out",
        tmp_path / "l.txt",
        "--users",
        "50",
        "--items",
        "80",
        "--seed",
        "1",
    )
    assert res.exit_code == 0, res.output
    df = read_listens(tmp_path / "l.txt")
    assert df.user_id.nunique() == 50 and (df["count"] > 0).all()


def test_evaluate_rejects_duplicate_songs(tmp_path: Path) -> None:
    (tmp_path / "recs.txt").write_text("u1 a b a\n")
    (tmp_path / "answers.txt").write_text("u1 a 1\n")
    res = invoke("evaluate", tmp_path / "recs.txt", "--answers", tmp_path / "answers.txt")
    assert res.exit_code == 1 and "recs.txt:1: song 'a' is recommended twice" in res.output


def test_evaluate_on_spark_refuses_what_only_the_local_engine_writes(tmp_path: Path) -> None:
    """--engine spark prints overall means only: a report, plots or per-user file it would not
    write is an error before any work, never a silent skip."""
    (tmp_path / "recs.txt").write_text("u1 a b\n")
    (tmp_path / "answers.txt").write_text("u1 a 1\n")
    res = invoke(
        "evaluate", tmp_path / "recs.txt", "--answers", tmp_path / "answers.txt",
        "--engine", "spark", "--report", tmp_path / "r.html", "--plots", tmp_path / "p",
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    assert "--report, --plots: not computed on Spark" in res.output
    assert not (tmp_path / "r.html").exists()


def test_demo_runs_small(tmp_path: Path) -> None:
    """Every part of the demo, at small sizes: listens, MPD and Melon with two-stage, serving."""
    res = invoke(
        "demo",
        *("--out", tmp_path / "demo", "--users", "300", "--items", "500"),
        *("--playlists", "1200", "--tracks", "1500", "--melon-playlists", "1000"),
    )
    assert res.exit_code == 0, res.output
    assert "ndcg@100" in res.stdout and "popularity" in res.stdout and "ease" in res.stdout
    assert "r_precision" in res.stdout and "clicks" in res.stdout and "two-stage" in res.stdout
    assert "song_ndcg" in res.stdout and "tag_ndcg" in res.stdout
    assert (tmp_path / "demo" / "validation" / "answers.txt").is_file()
    assert (tmp_path / "demo" / "submissions" / "mpd.category.png").is_file()
    for report in ("report-mpd.html", "report-melon.html"):
        assert f"{report}" in res.stdout
        assert "data:image/png;base64," in (tmp_path / "demo" / report).read_text()
    # the served continuation: five seeds, then ten numbered recommendations, server stopped
    served = res.stdout[res.stdout.index("POST /v1/continue") :]
    assert served.count("  seed  ") == 5 and "  10" in served and "server stopped" in served
    with pytest.raises(OSError):  # nothing listens on the demo's port any more
        url = re.search(r"on (http://127.0.0.1:\d+)", res.stdout).group(1)
        urllib.request.urlopen(f"{url}/health", timeout=2)


def test_console_script_exit_code_and_stderr(tmp_path: Path) -> None:
    """A real process: non-zero exit, message on stderr, no traceback."""
    missing = tmp_path / "nope.txt"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "segue",
            "train",
            "--listens",
            str(missing),
            "--model",
            "ease",
            "--out",
            str(tmp_path / "m"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert f"{missing}: no such file" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert np.isfinite(proc.returncode)


def test_bad_out_fails_before_the_work(split_dir: Path, tmp_path: Path) -> None:
    """A --out that would replace an input is refused at once, and nothing is changed."""
    listens = split_dir / "listen_count.txt"
    before = listens.read_bytes()
    res = train(listens, "ease", split_dir)  # the folder holding the input
    assert res.exit_code == 1 and "holds the input" in res.output and "Traceback" not in res.output
    assert listens.read_bytes() == before
    model_dir = tmp_path / "m"
    assert train(listens, "popularity", model_dir).exit_code == 0
    targets = split_dir / "target_users.txt"
    targets_before = targets.read_bytes()
    res = CliRunner().invoke(
        app, ["recommend", str(model_dir), "--users", str(targets), "--out", str(targets)]
    )
    assert res.exit_code == 1 and "would replace the input" in res.output
    assert targets.read_bytes() == targets_before
