"""Synthetic Kakao Arena Melon data, so the Melon path can be built and tested without the data.

The real "Melon Playlist Continuation" files cannot be redistributed, and segue's tests and demos
must run on a fresh clone. :func:`generate_melon` writes a directory in exactly the challenge's
schema (``train.json``, ``val.json``, ``test.json``, ``song_meta.json``, ``genre_gn_all.json``;
see :mod:`segue.data.readers.melon` for the fields), with the structure that Melon models feed
on, so that a model that uses songs, tags, titles, artists, genres or dates is rewarded for it
here as it would be on the real data.

How the data are made (all randomness from one :func:`numpy.random.default_rng` seeded with
``seed``, so a seed gives the same bytes every time):

1. **Genres.** A fixed table of 20 major Melon genres (codes, Korean names and detailed
   sub-genres as in the real ``genre_gn_all.json``: ``GN0100`` 발라드 with ``GN0101``
   세부장르전체, ``GN0102`` '80 ... ``GN0105`` '10-). Some sub-genres are eras, some styles.
2. **Artists, albums, songs.** Every artist has a main genre (drawn by the genre's share of the
   catalogue), a style sub-genre, a debut date (recent decades much more likely; older for
   성인가요, 포크 and 클래식) and a lognormal popularity. Albums belong to an artist and get a
   release date inside the artist's career; songs belong to albums (singles to 15-track
   albums). A song takes its artist's genre (sometimes another one, sometimes two genres), the
   detailed genre of its era or its artist's style plus the genre's "세부장르전체", and
   sometimes a featured second artist. Song popularity multiplies artist, album and song
   factors (lognormal) with a mild recency bonus: a long tail. Each song also has a mood drawn
   from its genre's mood profile. ``issue_date`` is the album's date as ``yyyymmdd``; as in the
   real file, a few are ``"00000000"``, ``yyyy0000`` or ``yyyymm00``. Song ids are a random
   permutation of ``0..n_songs-1`` (``song_meta.json`` lists them in id order, as the real file
   does), album and artist ids sparse random integers, so no id order carries information.
3. **Themes.** Playlists are drawn around latent themes (about one per 25 playlists), each a
   mixture of an era window (최신, 2010년대, 2000년대, 90년대, 80년대, or any time), a genre
   that has songs of that era (sometimes two genres) and a mood (새벽, 드라이브, 이별, 카페,
   운동, ...). A theme likes songs of its genres, released in its window, of its mood, and has
   favourites of its own; it has a tag vocabulary (its mood's, genre's and era's tags, plus
   long-tail tags of its own: the vocabulary beyond the ~140 core words is compounds such as
   "새벽발라드") and title words.
4. **Playlists.** Each playlist follows one theme, sometimes two, plus a share of globally
   popular songs; about 8 % centre on one artist ("<artist> 노래 모음"). The number of songs is
   lognormal (median about 32, 85 % between 10 and 100, at most 200). Every playlist has 1 to 10
   tags (about a quarter one tag, mean about 3.7; the real ``train.json`` has no playlist
   without tags), drawn from its theme's vocabulary with 10 % noise. Titles combine the theme's
   words and the playlist's tags ("새벽 발라드", "#드라이브 #여름", "90년대 댄스 명곡"); about 6 %
   are generic ("노래", "playlist") and 1 % empty-ish (" ", "."). ``like_cnt`` is long-tailed
   (lognormal, many zeros). ``updt_date`` is drawn first (2005 to April 2020, mostly recent, and
   after the theme's era) and only songs released by then are drawn, so no playlist holds a
   song issued after its update (a playlist too short for that is completed from any date and
   its date moved after its newest song).
5. **Files.** About 77 % of the playlists go to ``train.json``, 15.5 % to ``val.json`` and 7 %
   to ``test.json`` (the real 115,071 / 23,015 / 10,740). ``val.json`` and ``test.json`` are
   questions made from the held-out playlists by
   :func:`segue.data.melon_split.make_questions` in ``"leaderboard"`` mode, i.e. like the real
   question files. Unlike the real release, which has no answers, the answers are written too
   (``val_answers.json``, ``test_answers.json``: the hidden songs and tags, as the official
   ``answers/val.json`` of the baseline holds; ``answers="full"`` writes whole playlists), so
   the whole path can be evaluated.

With the defaults (2,000 playlists, 5,000 songs, 300 tags) a call takes well under a second.

Examples
--------
>>> import tempfile
>>> from segue.data.synthetic.melon import generate_melon
>>> info = generate_melon(tempfile.mkdtemp(), n_playlists=200, n_songs=800, seed=1)
>>> info["n_train"] + info["n_val"] + info["n_test"]
200
"""

from __future__ import annotations

import json
import math
import numbers
import os
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from segue._atomic import atomic_open
from segue.data.melon_split import make_questions, question_type
from segue.data.readers.melon import write_melon_json
from segue.data.synthetic.pairs import first_distinct, rank_within
from segue.exceptions import ParameterError

