"""MPD validation split in the challenge-set format, and the synthetic MPD generator."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import segue.data.mpd_split as mpd_split
from segue._atomic import MARKER, segue_output_kind
from segue.data.mpd_split import CATEGORIES, split_mpd
from segue.data.readers.mpd import iter_mpd_playlists, read_challenge_set, read_mpd
from segue.data.synthetic.mpd import generate_mpd
from segue.exceptions import DataFormatError, ParameterError

DATE = "2024-01-02 03:04:05.000000"
N_SOURCE, N_TRACKS, N_SPLIT = 1000, 2000, 100
PER_CATEGORY = N_SPLIT // 10


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_mpd(tmp_path_factory.mktemp("mpd") / "mpd", N_SOURCE, N_TRACKS, seed=0)


@pytest.fixture(scope="module")
def source_playlists(source: Path) -> dict[int, dict[str, Any]]:
    return {p["pid"]: p for p in iter_mpd_playlists(source)}


def run_split(source: Path, out: Path, **kwargs: Any) -> dict[str, Any]:
    kwargs = {"n_playlists": N_SPLIT, "seed": 0, "date": DATE, **kwargs}
    return split_mpd(source, out, **kwargs)


@pytest.fixture(scope="module")
def split_avoid(source: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("split") / "val"
    return out, run_split(source, out)


@pytest.fixture(scope="module")
def split_drop(source: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("split") / "val"
    return out, run_split(source, out, unseen="drop", seed=3)


def load(out: Path) -> tuple[dict, dict, list[dict]]:
    challenge = json.loads((out / "challenge_set.json").read_text())
    answers = json.loads((out / "answers.json").read_text())
    train = list(iter_mpd_playlists(out / "train"))
    return challenge, answers, train


def tracks_of(playlist: dict[str, Any]) -> list[str]:
    return [t["track_uri"] for t in playlist.get("tracks", [])]


# the challenge set ------------------------------------------------------------------------------


def test_files_and_summary(split_avoid: tuple[Path, dict]) -> None:
    out, summary = split_avoid
    assert sorted(p.name for p in out.iterdir()) == [
        MARKER,
        "answers.json",
        "challenge_set.json",
        "tracks.parquet",
        "train",
    ]
    assert segue_output_kind(out) == "mpd-split"
    assert [p.name for p in sorted((out / "train").iterdir())] == ["mpd.slice.0-899.json"]
    assert summary["source_playlists"] == N_SOURCE
    assert summary["train_playlists"] == N_SOURCE - N_SPLIT
    assert summary["challenge_playlists"] == N_SPLIT
    assert summary["dropped_holdouts"] == 0
    assert [c["chosen"] for c in summary["categories"]] == [PER_CATEGORY] * 10
    assert all(c["eligible"] >= PER_CATEGORY for c in summary["categories"])


def test_challenge_set_schema(split_avoid: tuple[Path, dict]) -> None:
    challenge, answers, _ = load(split_avoid[0])
    assert set(challenge) == {"date", "version", "name", "description", "playlists"}
    assert (challenge["date"], challenge["version"], challenge["name"]) == (
        DATE,
        "v1",
        "challenge_set",
    )
    assert answers["format"] == "segue.mpd_answers" and answers["version"] == 1
    assert answers["seed"] == 0 and answers["unseen"] == "avoid"
    cats = [a["category"] for a in answers["playlists"]]
    assert cats == sorted(cats) and Counter(cats) == {c: PER_CATEGORY for c in range(1, 11)}
    assert [p["pid"] for p in challenge["playlists"]] == [a["pid"] for a in answers["playlists"]]
    track_keys = {
        "pos",
        "track_uri",
        "artist_uri",
        "artist_name",
        "track_name",
        "album_uri",
        "album_name",
        "duration_ms",
    }
    for p, a in zip(challenge["playlists"], answers["playlists"], strict=True):
        category = CATEGORIES[a["category"] - 1]
        assert a["category_name"] == category.name
        expected = {"pid", "num_holdouts", "num_samples", "num_tracks", "tracks"}
        assert set(p) == expected | ({"name"} if category.title else set())
        assert len(p["tracks"]) == p["num_samples"] == a["num_samples"] == category.n_seeds
        assert p["num_samples"] + p["num_holdouts"] == p["num_tracks"]
        assert p["num_holdouts"] == a["num_holdouts"] == len(a["tracks"])
        assert all(set(t) == track_keys for t in p["tracks"])


def test_seeds_and_answers_rebuild_the_source(
    split_avoid: tuple[Path, dict], source_playlists: dict[int, dict]
) -> None:
    challenge, answers, _ = load(split_avoid[0])
    random_gaps = 0
    for p, a in zip(challenge["playlists"], answers["playlists"], strict=True):
        original = source_playlists[p["pid"]]
        category = CATEGORIES[a["category"] - 1]
        full = tracks_of(original)
        assert category.min_tracks <= len(full) <= category.max_tracks
        assert p["num_tracks"] == len(full)
        positions = [t["pos"] for t in p["tracks"]]
        if category.random:
            assert positions == sorted(set(positions))
            random_gaps += positions != list(range(category.n_seeds))
        else:
            assert positions == list(range(category.n_seeds))
        assert [t["track_uri"] for t in p["tracks"]] == [full[i] for i in positions]
        held = [full[i] for i in range(len(full)) if i not in set(positions)]
        assert a["tracks"] == held  # seeds + answers == the playlist, by position
        for t in p["tracks"]:
            source_track = original["tracks"][t["pos"]]
            assert t == {k: source_track[k] for k in t}
        if category.title:
            assert p["name"] == original["name"]
    assert random_gaps == 2 * PER_CATEGORY  # random seeds are not simply the first ones


def test_train_is_the_rest_unchanged(
    split_avoid: tuple[Path, dict], source_playlists: dict[int, dict]
) -> None:
    challenge, _, train = load(split_avoid[0])
    challenge_pids = {p["pid"] for p in challenge["playlists"]}
    train_pids = [p["pid"] for p in train]
    assert not challenge_pids & set(train_pids)
    assert sorted(challenge_pids | set(train_pids)) == sorted(source_playlists)
    assert train_pids == [pid for pid in source_playlists if pid not in challenge_pids]
    assert all(p == source_playlists[p["pid"]] for p in train)
    info = json.loads((split_avoid[0] / "train" / "mpd.slice.0-899.json").read_text())["info"]
    assert info == {"generated_on": DATE, "slice": "0-899", "version": "v1"}


def test_every_challenge_track_occurs_in_train(split_avoid: tuple[Path, dict]) -> None:
    challenge, answers, train = load(split_avoid[0])
    known = {uri for p in train for uri in tracks_of(p)}
    assert {u for a in answers["playlists"] for u in a["tracks"]} <= known
    assert {u for p in challenge["playlists"] for u in tracks_of(p)} <= known


def test_outputs_read_back(split_avoid: tuple[Path, dict], source: Path) -> None:
    out = split_avoid[0]
    train = read_mpd(out / "train")
    assert train.n_playlists == N_SOURCE - N_SPLIT
    challenge = read_challenge_set(out / "challenge_set.json")
    assert challenge.n_playlists == N_SPLIT
    described = challenge.describe()
    assert described["empty_playlists"] == PER_CATEGORY  # category 1
    assert described["with_title"] == N_SPLIT - 2 * PER_CATEGORY  # categories 4 and 6
    assert challenge.playlists["num_holdouts"].gt(0).all()
    tracks = pq.read_table(out / "tracks.parquet").to_pandas()
    assert list(tracks.columns) == ["track", "artist"]
    whole = read_mpd(source)
    assert tracks["track"].tolist() == whole.tracks["track"].tolist()
    assert tracks["artist"].tolist() == whole.tracks["artist"].tolist()


def test_same_seed_same_bytes_other_seed_other_choice(
    source: Path, split_avoid: tuple[Path, dict], tmp_path: Path
) -> None:
    out, _ = split_avoid
    again = tmp_path / "again"
    run_split(source, again)
    files = ["answers.json", "challenge_set.json", "tracks.parquet", "train/mpd.slice.0-899.json"]
    for name in files:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    other = tmp_path / "other"
    run_split(source, other, seed=1)
    pids = [p["pid"] for p in json.loads((out / "answers.json").read_text())["playlists"]]
    other_pids = [p["pid"] for p in json.loads((other / "answers.json").read_text())["playlists"]]
    assert pids != other_pids


def test_result_does_not_depend_on_prefetched_candidates(
    source: Path, split_avoid: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With almost no candidates kept by the scan, extra passes find the same playlists."""
    monkeypatch.setattr(mpd_split, "_CANDIDATE_FACTOR", 0)
    monkeypatch.setattr(mpd_split, "_CANDIDATE_SLACK", 0)
    seen: list[int] = []
    run_split(source, tmp_path / "slow", progress=seen.append)
    assert sum(seen) == 3 * N_SOURCE  # one extra pass fetched every candidate
    monkeypatch.setattr(mpd_split, "_CANDIDATE_SLACK", 3)
    monkeypatch.setattr(mpd_split, "_FETCH_BUDGET", 2000)
    seen.clear()
    run_split(source, tmp_path / "slower", progress=seen.append)
    assert sum(seen) > 4 * N_SOURCE  # several small extra passes
    for name in ("answers.json", "challenge_set.json"):
        expected = (split_avoid[0] / name).read_bytes()
        assert (tmp_path / "slow" / name).read_bytes() == expected
        assert (tmp_path / "slower" / name).read_bytes() == expected


