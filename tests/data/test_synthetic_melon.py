from __future__ import annotations

import itertools
import json
import re
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from segue.data.melon_split import question_type
from segue.data.readers.melon import PLAYLIST_FIELDS, SONG_META_FIELDS, read_genres, read_melon
from segue.data.synthetic.melon import GENRES, generate_melon
from segue.exceptions import ParameterError

FILES = (
    "train.json",
    "val.json",
    "test.json",
    "val_answers.json",
    "test_answers.json",
    "song_meta.json",
    "genre_gn_all.json",
)
DATE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.000")


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("melon")
    info = generate_melon(out, seed=0)
    loaded = {name: json.loads((out / name).read_text(encoding="utf-8")) for name in FILES}
    return {"info": info, "dir": out, **loaded}


def test_writes_every_file_and_reports(gen: dict[str, Any]) -> None:
    info = gen["info"]
    assert sorted(info["files"]) == sorted(FILES)
    assert all(path.is_file() for path in info["files"].values())
    assert info["n_train"] + info["n_val"] + info["n_test"] == info["n_playlists"] == 2000
    assert len(gen["train.json"]) == info["n_train"]
    assert len(gen["val.json"]) == len(gen["val_answers.json"]) == info["n_val"]
    assert len(gen["test.json"]) == len(gen["test_answers.json"]) == info["n_test"]
    assert 0.74 < info["n_train"] / 2000 < 0.80  # the real 77 / 15.5 / 7 split
    assert len(gen["song_meta.json"]) == info["n_songs"] == 5000
    assert info["n_tags"] == 300 and info["n_tags_used"] > 200
    assert sum(info["val_types"].values()) == info["n_val"]


@pytest.mark.parametrize("name", ["train.json", "val.json", "test.json", "val_answers.json"])
def test_playlist_schema_is_exact(gen: dict[str, Any], name: str) -> None:
    for p in gen[name]:
        assert tuple(p) == PLAYLIST_FIELDS
        assert type(p["id"]) is int and p["id"] >= 0
        assert type(p["plylst_title"]) is str
        assert type(p["like_cnt"]) is int and p["like_cnt"] >= 0
        assert isinstance(p["songs"], list) and all(type(s) is int for s in p["songs"])
        assert isinstance(p["tags"], list) and all(type(t) is str and t for t in p["tags"])
        assert len(set(p["songs"])) == len(p["songs"]) and len(set(p["tags"])) == len(p["tags"])
        assert DATE.fullmatch(p["updt_date"])
        datetime.strptime(p["updt_date"], "%Y-%m-%d %H:%M:%S.000")


def test_song_meta_schema_is_exact(gen: dict[str, Any]) -> None:
    genres = gen["genre_gn_all.json"]
    songs = gen["song_meta.json"]
    assert [s["id"] for s in songs] == list(range(len(songs)))  # ids 0..n-1, in order
    for s in songs:
        assert tuple(s) == SONG_META_FIELDS
        assert re.fullmatch(r"\d{8}", s["issue_date"])
        assert type(s["album_id"]) is int and type(s["song_name"]) is str and s["song_name"]
        assert type(s["album_name"]) is str
        assert all(type(a) is int for a in s["artist_id_basket"]) and s["artist_id_basket"]
        assert all(type(a) is str for a in s["artist_name_basket"])
        assert len(s["artist_name_basket"]) == len(s["artist_id_basket"])
        assert all(g in genres and g.endswith("00") for g in s["song_gn_gnr_basket"])
        assert all(g in genres and not g.endswith("00") for g in s["song_gn_dtl_gnr_basket"])
        majors = {g[:4] for g in s["song_gn_gnr_basket"]}
        assert {g[:4] for g in s["song_gn_dtl_gnr_basket"]} <= majors
    dates = Counter(
        "unknown"
        if s["issue_date"] == "00000000"
        else "month 00"
        if s["issue_date"][4:6] == "00"
        else "day 00"
        if s["issue_date"][6:] == "00"
        else "valid"
        for s in songs
    )
    assert dates["unknown"] > 0 and dates["month 00"] > 0 and dates["day 00"] > 0
    assert dates["valid"] > 0.9 * len(songs)
    for s in songs:
        if s["issue_date"][4:6] != "00" and s["issue_date"][6:] != "00":
            datetime.strptime(s["issue_date"], "%Y%m%d")  # the others are real dates


