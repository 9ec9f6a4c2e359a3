"""Features of a tiny hand-made case, every value computed by hand in the comments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segue.data.playlists import Playlists
from segue.inference import playlist_interactions
from segue.ranking.candidates import merge_candidates, query_history
from segue.ranking.features import FeatureContext, _gather, build_features


def _playlists(rows: dict, names: dict, tracks: pd.DataFrame) -> Playlists:
    entries = pd.DataFrame(
        [(pid, pos, t) for pid, ts in rows.items() for pos, t in enumerate(ts)],
        columns=["pid", "pos", "track"],
    )
    table = pd.DataFrame({"pid": list(names), "name": list(names.values())})
    return Playlists(playlists=table, entries=entries, tracks=tracks)


@pytest.fixture
def case():
    tracks = pd.DataFrame(
        {
            "track": list("abcde"),
            "artist": ["X", "X", "Y", "Y", "X"],
            "album": ["A1", "A2", "A3", "A3", "A2"],
        }
    )
    # playlists: 0 "rock hits" = a b c; 1 "rock" = a c d; 2 "chill" = b d e
    train = _playlists(
        {0: list("abc"), 1: list("acd"), 2: list("bde")},
        {0: "rock hits", 1: "rock", 2: "chill"},
        tracks,
    )
    inter = playlist_interactions(train, with_titles=True)
    queries = _playlists({10: list("ab")}, {10: "Rock!"}, tracks)  # seeds a, b; title "rock"
    items = inter.items
    idx = {t: int(items.numbers(np.array([t], dtype=object))[0]) for t in "abcde"}
    # source s0: c (2.0), d (1.0); source s1: d (0.5), e (0.25)
    top0 = np.array([[idx["c"], idx["d"]]], dtype=np.int32)
    top1 = np.array([[idx["d"], idx["e"]]], dtype=np.int32)
    s0 = np.array([[2.0, 1.0]], dtype=np.float32)
    s1 = np.array([[0.5, 0.25]], dtype=np.float32)
    history = query_history(items, queries)
    cands = merge_candidates(
        ["s0", "s1"], [top0, top1], [s0, s1], 10, items, history.matrix, history.users.ids
    )
    ctx = FeatureContext.build(train, inter.matrix, items)
    feats = build_features(cands, queries, ctx, last_k=1)
    frame = feats.frame()
    frame.index = [str(items.ids[i]) for i in cands.item]
    return frame


def test_merged_order_is_reciprocal_rank_fusion(case):
    # d: 1/62 + 1/61 > c: 1/61 > e: 1/62
    assert list(case.index) == ["d", "c", "e"]
    assert case.loc["d", "rrf"] == pytest.approx(1 / 62 + 1 / 61)


def test_source_columns(case):
    assert case.loc["d", "s0__score"] == 1.0 and case.loc["d", "s0__rank"] == 2
    assert case.loc["d", "s0__score_rel"] == pytest.approx(0.5)  # 1.0 / best 2.0
    assert case.loc["d", "s1__rank"] == 1 and case.loc["d", "s1__score_rel"] == 1.0
    assert np.isnan(case.loc["e", "s0__score"]) and np.isnan(case.loc["c", "s1__rank"])
    assert case["n_sources"].tolist() == [2, 1, 1]


def test_query_columns(case):
    row = case.loc["c"]
    assert row["q_len"] == 2 and row["q_artists"] == 1 and row["q_title"] == 1
    # a and b are each in 2 training playlists
    assert row["q_pop_mean"] == pytest.approx(np.log1p(2))
    assert row["q_pop_min"] == pytest.approx(np.log1p(2))


def test_candidate_columns(case):
    assert case.loc["e", "c_pop"] == pytest.approx(np.log1p(1))
    assert case.loc["d", "c_occurrences"] == pytest.approx(np.log1p(2))
    # artist X: a (2 entries) + b (2) + e (1) = 5; album A3: c (2) + d (2) = 4
    assert case.loc["e", "c_artist_pop"] == pytest.approx(np.log1p(5))
    assert case.loc["d", "c_album_pop"] == pytest.approx(np.log1p(4))


def test_pair_columns(case):
    # e shares artist X with both seeds and album A2 with b
    assert case.loc["e", "p_same_artist"] == 2 and case.loc["e", "p_same_artist_frac"] == 1.0
    assert case.loc["e", "p_same_album"] == 1
    assert case.loc["c", "p_same_artist"] == 0 and case.loc["d", "p_same_album"] == 0
    # last seed b is in playlists 0 and 2: c (0), d (2), e (2) co-occur once each
    assert case["p_co_last"].tolist() == [1, 1, 1]
    assert case["p_co_last_rel"].tolist() == pytest.approx([0.5, 0.5, 1.0])
    # seeds a (0, 1) and b (0, 2): c 2 + 1, d 1 + 1, e 1
    assert case["p_co_all"].tolist() == [2, 3, 1]
    # title word "rock" in playlists 0 and 1: P(c) = 2/2, P(d) = 1/2, P(e) = 0
    assert case["p_title_words"].tolist() == pytest.approx([0.5, 1.0, 0.0])
    # whole title "rock": playlist 1 only, holding c and d
    assert case["p_title_exact"].tolist() == pytest.approx([1.0, 1.0, 0.0])


def test_gather_reads_sparse_entries():
    import scipy.sparse as sp

    m = sp.csr_array(np.array([[0, 2, 0], [3, 0, 4]], dtype=np.float32))
    got = _gather(m, np.array([0, 1, 1, 0, 1]), np.array([1, 0, 2, 0, -1]))
    assert got.tolist() == [2, 3, 4, 0, 0]


# Melon: genres, release dates, update dates and tags -----------------------------------------
@pytest.fixture
def melon_case():
    tracks = pd.DataFrame(
        {
            "track": list("abcdef"),
            "artist": list("XXYYZZ"),
            "album": ["A1", "A2", "A3", "A3", "A4", "A4"],
            "genres": [["G1"], ["G1", "G2"], ["G2"], ["G1"], [], ["G2", "G1"]],
            "issue_date": [20150101, 20180601, 20200301, 0, 20100505, 20190615],
        }
    )
    # playlists (songs, tags, last update): 0 = a b c [t1 t2] 2020-01-01; 1 = a d e [t1]
    # 2020-01-11; 2 = b c f [t2] 2020-01-21; 3 = d e f [t2 t3] 2020-01-31
    train = _playlists(
        {0: list("abc"), 1: list("ade"), 2: list("bcf"), 3: list("def")},
        {0: "rock", 1: "chill", 2: "party", 3: "mix"},
        tracks,
    )
    train.playlists["tags"] = [["t1", "t2"], ["t1"], ["t2"], ["t2", "t3"]]
    train.playlists["updt_date"] = pd.to_datetime(
        ["2020-01-01", "2020-01-11", "2020-01-21", "2020-01-31"]
    )
    inter = playlist_interactions(train, with_tags=True, with_titles=True)
    # query 10: seeds a, b; tags t1, t2 and zz (unknown to the model); updated 2019-12-31
    queries = _playlists({10: list("ab")}, {10: "rock"}, tracks)
    queries.playlists["tags"] = [["t1", "t2", "zz"]]
    queries.playlists["updt_date"] = pd.to_datetime(["2019-12-31 23:00"])
    items = inter.items
    idx = {t: int(items.numbers(np.array([t], dtype=object))[0]) for t in "abcdef"}
    # source s0: c (2.0), d (1.0); source s1: e (0.5), f (0.25)
    top0 = np.array([[idx["c"], idx["d"]]], dtype=np.int32)
    top1 = np.array([[idx["e"], idx["f"]]], dtype=np.int32)
    s0 = np.array([[2.0, 1.0]], dtype=np.float32)
    s1 = np.array([[0.5, 0.25]], dtype=np.float32)
    history = query_history(items, queries)
    cands = merge_candidates(
        ["s0", "s1"], [top0, top1], [s0, s1], 10, items, history.matrix, history.users.ids
    )
    ctx = FeatureContext.build(train, inter.matrix, items, half_life_days=10)
    feats = build_features(cands, queries, ctx, last_k=1)
    frame = feats.frame()
    frame.index = [str(items.ids[i]) for i in cands.item]
    return frame.loc[list("cdef")], ctx, items


def test_melon_context(melon_case):
    _, ctx, items = melon_case
    tags = [str(items.ids[i]) for i in np.flatnonzero(ctx.tag)]
    assert sorted(tags) == ["tag:t1", "tag:t2", "tag:t3"]
    # first genre: a G1, b G1, c G2, d G1, e none, f G2; entries: a 2 + b 2 + d 2 = 6 for G1,
    # c 2 + f 2 = 4 for G2
    genre = {
        t: ctx.item_genre[int(items.numbers(np.array([t], dtype=object))[0])] for t in "abcdef"
    }
    assert genre["a"] == genre["b"] == genre["d"] >= 0 and genre["c"] == genre["f"] >= 0
    assert genre["a"] != genre["c"] and genre["e"] == -1
    assert ctx.genre_pop[genre["a"]] == 6 and ctx.genre_pop[genre["c"]] == 4
    # tag and title columns have no genre or release date
    assert (ctx.item_genre[ctx.tag] == -1).all() and (ctx.item_issue[ctx.tag] == 0).all()


def test_melon_query_columns(melon_case):
    frame, _, _ = melon_case
    # seeds are songs only: a and b (the tags are not seeds); zz is not a model column
    assert (frame["q_len"] == 2).all()
    assert (frame["q_tags"] == 2).all()
    assert (frame["q_title"] == 1).all()
    # a and b are each in 2 training playlists (tag columns do not count among the seeds)
    assert frame.loc["c", "q_pop_mean"] == pytest.approx(np.log1p(2))


def test_melon_candidate_columns(melon_case):
    frame, _, _ = melon_case
    # release year: c 2020, d unknown (issue_date 0), e 2010, f 2019
    assert frame.loc["c", "c_year"] == 2020 and frame.loc["e", "c_year"] == 2010
    assert frame.loc["f", "c_year"] == 2019 and np.isnan(frame.loc["d", "c_year"])
    # recency weights, newest playlist 3 (2020-01-31), half-life 10 days: playlists 0..3 are
    # 30, 20, 10, 0 days old -> 1/8, 1/4, 1/2, 1. c: 0 + 2 = 0.625; d, e: 1 + 3 = 1.25;
    # f: 2 + 3 = 1.5
    assert frame["c_recent_pop"].tolist() == pytest.approx(np.log1p([0.625, 1.25, 1.25, 1.5]))
    assert frame.loc["c", "c_pop"] == pytest.approx(np.log1p(2))


def test_melon_pair_columns(melon_case):
    frame, _, _ = melon_case
    # the query was updated 2019-12-31: c (2020-03-01) is later, e (2010) and f (2019-06-15)
    # earlier, d has no release date
    assert frame.loc["c", "p_after_update"] == 1
    assert frame.loc["e", "p_after_update"] == 0 and frame.loc["f", "p_after_update"] == 0
    assert np.isnan(frame.loc["d", "p_after_update"])
    # seeds' first genres: a G1, b G1 (G2 second, not counted); only d's first genre is G1
    assert frame["p_same_genre"].tolist() == [0, 2, 0, 0]
    assert frame["p_same_genre_frac"].tolist() == [0, 1, 0, 0]
    # seeds' mean year (2015 + 2018) / 2 = 2016.5
    assert frame.loc["c", "p_year_diff"] == pytest.approx(3.5)
    assert frame.loc["e", "p_year_diff"] == pytest.approx(-6.5)
    assert frame.loc["f", "p_year_diff"] == pytest.approx(2.5)
    assert np.isnan(frame.loc["d", "p_year_diff"])
    # p_tags = sum over t1 (playlists 0, 1: df 2) and t2 (0, 2, 3: df 3) of co-occurrence / df:
    # c: 1/2 + 2/3; d: 1/2 + 1/3; e: 1/2 + 1/3; f: 0 + 2/3
    assert frame["p_tags"].tolist() == pytest.approx([1 / 2 + 2 / 3, 5 / 6, 5 / 6, 2 / 3])
    # seeds a (playlists 0, 1) and b (0, 2): c 1 + 2, d 1, e 1, f 1 (tags do not co-occur)
    assert frame["p_co_all"].tolist() == [3, 1, 1, 1]


# Melon without song_meta.json: every feature is defined (issue 13, item 2) -------------------
def _melon_without_metadata() -> tuple:
    from segue.data.readers.melon import melon_playlists

    # 4 training playlists of songs 1..6 with tags, no song metadata at all
    records = [
        {"id": 0, "plylst_title": "rock", "songs": [1, 2, 3], "tags": ["t1"]},
        {"id": 1, "plylst_title": "chill", "songs": [1, 4, 5], "tags": ["t1", "t2"]},
        {"id": 2, "plylst_title": "party", "songs": [2, 3, 6], "tags": ["t2"]},
        {"id": 3, "plylst_title": "mix", "songs": [4, 5, 6], "tags": ["t3"]},
    ]
    for r in records:
        r.update(like_cnt=1, updt_date="2020-01-01 00:00:00.000")
    train = melon_playlists(records, None)
    assert train.tracks["artist"].isna().all()  # no metadata: every song is unknown
    inter = playlist_interactions(train, with_tags=True, with_titles=True)
    question = {"id": 10, "plylst_title": "rock", "songs": [1, 2], "tags": ["t1"]}
    queries = melon_playlists([question], train.tracks)
    return train, inter, queries


def test_context_without_metadata_has_no_codes():
    train, inter, _ = _melon_without_metadata()
    ctx = FeatureContext.build(train, inter.matrix, inter.items)
    assert len(ctx.artist_pop) == len(ctx.album_pop) == len(ctx.genre_pop) == 0
    assert (ctx.item_artist == -1).all() and (ctx.item_album == -1).all()
    assert (ctx.item_genre == -1).all() and (ctx.item_issue == 0).all()


def test_features_without_metadata_are_nan_or_zero():
    # was IndexError: index 0 is out of bounds for axis 0 with size 0 (c_artist_pop)
    train, inter, queries = _melon_without_metadata()
    items = inter.items
    idx = {t: int(items.numbers(np.array([t], dtype=object))[0]) for t in (3, 4, 6)}
    top = np.array([[idx[3], idx[4], idx[6]]], dtype=np.int32)
    score = np.array([[3.0, 2.0, 1.0]], dtype=np.float32)
    history = query_history(items, queries)
    cands = merge_candidates(["s0"], [top], [score], 10, items, history.matrix, history.users.ids)
    ctx = FeatureContext.build(train, inter.matrix, items)
    frame = build_features(cands, queries, ctx, last_k=1).frame()
    for name in ("c_artist_pop", "c_album_pop", "c_year", "p_year_diff", "p_after_update"):
        assert frame[name].isna().all(), name
    for name in (
        "q_artists",
        "p_same_artist",
        "p_same_artist_frac",
        "p_same_album",
        "p_same_genre",
        "p_same_genre_frac",
    ):
        assert (frame[name] == 0).all(), name
    # everything that does not need metadata still works: seeds 1 and 2 co-occur with 3 twice
    frame.index = [int(items.ids[i]) for i in cands.item]
    assert frame.loc[3, "p_co_all"] == 3 and frame.loc[3, "q_len"] == 2
    assert frame.loc[3, "c_pop"] == pytest.approx(np.log1p(2))


@pytest.mark.slow
def test_two_stage_on_melon_without_song_meta(tmp_path):
    from segue.data.readers.melon import read_melon
    from segue.data.synthetic.melon import generate_melon
    from segue.models.knn import UserKNN
    from segue.models.popularity import MostPopular
    from segue.ranking.two_stage import TwoStage

    generate_melon(tmp_path, n_playlists=600, n_songs=800, n_tags=60, seed=0)
    (tmp_path / "song_meta.json").unlink()
    train = read_melon(tmp_path / "train.json")
    assert train.tracks["artist"].isna().all()
    model = TwoStage(
        {"userknn": UserKNN(), "pop": MostPopular()},
        n=50,
        per_category=15,
        folds=1,
        num_boost_round=20,
        num_threads=1,
    )
    model.fit(train)
    records = [
        {"id": -1, "plylst_title": "", "songs": [], "tags": []},
        {"id": -2, "plylst_title": "x", "songs": train.track_lists()[0][:3], "tags": []},
    ]
    from segue.data.readers.melon import melon_playlists

    answers = model.answer_questions(melon_playlists(records, train.tracks), 20, 5)
    assert [a["id"] for a in answers] == [-1, -2]
    assert all(len(a["songs"]) == 20 and len(a["tags"]) == 5 for a in answers)


@pytest.mark.realdata
@pytest.mark.slow
def test_two_stage_on_real_melon_without_song_meta(shared_data, tmp_path):
    """The real playlists of kakao-melon-partial (no song_meta.json exists for them)."""
    import json

    from segue.data.readers.melon import read_melon
    from segue.models.knn import UserKNN
    from segue.models.popularity import MostPopular
    from segue.ranking.two_stage import TwoStage

    path = shared_data / "kakao-melon-partial" / "test.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    records = json.loads(path.read_bytes())
    (tmp_path / "train.json").write_text(json.dumps(records, ensure_ascii=False))
    train = read_melon(tmp_path / "train.json")
    model = TwoStage(
        {"userknn": UserKNN(), "pop": MostPopular()},
        n=100,
        per_category=25,
        folds=1,
        num_boost_round=30,
        num_threads=2,
    )
    model.fit(train)
    assert model.tag_ranker_ is not None
    from segue.data.readers.melon import melon_playlists

    answers = model.answer_questions(melon_playlists(records[:50], train.tracks), 100, 10)
    assert all(len(a["songs"]) == 100 and len(a["tags"]) == 10 for a in answers)