def test_progress_covers_both_passes(source: Path, tmp_path: Path) -> None:
    seen: list[int] = []
    run_split(source, tmp_path / "p", progress=seen.append)
    assert sum(seen) == 2 * N_SOURCE and max(seen) <= 1000


# unseen="drop" ----------------------------------------------------------------------------------


def test_drop_keeps_only_answers_known_to_train(
    split_drop: tuple[Path, dict], source_playlists: dict[int, dict]
) -> None:
    out, summary = split_drop
    challenge, answers, train = load(out)
    known = {uri for p in train for uri in tracks_of(p)}
    dropped = 0
    for p, a in zip(challenge["playlists"], answers["playlists"], strict=True):
        full = tracks_of(source_playlists[p["pid"]])
        positions = {t["pos"] for t in p["tracks"]}
        held = [full[i] for i in range(len(full)) if i not in positions]
        assert a["tracks"] == [u for u in held if u in known]
        assert a["tracks"], "every chosen playlist keeps a held-out track"
        assert p["num_holdouts"] == len(a["tracks"])
        assert p["num_tracks"] == p["num_samples"] + p["num_holdouts"]
        dropped += len(held) - len(a["tracks"])
    assert dropped == summary["dropped_holdouts"]
    assert answers["unseen"] == "drop"