def test_albums_and_artists_are_consistent(gen: dict[str, Any]) -> None:
    albums: dict[int, set[tuple[str, str, int]]] = {}
    names: dict[int, set[str]] = {}
    for s in gen["song_meta.json"]:
        key = (s["issue_date"], s["album_name"], s["artist_id_basket"][0])
        albums.setdefault(s["album_id"], set()).add(key)
        for a, n in zip(s["artist_id_basket"], s["artist_name_basket"], strict=True):
            names.setdefault(a, set()).add(n)
    assert all(len(v) == 1 for v in albums.values())  # one date, name and main artist
    assert all(len(v) == 1 for v in names.values())  # an artist id has one name
    sizes = Counter(s["album_id"] for s in gen["song_meta.json"])
    assert len(sizes) > 500 and max(sizes.values()) >= 8 and min(sizes.values()) == 1


def test_genre_file_is_in_the_real_format(gen: dict[str, Any]) -> None:
    genres = read_genres(gen["dir"] / "genre_gn_all.json")
    assert genres["GN0100"] == "발라드" and genres["GN0101"] == "세부장르전체"
    assert genres["GN0900"] == "POP" and genres["GN0105"] == "'10-"
    assert all(re.fullmatch(r"GN\d{4}", code) for code in genres)
    majors = {code for code in genres if code.endswith("00")}
    assert len(majors) == len(GENRES) == 20
    assert all(code[:4] + "00" in majors for code in genres)


