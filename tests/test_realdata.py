"""Accuracy floors on the real public datasets in ../shared/data (skipped when absent).

Floors sit at about 0.9x the values measured with the same code (issue 18: loose floors hide
regressions); a drop of more than 10% fails. A seeded split of each dataset in the listen-count
task's format: popularity, EASE and WRMF NDCG@100, and the margins of EASE and WRMF over
popularity. On the real MPD playlists, a challenge split with the ten categories: user-kNN
against popularity, a small two-stage model against its own first stage, and the file scorer's
artist credit against a hand-computed list.
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


# NDCG@100 measured on split_listens(seed=0) by the test's own code (2026-12-01, issue 18; WRMF at
# its defaults chosen by bench/choose_defaults.py: factors 256, alpha 8, regularization 30)
MEASURED = {
    "lastfm": {"pop": 0.1946, "ease": 0.4197, "wrmf": 0.3975},
    "msd": {"pop": 0.0922, "ease": 0.2103, "wrmf": 0.2210},
}
FLOOR = 0.9  # of the measured value


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_cf_models_hold_their_measured_accuracy(shared_data: Path, name: str) -> None:
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
    measured = MEASURED[name]
    # popularity is deterministic: a moved value means the split or the metric changed
    assert ndcg["pop"] == pytest.approx(measured["pop"], abs=5e-4), ndcg
    for label in ("ease", "wrmf"):
        assert ndcg[label] >= FLOOR * measured[label], (label, ndcg)
        margin = measured[label] / measured["pop"]  # 2.0x to 2.4x
        assert ndcg[label] >= FLOOR * margin * ndcg["pop"], (label, ndcg)


_SPLITS: dict[Path, Path] = {}


@pytest.fixture
def mpd_split(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real MPD sample split into 200 challenge questions (built once per session)."""
    from segue.data.mpd_split import split_mpd

    source = shared_data / "spotify-mpd" / "mpd_followers10.jsonl.xz"
    if source not in _SPLITS:
        out = tmp_path_factory.mktemp("mpd") / "val"
        split_mpd(source, out, n_playlists=200, seed=0, unseen="drop")
        _SPLITS[source] = out
    return _SPLITS[source]


def _mpd_scores(model, mpd_split: Path, n: int = 500) -> dict[str, float]:
    """Mean R-precision, NDCG and clicks of ``model`` (fitted) on the split's questions."""
    from segue.data.readers.mpd import read_challenge_set
    from segue.inference import continue_playlists
    from segue.metrics.challenges import mpd_metrics
    from segue.metrics.playlist_eval import read_mpd_answers

    queries = read_challenge_set(mpd_split / "challenge_set.json")
    answers = read_mpd_answers(mpd_split / "answers.json").set_index("pid")
    lists = {}
    for batch in continue_playlists(model, queries, n):
        lists.update(zip(batch.pids.tolist(), batch.tracks, strict=True))
    pids = list(answers.index)
    per = mpd_metrics([lists[p] for p in pids], answers.loc[pids, "tracks"].tolist())
    return {k: float(v) for k, v in per.mean().items()}


def test_mpd_challenge_split_user_knn_against_popularity(mpd_split: Path) -> None:
    from segue.data.readers.mpd import read_mpd
    from segue.inference import playlist_interactions

    train = playlist_interactions(read_mpd(mpd_split / "train"))
    scores = {
        label: _mpd_scores(model.fit(train), mpd_split)
        for label, model in {"pop": MostPopular(), "userknn": UserKNN()}.items()
    }
    # measured (no artist credit): popularity NDCG 0.0830, R-precision 0.0307; user-kNN 0.3069,
    # 0.1461 (3.7x and 4.8x popularity)
    pop, knn = scores["pop"], scores["userknn"]
    assert pop["ndcg"] == pytest.approx(0.0830, abs=5e-4), scores
    assert knn["ndcg"] >= FLOOR * 0.3069, scores
    assert knn["r_precision"] >= FLOOR * 0.1461, scores
    assert knn["ndcg"] >= FLOOR * 3.70 * pop["ndcg"], scores
    assert knn["r_precision"] >= FLOOR * 4.76 * pop["r_precision"], scores


