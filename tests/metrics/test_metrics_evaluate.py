"""Evaluation of top-k lists, from memory and from files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from segue.data.interactions import Interactions
from segue.exceptions import DataFormatError, ParameterError
from segue.metrics.evaluate import evaluate_files, evaluate_lists, read_recommendations

L3 = 1 / math.log2(3)  # discount at rank 2


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


# read_recommendations -----------------------------------------------------------------------


def test_read_recommendations(tmp_path: Path) -> None:
    f = write(tmp_path / "r.txt", "u1 a b c\n\n  007\tNA  x \nlonely\n")
    assert read_recommendations(f) == {"u1": ["a", "b", "c"], "007": ["NA", "x"], "lonely": []}


def test_read_recommendations_second_line_for_user(tmp_path: Path) -> None:
    f = write(tmp_path / "r.txt", "u1 a b\nu2 c\n\nu1 d\n")
    with pytest.raises(DataFormatError, match="second line") as info:
        read_recommendations(f)
    assert str(info.value).startswith(f"{f}:4: ")
    assert "'u1'" in str(info.value)


def test_read_recommendations_duplicate_song(tmp_path: Path) -> None:
    f = write(tmp_path / "r.txt", "u1 a b\nu2 c d e d\n")
    with pytest.raises(DataFormatError) as info:
        read_recommendations(f)
    assert str(info.value) == f"{f}:2: song 'd' is recommended twice to 'u2'"


def test_read_recommendations_bad_utf8_and_missing(tmp_path: Path) -> None:
    f = write(tmp_path / "r.txt", b"u1 a\nu2 \xffb\n")
    with pytest.raises(DataFormatError, match="not valid UTF-8") as info:
        read_recommendations(f)
    assert info.value.line == 2 and info.value.path == str(f)
    with pytest.raises(DataFormatError, match="no such file"):
        read_recommendations(tmp_path / "nope.txt")


# evaluate_lists -----------------------------------------------------------------------------


@pytest.fixture
def answers() -> Interactions:
    # u1 holds out {a, b}, u2 {d}, u3 {a}
    return Interactions.from_arrays(["u1", "u1", "u2", "u3"], ["a", "b", "d", "a"], [3, 1, 2, 1])


def test_missing_users_count_as_zero_extra_users_ignored(answers: Interactions) -> None:
    recs = {"u1": ["a", "zz", "b"], "u2": ["c"], "ghost": ["a", "b", "d"]}
    ev = evaluate_lists(recs, answers, ks=(2, 3))
    per = ev.per_user.set_index("user_id")
    assert list(per.index) == ["u1", "u2", "u3"]
    # u1@2: hits 1 0, R=2 -> DCG 1, IDCG 1 + 1/log2(3)
    assert per.loc["u1", "ndcg@2"] == pytest.approx(1 / (1 + L3))
    # u1@3: hits 1 0 1 -> DCG 1 + 1/2 over IDCG 1 + 1/log2(3)
    assert per.loc["u1", "ndcg@3"] == pytest.approx(1.5 / (1 + L3))
    assert per.loc["u1", "map@3"] == pytest.approx((1 + 2 / 3) / 2)
    assert per.loc["u3", "ndcg@3"] == 0.0  # no list: all misses, not NaN
    assert per.loc["u2", "recall@3"] == 0.0
    s = ev.summary
    assert s["ndcg@2"] == pytest.approx(1 / (1 + L3) / 3)
    assert s["ndcg@3"] == pytest.approx(1.5 / (1 + L3) / 3)
    assert s["recall@3"] == pytest.approx(1 / 3)  # (1 + 0 + 0) / 3
    assert s["precision@2"] == pytest.approx((1 / 2) / 3)
    assert s["hit_rate@3"] == pytest.approx(1 / 3)
    assert s["users"] == 3 and s["missing_users"] == 1 and s["extra_users"] == 1
    assert "seen_share" not in s and "coverage@3" not in s


def test_extra_users_do_not_change_scores(answers: Interactions) -> None:
    base = {"u1": ["b", "a"], "u3": ["x", "a"]}
    a = evaluate_lists(base, answers, ks=(2,))
    b = evaluate_lists({**base, "zz": ["a", "b"], "u9": ["d"]}, answers, ks=(2,))
    for key in ("ndcg@2", "recall@2", "map@2"):
        assert a.summary[key] == b.summary[key]
    assert b.summary["extra_users"] == 2 and a.summary["extra_users"] == 0


def test_lists_longer_than_k_are_cut(answers: Interactions) -> None:
    # u1's hits lie beyond k=2 and must not count
    ev = evaluate_lists({"u1": ["x", "y", "a", "b"]}, answers, ks=(2,))
    assert ev.summary["hit_rate@2"] == 0.0


def test_no_recommendations_at_all(answers: Interactions) -> None:
    ev = evaluate_lists({}, answers, ks=(5,))
    assert ev.summary["ndcg@5"] == 0.0 and ev.summary["missing_users"] == 3


def test_bad_ks(answers: Interactions) -> None:
    for ks in ((), (0,), (3, -1)):
        with pytest.raises(ParameterError):
            evaluate_lists({"u1": ["a"]}, answers, ks=ks)


def test_coverage_and_seen_share(answers: Interactions) -> None:
    # the recommender's input: u2 already had c; catalogue {x, c, q, a}
    train = Interactions.from_arrays(["u1", "u2", "u3", "u3"], ["x", "c", "q", "a"])
    recs = {"u1": ["a", "zz"], "u2": ["c", "d"], "ghost": ["q"]}
    ev = evaluate_lists(recs, answers, ks=(1, 2), train=train)
    s = ev.summary
    # recommended to answer users: a, zz, c, d -> only (u2, c) was in u2's input: 1 / 4
    assert s["seen_share"] == pytest.approx(0.25)
    # catalogue items shown: top-1 {a, c}, top-2 also {a, c} (zz, d are outside it): 2 / 4
    assert s["coverage@1"] == pytest.approx(0.5)
    assert s["coverage@2"] == pytest.approx(0.5)
    # clean lists: nothing seen
    clean = evaluate_lists({"u1": ["a"], "u2": ["d"]}, answers, ks=(1,), train=train)
    assert clean.summary["seen_share"] == 0.0
    assert clean.summary["coverage@1"] == pytest.approx(0.25)
    # u3 had a in training; recommending it to u3 is seen, recommending it to u1 is not
    ev3 = evaluate_lists({"u1": ["a"], "u3": ["a"]}, answers, ks=(1,), train=train)
    assert ev3.summary["seen_share"] == pytest.approx(0.5)


# evaluate_files -----------------------------------------------------------------------------


def test_evaluate_files_end_to_end(tmp_path: Path) -> None:
    recs = write(tmp_path / "recs.txt", "u1 a zz b\nu2 c\nu9 a\n")
    answers = write(tmp_path / "answers.txt", "u1 a 3\nu1 b 1\nu2 d 2\nu3 a 1\nu1 a 2\n")
    listens = write(tmp_path / "listens.txt", "u1 x 1\nu2 c 5\nu3 q 1\n")
    ev = evaluate_files(recs, answers, ks=(2, 3), listens_path=listens)
    s = ev.summary
    # u1@2: hits 1 0, R=2 (a counted once despite two lines): 1 / (1 + 1/log2 3) = 0.6131
    # u2: c is not d -> 0; u3: no line -> 0. Mean over 3 users.
    assert s["ndcg@2"] == pytest.approx((1 / (1 + L3)) / 3)
    assert s["ndcg@2"] == pytest.approx(0.2043823)
    # u1@3: hits 1 0 1: (1 + 1/2) / (1 + 1/log2 3) = 0.9197
    assert s["ndcg@3"] == pytest.approx((1.5 / (1 + L3)) / 3)
    assert s["recall@3"] == pytest.approx((2 / 2) / 3)
    assert s["users"] == 3 and s["missing_users"] == 1 and s["extra_users"] == 1
    # recommended to answer users: a, zz, b, c; (u2, c) is in the listens: 1 / 4
    assert s["seen_share"] == pytest.approx(0.25)
    # catalogue {x, c, q}: only c shown
    assert s["coverage@3"] == pytest.approx(1 / 3)
    assert ev.per_user["user_id"].tolist() == ["u1", "u2", "u3"]


def test_evaluate_files_without_listens(tmp_path: Path) -> None:
    recs = write(tmp_path / "recs.txt", "u1 b a\n")
    answers = write(tmp_path / "answers.txt", "u1 a 1\n")
    ev = evaluate_files(recs, answers, ks=(2,))
    # hit at rank 2, R=1: 1/log2(3) / 1
    assert ev.summary["ndcg@2"] == pytest.approx(L3)
    assert ev.summary["map@2"] == pytest.approx(0.5)
    assert "seen_share" not in ev.summary


def test_evaluate_files_bad_inputs(tmp_path: Path) -> None:
    recs = write(tmp_path / "recs.txt", "u1 b a\nu1 c\n")
    answers = write(tmp_path / "answers.txt", "u1 a 1\n")
    with pytest.raises(DataFormatError, match=r"recs.txt:2: "):
        evaluate_files(recs, answers)
    recs = write(tmp_path / "recs.txt", "u1 b a\n")
    bad_answers = write(tmp_path / "answers.txt", "u1 a 1\nu2 b zero\n")
    with pytest.raises(DataFormatError, match=r"answers.txt:2: count 'zero' is not a number"):
        evaluate_files(recs, bad_answers)
    good = evaluate_files(recs, write(tmp_path / "a2.txt", "u1 a 1\n"))
    assert np.isfinite(good.summary["ndcg@100"])


def test_in_memory_lists_with_a_repeated_item_are_refused(answers: Interactions) -> None:
    from segue.exceptions import ParameterError

    user = answers.users.ids[0]
    with pytest.raises(ParameterError, match="twice"):
        evaluate_lists({user: ["a", "b", "a"]}, answers, [10])