def test_sizes_like_the_real_data(gen: dict[str, Any]) -> None:
    train = gen["train.json"]
    songs = np.array([len(p["songs"]) for p in train])
    tags = np.array([len(p["tags"]) for p in train])
    assert songs.min() >= 1 and songs.max() <= 200
    assert 0.8 < np.mean((songs >= 10) & (songs <= 100)) < 0.95
    assert 30 < songs.mean() < 55
    assert tags.min() >= 1 and tags.max() <= 10  # the real train.json has no tagless playlist
    assert 0.18 < np.mean(tags == 1) < 0.32 and 3.0 < tags.mean() < 4.5
    likes = np.array([p["like_cnt"] for p in train])
    assert likes.max() > 20 * max(1.0, np.median(likes))  # long-tailed
    titles = [p["plylst_title"] for p in train]
    assert all(titles)
    assert 0.002 < np.mean([not t.strip(" .-") for t in titles]) < 0.03  # empty-ish titles
    popularity = np.sort(np.bincount([s for p in train for s in p["songs"]]))[::-1]
    top = popularity[: len(popularity) // 10].sum() / popularity.sum()
    assert top > 0.35  # the top 10 % of songs hold a large share of the entries


def test_dates_are_ordered(gen: dict[str, Any]) -> None:
    release = {}
    for s in gen["song_meta.json"]:
        d = s["issue_date"]
        if d[4:6] != "00" and d[6:] != "00":
            release[s["id"]] = d
    years = Counter()
    for p in gen["train.json"] + gen["val_answers.json"]:
        day = p["updt_date"][:10].replace("-", "")
        assert all(release[s] <= day for s in p["songs"] if s in release)
        years[p["updt_date"][:4]] += 1
    assert min(years) >= "2005" and max(years) == "2020"
    assert years["2019"] + years["2020"] > sum(years.values()) / 3  # mostly recent


def test_ids_are_unique_and_disjoint(gen: dict[str, Any]) -> None:
    train = {p["id"] for p in gen["train.json"]}
    val = [p["id"] for p in gen["val.json"]]
    test = [p["id"] for p in gen["test.json"]]
    assert len(train) == len(gen["train.json"])
    assert not train & set(val) and not train & set(test) and not set(val) & set(test)
    assert val == [p["id"] for p in gen["val_answers.json"]]
    assert test == [p["id"] for p in gen["test_answers.json"]]
    n_songs = len(gen["song_meta.json"])
    assert all(0 <= s < n_songs for p in gen["train.json"] for s in p["songs"])


@pytest.mark.parametrize("name", ["val", "test"])
def test_questions_look_like_the_real_ones(gen: dict[str, Any], name: str) -> None:
    questions, answers = gen[f"{name}.json"], gen[f"{name}_answers.json"]
    types = Counter(question_type(q) for q in questions)
    n = len(questions)
    expected = {"song only": 0.42, "song+tag": 0.39, "tag only": 0.12, "title only": 0.07}
    for kind, share in expected.items():
        assert abs(types[kind] / n - share) < 0.05, (kind, types)
    assert types["nothing"] <= 0.02 * n
    for q, a in zip(questions, answers, strict=True):
        if q["songs"]:
            assert q["plylst_title"] == ""  # real questions that show songs have no title
            assert len(q["songs"]) == (len(q["songs"]) + len(a["songs"])) // 2
        else:
            assert q["plylst_title"] == a["plylst_title"] != ""
        assert not set(q["songs"]) & set(a["songs"]) and not set(q["tags"]) & set(a["tags"])
        assert a["songs"] and len(a["songs"]) <= 100 and len(a["tags"]) <= 10
        assert (q["like_cnt"], q["updt_date"]) == (a["like_cnt"], a["updt_date"])


# --- the structure models learn from ---------------------------------------------------------
def _jaccard_mean(pairs: list[tuple[set[int], set[int]]]) -> float:
    return float(np.mean([len(a & b) / len(a | b) for a, b in pairs]))


def test_playlists_sharing_a_tag_share_songs(gen: dict[str, Any]) -> None:
    train = gen["train.json"]
    generic = {"기분전환", "감성", "휴식", "힐링", "사랑", "2010년대", "추억", "명곡"}
    by_tag: dict[str, list[int]] = {}
    for i, p in enumerate(train):
        for t in p["tags"]:
            if t not in generic:
                by_tag.setdefault(t, []).append(i)
    rng = np.random.default_rng(0)
    sharing = []
    for members in by_tag.values():
        for i, j in itertools.islice(itertools.combinations(members, 2), 30):
            sharing.append((set(train[i]["songs"]), set(train[j]["songs"])))
    random_pairs = [
        (set(train[i]["songs"]), set(train[j]["songs"]))
        for i, j in rng.integers(0, len(train), size=(3000, 2))
        if i != j
    ]
    assert len(sharing) > 1000
    assert _jaccard_mean(sharing) > 3 * _jaccard_mean(random_pairs)


def test_songs_of_a_playlist_share_genres_and_eras(gen: dict[str, Any]) -> None:
    meta = gen["song_meta.json"]
    genre = np.array([(s["song_gn_gnr_basket"] or ["none"])[0] for s in meta])
    year = np.array([int(s["issue_date"][:4]) for s in meta])
    train = gen["train.json"]
    rng = np.random.default_rng(1)
    same, chance, gap, random_gap = [], [], [], []
    entries = np.concatenate([p["songs"] for p in train])
    for p in train:
        songs = np.array(p["songs"])
        if songs.size < 2:
            continue
        a, b = rng.choice(songs, size=(2, 20))
        known = (year[a] > 0) & (year[b] > 0)
        same.append(np.mean(genre[a] == genre[b]))
        gap.append(np.mean(np.abs(year[a] - year[b])[known]))
        c, d = rng.choice(entries, size=(2, 20))  # same popularity, no playlist structure
        known = (year[c] > 0) & (year[d] > 0)
        chance.append(np.mean(genre[c] == genre[d]))
        random_gap.append(np.mean(np.abs(year[c] - year[d])[known]))
    assert np.mean(same) > 2.5 * np.mean(chance)
    assert np.nanmean(gap) < 0.8 * np.nanmean(random_gap)  # most songs are recent anyway
    # an era's tag brings the songs of that era
    for tag, first, last in (("90년대", 1990, 1999), ("2000년대", 2000, 2009)):
        era = (year >= first) & (year <= last)
        tagged = [p for p in train if tag in p["tags"]]
        assert len(tagged) >= 5
        assert np.mean([era[p["songs"]].mean() for p in tagged]) > 2.5 * era[entries].mean()


def test_titles_follow_songs(gen: dict[str, Any]) -> None:
    meta = gen["song_meta.json"]
    ballad = np.array(["GN0100" in s["song_gn_gnr_basket"] for s in meta])
    train = gen["train.json"]
    titled = [p for p in train if "발라드" in p["plylst_title"]]
    others = [p for p in train if "발라드" not in p["plylst_title"]]
    assert len(titled) >= 10
    share = np.mean([ballad[p["songs"]].mean() for p in titled])
    assert share > 2 * np.mean([ballad[p["songs"]].mean() for p in others])
    # artist-centred playlists: "<artist> 노래 모음" holds many songs of that artist
    names = {}
    for s in meta:
        for n in s["artist_name_basket"]:
            names.setdefault(n, set()).add(s["id"])
    centred = [p for p in train if p["plylst_title"].endswith(" 노래 모음")]
    shares = [
        len(set(p["songs"]) & names[p["plylst_title"].split(" 노래 ")[0]]) / len(p["songs"])
        for p in centred
        if p["plylst_title"].split(" 노래 ")[0] in names
    ]
    assert len(shares) >= 10 and np.mean(shares) > 0.15  # an artist has ~7 songs


def test_tags_follow_songs(gen: dict[str, Any]) -> None:
    meta = gen["song_meta.json"]
    train = gen["train.json"]
    entries = np.concatenate([p["songs"] for p in train])
    ratios = []
    for code, _, _, _, _, tags in GENRES:  # a genre's own tag brings songs of that genre
        of_genre = np.array([code in s["song_gn_gnr_basket"] for s in meta])
        tagged = [p for p in train if tags[0] in p["tags"]]
        if len(tagged) >= 5:
            share = np.mean([of_genre[p["songs"]].mean() for p in tagged])
            ratios.append(share / of_genre[entries].mean())
    assert len(ratios) >= 3
    assert np.median(ratios) > 3


# --- reading back, determinism, arguments ------------------------------------------------------
def test_every_file_reads_back(gen: dict[str, Any]) -> None:
    for name in ("train.json", "val.json", "test.json", "val_answers.json", "test_answers.json"):
        data = read_melon(gen["dir"] / name)
        assert data.n_playlists == len(gen[name])
        assert data.n_tracks == len(gen["song_meta.json"])  # every song, none unknown
        assert data.n_entries == sum(len(p["songs"]) for p in gen[name])
    train = read_melon(gen["dir"] / "train.json")
    assert train.playlists["updt_date"].notna().all()
    assert (train.tracks["issue_date"] == 0).sum() > 0


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = generate_melon(tmp_path / "a", n_playlists=300, n_songs=600, n_tags=50, seed=5)
    b = generate_melon(tmp_path / "b", n_playlists=300, n_songs=600, n_tags=50, seed=5)
    c = generate_melon(tmp_path / "c", n_playlists=300, n_songs=600, n_tags=50, seed=6)
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "train.json").read_bytes() != (
        tmp_path / "c" / "train.json"
    ).read_bytes()
    assert a["val_types"] == b["val_types"] and c["n_songs"] == 600


