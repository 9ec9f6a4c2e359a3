from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from segue._atomic import MARKER, OutputError
from segue.data.melon_split import (
    QUESTION_MIXES,
    QUESTION_TYPES,
    make_questions,
    question_type,
    split_melon,
)
from segue.data.readers.melon import PLAYLIST_FIELDS, read_melon
from segue.data.synthetic.melon import generate_melon
from segue.exceptions import DataFormatError, ParameterError


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated challenge directory: train.json with song_meta.json and genres beside it."""
    out = tmp_path_factory.mktemp("melon")
    generate_melon(out, n_playlists=1500, n_songs=3000, seed=2)
    return out


@pytest.fixture(scope="module")
def originals(source: Path) -> dict[int, dict[str, Any]]:
    return {p["id"]: p for p in json.loads((source / "train.json").read_text(encoding="utf-8"))}


def _load(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))


def _is_subsequence(part: list[Any], whole: list[Any]) -> bool:
    it = iter(whole)
    return all(x in it for x in part)


@pytest.fixture(scope="module")
def baseline(source: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("split")
    summary = split_melon(source / "train.json", out, fraction=0.2, seed=0)
    return {
        "summary": summary,
        "dir": out,
        "train": _load(out / "train.json"),
        "questions": _load(out / "questions.json"),
        "answers": _load(out / "answers.json"),
    }


def test_counts_and_ids(baseline: dict[str, Any], originals: dict[int, dict]) -> None:
    s = baseline["summary"]
    total = len(originals)
    assert s["n_playlists"] == total and s["n_questions"] == int(total * 0.2)
    assert s["n_train"] + s["n_questions"] == total
    train_ids = [p["id"] for p in baseline["train"]]
    q_ids = [q["id"] for q in baseline["questions"]]
    assert not set(train_ids) & set(q_ids)
    assert set(train_ids) | set(q_ids) == set(originals)
    assert q_ids == [a["id"] for a in baseline["answers"]]
    # the training file keeps the other playlists complete, in file order
    assert baseline["train"] == [p for p in originals.values() if p["id"] in set(train_ids)]
    assert s["train"] == baseline["dir"] / "train.json"


def test_official_type_counts(baseline: dict[str, Any]) -> None:
    n = baseline["summary"]["n_questions"]
    assigned = baseline["summary"]["assigned"]
    # split_data.py: playlists[:int(n*.3)], [int(n*.3):int(n*.8)], [int(n*.8):int(n*.95)], rest
    assert assigned == {
        "song only": int(n * 0.3),
        "song+tag": int(n * 0.8) - int(n * 0.3),
        "tag only": int(n * 0.95) - int(n * 0.8),
        "title only": n - int(n * 0.95),
    }
    observed = baseline["summary"]["observed"]
    assert sum(observed.values()) == n and set(observed) == set(QUESTION_TYPES)
    counted = Counter(question_type(q) for q in baseline["questions"])
    assert all(observed[kind] == counted[kind] for kind in QUESTION_TYPES)
    # one-tag playlists asked "song+tag" show no tag: fewer song+tag, more song only
    assert observed["song+tag"] < assigned["song+tag"]
    assert observed["song only"] > assigned["song only"]


def test_masking_rules(baseline: dict[str, Any], originals: dict[int, dict]) -> None:
    kinds = Counter()
    for q, a in zip(baseline["questions"], baseline["answers"], strict=True):
        full = originals[q["id"]]
        assert tuple(q) == tuple(full) == tuple(a) == PLAYLIST_FIELDS
        for field in ("plylst_title", "like_cnt", "updt_date"):
            assert q[field] == a[field] == full[field]  # the baseline keeps every title
        for field, limit in (("songs", 100), ("tags", 10)):
            shown, hidden, items = q[field], a[field], full[field]
            if shown:
                assert len(shown) == len(items) // 2
                assert _is_subsequence(shown, items) and _is_subsequence(hidden, items)
                assert sorted(shown + hidden) == sorted(items)  # question + hidden = playlist
            else:  # a hidden column, or a one-item column that halving emptied
                assert hidden == items[:limit]
        kinds[question_type(q)] += 1
    assert kinds["song+tag"] > 0 and kinds["title only"] > 0


def test_questions_are_shuffled_not_grouped(baseline: dict[str, Any]) -> None:
    types = [question_type(q) for q in baseline["questions"]]
    first = types[: len(types) // 3]
    assert len(set(first)) >= 3  # the four groups are mixed, as after the final shuffle


def test_side_files_placed_and_read_back(baseline: dict[str, Any], source: Path) -> None:
    out = baseline["dir"]
    assert baseline["summary"]["copied"] == ["song_meta.json", "genre_gn_all.json"]
    for name in ("song_meta.json", "genre_gn_all.json"):
        assert (out / name).read_bytes() == (source / name).read_bytes()
    n_songs = len(_load(source / "song_meta.json"))
    for name in ("train.json", "questions.json", "answers.json"):
        data = read_melon(out / name)
        assert data.n_tracks == n_songs  # found song_meta.json beside it
    assert read_melon(out / "questions.json").n_playlists == baseline["summary"]["n_questions"]
    hidden = [p.name for p in out.iterdir() if p.name.startswith(".")]
    assert hidden == [MARKER]  # no temporary files; the marker says segue wrote the folder


def test_same_seed_same_files(source: Path, tmp_path: Path) -> None:
    a = split_melon(source / "train.json", tmp_path / "a", n_questions=200, seed=4)
    b = split_melon(source / "train.json", tmp_path / "b", n_questions=200, seed=4)
    c = split_melon(source / "train.json", tmp_path / "c", n_questions=200, seed=5)
    for name in ("train.json", "questions.json", "answers.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes()
    assert a["assigned"] == b["assigned"] == c["assigned"]
    assert a["n_questions"] == 200


def test_leaderboard_mode(source: Path, originals: dict[int, dict], tmp_path: Path) -> None:
    s = split_melon(source / "train.json", tmp_path, fraction=0.3, mode="leaderboard", seed=1)
    questions = _load(tmp_path / "questions.json")
    answers = _load(tmp_path / "answers.json")
    n = len(questions)
    for kind, share in QUESTION_MIXES["leaderboard"].items():
        assert abs(s["observed"][kind] / n - share) < 0.02, (kind, s["observed"])
        assert s["assigned"][kind] == pytest.approx(share * n, abs=1)
    for q, a in zip(questions, answers, strict=True):
        full = originals[q["id"]]
        if q["songs"]:
            assert q["plylst_title"] == ""  # as in the real val.json / test.json
        else:
            assert q["plylst_title"] == full["plylst_title"]
        assert a["plylst_title"] == full["plylst_title"]
        assert not set(q["songs"]) & set(a["songs"])


def test_full_answers(source: Path, originals: dict[int, dict], tmp_path: Path) -> None:
    split_melon(source / "train.json", tmp_path, n_questions=100, answers="full", seed=0)
    for q, a in zip(
        _load(tmp_path / "questions.json"), _load(tmp_path / "answers.json"), strict=True
    ):
        assert a == originals[q["id"]]
        assert set(q["songs"]) <= set(a["songs"])


def test_existing_outputs_are_replaced(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "split"
    split_melon(source / "train.json", out, n_questions=10, seed=0)
    first = (out / "answers.json").read_bytes()
    again = split_melon(source / "train.json", out, n_questions=20, seed=1)  # a split: replaced
    assert again["copied"] == ["song_meta.json", "genre_gn_all.json"]
    assert len(_load(out / "answers.json")) == 20 and (out / "answers.json").read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split"]  # no temporaries beside it


def test_a_folder_of_other_files_is_refused(source: Path, tmp_path: Path) -> None:
    (tmp_path / "answers.json").write_text("stale", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(OutputError, match="not a segue output"):
        split_melon(source / "train.json", tmp_path, n_questions=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.json", "notes.txt"]
    assert (tmp_path / "answers.json").read_text(encoding="utf-8") == "stale"


def test_side_files_are_optional(tmp_path: Path) -> None:
    playlists = [
        {"tags": ["a", "b"], "id": i, "plylst_title": f"t{i}", "songs": [1, 2, 3, i + 10]}
        for i in range(10)
    ]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "train.json").write_text(json.dumps(playlists), encoding="utf-8")
    s = split_melon(tmp_path / "in" / "train.json", tmp_path / "out", n_questions=4)
    assert s["copied"] == [] and s["n_train"] == 6
    assert sorted(os.listdir(tmp_path / "out")) == [
        MARKER,
        "answers.json",
        "questions.json",
        "train.json",
    ]
    # fields the playlists lack stay absent; unknown fields are kept as they are
    assert all("like_cnt" not in q for q in _load(tmp_path / "out" / "questions.json"))


def test_bad_arguments(source: Path, tmp_path: Path) -> None:
    train = source / "train.json"
    with pytest.raises(ParameterError, match="fraction must be a number in"):
        split_melon(train, tmp_path, fraction=1.0)
    with pytest.raises(ParameterError, match="fraction"):
        split_melon(train, tmp_path, fraction=True)
    with pytest.raises(ParameterError, match="need at least 1 question and 1 training"):
        split_melon(train, tmp_path, n_questions=0)
    with pytest.raises(ParameterError, match="need at least 1 question"):
        split_melon(train, tmp_path, n_questions=10**6)
    with pytest.raises(ParameterError, match="n_questions must be an integer"):
        split_melon(train, tmp_path, n_questions=2.5)
    with pytest.raises(ParameterError, match="mode must be one of"):
        split_melon(train, tmp_path, mode="kaggle")
    with pytest.raises(ParameterError, match="answers must be one of"):
        split_melon(train, tmp_path, answers="partial")
    with pytest.raises(ParameterError, match="seed must be a non-negative integer"):
        split_melon(train, tmp_path, seed=-1)
    with pytest.raises(ParameterError, match="holds the input"):
        split_melon(train, source)
    assert not list(tmp_path.iterdir())  # nothing written on a refused call
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": 1, "songs": ["x"], "tags": []}]', encoding="utf-8")
    with pytest.raises(DataFormatError, match="bad.json: playlist id 1"):
        split_melon(bad, tmp_path / "out")


# --- question_type and make_questions on hand-made playlists ---------------------------------
@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ({"songs": [1], "tags": ["a"], "plylst_title": "x"}, "song+tag"),
        ({"songs": [1], "tags": [], "plylst_title": ""}, "song only"),
        ({"songs": [], "tags": ["a"], "plylst_title": "x"}, "tag only"),
        ({"songs": [], "tags": ["a"], "plylst_title": ""}, "tag only"),
        ({"songs": [], "tags": [], "plylst_title": "비 오는 날"}, "title only"),
        ({"songs": [], "tags": [], "plylst_title": "  "}, "nothing"),
        ({"songs": [], "tags": []}, "nothing"),
        ({"id": 3}, "nothing"),
    ],
)
def test_question_type(question: dict[str, Any], kind: str) -> None:
    assert question_type(question) == kind


def test_make_questions_edge_cases() -> None:
    playlists = [
        {"id": i, "songs": list(range(i, i + 7)), "tags": ["only"], "plylst_title": "t"}
        for i in range(20)
    ]
    questions, answers, assigned = make_questions(playlists, seed=3)
    assert Counter(assigned) == {"song only": 6, "song+tag": 10, "tag only": 3, "title only": 1}
    for q, a, kind in zip(questions, answers, assigned, strict=True):
        assert q["tags"] == []  # one tag halves to none, whatever the type
        if kind == "tag only":
            assert question_type(q) == "title only" and a["tags"] == ["only"]
        if kind in ("song only", "song+tag"):
            assert len(q["songs"]) == 3 and len(a["songs"]) == 4
    assert playlists[0]["songs"] == list(range(7))  # the input is not modified
    # leaderboard mode prefers playlists that can show something
    mixed = playlists + [
        {"id": 100 + i, "songs": [1, 2, 3, 4], "tags": ["a", "b"], "plylst_title": "t"}
        for i in range(20)
    ]
    questions, _, assigned = make_questions(mixed, mode="leaderboard", seed=0)
    for q, kind in zip(questions, assigned, strict=True):
        if kind == "song+tag":
            assert question_type(q) == "song+tag"
    with pytest.raises(ParameterError, match="mode"):
        make_questions(playlists, mode="other")