__all__ = ["GENRES", "generate_melon"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# --- the world: genres, moods, eras ---------------------------------------------------------
GENRES: tuple[tuple[str, str, float, float, tuple[str, ...], tuple[str, ...]], ...] = (
    # code, name, share of the catalogue, mean age in years, detailed genres, tags
    ("GN0100", "발라드", 0.13, 6, ("세부장르전체", "'80", "'90", "'00", "'10-"),
     ("발라드", "감성발라드")),
    ("GN0200", "댄스", 0.08, 5, ("세부장르전체", "'80", "'90", "'00", "'10-"),
     ("댄스", "아이돌", "케이팝")),
    ("GN0300", "랩/힙합", 0.07, 4,
     ("세부장르전체", "랩 스타일", "보컬 스타일", "언더그라운드 힙합"), ("힙합", "랩", "국내힙합")),
    ("GN0400", "R&B/Soul", 0.05, 5, ("세부장르전체", "어반", "R&B"), ("알앤비", "RnB", "소울")),
    ("GN0500", "인디음악", 0.12, 5,
     ("세부장르전체", "포크", "록", "일렉", "힙합", "발라드", "'90", "'00", "'10-"),
     ("인디", "인디음악", "어쿠스틱")),
    ("GN0600", "록/메탈", 0.04, 9, ("세부장르전체", "'70", "'80", "'90", "'00", "'10-"),
     ("록", "락", "밴드")),
    ("GN0700", "성인가요", 0.03, 15,
     ("세부장르전체", "신세대트로트", "전설의트로트", "트로트메들리"), ("트로트", "성인가요")),
    ("GN0800", "포크/블루스", 0.03, 14, ("세부장르전체", "'60-'70", "'80-'90", "'00", "'10-"),
     ("포크", "통기타")),
    ("GN0900", "POP", 0.12, 7,
     ("세부장르전체", "얼터너티브팝", "올디스", "월드팝", "'60-'70", "'80-'90", "'00", "'10-"),
     ("팝", "POP", "팝송")),
    ("GN1000", "록/메탈", 0.04, 10,
     ("세부장르전체", "모던록", "얼터너티브록", "하드록", "헤비메탈"),
     ("락", "Rock", "얼터너티브")),
    ("GN1100", "일렉트로니카", 0.05, 5,
     ("세부장르전체", "일렉트로니카", "하우스", "클럽뮤직", "일렉트로닉팝"),
     ("일렉", "EDM", "일렉트로닉")),
    ("GN1200", "랩/힙합", 0.04, 6,
     ("세부장르전체", "팝랩", "얼터너티브힙합", "갱스터/하드코어랩"), ("외힙", "힙합", "hiphop")),
    ("GN1300", "R&B/Soul", 0.03, 7, ("세부장르전체", "컨템포러리 R&B", "소울", "어반"),
     ("알앤비", "R&B", "그루브")),
    ("GN1500", "OST", 0.06, 5,
     ("세부장르전체", "국내영화", "국외영화", "국내드라마", "국외드라마", "애니메이션/게임"),
     ("OST", "드라마", "영화")),
    ("GN1600", "클래식", 0.02, 15,
     ("세부장르전체", "관현악", "교향곡", "실내악", "협주곡", "독주곡"),
     ("클래식", "오케스트라", "피아노")),
    ("GN1700", "재즈", 0.03, 9, ("세부장르전체", "보컬재즈", "애시드/퓨전/팝", "Bop", "보사노바"),
     ("재즈", "재즈피아노", "보사노바")),
    ("GN1800", "뉴에이지", 0.03, 7, ("세부장르전체", "이지리스닝", "피아노", "기능성음악"),
     ("뉴에이지", "피아노", "힐링")),
    ("GN1900", "J-POP", 0.02, 7, ("세부장르전체", "POP", "록", "시부야케이"),
     ("JPOP", "제이팝", "일본")),
    ("GN2100", "CCM", 0.01, 8, ("세부장르전체", "국내CCM", "국외CCM", "워십"),
     ("CCM", "찬양", "워십")),
    ("GN2200", "어린이/태교", 0.01, 6, ("유아동요", "창작동요", "태교"), ("동요", "태교", "육아")),
)  # fmt: skip
"""The genre table: detailed codes are the major code's first four characters plus 01, 02, ..."""

_ERA_DETAILS = {
    "'60-'70": (1960, 1979),
    "'70": (1970, 1979),
    "'80": (1980, 1989),
    "'90": (1990, 1999),
    "'00": (2000, 2009),
    "'80-'90": (1980, 1999),
    "'10-": (2010, 2100),
}
"""Detailed genres that are eras: a song gets the one of its release year."""
_ALL_DETAIL = "세부장르전체"

_MOODS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    # name, tags (first = main), title words
    ("잔잔한", ("잔잔한", "휴식", "편안한", "힐링"), ("잔잔한", "편안한", "조용한")),
    ("신나는", ("신나는", "기분전환", "텐션업", "파티"), ("신나는", "텐션 올리는", "흥 폭발")),
    ("새벽", ("새벽", "감성", "밤", "새벽감성"), ("새벽", "잠 못 드는 밤", "늦은 밤")),
    ("사랑", ("사랑", "설렘", "달달한", "고백"), ("설레는", "달달한", "사랑하는 너에게")),
    ("이별", ("이별", "슬픔", "그리움", "눈물"), ("이별 후", "눈물 나는", "그리운")),
    ("드라이브", ("드라이브", "여행", "시원한", "질주"), ("드라이브", "여행길", "달리고 싶은")),
    ("카페", ("카페", "매장음악", "커피", "브런치"), ("카페에서", "커피 한 잔", "오후의")),
    ("운동", ("운동", "헬스", "러닝", "에너지"), ("운동할 때", "헬스장", "달리기")),
    ("집중", ("공부", "집중", "독서", "작업"), ("공부할 때", "집중", "작업용")),
    ("추억", ("추억", "회상", "명곡", "옛날노래"), ("추억의", "그 시절", "다시 듣는")),
    ("여름", ("여름", "청량", "바다", "휴가"), ("여름", "청량한", "바닷가")),
    ("겨울", ("겨울", "크리스마스", "캐롤", "눈"), ("겨울", "크리스마스", "눈 오는 날")),
    ("가을", ("가을", "쓸쓸한", "낙엽", "산책"), ("가을", "쓸쓸한", "선선한")),
    ("봄", ("봄", "벚꽃", "나들이", "설렘"), ("봄", "벚꽃", "봄날의")),
    ("비", ("비", "비오는날", "우울", "감성"), ("비 오는 날", "우울할 때", "빗소리")),
    ("잠", ("잠", "수면", "잠들기전", "자장가"), ("잠들기 전", "자기 전에", "꿀잠")),
)
_ERAS: tuple[tuple[str, float, float, tuple[str, ...], str, float], ...] = (
    # name, centre year, spread (sd, years), tags, title word, probability
    ("최신", 2019.7, 0.7, ("최신", "최신곡", "트렌디"), "요즘", 0.22),
    ("2010년대", 2015.0, 3.0, ("2010년대",), "2010년대", 0.30),
    ("2000년대", 2004.5, 3.0, ("2000년대", "00년대", "추억"), "2000년대", 0.15),
    ("90년대", 1995.0, 3.0, ("90년대", "추억", "명곡"), "90년대", 0.10),
    ("80년대", 1985.0, 4.0, ("80년대", "옛날노래"), "80년대", 0.05),
    ("전체", 2012.0, 9.0, (), "", 0.18),
)
_GENERIC_TAGS = (
    "기분전환", "감성", "휴식", "힐링", "사랑", "일상", "노래추천", "플레이리스트", "좋은노래",
    "취향저격", "명곡", "듣기좋은", "인생곡", "분위기", "위로", "행복", "설렘", "chill", "kpop",
    "mood", "indie", "love", "night", "cafe",
)  # fmt: skip
_GENERIC_TITLES = (
    "노래", "플레이리스트", "playlist", "My Playlist", "좋은 노래", "듣기 좋은 노래", "ㅎㅎ",
    "♡", "1", "Untitled", "내 노래", "즐겨듣는 곡",
)  # fmt: skip
_EMPTYISH_TITLES = (" ", ".", "  ", "-")