def test_drop_can_fill_what_avoid_cannot(tmp_path: Path) -> None:
    # a sparse source (20 catalogue tracks per playlist) has too few long playlists whose
    # every track occurs elsewhere
    source = generate_mpd(tmp_path / "sparse", N_SOURCE, 20 * N_SOURCE, seed=0)
    with pytest.raises(ParameterError) as info:
        run_split(source, tmp_path / "a", n_playlists=100)
    message = str(info.value)
    assert "too few eligible playlists for n_playlists=100 (10 per category)" in message
    assert "every one of its tracks also occurs in a playlist that stays in training" in message
    for category in CATEGORIES:
        assert re.search(rf"category {category.number} \(.*\): \d+ of that length", message)
    assert "only" in message and "usable" in message
    assert not (tmp_path / "a").exists()
    summary = run_split(source, tmp_path / "d", n_playlists=100, unseen="drop")
    assert summary["challenge_playlists"] == 100


# arguments and bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_playlists": 5}, "n_playlists must be at least 10"),
        ({"n_playlists": 10.0}, "n_playlists must be an integer"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"unseen": "keep"}, "unseen must be 'avoid' or 'drop'"),
    ],
)
def test_bad_arguments(source: Path, tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        run_split(source, tmp_path / "x", **kwargs)


def test_too_small_source(tmp_path: Path) -> None:
    small = generate_mpd(tmp_path / "small", 30, 100, seed=0)
    with pytest.raises(ParameterError, match=r"category 10 \(title and 100 random tracks"):
        run_split(small, tmp_path / "x", n_playlists=10)


def test_n_playlists_rounds_down_to_a_multiple_of_ten(source: Path, tmp_path: Path) -> None:
    summary = run_split(source, tmp_path / "x", n_playlists=29)
    assert summary["challenge_playlists"] == 20


def test_malformed_source_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "src.jsonl"
    src.write_text('{"pid": 1, "tracks": []}\n{"pid": 2, "tracks": [{"pos": 0}]}\n')
    with pytest.raises(DataFormatError, match="missing 'track_uri'") as info:
        run_split(src, tmp_path / "out")
    assert info.value.line == 2
    assert not (tmp_path / "out").exists()
    empty = tmp_path / "empty.json"
    empty.write_text('{"playlists": []}')
    with pytest.raises(DataFormatError, match="no playlists found"):
        run_split(empty, tmp_path / "out")


def test_titles_are_required_for_title_categories(tmp_path: Path) -> None:
    rows = []
    for pid in range(400):
        n = [20, 60, 120, 200][pid % 4]
        tracks = [{"track_uri": f"t{(pid + k) % 300}"} for k in range(n)]
        rows.append({"pid": pid, "name": "mix" if pid % 3 == 0 else " ", "tracks": tracks})
    src = tmp_path / "p.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = run_split(src, tmp_path / "out", n_playlists=10)
    eligible = {c["number"]: c["eligible"] for c in summary["categories"]}
    assert eligible[1] == 34 and eligible[4] == 100  # blank names do not count as titles
    challenge = json.loads((tmp_path / "out" / "challenge_set.json").read_text())
    names = [p.get("name") for p in challenge["playlists"]]
    assert names.count(None) == 2 and set(names) == {None, "mix"}
    # no artist fields at all: tracks.parquet still lists every track, artist null
    tracks = pq.read_table(tmp_path / "out" / "tracks.parquet").to_pandas()
    assert len(tracks) == 300 and tracks["artist"].isna().all()


# the synthetic MPD ------------------------------------------------------------------------------


def test_generate_mpd_format(source: Path, source_playlists: dict[int, dict]) -> None:
    assert sorted(p.name for p in source.iterdir()) == [MARKER, "mpd.slice.0-999.json"]
    doc = json.loads((source / "mpd.slice.0-999.json").read_text())
    assert set(doc["info"]) == {"generated_on", "slice", "version"}
    assert doc["info"]["slice"] == "0-999"
    assert list(source_playlists) == list(range(N_SOURCE))
    uri = re.compile(r"spotify:(track|artist|album):[0-9A-Za-z]{22}")
    for p in source_playlists.values():
        assert {"name", "collaborative", "pid", "modified_at", "num_tracks", "num_albums"} <= set(p)
        assert {"num_followers", "tracks", "num_edits", "duration_ms", "num_artists"} <= set(p)
        assert p["collaborative"] in ("true", "false")
        assert 5 <= p["num_tracks"] == len(p["tracks"]) <= 250
        assert [t["pos"] for t in p["tracks"]] == list(range(len(p["tracks"])))
        assert p["duration_ms"] == sum(t["duration_ms"] for t in p["tracks"])
        for t in p["tracks"][:3]:
            assert uri.fullmatch(t["track_uri"]) and uri.fullmatch(t["artist_uri"])
            assert uri.fullmatch(t["album_uri"])
    repeats = sum(len(set(tracks_of(p))) < len(tracks_of(p)) for p in source_playlists.values())
    assert 0 < repeats < N_SOURCE // 10


def test_generate_mpd_titles_follow_content(source: Path) -> None:
    pl = read_mpd(source)
    titles = pl.playlists.set_index("pid")["name"].str.lower()
    artists = pl.entries.merge(pl.tracks[["track", "artist"]], on="track")
    sets = artists.groupby("pid")["artist"].agg(set)
    common = titles[titles.isin(["rock", "chill", "country", "workout"])]
    same, other = [], []
    pids = common.index.tolist()
    for i, a in enumerate(pids):
        for b in pids[i + 1 :]:
            overlap = len(sets[a] & sets[b]) / len(sets[a] | sets[b])
            (same if common[a] == common[b] else other).append(overlap)
    assert len(same) > 10 and len(other) > 10
    assert sum(same) / len(same) > 3 * sum(other) / len(other)


def test_generate_mpd_is_deterministic_and_slices(tmp_path: Path) -> None:
    a = generate_mpd(tmp_path / "a", 2300, 500, seed=4)
    b = generate_mpd(tmp_path / "b", 2300, 500, seed=4)
    assert segue_output_kind(a) == "mpd-slices"  # marked, so a later run may replace it
    names = sorted(p.name for p in a.iterdir() if p.name != MARKER)
    assert names == ["mpd.slice.0-999.json", "mpd.slice.1000-1999.json", "mpd.slice.2000-2299.json"]
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes()
    c = generate_mpd(tmp_path / "c", 2300, 500, seed=5)
    assert (a / names[0]).read_bytes() != (c / names[0]).read_bytes()
    assert read_mpd(a).n_playlists == 2300


@pytest.mark.parametrize(
    "kwargs",
    [{"n_playlists": 0}, {"n_tracks": -1}, {"min_tracks": 0}, {"max_tracks": 3, "min_tracks": 5}],
)
def test_generate_mpd_bad_arguments(tmp_path: Path, kwargs: dict) -> None:
    args = {"n_playlists": 5, "n_tracks": 50, **kwargs}
    with pytest.raises(ParameterError):
        generate_mpd(tmp_path / "x", **args)


# the real data ----------------------------------------------------------------------------------

REAL_LINES = "spotify-mpd/mpd_followers10.jsonl.xz"
REAL_ELIGIBLE = [1995, 3099, 3880, 2363, 2363, 2363, 3084, 3084, 1658, 1658]


@pytest.mark.realdata
def test_real_split_1000(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / REAL_LINES
    out = tmp_path / "val"
    summary = split_mpd(source, out, n_playlists=1000, seed=0, unseen="drop", date=DATE)
    print(
        "eligible per category:",
        {c["number"]: c["eligible"] for c in summary["categories"]},
        "dropped held-out tracks:",
        summary["dropped_holdouts"],
    )
    assert [c["eligible"] for c in summary["categories"]] == REAL_ELIGIBLE
    assert [c["chosen"] for c in summary["categories"]] == [100] * 10
    assert summary["train_playlists"] == 6071 and summary["train_slices"] == 7
    challenge, answers, train = load(out)
    known = {uri for p in train for uri in tracks_of(p)}
    assert all(a["tracks"] and set(a["tracks"]) <= known for a in answers["playlists"])
    assert read_challenge_set(out / "challenge_set.json").n_playlists == 1000
    assert len(pq.read_table(out / "tracks.parquet")) == 201_730


@pytest.mark.realdata
def test_real_split_official_rule(shared_data: Path, tmp_path: Path) -> None:
    """Under the official rule, the 7,071 popular playlists allow 10 per category, not 100."""
    source = shared_data / REAL_LINES
    with pytest.raises(ParameterError, match="too few eligible playlists") as info:
        split_mpd(source, tmp_path / "a", n_playlists=1000, seed=0)
    print(info.value)
    summary = split_mpd(source, tmp_path / "b", n_playlists=100, seed=0)
    assert summary["challenge_playlists"] == 100 and summary["dropped_holdouts"] == 0
    _, answers, train = load(tmp_path / "b")
    known = {uri for p in train for uri in tracks_of(p)}
    assert all(set(a["tracks"]) <= known for a in answers["playlists"])
