"""Features of a tiny hand-made case, every value computed by hand in the comments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segue.continuation import playlist_interactions
from segue.data.playlists import Playlists
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
