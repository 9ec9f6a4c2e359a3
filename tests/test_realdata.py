"""Accuracy floors on the real public datasets in ../shared/data (skipped when absent).

A seeded split of each dataset in the listen-count task's format; EASE and WRMF must beat
popularity's NDCG@100 by at least 30% (measured margins are about 2x, see bench/README.md).
On the real MPD playlists, a challenge split with the ten categories: user-kNN must at least
double popularity's NDCG and R-precision.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from segue import EASE, WRMF, Interactions, MostPopular, UserKNN
from segue.data.split import split_listens
from segue.metrics.evaluate import evaluate_lists

pytestmark = pytest.mark.realdata

DATASETS = {
    "lastfm": ("lastfm-hetrec2011-2k/user_artists.dat", {"sep": "\t", "header": 0}),
    "msd": ("msd-taste-profile/10000.head42739.txt", {"sep": "\t", "header": None}),
}


def load(shared_data: Path, name: str) -> pd.DataFrame:
    rel, opts = DATASETS[name]
    df = pd.read_csv(shared_data / rel, dtype=str, **opts)
    df.columns = ["user_id", "item_id", "count"]
    return df.astype({"count": "int64"})


def test_files_match_their_published_checksums(shared_data: Path) -> None:
    sums = dict(
        reversed(line.split(maxsplit=1))
        for line in (shared_data / "SHA256SUMS").read_text().splitlines()
        if line.strip()
    )
    for rel, _ in DATASETS.values():
        key = next(k for k in sums if k.strip().lstrip("*").lstrip("./") == rel)
        digest = hashlib.sha256((shared_data / rel).read_bytes()).hexdigest()
        assert digest == sums[key], rel


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_cf_models_beat_popularity_by_30_percent(shared_data: Path, name: str) -> None:
    split = split_listens(load(shared_data, name), seed=0)
    train = Interactions.from_arrays(
        split.listens["user_id"], split.listens["item_id"], split.listens["count"]
    )
    answers = Interactions.from_arrays(split.answers["user_id"], split.answers["item_id"])
    ndcg = {}
    models = {"pop": MostPopular(), "ease": EASE(l2=500.0, max_items=6000), "wrmf": WRMF()}
    for label, model in models.items():
        recs = model.fit(train).recommend(split.targets, 100)
        result = evaluate_lists(dict(recs.lists()), answers, [100], train=train)
        assert result.summary["seen_share"] == 0.0
        assert result.summary["missing_users"] == 0
        ndcg[label] = result.summary["ndcg@100"]
    assert ndcg["ease"] >= 1.3 * ndcg["pop"], ndcg
    assert ndcg["wrmf"] >= 1.3 * ndcg["pop"], ndcg


def test_mpd_challenge_split_user_knn_doubles_popularity(shared_data: Path, tmp_path) -> None:
    from segue.data.mpd_split import split_mpd
    from segue.data.readers.mpd import read_challenge_set, read_mpd
    from segue.inference import continue_playlists, playlist_interactions
    from segue.metrics.challenges import mpd_metrics
    from segue.metrics.playlist_eval import read_mpd_answers

    source = shared_data / "spotify-mpd" / "mpd_followers10.jsonl.xz"
    split_mpd(source, tmp_path / "val", n_playlists=200, seed=0, unseen="drop")
    train = playlist_interactions(read_mpd(tmp_path / "val" / "train"))
    queries = read_challenge_set(tmp_path / "val" / "challenge_set.json")
    answers = read_mpd_answers(tmp_path / "val" / "answers.json").set_index("pid")
    scores = {}
    for label, model in {"pop": MostPopular(), "userknn": UserKNN()}.items():
        model.fit(train)
        lists = {}
        for batch in continue_playlists(model, queries, 500):
            lists.update(zip(batch.pids.tolist(), batch.tracks, strict=True))
        pids = list(answers.index)
        per = mpd_metrics([lists[p] for p in pids], answers.loc[pids, "tracks"].tolist())
        scores[label] = per.mean()
    assert scores["userknn"]["ndcg"] >= 2 * scores["pop"]["ndcg"], scores
    assert scores["userknn"]["r_precision"] >= 2 * scores["pop"]["r_precision"], scores


def test_cli_path_on_the_real_lastfm_file(shared_data: Path, tmp_path: Path) -> None:
    """split / train / recommend / evaluate on the original hetrec TSV, through the CLI."""
    import json

    from typer.testing import CliRunner

    from segue.cli.main import app

    def run(*args: object) -> str:
        result = CliRunner().invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result.stdout

    source = shared_data / DATASETS["lastfm"][0]
    run(
        "split",
        "listens",
        source,
        "--format",
        "tsv",
        "--user-col",
        "userID",
        "--item-col",
        "artistID",
        "--weight-col",
        "weight",
        "--out",
        tmp_path / "split",
    )
    run(
        "train",
        "--listens",
        tmp_path / "split" / "listen_count.txt",
        "--model",
        "popularity",
        "--out",
        tmp_path / "model",
    )
    run(
        "recommend",
        tmp_path / "model",
        "--users",
        tmp_path / "split" / "target_users.txt",
        "--n",
        "100",
        "--out",
        tmp_path / "recs.txt",
    )
    summary = json.loads(
        run(
            "evaluate",
            tmp_path / "recs.txt",
            "--answers",
            tmp_path / "split" / "answers.txt",
            "--json",
        )
    )
    assert summary["users"] == 375 and 0.1 < summary["ndcg@100"] < 0.3
