"""TwoStage end to end on a small synthetic MPD: fit, continue, beat its sources, save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from segue.data.readers.mpd import read_mpd
from segue.data.synthetic.mpd import generate_mpd
from segue.exceptions import NotFittedError
from segue.metrics.challenges import mpd_metrics
from segue.models.knn import ItemKNN, UserKNN
from segue.models.popularity import MostPopular
from segue.models.wrmf import WRMF
from segue.ranking.inner_split import inner_split
from segue.ranking.two_stage import TwoStage, rank_candidates
from segue.serialization import load_model, save_model

pytestmark = pytest.mark.slow  # about 15 s on 2 cores

N_LIST = 100


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = generate_mpd(tmp_path_factory.mktemp("mpd") / "mpd", 3000, 3000, seed=0)
    playlists = read_mpd(folder)
    outer = inner_split(playlists, per_category=25, seed=1)  # held-out evaluation queries
    first = {
        "userknn": UserKNN(),
        "itemknn": ItemKNN(),
        "wrmf": WRMF(factors=32, iterations=8),
        "pop": MostPopular(),
    }
    model = TwoStage(first, n=200, per_category=40, folds=1, num_boost_round=150, num_threads=2)
    model.fit(outer.train)
    return model, outer


def _ndcg(lists, pids, model, outer):
    ids = model.items_.ids
    recs = [ids[row[row >= 0]].tolist() for row in lists]
    artists = outer.train.track_artists().to_dict()
    truth = [outer.answers[p] for p in pids]
    return mpd_metrics(recs, truth, artists, k=N_LIST)


def test_beats_every_first_stage_model(trained):
    model, outer = trained
    ranked = model.rank(outer.queries, N_LIST)
    pids, lists, cands, seconds = (ranked.pids, ranked.tracks, ranked.candidates, ranked.seconds)
    assert set(seconds) == {"first_stage", "features", "ranker"}
    ours = _ndcg(lists, pids, model, outer)
    for j, name in enumerate(cands.sources):
        rank = cands.rank[:, j]
        scores = np.where(rank <= N_LIST, -rank, np.nan)
        theirs = _ndcg(rank_candidates(cands, scores, N_LIST), pids, model, outer)
        assert ours["ndcg"].mean() > theirs["ndcg"].mean(), name
        assert ours["r_precision"].mean() > theirs["r_precision"].mean(), name


def test_lists_are_valid_continuations(trained):
    model, outer = trained
    recs = model.continue_playlists(outer.queries, N_LIST)
    seeds = outer.queries.track_lists()
    assert list(recs) == list(outer.queries.playlists["pid"])
    for pid, tracks in recs.items():
        assert len(tracks) == N_LIST and len(set(tracks)) == N_LIST
        assert not set(tracks) & set(seeds[pid])
        assert all(not str(t).startswith("title") for t in tracks)


def test_pads_with_first_stage_order_beyond_n(trained):
    model, outer = trained
    ranked = model.rank(outer.queries, 300)  # more than n = 200 re-ranked
    lists = ranked.tracks
    assert (lists >= 0).all()


def test_save_load_round_trip(trained, tmp_path):
    model, outer = trained
    path = save_model(model, tmp_path / "two")
    assert (path / "ranker_.txt").read_text().startswith("tree")
    doc = json.loads((path / "manifest.json").read_text())
    assert list(doc["state"]["models_"]["dirs"]) == ["userknn", "itemknn", "wrmf", "pop"]
    loaded = load_model(path)
    a = model.continue_playlists(outer.queries, 50)
    b = loaded.continue_playlists(outer.queries, 50)
    assert a == b


def test_learning_curve_and_inner_recall(trained):
    model, _ = trained
    curve = model.ranker_.learning_curve()
    assert "valid:ndcg@100" in curve.columns and len(curve) >= model.ranker_.best_iteration
    assert "merged@200" in model.inner_recall_.columns
    assert model.inner_recall_.loc["all", "merged@200"] > 0


def test_unfitted():
    with pytest.raises(NotFittedError):
        TwoStage().continue_playlists(None, 10)