# --- knobs of the generative process (see the module docstring) ------------------------------
_END = np.datetime64("2020-04-23", "D")
"""The last day of the data (the real updt_date ends in April 2020)."""
_FIRST_UPDATE = np.datetime64("2005-01-01", "D")
_UPDATE_AGE_DAYS = 650.0
"""Mean age (days before _END) of a playlist's update date, before the release constraint."""
_OLDEST_YEAR = 1960
_SAMPLING_ROUNDS = 3
"""Rounds of song draws before a last round that fills short playlists ignoring dates."""
_SPLIT = (0.773, 0.155, 0.072)
"""Shares of train / val / test (115,071 / 23,015 / 10,740 in the real release)."""
_SONGS_PER_ALBUM = 3.0
_SONGS_PER_ARTIST = 7.0
_ARTIST_POP_SIGMA = 1.4
_ALBUM_POP_SIGMA = 0.5
_SONG_POP_SIGMA = 0.9
_RECENCY_YEARS = 12.0
"""Songs released ``t`` years before the end are ``exp(-t / _RECENCY_YEARS)`` as popular."""
_OTHER_GENRE_P = 0.08
"""Share of songs whose genre is not their artist's (OST tracks by ballad singers, ...)."""
_SECOND_GENRE_P = 0.08
_NO_GENRE_P = 0.005
_FEATURING_P = 0.12
_DATE_UNKNOWN_P, _MONTH_UNKNOWN_P, _DAY_UNKNOWN_P = 0.006, 0.012, 0.015
"""Albums whose issue_date is 00000000, yyyy0000 and yyyymm00."""
_MOOD_CONCENTRATION = 0.5
"""Dirichlet concentration of the genres' mood profiles (lower: more distinct)."""
_PLAYLISTS_PER_THEME = 25
_THEME_POP_SIGMA = 1.0
_SECOND_GENRE_THEME_P = 0.35
_THEME_POP_POWER = 0.75
"""How strongly a theme's liking for a song follows the song's popularity."""
_THEME_NOISE_SIGMA = 0.7
_THEME_ERA_FLOOR = 0.01
_THEME_MOOD_BOOST = 4.0
_THEME_SECOND_GENRE_WEIGHT = 0.6
_SECOND_THEME_P = 0.25
_GLOBAL_SHARE_BETA = (1.2, 12.0)
"""Beta parameters of the share of a playlist's songs drawn from global popularity (~9 %)."""
_ARTIST_PLAYLIST_P = 0.08
_SONGS_MEDIAN, _SONGS_SIGMA, _MAX_SONGS = 32.0, 0.8, 200
_TAG_COUNT_P = (0.24, 0.17, 0.15, 0.12, 0.09, 0.07, 0.05, 0.04, 0.03, 0.04)
"""Probability that a playlist has 1, 2, ..., 10 tags."""
_TAG_NOISE = 0.10
_GENERIC_TITLE_P, _EMPTYISH_TITLE_P = 0.06, 0.01
_LIKE_MU, _LIKE_SIGMA, _LIKE_ZERO_P = 1.8, 1.7, 0.05


class _Catalogue(NamedTuple):
    """Songs and the albums and artists behind them (arrays indexed by song / album / artist)."""

    song_album: IntArray
    song_artists: list[list[int]]
    song_genres: list[list[int]]
    """Major genre indices (rows of GENRES) of every song; may be empty."""
    song_genre: IntArray
    """Main genre of every song (its first genre, or its artist's when it has none)."""
    song_year: FloatArray
    song_mood: IntArray
    song_pop: FloatArray
    album_artist: IntArray
    album_day: npt.NDArray[np.datetime64]
    artist_genre: IntArray
    artist_pop: FloatArray
    song_id: IntArray
    """Public ids: a permutation of 0..n_songs-1, so id order says nothing about albums."""
    album_id: IntArray
    artist_id: IntArray
    """Public album and artist ids: distinct, sparse and in no meaningful order."""


class _Themes(NamedTuple):
    genre: IntArray
    genre2: IntArray
    """Second genre, or -1."""
    mood: IntArray
    era: IntArray
    pop: FloatArray
    tag_cdf: FloatArray
    """(n_themes, n_tags) cumulative tag probabilities, rows ending at 1."""


