"""Challenge metrics (MPD / RecSys 2018 and Kakao Melon): hand-computed cases and a loop oracle."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from segue.exceptions import ParameterError
from segue.metrics.challenges import (
    melon_metrics,
    melon_ndcg_idx,
    mpd_metrics,
    mpd_metrics_idx,
)

D1 = 1.0  # 1 / log2(2): rank 1
D2 = 1 / math.log2(3)  # 0.6309: rank 2
D3 = 1 / math.log2(4)  # 0.5: rank 3
D4 = 1 / math.log2(5)  # 0.4307: rank 4
NAN = math.nan

# artists: a, x, y -> A1; b, w -> A2; c, z -> A3; q is in no mapping
ARTIST = {"a": "A1", "x": "A1", "y": "A1", "b": "A2", "w": "A2", "c": "A3", "z": "A3"}


def row(df: pd.DataFrame, i: int = 0) -> dict[str, float]:
    return {k: float(v) for k, v in df.iloc[i].items()}


def close(got: dict[str, float], want: dict[str, float]) -> None:
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == pytest.approx(want[key], nan_ok=True, abs=1e-12), key


# ------------------------------------------------------------------------------------------
# MPD: hand-computed cases
# ------------------------------------------------------------------------------------------


def test_all_relevant_at_the_top_scores_one() -> None:
    got = mpd_metrics([["a", "b", "c", "x"]], [["c", "a", "b"]], ARTIST)
    # 3 of 3 tracks in the first |G| = 3; DCG = IDCG; first hit at rank 1 -> 0 clicks
    close(row(got), {"r_precision": 1.0, "ndcg": 1.0, "clicks": 0.0})


def test_no_relevant_track_scores_zero_and_51_clicks() -> None:
    got = mpd_metrics([["x", "y"]], [["b"]])
    # no hit in the 500: clicks = 500 // 10 + 1 = 51
    close(row(got), {"r_precision": 0.0, "ndcg": 0.0, "clicks": 51.0})


def test_columns_order_and_index() -> None:
    got = mpd_metrics([["a"], ["x"]], [["a"], ["a"]], index=[1000, 1001])
    assert list(got.columns) == ["r_precision", "ndcg", "clicks"]
    assert list(got.index) == [1000, 1001]
    assert got.loc[1001, "clicks"] == 51.0


def test_artist_credit_for_a_non_hit_by_a_ground_truth_artist() -> None:
    # G = {a (A1), b (A2)}: |G| = 2, artists {A1, A2}
    # first 2 recs: a = exact hit (1), x = not withheld but by A1 (0.25; A1 is a's artist)
    got = mpd_metrics([["a", "x"]], [["a", "b"]], ARTIST)
    assert got.loc[0, "r_precision"] == pytest.approx((1 + 0.25) / 2)  # 0.625
    # NDCG and clicks ignore artists: one hit at rank 1 / IDCG(2)
    assert got.loc[0, "ndcg"] == pytest.approx(D1 / (D1 + D2))


def test_an_exact_hit_earns_no_artist_credit_on_top() -> None:
    # a is a hit (1) and by A1, a ground-truth artist: still 1, not 1.25
    # z (A3) is not by a ground-truth artist: 0
    got = mpd_metrics([["a", "z"]], [["a", "b"]], ARTIST)
    assert got.loc[0, "r_precision"] == pytest.approx(1 / 2)


def test_each_artist_is_credited_once() -> None:
    # G = {a (A1), b (A2), c (A3)}, |G| = 3; first 3 recs x (A1), y (A1), w (A2)
    # x: A1 0.25; y: A1 again, 0; w: A2 0.25  -> (0 + 0.5) / 3
    # the hit a is at rank 4: outside the first |G| (no R-precision) but in the NDCG
    got = mpd_metrics([["x", "y", "w", "a"]], [["a", "b", "c"]], ARTIST)
    close(
        row(got),
        {
            "r_precision": 0.5 / 3,
            "ndcg": D4 / (D1 + D2 + D3),  # 0.4307 / 2.1309 = 0.2021
            "clicks": 0.0,  # rank 4 -> floor(3 / 10)
        },
    )


def test_artist_credit_only_in_the_first_g_ranks() -> None:
    # |G| = 1: only rank 1 counts; x (A1) at rank 2 earns nothing
    got = mpd_metrics([["z", "x"]], [["a"]], ARTIST)
    assert got.loc[0, "r_precision"] == 0.0


def test_unknown_artists_earn_nothing() -> None:
    # q has no artist: no credit for it as a recommendation ...
    assert mpd_metrics([["q"]], [["a"]], ARTIST).loc[0, "r_precision"] == 0.0
    # ... and a withheld track without an artist contributes no artist to match
    assert mpd_metrics([["x"]], [["q"]], ARTIST).loc[0, "r_precision"] == 0.0
    # a callable that returns None for unknown tracks works the same way
    got = mpd_metrics([["x", "q"]], [["a", "b"]], ARTIST.get)
    assert got.loc[0, "r_precision"] == pytest.approx(0.25 / 2)


def test_without_track_artist_there_is_no_artist_credit() -> None:
    assert mpd_metrics([["a", "x"]], [["a", "b"]]).loc[0, "r_precision"] == 0.5


def test_truth_longer_than_the_list() -> None:
    # |G| = 4 but only 2 recommendations: b hits at rank 1; the missing ranks are misses
    got = mpd_metrics([["b", "x"]], [["a", "b", "c", "d"]])
    close(
        row(got),
        {
            "r_precision": 1 / 4,
            "ndcg": D1 / (D1 + D2 + D3 + D4),  # 1 / 2.5616 = 0.3904
            "clicks": 0.0,
        },
    )


def test_empty_truth_gives_nan_everywhere() -> None:
    got = mpd_metrics([["a", "b"], ["a"]], [[], ["a"]], ARTIST)
    assert got.iloc[0].isna().all()
    close(row(got, 1), {"r_precision": 1.0, "ndcg": 1.0, "clicks": 0.0})
    assert got["ndcg"].mean() == 1.0  # pandas skips the NaN


def test_repeated_truth_ids_count_once() -> None:
    # G = {a, b}: |G| = 2 (as the reference code's set(targets))
    got = mpd_metrics([["a", "b"]], [["a", "a", "b"]])
    close(row(got), {"r_precision": 1.0, "ndcg": 1.0, "clicks": 0.0})


@pytest.mark.parametrize(
    ("rank", "clicks"), [(1, 0), (10, 0), (11, 1), (20, 1), (21, 2), (500, 49), (501, 51)]
)
def test_clicks_are_floor_of_rank_minus_one_over_ten(rank: int, clicks: float) -> None:
    recs = [f"n{i}" for i in range(rank - 1)] + ["a"]
    got = mpd_metrics([recs], [["a"]])  # rank 501 is past the 500 the challenge scores
    assert got.loc[0, "clicks"] == clicks


def test_only_the_first_k_recommendations_count() -> None:
    recs = [f"n{i}" for i in range(500)] + ["a"]
    close(row(mpd_metrics([recs], [["a"]])), {"r_precision": 0.0, "ndcg": 0.0, "clicks": 51.0})
    # a smaller k: the miss value is k // 10 + 1
    assert mpd_metrics([["x", "a"]], [["a"]], k=1).loc[0, "clicks"] == 1.0


def test_rank_one_is_undiscounted_in_both_discounts() -> None:
    # G = {a, b}; list x, a, b: hits at ranks 2 and 3
    # reference (Spotify metrics.py): (1/log2(3) + 1/log2(4)) / (1 + 1/log2(3))
    ref = mpd_metrics([["x", "a", "b"]], [["a", "b"]])
    assert ref.loc[0, "ndcg"] == pytest.approx((D2 + D3) / (D1 + D2))  # 0.6934
    # rules page: DCG = rel_1 + sum_{i>=2} rel_i / log2(i) -> (1/log2(2) + 1/log2(3)) / (1 + 1)
    rules = mpd_metrics([["x", "a", "b"]], [["a", "b"]], discount="rules")
    assert rules.loc[0, "ndcg"] == pytest.approx((1 + D2) / 2)  # 0.8155
    # a perfect list is 1 under both
    assert mpd_metrics([["a", "b"]], [["a", "b"]], discount="rules").loc[0, "ndcg"] == 1.0


def test_rejects_bad_input() -> None:
    with pytest.raises(ParameterError, match="recommends 'a' twice"):
        mpd_metrics([["a", "x", "a"]], [["a"]])
    with pytest.raises(ParameterError, match="2 recommendation lists but 1 truths"):
        mpd_metrics([["a"], ["b"]], [["a"]])
    with pytest.raises(ParameterError, match="discount"):
        mpd_metrics([["a"]], [["a"]], discount="log10")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="missing ids"):
        mpd_metrics([["a", None]], [["a"]])
    with pytest.raises(ParameterError, match="k must be"):
        mpd_metrics([["a"]], [["a"]], k=0)


def test_no_playlists_gives_an_empty_frame() -> None:
    got = mpd_metrics([], [])
    assert got.shape == (0, 3)


# ------------------------------------------------------------------------------------------
# MPD: integer-coded variant, batching, and an independent loop oracle
# ------------------------------------------------------------------------------------------


def test_idx_variant_matches_the_id_variant() -> None:
    # items 0..6 = a, b, c, x, y, w, z; artists A1=0, A2=1, A3=2
    item_artist = np.array([0, 1, 2, 0, 0, 1, 2])
    recs = np.array([[3, 4, 5, 0], [0, 3, -1, -1]])
    truth = sp.csr_array(([1.0] * 5, ([0, 0, 0, 1, 1], [0, 1, 2, 0, 1])), shape=(2, 7))
    got = pd.DataFrame(mpd_metrics_idx(recs, truth, item_artist))
    want = mpd_metrics([["x", "y", "w", "a"], ["a", "x"]], [["a", "b", "c"], ["a", "b"]], ARTIST)
    pd.testing.assert_frame_equal(got, want)
    with pytest.raises(ParameterError, match="item_artist"):
        mpd_metrics_idx(recs, truth, item_artist[:3])
    with pytest.raises(ParameterError, match="twice"):
        mpd_metrics_idx(np.array([[1, 1]]), truth[:1], item_artist)


def _oracle(recs: list[str], truth: list[str], artist: dict[str, str], k: int = 500):
    """The definitions, written as plain loops (R-precision with artist credit as Layer6's)."""
    g = set(truth)
    if not g:
        return {"r_precision": NAN, "ndcg": NAN, "clicks": NAN}
    recs = recs[:k]
    g_artists = {artist[t] for t in g if t in artist}
    matched = 0.0
    credited: set[str] = set()
    for t in recs[: len(g)]:
        if t in g:
            matched += 1
        elif t in artist and artist[t] in g_artists and artist[t] not in credited:
            credited.add(artist[t])
            matched += 0.25
    dcg = sum(1 / math.log2(r + 2) for r, t in enumerate(recs) if t in g)
    idcg = sum(1 / math.log2(r + 2) for r in range(min(len(g), k)))
    first = next((r for r, t in enumerate(recs) if t in g), None)
    return {
        "r_precision": matched / len(g),
        "ndcg": dcg / idcg,
        "clicks": float(first // 10) if first is not None else float(k // 10 + 1),
    }


def test_matches_a_loop_oracle_on_random_playlists() -> None:
    rng = np.random.default_rng(7)
    catalogue = [f"t{i}" for i in range(60)]
    artist = {t: f"A{int(rng.integers(8))}" for t in catalogue[:50]}  # t50.. have no artist
    recs, truths = [], []
    for _ in range(200):
        n_rec = int(rng.integers(0, 40))
        recs.append(list(rng.choice(catalogue, size=n_rec, replace=False)))
        truths.append(list(rng.choice(catalogue, size=int(rng.integers(0, 12)), replace=False)))
    got = mpd_metrics(recs, truths, artist, k=25)
    want = pd.DataFrame([_oracle(r, t, artist, k=25) for r, t in zip(recs, truths, strict=True)])
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
    # batching invariance: a playlist's values do not depend on the others
    part = mpd_metrics(recs[50:60], truths[50:60], artist, k=25)
    pd.testing.assert_frame_equal(
        part.reset_index(drop=True), got.iloc[50:60].reset_index(drop=True)
    )


# ------------------------------------------------------------------------------------------
# Melon
# ------------------------------------------------------------------------------------------


def _official_ndcg(gt: list, rec: list) -> float:
    """The Kakao Arena ArenaEvaluator._ndcg arithmetic (natural log; idcg over len(gt))."""
    dcg = sum(1.0 / math.log(i + 2) for i, r in enumerate(rec) if r in gt)
    return dcg / sum(1.0 / math.log(i + 2) for i in range(len(gt)))


def test_melon_song_and_tag_ndcg_and_score() -> None:
    # songs: answers {1, 2, 3}; list 1, 9, 2 -> DCG = 1/log2(2) + 1/log2(4) = 1.5
    #        IDCG(3) = 1 + 0.6309 + 0.5 = 2.1309 -> 0.7039
    # tags:  answer {"rock"}; list "pop", "rock" -> 1/log2(3) / 1 = 0.6309
    got = melon_metrics([[1, 9, 2]], [["pop", "rock"]], [[1, 2, 3]], [["rock"]])
    song = (D1 + D3) / (D1 + D2 + D3)
    close(row(got), {"song_ndcg": song, "tag_ndcg": D2, "score": 0.85 * song + 0.15 * D2})
    assert song == pytest.approx(_official_ndcg([1, 2, 3], [1, 9, 2]))


def test_melon_ideal_dcg_counts_every_answer_even_past_the_list() -> None:
    # 15 answer tags, 10 recommended, all correct: DCG(10 hits) / IDCG(15) < 1 (official)
    answers = [f"tag{i}" for i in range(15)]
    got = melon_metrics([[1]], [answers[:10]], [[1]], [answers])
    want = sum(1 / math.log2(i + 2) for i in range(10)) / sum(
        1 / math.log2(i + 2) for i in range(15)
    )
    assert got.loc[0, "tag_ndcg"] == pytest.approx(want)  # 4.5436 / 5.8613 = 0.7752
    assert got.loc[0, "tag_ndcg"] == pytest.approx(_official_ndcg(answers, answers[:10]))
    assert got.loc[0, "song_ndcg"] == 1.0


def test_melon_cutoffs_all_relevant_and_none() -> None:
    # a hit at song rank 101 is past the cut-off of 100 (official rec["songs"][:100])
    songs = list(range(1000, 1100)) + [7]
    got = melon_metrics([songs, [7, 8]], [["a"], ["a"]], [[7], [7, 8]], [["b"], ["a"]])
    close(row(got), {"song_ndcg": 0.0, "tag_ndcg": 0.0, "score": 0.0})
    close(row(got, 1), {"song_ndcg": 1.0, "tag_ndcg": 1.0, "score": 1.0})


def test_melon_empty_answers_give_nan() -> None:
    got = melon_metrics([[1], [1]], [["a"], ["a"]], [[], [1]], [["a"], []], index=["p", "q"])
    assert math.isnan(got.loc["p", "song_ndcg"]) and got.loc["p", "tag_ndcg"] == 1.0
    assert math.isnan(got.loc["p", "score"]) and math.isnan(got.loc["q", "score"])
    assert got.loc["q", "song_ndcg"] == 1.0


def test_melon_matches_the_official_arithmetic_on_random_lists() -> None:
    rng = np.random.default_rng(3)
    recs, truths = [], []
    for _ in range(100):
        recs.append([int(s) for s in rng.choice(300, size=100, replace=False)])
        truths.append(
            [int(s) for s in rng.choice(300, size=int(rng.integers(1, 120)), replace=False)]
        )
    got = melon_ndcg_idx(np.array(recs), _csr(truths, 300), 100)
    want = [_official_ndcg(t, r) for r, t in zip(recs, truths, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def _csr(lists: list[list[int]], n_items: int) -> sp.csr_array:
    rows = [i for i, items in enumerate(lists) for _ in items]
    cols = [c for items in lists for c in items]
    return sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(len(lists), n_items))


def test_melon_rejects_bad_input() -> None:
    with pytest.raises(ParameterError, match="same length"):
        melon_metrics([[1]], [["a"]], [[1], [2]], [["a"]])
    with pytest.raises(ParameterError, match="songs.*recommends 5 twice"):
        melon_metrics([[5, 5]], [["a"]], [[5]], [["a"]])
    with pytest.raises(ParameterError, match="tags.*recommends 'a' twice"):
        melon_metrics([[5]], [["a", "a"]], [[5]], [["a"]])


def test_evaluate_melon_warns_about_playlists_with_an_empty_answer(tmp_path) -> None:
    """The official evaluator divides by zero on an empty answer side; segue leaves such a
    playlist out of the means and says how many (issue 18 item 8)."""
    import json

    from segue.metrics.playlist_eval import evaluate_melon

    answers = [
        {"id": 1, "songs": [5], "tags": ["a"]},
        {"id": 2, "songs": [6], "tags": []},  # no tag answer
    ]
    results = [
        {"id": i, "songs": list(range(10, 110)), "tags": [f"t{j}" for j in range(10)]}
        for i in (1, 2)
    ]
    results[0]["songs"][0] = 5
    (tmp_path / "answers.json").write_text(json.dumps(answers))
    (tmp_path / "results.json").write_text(json.dumps(results))
    with pytest.warns(RuntimeWarning, match="1 of 2 playlists have an empty song or tag answer"):
        result = evaluate_melon({"run": tmp_path / "results.json"}, tmp_path / "answers.json")
    per = result.per_playlist["run"]
    assert np.isnan(per.loc[2, "score"]) and per.loc[1, "song_ndcg"] == 1.0
    assert result.summary["run"]["score"] == pytest.approx(0.85)  # playlist 1 alone
