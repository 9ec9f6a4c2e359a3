"""Melon two-stage: inner questions, tags as items, the tag ranker, cold start, save/load."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from segue.data.kinds import ItemKind
from segue.data.melon_split import QUESTION_MIXES
from segue.data.playlists import Playlists
from segue.data.readers.melon import melon_playlists, read_melon
from segue.data.synthetic.melon import generate_melon
from segue.exceptions import ParameterError
from segue.inference import continue_playlists, playlist_interactions
from segue.metrics.challenges import melon_metrics
from segue.models.knn import ItemKNN, UserKNN
from segue.models.popularity import MostPopular
from segue.models.wrmf import WRMF
from segue.ranking.answering import cold_list
from segue.ranking.features import recent_popularity
from segue.ranking.inner_split import inner_split_melon
from segue.ranking.two_stage import COLD_HALF_LIVES, TwoStage
from segue.serialization import load_model, save_model

pytestmark = pytest.mark.slow  # one TwoStage fit: about 3 s with LightGBM on one thread

QUESTION_TYPES = set(QUESTION_MIXES["baseline"])


@pytest.fixture(scope="module")
def melon_train(tmp_path_factory):
    folder = tmp_path_factory.mktemp("melon")
    generate_melon(folder, n_playlists=2000, n_songs=3000, n_tags=200, seed=0)
    return read_melon(folder / "train.json")


# inner_split_melon -----------------------------------------------------------------------------
def _shown(queries: Playlists) -> tuple[dict, dict]:
    songs = queries.track_lists()
    tags = dict(zip(queries.playlists["pid"], queries.playlists["tags"], strict=True))
    return {p: songs.get(p, []) for p in tags}, tags


def test_inner_split_melon_questions(melon_train):
    split = inner_split_melon(melon_train, 200, seed=3)
    pids = split.queries.playlists["pid"].tolist()
    assert 0 < len(pids) <= 200
    assert list(split.answers) == pids and list(split.tag_answers) == pids
    assert split.categories.index.tolist() == pids
    assert set(split.categories) <= QUESTION_TYPES
    assert not set(pids) & set(split.train.playlists["pid"])
    assert len(split.train.playlists) == len(melon_train.playlists) - 200
    train_songs = set(split.train.entries["track"])
    train_tags = set(split.train.playlists["tags"].explode().dropna())
    full_songs = melon_train.track_lists()
    full_tags = dict(zip(melon_train.playlists["pid"], melon_train.playlists["tags"], strict=True))
    songs, tags = _shown(split.queries)
    for pid in pids:
        answer, tag_answer = split.answers[pid], split.tag_answers[pid]
        assert answer or tag_answer
        assert set(answer) <= train_songs and not set(answer) & set(songs[pid])
        assert set(tag_answer) <= train_tags and not set(tag_answer) & set(tags[pid])
        # shown and hidden parts come from the original playlist
        assert set(songs[pid]) | set(answer) <= set(full_songs[pid])
        assert set(tags[pid]) | set(tag_answer) <= set(full_tags[pid])
        kind = split.categories[pid]
        assert bool(songs[pid]) == kind.startswith("song")
        assert bool(tags[pid]) == (kind in ("song+tag", "tag only"))


def test_inner_split_melon_is_seeded(melon_train):
    a = inner_split_melon(melon_train, 100, seed=5)
    b = inner_split_melon(melon_train, 100, seed=5)
    c = inner_split_melon(melon_train, 100, seed=6)
    assert a.answers == b.answers and a.tag_answers == b.tag_answers
    pd.testing.assert_frame_equal(a.queries.entries, b.queries.entries)
    pd.testing.assert_frame_equal(a.queries.playlists, b.queries.playlists)
    assert list(a.answers) != list(c.answers)
    assert a.answers != c.answers


def test_inner_split_melon_takes_at_most_a_quarter(melon_train):
    n = len(melon_train.playlists)
    split = inner_split_melon(melon_train, 10 * n, seed=0)
    assert len(split.train.playlists) == n - n // 4
    assert len(split.queries.playlists) <= n // 4
    with pytest.raises(ParameterError):
        inner_split_melon(melon_train, 0)


# recency-weighted popularity ------------------------------------------------------------------
def _dated_playlists(dates) -> tuple[Playlists, np.ndarray, list]:
    # 0 = a b, 1 = a c, 2 = a b c d (b twice); items indexed as listed by the interactions
    entries = pd.DataFrame(
        [(0, 0, "a"), (0, 1, "b"), (1, 0, "a"), (1, 1, "c")]
        + [(2, 0, "a"), (2, 1, "b"), (2, 2, "c"), (2, 3, "d"), (2, 4, "b")],
        columns=["pid", "pos", "track"],
    )
    table = pd.DataFrame({"pid": [0, 1, 2], "name": ["", "", ""]})
    if dates is not None:
        table["updt_date"] = pd.to_datetime(dates)
    playlists = Playlists(table, entries, pd.DataFrame({"track": list("abcd")}))
    inter = playlist_interactions(playlists)
    order = [str(inter.items.ids[i]) for i in range(len(inter.items))]
    return playlists, inter.matrix, order


def _by_item(values, order) -> dict:
    return {t: float(v) for t, v in zip(order, values, strict=True)}


def test_recent_popularity_by_hand():
    playlists, matrix, order = _dated_playlists(["2020-01-11", "2020-01-01", "2020-01-21"])
    # newest playlist 2 (weight 1); 0 is 10 days older (1/2), 1 is 20 days older (1/4)
    got = _by_item(recent_popularity(playlists, matrix, 10.0), order)
    assert got == pytest.approx({"a": 1.75, "b": 1.5, "c": 1.25, "d": 1.0})
    # no half-life: plain playlist counts (repeats counted once)
    plain = {"a": 3, "b": 2, "c": 2, "d": 1}
    assert _by_item(recent_popularity(playlists, matrix, None), order) == plain
    # a playlist without a date weighs nothing when others have one
    playlists, matrix, order = _dated_playlists(["2020-01-11", None, "2020-01-21"])
    got = _by_item(recent_popularity(playlists, matrix, 10.0), order)
    assert got == pytest.approx({"a": 1.5, "b": 1.5, "c": 1.0, "d": 1.0})
    # no dates at all (no column, or every date missing): plain counts
    for dates in (None, [None, None, None]):
        playlists, matrix, order = _dated_playlists(dates)
        assert _by_item(recent_popularity(playlists, matrix, 10.0), order) == plain


def test_playlist_dates():
    table = pd.DataFrame({"pid": [1, 2], "name": ["", ""], "modified_at": [86400, None]})
    entries = pd.DataFrame({"pid": [], "pos": [], "track": []})
    mpd = Playlists(table, entries, pd.DataFrame({"track": []}))
    dates = mpd.dates()
    assert dates.dtype == np.dtype("datetime64[s]")
    assert dates[0] == np.datetime64("1970-01-02T00:00:00") and np.isnat(dates[1])
    assert Playlists(table.drop(columns="modified_at"), entries, mpd.tracks).dates() is None


# the fitted model ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(melon_train):
    outer = inner_split_melon(melon_train, 200, seed=1)  # held-out evaluation questions
    first = {
        "userknn": UserKNN(),
        "itemknn": ItemKNN(),
        "wrmf": WRMF(factors=32, iterations=8),
        "pop": MostPopular(),
    }
    model = TwoStage(first, n=200, per_category=50, folds=1, num_boost_round=100, num_threads=1)
    model.fit(outer.train)
    return model, outer


def _melon_score(songs: dict, tags: dict, outer) -> tuple[float, float, float]:
    """Mean song nDCG, mean tag nDCG and 0.85 / 0.15 of them (empty answers skipped)."""
    pids = list(outer.answers)
    frame = melon_metrics(
        [songs[p] for p in pids],
        [tags[p] for p in pids],
        [outer.answers[p] for p in pids],
        [outer.tag_answers[p] for p in pids],
        index=pids,
    )
    song, tag = frame["song_ndcg"].mean(), frame["tag_ndcg"].mean()
    return song, tag, 0.85 * song + 0.15 * tag


def test_fitted_on_melon(trained):
    model, _ = trained
    assert model.task_ == "melon"
    assert model.tag_ranker_ is not None
    assert len(model.fusion_weights_) == 4
    assert model.cold_half_life_ in (None, *COLD_HALF_LIVES)
    assert len(model.cold_scores_) == 1 + len(COLD_HALF_LIVES)
    chosen = "all-time" if model.cold_half_life_ is None else f"{model.cold_half_life_:g} days"
    assert model.cold_scores_[chosen] == max(model.cold_scores_.values())
    assert model.inner_tag_recall_ is not None


def test_answers_are_valid(trained):
    model, outer = trained
    answers = model.answer_questions(outer.queries, 100, 10)
    songs, tags = _shown(outer.queries)
    assert [a["id"] for a in answers] == outer.queries.playlists["pid"].tolist()
    known_tags = set(outer.train.playlists["tags"].explode().dropna())
    for a in answers:
        assert len(a["songs"]) == 100 and len(set(a["songs"])) == 100
        assert len(a["tags"]) == 10 and len(set(a["tags"])) == 10
        assert not set(a["songs"]) & set(songs[a["id"]])
        assert not set(a["tags"]) & set(tags[a["id"]])
        assert all(isinstance(t, str) and not t.startswith("tag:") for t in a["tags"])
        assert set(a["tags"]) <= known_tags
        assert all(not isinstance(s, str) for s in a["songs"])  # no tag or title column


def test_beats_every_first_stage_model(trained):
    model, outer = trained
    answers = model.answer_questions(outer.queries, 100, 10)
    ours = _melon_score(
        {a["id"]: a["songs"] for a in answers}, {a["id"]: a["tags"] for a in answers}, outer
    )
    for name, source in model.models_.items():
        songs, tags = {}, {}
        for batch in continue_playlists(source, outer.queries, 100, n_tags=10):
            songs.update(zip(batch.pids, batch.tracks, strict=True))
            tags.update(zip(batch.pids, batch.tags, strict=True))
        theirs = _melon_score(songs, tags, outer)
        assert ours[2] > theirs[2], (name, ours, theirs)
        assert ours[0] > theirs[0], (name, ours, theirs)
        assert ours[1] > theirs[1], (name, ours, theirs)


def _question(pid, title="", songs=(), tags=()) -> dict:
    return {
        "id": pid,
        "plylst_title": title,
        "songs": list(songs),
        "tags": list(tags),
        "updt_date": "2020-01-01 00:00:00.000",
    }


def test_cold_start_gets_the_recent_popularity_list(trained):
    model, outer = trained
    warm = outer.queries.playlists["pid"].iloc[0]
    warm_q = {
        "id": int(warm),
        "plylst_title": outer.queries.playlists["name"].iloc[0],
        "songs": outer.queries.track_lists().get(warm, []),
        "tags": list(outer.queries.playlists["tags"].iloc[0]),
        "updt_date": None,
    }
    records = [
        _question(-1),  # nothing at all
        _question(-2, title="  ", songs=[10**9], tags=["no such tag"]),  # nothing known
        warm_q,
    ]
    queries = melon_playlists(records, outer.train.tracks)
    answers = model.answer_questions(queries, 100, 10)
    items = model.items_
    cold_songs = items.ids[cold_list(model.context_, items.columns(ItemKind.TRACK), 100)].tolist()
    cold_tags = [
        str(t)[4:] for t in items.ids[cold_list(model.context_, items.columns(ItemKind.TAG), 10)]
    ]
    for a in answers[:2]:
        assert a["songs"] == cold_songs and a["tags"] == cold_tags
    pop = model.context_.item_recent_pop
    cold_pop = pop[items.numbers(np.asarray(cold_songs, dtype=object))]
    assert (np.diff(cold_pop) <= 0).all()
    assert cold_pop[-1] >= np.sort(pop[items.columns(ItemKind.TRACK)])[-100]
    # a question with something known is not answered with the cold list
    assert answers[2]["songs"] != cold_songs
    alone = model.answer_questions(melon_playlists(records[:1], outer.train.tracks), 100, 10)
    assert alone[0]["songs"] == cold_songs and alone[0]["tags"] == cold_tags


def test_save_load_round_trip(trained, tmp_path):
    model, outer = trained
    path = save_model(model, tmp_path / "two")
    assert (path / "tag_ranker_.txt").read_text().startswith("tree")
    state = json.loads((path / "manifest.json").read_text())["state"]
    assert state["task_"]["value"] == "melon"
    assert state["context_matrix_from_"]["value"] in state["models_"]["dirs"]
    from safetensors.numpy import load_file

    context = load_file(str(path / state["context_"]["file"]))
    assert context and not [k for k in context if k.startswith("matrix.")]
    loaded = load_model(path)
    assert loaded.task_ == "melon" and loaded.cold_half_life_ == model.cold_half_life_
    np.testing.assert_array_equal(loaded.fusion_weights_, model.fusion_weights_)
    a, b = sp.csr_array(model.context_.matrix), sp.csr_array(loaded.context_.matrix)
    assert a.shape == b.shape and (a != b).nnz == 0
    assert loaded.answer_questions(outer.queries, 100, 10) == model.answer_questions(
        outer.queries, 100, 10
    )


def test_served_like_answered(trained):
    """The service's one-query path gives the batch answer: same songs, same tags.

    A request carries no update date, so the batch questions are asked without theirs too.
    """
    from segue.inference.continuer import Continuer

    model, outer = trained
    served = Continuer(model)
    assert served.has_tags
    undated = Playlists(
        playlists=outer.queries.playlists.drop(columns=["updt_date"]),
        entries=outer.queries.entries,
        tracks=outer.queries.tracks,
    )
    table = undated.playlists.head(5)
    seeds = undated.track_lists()
    batch = {a["id"]: a for a in model.answer_questions(undated, 100, 10)}
    for pid, title, tags in zip(table["pid"], table["name"], table["tags"], strict=True):
        got = served.continue_playlist(
            seeds.get(pid, []), title=title or None, tags=list(tags), n=100, n_tags=10
        )
        assert got.tracks == batch[int(pid)]["songs"]
        assert got.tags == batch[int(pid)]["tags"]
        assert got.unknown_tags == []
    unknown = served.continue_playlist([], tags=["no such tag"], n=10, n_tags=3)
    assert unknown.unknown_tags == ["no such tag"] and unknown.cold_start
    assert len(unknown.tags) == 3


def test_inner_split_melon_excludes(melon_train):
    first = inner_split_melon(melon_train, 100, seed=0)
    asked = first.queries.playlists["pid"].to_numpy()
    second = inner_split_melon(melon_train, 100, seed=1, exclude=asked)
    again = second.queries.playlists["pid"].to_numpy()
    assert len(again) and not set(again) & set(asked)
    assert set(asked) <= set(second.train.playlists["pid"])


def test_service_says_a_melon_two_stage_model_has_tags(trained, tmp_path):
    """/v1/model tells the truth: a Melon two-stage model answers tags on /v1/continue."""
    from fastapi.testclient import TestClient

    from segue.service.app import create_app

    model, outer = trained
    save_model(model, tmp_path / "ts")
    with TestClient(create_app(tmp_path / "ts")) as client:
        info = client.get("/v1/model").json()
        assert info["model"] == "TwoStage" and info["has_tags"] is True
        assert info["training"]["tags"] == model.items_.count(ItemKind.TAG) > 0
        assert info["training"]["sources"] == list(model.models_)
        seeds = outer.queries.track_lists()
        pid = next(p for p in seeds if seeds[p])
        got = client.post("/v1/continue", json={"tracks": seeds[pid], "n": 20, "n_tags": 5})
        assert got.status_code == 200 and len(got.json()["tags"]) == 5