def _check_int(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ParameterError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def generate_melon(
    out_dir: str | os.PathLike[str],
    *,
    n_playlists: int = 2000,
    n_songs: int = 5000,
    n_tags: int = 300,
    answers: Literal["hidden", "full"] = "hidden",
    seed: int = 0,
) -> dict[str, Any]:
    """Write a synthetic Melon challenge directory (the module docstring describes the data).

    Parameters
    ----------
    out_dir
        Directory to write into (created if needed). Files of the same names are replaced
        (each atomically); other files are left alone.
    n_playlists
        Number of playlists over train, val and test (at least 20).
    n_songs
        Number of songs in ``song_meta.json`` (at least 100); not all of them are in playlists.
    n_tags
        Size of the tag vocabulary (at least 10); rare tags may end up in no playlist.
    answers
        What ``val_answers.json`` and ``test_answers.json`` hold: ``"hidden"`` (default) the
        hidden songs and tags only, as the official ``answers/val.json`` (what a scorer
        compares recommendations with); ``"full"`` the complete playlists.
    seed
        Seed of :func:`numpy.random.default_rng`; the same seed writes the same files.

    Returns
    -------
    dict
        ``out_dir`` and ``files`` (name -> path); ``n_playlists``, ``n_train``, ``n_val``,
        ``n_test``, ``n_songs``, ``n_albums``, ``n_artists``, ``n_genres`` (major),
        ``n_themes``, ``n_tags`` (vocabulary) and ``n_tags_used``; ``val_types`` and
        ``test_types`` (questions per :func:`~segue.data.melon_split.question_type`); ``seed``.

    Raises
    ------
    segue.exceptions.ParameterError
        A size below its minimum, a seed that is not a non-negative integer, or an unknown
        ``answers``.
    """
    n_playlists = _check_int("n_playlists", n_playlists, minimum=20)
    n_songs = _check_int("n_songs", n_songs, minimum=100)
    n_tags = _check_int("n_tags", n_tags, minimum=10)
    seed = _check_int("seed", seed, minimum=0)
    if answers not in ("hidden", "full"):
        raise ParameterError(f"answers must be 'hidden' or 'full', got {answers!r}")
    rng = np.random.default_rng(seed)
    out = Path(out_dir)

    cat = _make_catalogue(rng, n_songs)
    artist_names = _artist_names(rng, cat)
    vocab, n_core = _make_vocab(rng, n_tags)
    n_themes = max(8, min(800, round(n_playlists / _PLAYLISTS_PER_THEME)))
    themes = _make_themes(rng, cat, n_themes, vocab, n_core)
    plan = _plan_playlists(rng, n_playlists, themes, n_songs)
    owners, songs = _draw_songs(rng, cat, themes, plan)
    tags = _draw_tags(rng, themes, plan, len(vocab))
    playlists = _assemble(rng, cat, themes, plan, (owners, songs), tags, vocab, artist_names)

    n_test = max(1, round(n_playlists * _SPLIT[2]))
    n_val = max(1, round(n_playlists * _SPLIT[1]))
    order = rng.permutation(n_playlists)
    part = np.zeros(n_playlists, dtype=np.int64)
    part[order[:n_val]] = 1
    part[order[n_val : n_val + n_test]] = 2
    train = [p for p, k in zip(playlists, part.tolist(), strict=True) if k == 0]
    files: dict[str, Path] = {}
    files["train.json"] = write_melon_json(out / "train.json", train)
    types: dict[str, dict[str, int]] = {}
    for name, k in (("val", 1), ("test", 2)):
        held = [p for p, kk in zip(playlists, part.tolist(), strict=True) if kk == k]
        questions, truth, _ = make_questions(held, mode="leaderboard", answers=answers, seed=rng)
        files[f"{name}.json"] = write_melon_json(out / f"{name}.json", questions)
        files[f"{name}_answers.json"] = write_melon_json(out / f"{name}_answers.json", truth)
        kinds = [question_type(q) for q in questions]
        types[name] = {kind: kinds.count(kind) for kind in dict.fromkeys(kinds)}
    meta = _song_meta(rng, cat, artist_names)
    files["song_meta.json"] = write_melon_json(out / "song_meta.json", meta)
    files["genre_gn_all.json"] = _write_genres(out / "genre_gn_all.json")
    used = {t for p in playlists for t in p["tags"]}
    return {
        "out_dir": out,
        "files": files,
        "n_playlists": n_playlists,
        "n_train": len(train),
        "n_val": n_val,
        "n_test": n_test,
        "n_songs": n_songs,
        "n_albums": int(cat.album_artist.size),
        "n_artists": int(cat.artist_genre.size),
        "n_genres": len(GENRES),
        "n_themes": int(themes.genre.size),
        "n_tags": len(vocab),
        "n_tags_used": len(used),
        "val_types": types["val"],
        "test_types": types["test"],
        "seed": seed,
    }


# --- catalogue -------------------------------------------------------------------------------
def _genre_detail_codes() -> list[tuple[list[str], list[str], list[tuple[int, int] | None]]]:
    """Per major genre: detailed codes, their names, and their era (or None for a style)."""
    table = []
    for code, _, _, _, details, _ in GENRES:
        codes = [f"{code[:4]}{i + 1:02d}" for i in range(len(details))]
        table.append((codes, list(details), [_ERA_DETAILS.get(d) for d in details]))
    return table


def _make_catalogue(rng: np.random.Generator, n_songs: int) -> _Catalogue:
    n_genres = len(GENRES)
    share = np.array([g[2] for g in GENRES])
    share /= share.sum()
    age = np.array([g[3] for g in GENRES], dtype=np.float64)
    n_artists = max(5, round(n_songs / _SONGS_PER_ARTIST))
    n_albums = max(n_artists, round(n_songs / _SONGS_PER_ALBUM))

    artist_genre = rng.choice(n_genres, size=n_artists, p=share)
    end_year = 2020.3
    debut = end_year - rng.exponential(age[artist_genre]) - rng.uniform(0, 2, n_artists)
    debut = np.maximum(debut, _OLDEST_YEAR + rng.uniform(0, 5, n_artists))
    career = 1.0 + rng.exponential(8.0, n_artists)
    artist_pop = rng.lognormal(0.0, _ARTIST_POP_SIGMA, n_artists)

    # Every artist has an album; more popular artists have more of them.
    weights = np.sqrt(artist_pop)
    album_artist = np.concatenate(
        [
            rng.permutation(n_artists),
            rng.choice(n_artists, n_albums - n_artists, p=weights / weights.sum()),
        ]
    )
    start = debut[album_artist]
    stop = np.minimum(start + career[album_artist], end_year)
    album_year = start + rng.random(n_albums) * np.maximum(stop - start, 0.0)
    album_day = _year_to_day(album_year)
    album_year = _day_to_year(album_day)
    album_pop = rng.lognormal(0.0, _ALBUM_POP_SIGMA, n_albums)

    # Every album has a song; the rest follow an album size weight (singles to full albums).
    size_weight = rng.lognormal(0.0, 0.8, n_albums)
    song_album = np.concatenate(
        [
            rng.permutation(n_albums)[: min(n_albums, n_songs)],
            rng.choice(n_albums, max(0, n_songs - n_albums), p=size_weight / size_weight.sum()),
        ]
    )
    song_album = np.sort(song_album, kind="stable")  # songs of an album have consecutive ids
    artist = album_artist[song_album]
    song_year = album_year[song_album]

    song_genre = artist_genre[artist].copy()
    other = rng.random(n_songs) < _OTHER_GENRE_P
    song_genre[other] = rng.choice(n_genres, size=int(other.sum()), p=share)
    second = rng.choice(n_genres, size=n_songs, p=share)
    has_second = (rng.random(n_songs) < _SECOND_GENRE_P) & (second != song_genre)
    no_genre = rng.random(n_songs) < _NO_GENRE_P
    song_genres = [
        [] if none else ([g, s] if two else [g])
        for g, s, two, none in zip(
            song_genre.tolist(),
            second.tolist(),
            has_second.tolist(),
            no_genre.tolist(),
            strict=True,
        )
    ]

    featured = rng.integers(0, n_artists, n_songs)
    feat = (rng.random(n_songs) < _FEATURING_P) & (featured != artist)
    song_artists = [
        [a, f] if two else [a]
        for a, f, two in zip(artist.tolist(), featured.tolist(), feat.tolist(), strict=True)
    ]

    mood_profile = rng.dirichlet(np.full(len(_MOODS), _MOOD_CONCENTRATION), size=n_genres)
    cum = np.cumsum(mood_profile, axis=1)
    song_mood = (rng.random(n_songs)[:, None] > cum[song_genre]).sum(axis=1)
    song_mood = np.minimum(song_mood, len(_MOODS) - 1)

    recency = np.exp(-(end_year - song_year) / _RECENCY_YEARS)
    song_pop = (
        artist_pop[artist]
        * album_pop[song_album]
        * rng.lognormal(0.0, _SONG_POP_SIGMA, n_songs)
        * recency
    )
    song_pop /= song_pop.sum()
    return _Catalogue(
        song_album=song_album,
        song_artists=song_artists,
        song_genres=song_genres,
        song_genre=song_genre,
        song_year=song_year,
        song_mood=song_mood.astype(np.int64),
        song_pop=song_pop,
        album_artist=album_artist,
        album_day=album_day,
        artist_genre=artist_genre,
        artist_pop=artist_pop,
        song_id=rng.permutation(n_songs),
        album_id=rng.choice(20 * n_albums, size=n_albums, replace=False),
        artist_id=rng.choice(20 * n_artists, size=n_artists, replace=False),
    )


def _year_to_day(years: FloatArray) -> npt.NDArray[np.datetime64]:
    """Fractional years to days, never after _END."""
    epoch = np.datetime64("1970-01-01", "D")
    days = np.floor((years - 1970.0) * 365.2425).astype(np.int64)
    return np.minimum(epoch + days, _END - 1)


def _day_to_year(days: npt.NDArray[np.datetime64]) -> FloatArray:
    since = (days - np.datetime64("1970-01-01", "D")).astype(np.int64)
    return 1970.0 + since / 365.2425


# --- tags and themes -------------------------------------------------------------------------
def _make_vocab(rng: np.random.Generator, n_tags: int) -> tuple[list[str], int]:
    """The tag vocabulary: core words first, then compounds as the long tail.

    Returns the tags and the number of core words (the first ones).
    """
    core: dict[str, None] = dict.fromkeys(_GENERIC_TAGS)
    for _, tags, _ in _MOODS:
        core.update(dict.fromkeys(tags))
    for genre in GENRES:
        core.update(dict.fromkeys(genre[5]))
    for era in _ERAS:
        core.update(dict.fromkeys(era[3]))
    words = list(core)
    if n_tags <= len(words):
        return words[:n_tags], n_tags
    firsts = [t for _, tags, _ in _MOODS for t in tags[:2]] + [e[3][0] for e in _ERAS if e[3]]
    seconds = [g[5][0] for g in GENRES] + ["노래", "감성", "플리", "모음", "음악"]
    pairs = [a + b for a in firsts for b in seconds if a + b not in core]
    pairs = [pairs[i] for i in rng.permutation(len(pairs))]
    tail = pairs[: n_tags - len(words)]
    k = 2
    while len(words) + len(tail) < n_tags:  # more tags than compounds: numbered variants
        tail += [f"{t}{k}" for t in pairs[: n_tags - len(words) - len(tail)]]
        k += 1
    return words + tail, len(words)


def _make_themes(
    rng: np.random.Generator, cat: _Catalogue, n_themes: int, vocab: list[str], n_core: int
) -> _Themes:
    """Themes: an era, then genres that have songs of that era (no 80s hip-hop), and a mood."""
    n_genres, n_tags = len(GENRES), len(vocab)
    era_p = np.array([e[5] for e in _ERAS])
    era = rng.choice(len(_ERAS), size=n_themes, p=era_p / era_p.sum())
    # genre_p[e, g]: how much of the catalogue is genre g and from era e
    centre = np.array([e[1] for e in _ERAS])[:, None]
    spread = np.array([e[2] for e in _ERAS])[:, None]
    in_era = np.exp(-0.5 * ((cat.song_year[None, :] - centre) / spread) ** 2)
    genre_p = np.stack(
        [np.bincount(cat.song_genre, weights=row, minlength=n_genres) for row in in_era]
    )
    genre_p += 1e-9
    genre_p /= genre_p.sum(axis=1, keepdims=True)
    cum = np.cumsum(genre_p, axis=1)
    genre = np.minimum((rng.random((2, n_themes))[..., None] > cum[era]).sum(axis=-1), n_genres - 1)
    genre, genre2 = genre[0], genre[1]
    genre2[(rng.random(n_themes) >= _SECOND_GENRE_THEME_P) | (genre2 == genre)] = -1
    mood = rng.integers(0, len(_MOODS), n_themes)
    pop = rng.lognormal(0.0, _THEME_POP_SIGMA, n_themes)

    index = {t: i for i, t in enumerate(vocab)}
    weight = np.zeros((n_themes, n_tags))
    tail_ids = np.arange(n_core, n_tags)
    # Long-tail tags belong to one theme each (its private words), more often to big themes.
    tail_owner = rng.choice(n_themes, size=tail_ids.size, p=pop / pop.sum())
    for t in range(n_themes):
        parts = [(_MOODS[mood[t]][1], (5.0, 3.0, 2.0, 2.0))]
        parts.append((GENRES[genre[t]][5], (3.0, 1.5, 1.0)))
        if genre2[t] >= 0:
            parts.append((GENRES[genre2[t]][5][:1], (1.5,)))
        parts.append((_ERAS[era[t]][3], (1.5, 1.0, 0.7)))
        for words, w in parts:
            for word, value in zip(words, w, strict=False):
                if word in index:
                    weight[t, index[word]] += value
        private = tail_ids[tail_owner == t]
        weight[t, private] += rng.uniform(0.3, 1.5, private.size)
        if weight[t].sum() == 0:  # a tiny vocabulary with none of the theme's words
            weight[t, : min(n_tags, 5)] = 1.0
    tag_cdf = np.cumsum(weight / weight.sum(axis=1, keepdims=True), axis=1)
    tag_cdf[:, -1] = 1.0
    return _Themes(genre, genre2, mood, era, pop, tag_cdf)


# --- playlists -------------------------------------------------------------------------------
class _Plan(NamedTuple):
    theme: IntArray
    theme2: IntArray
    """Second theme, or -1."""
    share2: FloatArray
    global_share: FloatArray
    artist_share: FloatArray
    """Share of songs from one artist (0 for playlists that do not centre on an artist)."""
    need: IntArray
    n_tags: IntArray
    day: IntArray
    """Update day (days after _FIRST_UPDATE): only songs released by then can be drawn."""


def _plan_playlists(rng: np.random.Generator, n: int, themes: _Themes, n_songs: int) -> _Plan:
    n_themes = themes.genre.size
    p = themes.pop / themes.pop.sum()
    theme = rng.choice(n_themes, size=n, p=p)
    theme2 = rng.choice(n_themes, size=n, p=p)
    theme2[(rng.random(n) >= _SECOND_THEME_P) | (theme2 == theme)] = -1
    share2 = np.where(theme2 >= 0, rng.uniform(0.2, 0.4, n), 0.0)
    global_share = rng.beta(*_GLOBAL_SHARE_BETA, size=n)
    artist_share = np.where(rng.random(n) < _ARTIST_PLAYLIST_P, rng.uniform(0.4, 0.8, n), 0.0)
    need = np.rint(rng.lognormal(math.log(_SONGS_MEDIAN), _SONGS_SIGMA, n))
    need = np.clip(need, 1, min(_MAX_SONGS, n_songs // 4)).astype(np.int64)
    n_tags = rng.choice(np.arange(1, len(_TAG_COUNT_P) + 1), size=n, p=_TAG_COUNT_P)
    # Update dates: mostly recent; a playlist of an era's songs is made after the era.
    span = int((_END - _FIRST_UPDATE).astype(np.int64))
    day = span - rng.exponential(_UPDATE_AGE_DAYS, n)
    centre = np.array([e[1] for e in _ERAS])[themes.era[theme]]
    era_day = (centre - 2005.0) * 365.2425 + rng.exponential(365.0, n)
    day = np.maximum(day, era_day)
    late = day > span - 1  # a recent era's playlists: a few weeks before the end, not all on it
    day[late] = span - 1 - rng.exponential(45.0, int(late.sum()))
    day = np.clip(day, 0, span - 1).astype(np.int64)
    return _Plan(
        theme, theme2, share2, global_share, artist_share, need, n_tags.astype(np.int64), day
    )


def _block_cdf(groups: IntArray, weights: FloatArray, n_groups: int) -> tuple[FloatArray, IntArray]:
    """One searchsorted table for many categorical distributions.

    Elements sorted by group; group ``g`` covers the values ``(g, g + 1]``, so drawing from
    group ``g`` is ``searchsorted(cdf, g + u)`` with ``u`` uniform in [0, 1).
    """
    order = np.argsort(groups, kind="stable")
    g, w = groups[order], weights[order]
    sizes = np.bincount(g, minlength=n_groups)
    cum = np.cumsum(w)
    within = cum - np.repeat(np.r_[0.0, cum][np.cumsum(sizes) - sizes], sizes)
    last = np.cumsum(sizes)[sizes > 0] - 1
    within /= np.repeat(within[last], sizes[sizes > 0])  # every block ends exactly at g + 1
    return g + within, order


def _theme_weights(
    t: int, themes: _Themes, cat: _Catalogue, by_genre: list[IntArray], rng: np.random.Generator
) -> tuple[IntArray, FloatArray]:
    """The songs a theme can pick from (its genres) and how much it likes each."""
    g1, g2 = int(themes.genre[t]), int(themes.genre2[t])
    songs = by_genre[g1] if g2 < 0 else np.union1d(by_genre[g1], by_genre[g2])
    _, centre, spread, _, _, _ = _ERAS[themes.era[t]]
    era = np.exp(-0.5 * ((cat.song_year[songs] - centre) / spread) ** 2) + _THEME_ERA_FLOOR
    genre = np.where(cat.song_genre[songs] == g1, 1.0, _THEME_SECOND_GENRE_WEIGHT)
    mood = np.where(cat.song_mood[songs] == themes.mood[t], _THEME_MOOD_BOOST, 1.0)
    noise = rng.lognormal(0.0, _THEME_NOISE_SIGMA, songs.size)
    return songs, cat.song_pop[songs] ** _THEME_POP_POWER * era * genre * mood * noise


def _draw_songs(
    rng: np.random.Generator, cat: _Catalogue, themes: _Themes, plan: _Plan
) -> tuple[IntArray, IntArray]:
    """Distinct songs of every playlist, grouped by playlist, in draw order."""
    n, n_songs, n_genres = plan.need.size, cat.song_pop.size, len(GENRES)
    by_genre = [np.empty(0, np.int64)] * n_genres
    owners = np.repeat(np.arange(n_songs), [len(g) for g in cat.song_genres])
    genres = np.fromiter((g for gs in cat.song_genres for g in gs), np.int64, owners.size)
    for g in range(n_genres):
        by_genre[g] = np.unique(owners[genres == g])
    theme_tables = {}
    for t in np.unique(np.r_[plan.theme, plan.theme2[plan.theme2 >= 0]]).tolist():
        songs, w = _theme_weights(t, themes, cat, by_genre, rng)
        if songs.size == 0 or w.sum() <= 0:
            songs, w = np.arange(n_songs), cat.song_pop.copy()
        cdf = np.cumsum(w)
        theme_tables[t] = (songs, cdf / cdf[-1])
    global_cdf = np.cumsum(cat.song_pop)
    global_cdf /= global_cdf[-1]
    release = (cat.album_day[cat.song_album] - _FIRST_UPDATE).astype(np.int64)
    artist = cat.album_artist[cat.song_album]
    artist_cdf, artist_order = _block_cdf(artist, cat.song_pop, cat.artist_pop.size)

    # Component shares per playlist: theme, second theme, global hits, one artist.
    shares = np.column_stack([plan.share2, plan.global_share, plan.artist_share])
    shares *= np.minimum(1.0, 0.9 / np.maximum(shares.sum(axis=1), 1e-12))[:, None]
    comp_p = np.column_stack([1.0 - shares.sum(axis=1), shares])
    comp_cum = np.cumsum(comp_p, axis=1)

    draws_owner: list[IntArray] = []
    draws_item: list[IntArray] = []
    owner = items = np.empty(0, np.int64)
    have = np.zeros(n, np.int64)
    focus = np.full(n, -1, np.int64)  # the artist of artist-centred playlists
    for round_ in range(_SAMPLING_ROUNDS + 1):
        todo = np.flatnonzero(have < plan.need)
        if round_ == _SAMPLING_ROUNDS:  # the last round fills what is short, any release date
            todo = np.flatnonzero(have < np.maximum(1, plan.need // 2))
        if todo.size == 0:
            break
        p = np.repeat(todo, (plan.need[todo] - have[todo]) * (2 << min(round_, 2)) + 6)
        comp = (rng.random(p.size)[:, None] > comp_cum[p]).sum(axis=1)
        comp = np.minimum(comp, 3)
        item = np.zeros(p.size, np.int64)
        which = np.where(comp == 1, plan.theme2[p], plan.theme[p])
        themed = (comp == 0) | ((comp == 1) & (which >= 0))
        at_themed = np.flatnonzero(themed)
        at_themed = at_themed[np.argsort(which[at_themed], kind="stable")]
        theme_ids, first = np.unique(which[at_themed], return_index=True)
        ends = np.r_[first[1:], at_themed.size]
        for t, lo, hi in zip(theme_ids.tolist(), first.tolist(), ends.tolist(), strict=True):
            at = at_themed[lo:hi]
            songs, cdf = theme_tables[t]
            pos = np.minimum(np.searchsorted(cdf, rng.random(at.size), side="right"), cdf.size - 1)
            item[at] = songs[pos]
        rest = ~themed & (comp != 3)
        pos = np.searchsorted(global_cdf, rng.random(int(rest.sum())), side="right")
        item[rest] = np.minimum(pos, n_songs - 1)
        # Artist-centred playlists follow the artist of their first themed song.
        starts = np.flatnonzero(np.r_[True, p[1:] != p[:-1]])
        first_themed = np.minimum.reduceat(np.where(themed, np.arange(p.size), p.size), starts)
        new_focus = np.where(
            first_themed < p.size, artist[item[np.minimum(first_themed, p.size - 1)]], -1
        )
        keep = focus[p[starts]] >= 0
        focus[p[starts]] = np.where(keep, focus[p[starts]], new_focus)
        at = np.flatnonzero(comp == 3)
        a = focus[p[at]]
        fallback = a < 0
        pos = np.searchsorted(artist_cdf, np.maximum(a, 0) + rng.random(at.size), side="right")
        item[at] = artist_order[np.minimum(pos, n_songs - 1)]
        item[at[fallback]] = np.minimum(
            np.searchsorted(global_cdf, rng.random(int(fallback.sum())), side="right"),
            n_songs - 1,
        )
        # A song released after the playlist's update date cannot be in it.
        ok = release[item] <= plan.day[p] if round_ < _SAMPLING_ROUNDS else slice(None)
        draws_owner.append(p[ok])
        draws_item.append(item[ok])
        owner, items = first_distinct(
            np.concatenate(draws_owner), np.concatenate(draws_item), n_songs
        )
        have = np.bincount(owner, minlength=n)
    keep = rank_within(owner) < plan.need[owner]
    return owner[keep], items[keep]


def _draw_tags(
    rng: np.random.Generator, themes: _Themes, plan: _Plan, n_tags: int
) -> tuple[IntArray, IntArray]:
    """Distinct tags of every playlist (theme vocabulary, 10 % noise), grouped by playlist."""
    n = plan.need.size
    rank = rng.permutation(n_tags) + 1.0  # a Zipf-like global popularity of tags...
    rank[: min(n_tags, len(_GENERIC_TAGS))] = np.arange(1, min(n_tags, len(_GENERIC_TAGS)) + 1)
    global_cdf = np.cumsum(rank**-1.0)  # ...in which the generic tags lead
    global_cdf /= global_cdf[-1]
    p = np.repeat(np.arange(n), plan.n_tags * 4 + 6)
    u = rng.random(p.size)
    noise = u < _TAG_NOISE
    second = (u >= _TAG_NOISE) & (u < _TAG_NOISE + 0.15) & (plan.theme2[p] >= 0)
    theme = np.where(second, plan.theme2[p], plan.theme[p])
    n_themes = themes.tag_cdf.shape[0]
    flat = (np.arange(n_themes)[:, None] + themes.tag_cdf).ravel()  # theme t covers (t, t + 1]
    pos = np.searchsorted(flat, theme + rng.random(p.size), side="right")
    tag = np.minimum(pos, flat.size - 1) - theme * n_tags
    tag[noise] = np.searchsorted(global_cdf, rng.random(int(noise.sum())), side="right")
    tag = np.minimum(tag, n_tags - 1)
    owner, items = first_distinct(p, tag, n_tags)
    keep = rank_within(owner) < plan.n_tags[owner]
    return owner[keep], items[keep]


def _assemble(
    rng: np.random.Generator,
    cat: _Catalogue,
    themes: _Themes,
    plan: _Plan,
    song_draws: tuple[IntArray, IntArray],
    tag_draws: tuple[IntArray, IntArray],
    vocab: list[str],
    artist_names: list[str],
) -> list[dict[str, Any]]:
    """The playlist records: ids, titles, like counts and update dates around the drawn songs."""
    n = plan.need.size
    owners, songs = song_draws
    ids = np.sort(rng.choice(int(n * 1.03) + 1, size=n, replace=False))
    ids = rng.permutation(ids)
    song_bounds = np.searchsorted(owners, np.arange(n + 1))
    tag_owner, tag_items = tag_draws
    tag_bounds = np.searchsorted(tag_owner, np.arange(n + 1))
    song_list = cat.song_id[songs].tolist()
    tag_list = [vocab[t] for t in tag_items.tolist()]

    # Update dates: the planned ones, moved after the newest song where a playlist had to take
    # songs released later (the last sampling round of short playlists).
    release = (cat.album_day[cat.song_album[songs]] - _FIRST_UPDATE).astype(np.int64)
    newest = np.full(n, -1, np.int64)
    np.maximum.at(newest, owners, release)
    span = int((_END - _FIRST_UPDATE).astype(np.int64))
    lag = rng.exponential(30.0, n).astype(np.int64)
    day = np.where(newest > plan.day, np.minimum(newest + lag, span), plan.day)
    seconds = rng.integers(0, 86_400, n)
    dates = (_FIRST_UPDATE + day).astype(str).tolist()
    likes = np.floor(rng.lognormal(_LIKE_MU, _LIKE_SIGMA, n)).astype(np.int64)
    likes[rng.random(n) < _LIKE_ZERO_P] = 0

    # The artist of artist-centred playlists: the most frequent one among their songs.
    artist = cat.album_artist[cat.song_album[songs]]
    focus = np.full(n, -1, np.int64)
    centred = np.flatnonzero(plan.artist_share > 0)
    for i in centred.tolist():
        a = artist[song_bounds[i] : song_bounds[i + 1]]
        if a.size:
            values, counts = np.unique(a, return_counts=True)
            focus[i] = values[np.argmax(counts)]
    title_u = rng.random((n, 4))
    records = []
    for i in range(n):
        tags = tag_list[tag_bounds[i] : tag_bounds[i + 1]]
        s = int(seconds[i])
        title = _title(int(plan.theme[i]), themes, tags, title_u[i], focus[i], artist_names)
        records.append(
            {
                "tags": tags,
                "id": int(ids[i]),
                "plylst_title": title,
                "songs": song_list[song_bounds[i] : song_bounds[i + 1]],
                "like_cnt": int(likes[i]),
                "updt_date": f"{dates[i]} {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.000",
            }
        )
    return records


def _title(
    t: int,
    themes: _Themes,
    tags: list[str],
    u: FloatArray,
    focus: int,
    artist_names: list[str],
) -> str:
    """A playlist title from its theme's words and its tags (sometimes generic or empty-ish)."""
    if u[0] < _EMPTYISH_TITLE_P:
        return _EMPTYISH_TITLES[int(u[1] * len(_EMPTYISH_TITLES))]
    if u[0] < _EMPTYISH_TITLE_P + _GENERIC_TITLE_P:
        return _GENERIC_TITLES[int(u[1] * len(_GENERIC_TITLES))]
    if focus >= 0 and u[2] < 0.8:
        name = artist_names[focus]
        return (f"{name} 노래 모음", f"{name} 명곡 모음", f"오늘은 {name}")[int(u[1] * 3)]
    mood_words = _MOODS[themes.mood[t]][2]
    mood = mood_words[int(u[1] * len(mood_words))]
    genre = GENRES[themes.genre[t]][5][0]
    era = _ERAS[themes.era[t]][4]
    tag1 = tags[0] if tags else genre
    tag2 = tags[1] if len(tags) > 1 else mood
    options = [
        f"{mood} {genre}",
        f"{mood} 노래 모음",
        f"{mood} 듣기 좋은 {genre}",
        f"{tag1} {tag2}",
        " ".join(f"#{tag}" for tag in tags[:3]) or f"#{genre}",
        f"[{tag1}] {mood}",
        f"{mood}, {tag2} ♬",
    ]
    if era:
        options += [f"{era} {genre} 명곡", f"{era} {mood} {genre}"]
    return options[int(u[3] * len(options))]


# --- names and files -------------------------------------------------------------------------
_FAMILY = ("김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오", "서", "신", "권")
_GIVEN = ("민", "서", "지", "현", "우", "준", "하", "윤", "수", "아", "은", "영", "진", "호", "연")
_BAND = (
    "Blue", "Night", "Moon", "Day", "Red", "Velvet", "Sunset", "Dream", "Cloud", "Star", "Ocean",
    "Paper", "Silver", "Echo", "Mellow", "Lucid", "Neon", "Urban", "Coffee", "Wave",
)  # fmt: skip
_FIRST = ("Alex", "Sam", "Chris", "Jamie", "Taylor", "Jordan", "Casey", "Riley", "Noah", "Mia")
_LAST = ("Parker", "Lane", "Hayes", "Brooks", "Reed", "Cole", "Gray", "Fox", "Hart", "Wells")
_KO_WORDS = (
    "너", "나", "우리", "밤", "별", "달", "바람", "비", "꿈", "봄", "여름", "하늘", "바다", "기억",
    "사랑", "이별", "오늘", "내일", "그날", "시간", "향기", "편지", "노래", "마음",
)  # fmt: skip
_EN_WORDS = (
    "Love", "Night", "Dream", "Summer", "Stay", "Home", "Light", "Run", "Golden", "Blue",
    "Forever", "Falling", "Heart", "Ocean", "Moon", "Fire",
)  # fmt: skip
_FOREIGN = frozenset(
    {"GN0900", "GN1000", "GN1100", "GN1200", "GN1300", "GN1600", "GN1700", "GN1900"}
)
"""Genres whose artists get Western names and songs English titles."""


def _is_foreign(genre: int) -> bool:
    return GENRES[genre][0] in _FOREIGN


def _artist_names(rng: np.random.Generator, cat: _Catalogue) -> list[str]:
    """Korean names (김하윤), band names (Neon Wave) or Western names, by the artist's genre."""
    n = cat.artist_genre.size
    r = rng.integers(0, 1 << 30, size=(n, 4)).tolist()
    names = []
    for a in range(n):
        k, i, j, m = r[a]
        if _is_foreign(int(cat.artist_genre[a])):
            if k % 3:
                names.append(f"{_FIRST[i % len(_FIRST)]} {_LAST[j % len(_LAST)]}")
            else:
                names.append(f"The {_BAND[i % len(_BAND)]} {_BAND[j % len(_BAND)]}s")
        elif k % 4 == 0:
            names.append(f"{_BAND[i % len(_BAND)]} {_BAND[j % len(_BAND)]}")
        else:
            given = _GIVEN[j % len(_GIVEN)] + _GIVEN[m % len(_GIVEN)]
            names.append(_FAMILY[i % len(_FAMILY)] + given)
    return names


def _issue_dates(rng: np.random.Generator, cat: _Catalogue) -> list[str]:
    """Album dates as ``yyyymmdd``, a few with unknown parts as in the real file."""
    days = np.datetime_as_string(cat.album_day, unit="D").tolist()
    issue = [d.replace("-", "") for d in days]
    u = rng.random(len(issue)).tolist()
    month = _DATE_UNKNOWN_P + _MONTH_UNKNOWN_P
    day = month + _DAY_UNKNOWN_P
    for i, x in enumerate(u):
        if x < _DATE_UNKNOWN_P:
            issue[i] = "00000000"
        elif x < month:
            issue[i] = issue[i][:4] + "0000"
        elif x < day:
            issue[i] = issue[i][:6] + "00"
    return issue


def _detail_genres(rng: np.random.Generator, cat: _Catalogue) -> list[list[str]]:
    """Every song's detailed genres: its era's (or its artist's style) and "세부장르전체"."""
    details = _genre_detail_codes()
    n_songs = cat.song_album.size
    style_pick = rng.integers(0, 1 << 30, cat.artist_genre.size)
    artist = cat.album_artist[cat.song_album].tolist()
    years = cat.song_year.astype(np.int64).tolist()
    mode = rng.random(n_songs).tolist()
    out = []
    for s in range(n_songs):
        detail: list[str] = []
        for g in cat.song_genres[s]:
            codes, names, eras = details[g]
            era = [c for c, e in zip(codes, eras, strict=True) if e and e[0] <= years[s] <= e[1]]
            styles = [
                c
                for c, e, d in zip(codes, eras, names, strict=True)
                if e is None and d != _ALL_DETAIL
            ]
            if era:
                specific = era[0]
            elif styles:
                specific = styles[int(style_pick[artist[s]]) % len(styles)]
            else:
                specific = codes[0]
            if names[0] != _ALL_DETAIL or mode[s] < 0.2:
                detail.append(specific)
            elif mode[s] < 0.3:
                detail.append(codes[0])
            else:
                detail += [specific, codes[0]]
        out.append(list(dict.fromkeys(detail)))
    return out


def _song_meta(
    rng: np.random.Generator, cat: _Catalogue, artist_names: list[str]
) -> list[dict[str, Any]]:
    """The ``song_meta.json`` records, fields in the order of the real file."""
    n_songs = cat.song_album.size
    issue = _issue_dates(rng, cat)
    album_names = _album_names(rng, cat)
    detail = _detail_genres(rng, cat)
    r = rng.integers(0, 1 << 30, size=(n_songs, 4)).tolist()
    albums = cat.song_album.tolist()
    album_ids = cat.album_id.tolist()
    artist_ids = cat.artist_id.tolist()
    foreign = [_is_foreign(g) for g in cat.song_genre.tolist()]
    return [
        {
            "song_gn_dtl_gnr_basket": detail[s],
            "issue_date": issue[albums[s]],
            "album_name": album_names[albums[s]],
            "album_id": album_ids[albums[s]],
            "artist_id_basket": [artist_ids[a] for a in cat.song_artists[s]],
            "song_name": _song_name(r[s], foreign[s]),
            "song_gn_gnr_basket": [GENRES[g][0] for g in cat.song_genres[s]],
            "artist_name_basket": [artist_names[a] for a in cat.song_artists[s]],
            "id": i,
        }
        for i, s in enumerate(np.argsort(cat.song_id).tolist())  # in id order, as the real file
    ]


def _song_name(r: list[int], foreign: bool) -> str:
    if foreign:
        a, b = _EN_WORDS[r[0] % len(_EN_WORDS)], _EN_WORDS[r[1] % len(_EN_WORDS)]
        feat = _FIRST[r[2] % len(_FIRST)]
        return (a, f"{a} {b}", f"{a} of {b}", f"{a} (feat. {feat})")[r[3] % 4]
    a, b = _KO_WORDS[r[0] % len(_KO_WORDS)], _KO_WORDS[r[1] % len(_KO_WORDS)]
    english = _EN_WORDS[r[2] % len(_EN_WORDS)]
    return (a, f"{a}의 {b}", f"{a}에게", f"{a} {b}", f"{a} ({english})")[r[3] % 5]


def _album_names(rng: np.random.Generator, cat: _Catalogue) -> list[str]:
    n = cat.album_artist.size
    r = rng.integers(0, 1 << 30, size=(n, 4)).tolist()
    genre = cat.artist_genre[cat.album_artist].tolist()
    names = []
    for i in range(n):
        k, j, m, q = r[i]
        a, c = _KO_WORDS[k % len(_KO_WORDS)], _KO_WORDS[m % len(_KO_WORDS)]
        b, d = _EN_WORDS[j % len(_EN_WORDS)], _EN_WORDS[m % len(_EN_WORDS)]
        if GENRES[genre[i]][1] == "OST":
            names.append(f"{a}의 {c} OST Part.{q % 12 + 1}")
        elif _is_foreign(genre[i]):
            names.append((b, f"{b} {d}", f"{b} (Deluxe)")[q % 3])
        else:
            mini = f"The {m % 5 + 1}th Mini Album '{b}'"
            names.append((a, f"{m % 9 + 1}집 {a}", mini, f"{a} {b}")[q % 4])
    return names


def _write_genres(path: Path) -> Path:
    """``genre_gn_all.json``: every major code and its detailed codes, with Korean names."""
    table: dict[str, str] = {}
    for genre, (codes, names, _) in zip(GENRES, _genre_detail_codes(), strict=True):
        table[genre[0]] = genre[1]
        table.update(zip(codes, names, strict=True))
    with atomic_open(path) as fh:
        fh.write(json.dumps(table, ensure_ascii=False))
    return path