def test_small_and_odd_sizes(tmp_path: Path) -> None:
    info = generate_melon(tmp_path / "tiny", n_playlists=20, n_songs=100, n_tags=10, seed=3)
    assert info["n_val"] >= 1 and info["n_test"] >= 1
    train = json.loads((tmp_path / "tiny" / "train.json").read_text(encoding="utf-8"))
    assert all(p["songs"] and p["tags"] for p in train)
    assert len({t for p in train for t in p["tags"]}) <= 10
    big_vocab = generate_melon(tmp_path / "vocab", n_playlists=40, n_songs=200, n_tags=2000)
    assert big_vocab["n_tags"] == 2000
    read_melon(tmp_path / "vocab" / "val.json")


def test_full_answers(tmp_path: Path) -> None:
    generate_melon(tmp_path, n_playlists=200, n_songs=500, answers="full", seed=2)
    questions = json.loads((tmp_path / "val.json").read_text(encoding="utf-8"))
    answers = json.loads((tmp_path / "val_answers.json").read_text(encoding="utf-8"))
    for q, a in zip(questions, answers, strict=True):
        assert set(q["songs"]) <= set(a["songs"]) and set(q["tags"]) <= set(a["tags"])
        assert len(a["tags"]) >= 1 and len(a["songs"]) >= len(q["songs"]) * 2


def test_default_size_is_fast(tmp_path: Path) -> None:
    start = time.perf_counter()
    generate_melon(tmp_path, seed=9)
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_playlists": 19}, "n_playlists must be at least 20"),
        ({"n_songs": 99}, "n_songs must be at least 100"),
        ({"n_tags": 9}, "n_tags must be at least 10"),
        ({"n_playlists": 2.5}, "n_playlists must be an integer"),
        ({"seed": -1}, "seed must be at least 0"),
        ({"seed": True}, "seed must be an integer"),
        ({"answers": "some"}, "answers must be 'hidden' or 'full'"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        generate_melon(tmp_path, **kwargs)
    assert not list(tmp_path.iterdir())  # nothing written