@pytest.mark.slow
def test_mpd_small_two_stage_beats_its_own_first_stage(mpd_split: Path) -> None:
    """A small two-stage model (user-kNN + popularity, one inner fold) on the real MPD playlists
    re-ranks user-kNN's candidates better than user-kNN's own order."""
    from segue.data.readers.mpd import read_mpd
    from segue.ranking.two_stage import TwoStage

    model = TwoStage(
        {"userknn": {"model": "userknn"}, "pop": {"model": "popularity"}},
        n=500,
        per_category=30,
        folds=1,
        num_boost_round=100,
        num_threads=1,
    ).fit(read_mpd(mpd_split / "train"))
    two = _mpd_scores(model, mpd_split)
    knn = _mpd_scores(model.models_["userknn"], mpd_split)
    # measured: two-stage NDCG 0.3217, R-precision 0.1599, clicks 4.86; its user-kNN 0.3164,
    # 0.1530, 5.63 (about 20 s to fit)
    assert two["ndcg"] >= FLOOR * 0.3217, (two, knn)
    assert two["r_precision"] >= FLOOR * 0.1599, (two, knn)
    assert two["ndcg"] > knn["ndcg"] and two["r_precision"] > knn["r_precision"], (two, knn)


def test_file_scorer_artist_credit_matches_a_hand_computed_list(
    mpd_split: Path, tmp_path: Path
) -> None:
    """One real question, a list built by hand: an exact hit, a non-hit by an answer artist, a
    second non-hit by that artist, a non-hit by the exact hit's artist, then tracks of other
    artists. By the rules (module docstring of segue.metrics.challenges): T = 1, A = 2 distinct
    artists, R-precision = (1 + 0.25 * 2) / |G|; NDCG = 1 / IDCG(min(|G|, 500)); 0 clicks."""
    import json

    import numpy as np

    from segue.metrics.playlist_eval import evaluate_mpd
    from segue.metrics.submission import write_mpd_submission

    tracks = pd.read_parquet(mpd_split / "tracks.parquet", columns=["track", "artist"])
    artist_of = dict(zip(tracks["track"], tracks["artist"], strict=True))
    by_artist = tracks.groupby("artist")["track"].apply(list).to_dict()
    answers = json.loads((mpd_split / "answers.json").read_text())["playlists"]
    challenge = json.loads((mpd_split / "challenge_set.json").read_text())["playlists"]
    seeds = {p["pid"]: {t["track_uri"] for t in p.get("tracks", [])} for p in challenge}

    def usable(pid: int, truth: set[str], artist: str, n: int) -> list[str]:
        taken = truth | seeds[pid]
        return [t for t in by_artist.get(artist, []) if t not in taken][:n]

    case = None
    for p in answers:  # the first question where the hand-made list can be built
        truth = set(p["tracks"])
        hit = p["tracks"][0]
        others = sorted({artist_of[t] for t in truth} - {artist_of[hit]})
        for a in others:
            two = usable(p["pid"], truth, a, 2)
            one = usable(p["pid"], truth, artist_of[hit], 1)
            if len(truth) >= 4 and len(two) == 2 and len(one) == 1:
                case = (p["pid"], truth, [hit, two[0], two[1], one[0]])
                break
        if case:
            break
    assert case is not None, "no question allows the hand-made list"
    pid, truth, head = case
    truth_artists = {artist_of[t] for t in truth}
    filler = [t for t, a in artist_of.items() if a not in truth_artists][:2000]

    def fill(p: int, start: list[str]) -> list[str]:
        taken = set(start) | seeds[p]
        return start + [t for t in filler if t not in taken][: 500 - len(start)]

    rows = [(p["pid"], fill(p["pid"], head if p["pid"] == pid else [])) for p in answers]
    path = write_mpd_submission(tmp_path / "run.csv", rows)
    per = evaluate_mpd({"run": path}, mpd_split / "answers.json").per_playlist["run"]
    g = len(truth)
    idcg = float(np.sum(1.0 / np.log2(np.arange(2, min(g, 500) + 2))))
    assert per.loc[pid, "r_precision"] == pytest.approx((1 + 0.25 * 2) / g)
    assert per.loc[pid, "ndcg"] == pytest.approx(1.0 / idcg)
    assert per.loc[pid, "clicks"] == 0


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
    # the same split and model as MEASURED["lastfm"]["pop"]
    assert summary["users"] == 375
    assert summary["ndcg@100"] == pytest.approx(MEASURED["lastfm"]["pop"], abs=5e-4)
