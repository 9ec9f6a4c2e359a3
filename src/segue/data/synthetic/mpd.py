"""Synthetic playlists in the exact file format of the Spotify Million Playlist Dataset.

The real MPD cannot be shipped (its license forbids redistribution), yet the demo, the tests of
the MPD split, the playlist models and the scale benchmark need MPD-shaped input with the
properties that matter for playlist continuation. :func:`generate_mpd` writes official-format
slice files (``mpd.slice.0-999.json``, ...: ``{"info": ..., "playlists": [...]}`` with every
field of the original schema) that :func:`segue.data.readers.mpd.read_mpd` and
:func:`segue.data.mpd_split.split_mpd` read like the real thing, and optionally a challenge set
in the official format with its answers.

It streams: one slice of text is held at a time, and everything else is a few arrays over the
track catalogue (about 100 MB for the default 4.6M-track catalogue), so any number of
playlists, the MPD's 1M and beyond, is written in bounded memory.

How the data are made (one :func:`numpy.random.default_rng` seeded with ``seed``, so a seed
always gives the same bytes):

1. **Catalogue.** ``n_tracks`` tracks, by default :data:`MPD_CATALOGUE`: the size at which the
   expected number of *distinct* tracks drawn by 1M playlists is the MPD's 2.26M (tracks that
   no playlist draws do not appear, as in the MPD, so fewer playlists see fewer distinct
   tracks, sublinearly, as a sample of the MPD would). Track ``t`` has the global popularity
   ``(t + 1 + 900 * n_tracks / MPD_CATALOGUE) ** -1.3`` (ids are scrambled, so this order is
   invisible in the files).
2. **Themes.** ``n_themes`` themes (by default about one per 250 tracks, between 4 and the 32
   built-in ones: "rock", "chill", "workout", "country", ...), of uneven sizes (Dirichlet with
   concentration 2); every track belongs to one. Inside its theme a track's weight is its
   popularity to the power 0.8 times a lognormal factor, so each theme has its own hits.
3. **Artists and albums.** Runs of tracks of one theme and similar popularity: a new artist
   starts with probability 0.131 and a new album with probability 0.325 (artists: 7.6 tracks,
   albums: 3.1 tracks on average, the MPD's ratios of 2.26M tracks to 296K artists and 735K
   albums). Track, artist and album uris have 22 base-62 characters, unique by construction.
4. **Playlists.** A playlist picks a theme (in proportion to its size), a length (lognormal
   with median 46, clipped to ``[min_tracks, max_tracks]``, 5 and 250 as in the MPD: mean about
   66) and draws its tracks without repeats: most from its theme, a playlist-specific share
   (2-30 %) from global popularity. About 2 % of playlists repeat one track.
5. **Titles follow the content.** Most titles are a variant of the theme's words ("Chill
   Vibes", "chill", "CHILL 2017"); some name the artist of the playlist's first track ("Silver
   Wolves 12", "golden hearts mix"), which gives the long tail of distinct titles (about 92K
   at 1M playlists, as in the MPD); the rest are generic ("my playlist", "music").
6. **Other fields** as in the MPD: ``collaborative`` (the strings ``"true"``/``"false"``),
   ``modified_at`` (a day between 2010 and Oct 2017, recent days more likely),
   ``num_followers``, ``num_edits``, ``num_albums``, ``num_artists``, ``duration_ms`` and, for
   2 %, a ``description``.
7. **Challenge set** (``challenge > 0``): further playlists (pids after the MPD's) drawn the same
   way but only from tracks the slices contain, ``challenge // 10`` in each of the RecSys
   Challenge 2018's ten categories (:data:`~segue.data.mpd_split.CATEGORIES`, with their
   length ranges), written as ``challenge_set.json`` in the official schema, beside
   ``answers.json`` (the held-out tracks) and ``tracks.parquet`` (track, artist) in the format
   of :func:`~segue.data.mpd_split.split_mpd`, so ``segue evaluate`` scores a submission.

Examples
--------
>>> import tempfile
>>> from segue.data.readers.mpd import read_mpd
>>> folder = generate_mpd(tempfile.mkdtemp() + "/mpd", 30, 200, seed=1)
>>> read_mpd(folder).n_playlists
30
"""

from __future__ import annotations

import json
import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from segue._atomic import atomic_dir
from segue.exceptions import ParameterError

__all__ = ["MPD_CATALOGUE", "MpdStats", "generate_mpd", "write_mpd"]

SLICE_SIZE = 1000
"""Playlists per slice file, as in the MPD."""

_THEMES: tuple[tuple[str, ...], ...] = (
    ("rock", "classic rock", "rock anthems", "guitar heroes"),
    ("chill", "chill vibes", "relax", "lazy sunday"),
    ("workout", "gym", "running", "cardio"),
    ("country", "country roads", "country hits", "boots"),
    ("hip hop", "rap", "hip hop bangers", "bars"),
    ("party", "party time", "pregame", "turn up"),
    ("throwbacks", "throwback jams", "old school", "nostalgia"),
    ("christmas", "holiday", "xmas", "winter wonderland"),
    ("sleep", "sleepy", "night time", "dreams"),
    ("study", "focus", "homework", "concentration"),
    ("summer", "summer vibes", "beach", "sunshine"),
    ("love", "love songs", "romance", "date night"),
    ("sad", "sad songs", "feels", "heartbreak"),
    ("road trip", "driving", "on the road", "cruise"),
    ("worship", "praise", "gospel", "sunday service"),
    ("edm", "dance", "electronic", "festival"),
    ("jazz", "smooth jazz", "jazz classics", "late night jazz"),
    ("classical", "piano", "orchestra", "strings"),
    ("indie", "indie folk", "indie rock", "alternative"),
    ("90s", "90s hits", "nineties", "90s kid"),
    ("80s", "80s hits", "eighties", "synthwave"),
    ("latin", "reggaeton", "latino", "fiesta"),
    ("metal", "heavy metal", "headbang", "metalcore"),
    ("pop", "pop hits", "top 40", "radio"),
    ("disney", "disney songs", "musicals", "soundtracks"),
    ("wedding", "first dance", "reception", "wedding party"),
    ("blues", "blues rock", "delta blues", "soul"),
    ("reggae", "island vibes", "dub", "roots"),
    ("punk", "pop punk", "skate", "emo"),
    ("acoustic", "unplugged", "coffee shop", "campfire"),
    ("funk", "groove", "disco", "boogie"),
    ("kids", "family", "sing along", "car ride"),
)
_GENERIC_TITLES = ("my playlist", "music", "songs", "favorites", "new playlist", "mix", "good")
_ARTIST_WORDS = (
    "Silver", "Golden", "Midnight", "Electric", "Velvet", "Crimson", "Wild", "Lonely", "Neon",
    "Broken", "Rolling", "Northern", "Paper", "Glass", "Young", "Honey", "Iron", "Lucky",
)  # fmt: skip
_ARTIST_NOUNS = (
    "Wolves", "Rivers", "Hearts", "Kings", "Lights", "Birds", "Ghosts", "Saints", "Tigers",
    "Echoes", "Roses", "Stones", "Waves", "Comets", "Foxes", "Pilots", "Sisters", "Engines",
)  # fmt: skip
_BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "S1")
_FIRST_DAY = 1262304000  # 2010-01-01
_LAST_DAY = 1509408000  # 2017-10-31


MPD_CATALOGUE = 2_900_000
"""Default catalogue: 1M playlists then draw about the MPD's 2.26M distinct tracks."""

# Calibrated (expected counts computed from these arrays) so that 1M playlists give the MPD's
# 2.26M distinct tracks, 296K artists, 735K albums, ~92K distinct titles, and a top track in
# about 5% of the playlists (bench/mpd_shape.py computes them): popularity (rank + 900) ** -1.3.
_POPULARITY_EXPONENT = 1.3
_POPULARITY_OFFSET = 900  # a flat head: the top tracks are about equally frequent
_IN_THEME_SIGMA = 0.3  # a theme's own hits: popularity times a lognormal factor
_NEW_ARTIST = 0.106  # a new artist starts: 296K artists among the 2.26M tracks drawn at 1M
_NEW_ALBUM = 0.277  # a new album starts (an artist's first track always does): 735K albums
_MEDIAN_LENGTH = 47  # lognormal(log 47, 0.9) clipped to 5..250: mean 66.4 (the MPD's: 66.35)
_ARTIST_TITLES = 0.21  # titles naming the first track's artist: the long tail of titles
_GENERIC = 0.08
_CACHE_TRACKS = 400_000  # JSON of this many tracks kept between playlists (popular ones recur)


def _mix(x: np.ndarray, salt: int) -> np.ndarray:
    """SplitMix64's finaliser of ``x ^ salt``: a bijection of uint64 (distinct in, distinct out)."""
    with np.errstate(over="ignore"):
        z = (x ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF)) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _codes(index: np.ndarray, salt: int) -> np.ndarray:
    """22 base-62 characters per index (``S22``); the first 11 encode a bijection of it."""
    halves = []
    for value in (_mix(index.astype(np.uint64), salt), _mix(index.astype(np.uint64), ~salt)):
        digits = np.empty((len(index), 11), dtype=np.uint8)
        for k in range(11):  # 62**11 > 2**64: the first half alone is unique
            digits[:, k] = (value % np.uint64(62)).astype(np.uint8)
            value = value // np.uint64(62)
        halves.append(digits)
    return np.ascontiguousarray(_BASE62[np.hstack(halves)]).view("S22").ravel()


def _artist_name(a: int) -> str:
    words, nouns = len(_ARTIST_WORDS), len(_ARTIST_NOUNS)
    name = f"{_ARTIST_WORDS[a % words]} {_ARTIST_NOUNS[(a // words) % nouns]}"
    return name + (f" {a // (words * nouns) + 1}" if a >= words * nouns else "")


def _styled(rng: np.random.Generator, base: str) -> str:
    style = rng.random()
    if style < 0.4:
        return base.lower()
    if style < 0.75:
        return base.title()
    if style < 0.85:
        return base.upper()
    return f"{base.lower()} {int(rng.integers(2010, 2018))}"


def _check_int(name: str, value: Any, low: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ParameterError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


@dataclass
class MpdStats:
    """What :func:`write_mpd` wrote, counted while writing (the MPD's own statistics' terms)."""

    playlists: int = 0
    entries: int = 0
    tracks: int = 0
    artists: int = 0
    albums: int = 0
    titles: int = 0
    normalized_titles: int = 0
    min_length: int = 0
    max_length: int = 0
    median_length: float = 0.0
    tracks_once: int = 0
    top_track_playlists: int = 0
    challenge_playlists: int = 0
    catalogue: int = 0
    files: list[str] = field(default_factory=list)

    @property
    def mean_length(self) -> float:
        """Entries per playlist."""
        return self.entries / self.playlists if self.playlists else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready numbers (without the file list)."""
        out = {k: v for k, v in vars(self).items() if k != "files"}
        out["mean_length"] = round(self.mean_length, 3)
        return out


class _Codes:
    """The ``S22`` uri codes of ``0 .. n-1``, computed a block at a time when first asked for.

    At most ``22 * n`` bytes (64 MB for 2.9M tracks); a small run touches a few blocks only.
    """

    BLOCK = 1 << 15

    def __init__(self, n: int, salt: int) -> None:
        self.salt = salt
        self.codes = np.zeros(n, dtype="S22")  # zero pages: no memory until written
        self.done = np.zeros((n + self.BLOCK - 1) // self.BLOCK, dtype=bool)

    def __getitem__(self, index: np.ndarray) -> np.ndarray:
        blocks = np.unique(np.asarray(index) // self.BLOCK)
        for b in blocks[~self.done[blocks]].tolist():
            lo, hi = b * self.BLOCK, min(len(self.codes), (b + 1) * self.BLOCK)
            self.codes[lo:hi] = _codes(np.arange(lo, hi), self.salt)
            self.done[b] = True
        return self.codes[index]


class _Catalogue:
    """The tracks: theme, popularity, artist, album, duration, and the draws from them."""

    def __init__(self, rng: np.random.Generator, n_tracks: int, n_themes: int, seed: int) -> None:
        self.n = n_tracks
        self.salt = int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0])
        self.theme_share = rng.dirichlet(np.full(n_themes, 2.0))
        theme_of = rng.choice(n_themes, size=n_tracks, p=self.theme_share).astype(np.int32)
        theme_of[rng.permutation(n_tracks)[:n_themes]] = np.arange(n_themes)  # no empty theme
        # the offset scales with the catalogue: a small one keeps a long-tailed head too
        offset = _POPULARITY_OFFSET * math.sqrt(n_tracks / MPD_CATALOGUE)
        ranks = np.arange(1, n_tracks + 1, dtype=np.float64) + offset
        popularity = ranks**-_POPULARITY_EXPONENT
        del ranks
        in_theme = popularity * rng.lognormal(0.0, _IN_THEME_SIGMA, size=n_tracks)
        self.global_cdf = np.cumsum(popularity)
        self.global_cdf /= self.global_cdf[-1]
        del popularity
        # tracks of a theme in popularity order; artists and albums are runs of them
        order = np.argsort(theme_of, kind="stable").astype(np.int64)
        first_of_theme = np.ones(n_tracks, dtype=bool)
        first_of_theme[1:] = theme_of[order[1:]] != theme_of[order[:-1]]
        new_artist = first_of_theme | (rng.random(n_tracks) < _NEW_ARTIST)
        within = (_NEW_ALBUM - _NEW_ARTIST) / (1 - _NEW_ARTIST)
        new_album = new_artist | (rng.random(n_tracks) < within)
        self.artist_of = np.empty(n_tracks, dtype=np.int32)
        self.album_of = np.empty(n_tracks, dtype=np.int32)
        self.artist_of[order] = np.cumsum(new_artist) - 1
        self.album_of[order] = np.cumsum(new_album) - 1
        self.n_artists = int(self.artist_of.max()) + 1
        self.n_albums = int(self.album_of.max()) + 1
        self.duration = np.clip(
            rng.lognormal(math.log(225_000), 0.3, size=n_tracks), 30_000, 900_000
        ).astype(np.int32)
        # uri codes of tracks, artists and albums, computed in blocks as they are first needed
        self.track_code = _Codes(n_tracks, self.salt)
        self.artist_code = _Codes(self.n_artists, self.salt + 1)
        self.album_code = _Codes(self.n_albums, self.salt + 2)
        bounds = np.flatnonzero(first_of_theme).tolist() + [n_tracks]
        themes = theme_of[order[np.array(bounds[:-1])]]
        self.members: list[np.ndarray] = [np.empty(0, np.int64)] * n_themes
        self.member_cdf: list[np.ndarray] = [np.empty(0)] * n_themes
        for k, lo, hi in zip(themes.tolist(), bounds[:-1], bounds[1:], strict=True):
            members = order[lo:hi]
            cdf = np.cumsum(in_theme[members])
            self.members[k] = members
            self.member_cdf[k] = cdf / cdf[-1]
        self._json: dict[int, str] = {}

    def draw(
        self,
        rng: np.random.Generator,
        theme: int,
        length: int,
        global_share: float,
        allowed: np.ndarray | None = None,
    ) -> list[int]:
        """``length`` distinct tracks (fewer only when the theme runs out), in draw order."""
        chosen: list[int] = []
        seen: set[int] = set()
        members, cdf = self.members[theme], self.member_cdf[theme]
        for _ in range(20):  # draws with repeats, keep first occurrences
            m = 2 * (length - len(chosen)) + 8
            from_global = rng.random(m) < global_share
            u = rng.random(m)
            picks = np.where(
                from_global,
                np.minimum(np.searchsorted(self.global_cdf, u), self.n - 1),
                members[np.minimum(np.searchsorted(cdf, u), len(members) - 1)],
            )
            if allowed is not None:
                picks = picks[allowed[picks]]
            for t in picks.tolist():
                if t not in seen:
                    seen.add(t)
                    chosen.append(t)
                    if len(chosen) == length:
                        return chosen
        return chosen

    def track_json(self, tracks: list[int]) -> list[str]:
        """The JSON fields of each track but ``pos``, in the MPD's order (cached: hits recur)."""
        cache = self._json
        missing = np.array([t for t in dict.fromkeys(tracks) if t not in cache], dtype=np.int64)
        if len(cache) + len(missing) > _CACHE_TRACKS:  # bounded: start again
            cache.clear()
            missing = np.array(list(dict.fromkeys(tracks)), dtype=np.int64)
        if len(missing):
            artists = self.artist_of[missing].tolist()
            albums = self.album_of[missing].tolist()
            track_code = self.track_code[missing].tolist()
            artist_code = self.artist_code[artists].tolist()
            album_code = self.album_code[albums].tolist()
            duration = self.duration[missing].tolist()
            for i, t in enumerate(missing.tolist()):
                cache[t] = (
                    f'"artist_name": "{_artist_name(artists[i])}", '
                    f'"track_uri": "spotify:track:{track_code[i].decode()}", '
                    f'"artist_uri": "spotify:artist:{artist_code[i].decode()}", '
                    f'"track_name": "Track {t + 1}", '
                    f'"album_uri": "spotify:album:{album_code[i].decode()}", '
                    f'"duration_ms": {duration[i]}, "album_name": "Album {albums[i] + 1}"'
                )
        return [cache[t] for t in tracks]

    def uris_of(self, tracks: np.ndarray) -> tuple[list[str], list[str]]:
        """Track and artist uris of ``tracks`` (for ``tracks.parquet`` and the answers)."""
        return (
            [f"spotify:track:{c.decode()}" for c in self.track_code[tracks].tolist()],
            [f"spotify:artist:{c.decode()}" for c in self.artist_code[self.artist_of[tracks]]],
        )


class _Titles:
    """Titles that follow the content: theme words, the first track's artist, or generic."""

    def __init__(self, n_themes: int) -> None:
        self.words = [
            _THEMES[k % len(_THEMES)]
            if k < len(_THEMES)
            else tuple(f"{w} {k // len(_THEMES) + 1}" for w in _THEMES[k % len(_THEMES)])
            for k in range(n_themes)
        ]

    def __call__(self, rng: np.random.Generator, theme: int, first_artist: int | None) -> str:
        u = rng.random()
        if u < _GENERIC:
            return _styled(rng, str(rng.choice(_GENERIC_TITLES)))
        if u < _GENERIC + _ARTIST_TITLES and first_artist is not None:
            name = _artist_name(first_artist)  # "Silver Wolves 12", "chill silver wolves 12"
            if rng.random() < 0.5:
                name = f"{rng.choice(self.words[theme])} {name}"
            return _styled(rng, name)
        return _styled(rng, str(rng.choice(self.words[theme])))


def _length(rng: np.random.Generator, low: int, high: int) -> int:
    return int(np.clip(round(rng.lognormal(math.log(_MEDIAN_LENGTH), 0.9)), low, high))


def _modified_at(rng: np.random.Generator) -> int:
    """A day between 2010 and Oct 2017, recent ones more likely (as playlists are edited)."""
    days_back = min(int(rng.exponential(500.0)), (_LAST_DAY - _FIRST_DAY) // 86400)
    return _LAST_DAY - days_back * 86400


def _playlist_text(
    catalogue: _Catalogue,
    rng: np.random.Generator,
    pid: int,
    name: str,
    tracks: list[int],
    description: str | None,
) -> str:
    body = ", ".join(
        f'{{"pos": {pos}, {text}}}' for pos, text in enumerate(catalogue.track_json(tracks))
    )
    head = {
        "name": name,
        "collaborative": "true" if rng.random() < 0.02 else "false",
        "pid": pid,
        "modified_at": _modified_at(rng),
        "num_tracks": len(tracks),
        "num_albums": len({int(catalogue.album_of[t]) for t in tracks}),
        "num_followers": int(rng.geometric(0.4)),
    }
    tail: dict[str, Any] = {
        "num_edits": int(rng.geometric(0.15)),
        "duration_ms": int(catalogue.duration[tracks].sum()),
        "num_artists": len({int(catalogue.artist_of[t]) for t in tracks}),
    }
    if description is not None:
        tail["description"] = description
    return f'{json.dumps(head)[:-1]}, "tracks": [{body}], {json.dumps(tail)[1:]}'


def write_mpd(
    out_dir: str | os.PathLike[str],
    n_playlists: int = 10_000,
    n_tracks: int | None = None,
    seed: int = 0,
    *,
    n_themes: int | None = None,
    min_tracks: int = 5,
    max_tracks: int = 250,
    challenge: int = 0,
    progress: Any = None,
) -> MpdStats:
    """:func:`generate_mpd`, returning what was written (:class:`MpdStats`).

    ``progress`` (optional) is called with the number of playlists written since the last call.
    """
    from segue.data.mpd_split import ANSWERS_FORMAT, ANSWERS_VERSION, CATEGORIES
    from segue.data.titles import normalize_title

    n_playlists = _check_int("n_playlists", n_playlists, 1)
    n_tracks = MPD_CATALOGUE if n_tracks is None else _check_int("n_tracks", n_tracks, 1)
    min_tracks = _check_int("min_tracks", min_tracks, 1)
    max_tracks = _check_int("max_tracks", max_tracks, min_tracks)
    challenge = _check_int("challenge", challenge, 0)
    if 0 < challenge < len(CATEGORIES):
        raise ParameterError(f"challenge must be 0 or at least {len(CATEGORIES)}, got {challenge}")
    if n_themes is None:
        n_themes = min(len(_THEMES), max(4, n_tracks // 250))
    n_themes = min(_check_int("n_themes", n_themes, 1), n_tracks)
    rng = np.random.default_rng(seed)
    catalogue = _Catalogue(rng, n_tracks, n_themes, seed)
    titles = _Titles(n_themes)
    counts = np.zeros(n_tracks, dtype=np.int32)  # playlists per track: the statistics
    lengths = np.zeros(max_tracks + 2, dtype=np.int64)
    title_set: set[str] = set()
    stats = MpdStats(catalogue=n_tracks)

    def playlist(theme: int, length: int, allowed: np.ndarray | None = None) -> tuple[list, str]:
        chosen = catalogue.draw(rng, theme, min(length, n_tracks), rng.uniform(0.02, 0.15), allowed)
        if allowed is None and 1 < len(chosen) < max_tracks and rng.random() < 0.02:
            repeat = chosen[int(rng.integers(0, len(chosen)))]
            chosen.insert(int(rng.integers(1, len(chosen) + 1)), repeat)
        first = int(catalogue.artist_of[chosen[0]]) if chosen else None
        return chosen, titles(rng, theme, first)

    with atomic_dir(out_dir) as tmp:
        texts: list[str] = []
        for pid in range(n_playlists):
            theme = int(rng.choice(n_themes, p=catalogue.theme_share))
            chosen, name = playlist(theme, _length(rng, min_tracks, max_tracks))
            description = None
            if rng.random() < 0.02:
                description = f"songs for {titles.words[theme][0]}"
            texts.append(_playlist_text(catalogue, rng, pid, name, chosen, description))
            distinct = np.unique(np.asarray(chosen, dtype=np.int64))
            counts[distinct] += 1
            lengths[len(chosen)] += 1
            title_set.add(name)
            if len(texts) == SLICE_SIZE or pid == n_playlists - 1:
                start = pid + 1 - len(texts)
                info = {
                    "generated_on": f"synthetic (segue.data.synthetic.mpd, seed={seed})",
                    "slice": f"{start}-{pid}",
                    "version": "v1",
                }
                file = f"mpd.slice.{start}-{pid}.json"
                with open(tmp / file, "w", encoding="utf-8") as fh:
                    fh.write(f'{{"info": {json.dumps(info)}, "playlists": [')
                    fh.write(",\n".join(texts))
                    fh.write("]}")
                stats.files.append(file)
                if progress is not None:
                    progress(len(texts))
                texts = []
        seen = counts > 0
        stats.playlists = n_playlists
        stats.entries = int((lengths * np.arange(len(lengths))).sum())
        stats.tracks = int(seen.sum())
        stats.artists = int(np.unique(catalogue.artist_of[seen]).size)
        stats.albums = int(np.unique(catalogue.album_of[seen]).size)
        stats.titles = len(title_set)
        stats.normalized_titles = len({normalize_title(t) for t in title_set})
        present = np.flatnonzero(lengths)
        stats.min_length, stats.max_length = int(present[0]), int(present[-1])
        cumulative = np.cumsum(lengths)
        stats.median_length = float(np.searchsorted(cumulative, (n_playlists + 1) / 2))
        stats.tracks_once = int((counts == 1).sum())
        stats.top_track_playlists = int(counts.max())
        del title_set
        if challenge:
            stats.challenge_playlists = _write_challenge(
                tmp, catalogue, rng, playlist, seen, n_playlists, challenge, seed,
                CATEGORIES, ANSWERS_FORMAT, ANSWERS_VERSION,
            )  # fmt: skip
            stats.files += ["challenge_set.json", "answers.json", "tracks.parquet"]
    return stats


def _write_challenge(
    tmp: Path,
    catalogue: _Catalogue,
    rng: np.random.Generator,
    playlist: Any,
    seen: np.ndarray,
    first_pid: int,
    n_challenge: int,
    seed: int,
    categories: Any,
    answers_format: str,
    answers_version: int,
) -> int:
    """Write ``challenge_set.json``, ``answers.json`` and ``tracks.parquet`` (module docstring)."""
    per_category = n_challenge // len(categories)
    entries: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    pid = first_pid
    for category in categories:
        made = tries = 0
        while made < per_category:
            theme = int(rng.choice(len(catalogue.theme_share), p=catalogue.theme_share))
            length = _length(rng, category.min_tracks, category.max_tracks)
            if not category.min_tracks <= length <= category.max_tracks or length < 6:
                length = int(rng.integers(category.min_tracks, category.max_tracks + 1))
            chosen, name = playlist(theme, length, seen)
            if len(chosen) < max(category.min_tracks, category.n_seeds + 1):
                tries += 1  # a theme with too few tracks in the slices: draw another
                if tries > 100 * per_category + 1000:
                    raise ParameterError(
                        f"the slices have too few distinct tracks for challenge category "
                        f"{category.describe()}: generate more playlists or fewer challenges"
                    )
                continue
            n_seeds = category.n_seeds
            if category.random:
                seeds = np.sort(rng.choice(len(chosen), size=n_seeds, replace=False))
            else:
                seeds = np.arange(n_seeds)
            held = np.ones(len(chosen), dtype=bool)
            held[seeds] = False
            texts = catalogue.track_json([chosen[i] for i in seeds.tolist()])
            tracks = [
                json.loads(f'{{"pos": {int(p)}, {text}}}')
                for p, text in zip(seeds.tolist(), texts, strict=True)
            ]
            hidden = [chosen[i] for i in np.flatnonzero(held).tolist()]
            entry: dict[str, Any] = {"pid": pid}
            if category.title:
                entry["name"] = name
            entry.update(
                {
                    "num_holdouts": len(hidden),
                    "num_samples": n_seeds,
                    "num_tracks": len(chosen),
                    "tracks": tracks,
                }
            )
            entries.append(entry)
            answers.append(
                {
                    "pid": pid,
                    "category": category.number,
                    "category_name": category.name,
                    "num_samples": n_seeds,
                    "num_holdouts": len(hidden),
                    "tracks": catalogue.uris_of(np.asarray(hidden, dtype=np.int64))[0],
                }
            )
            pid += 1
            made += 1
    challenge_doc = {
        "date": "synthetic",
        "version": "v1",
        "name": "challenge_set",
        "description": (
            f"synthetic challenge set made by segue.data.synthetic.mpd (seed={seed}, "
            f"{per_category} playlists in each of the {len(categories)} RecSys Challenge 2018 "
            "categories; every track is in the slices)"
        ),
        "playlists": entries,
    }
    (tmp / "challenge_set.json").write_text(json.dumps(challenge_doc) + "\n", encoding="utf-8")
    answers_doc = {
        "format": answers_format,
        "version": answers_version,
        "seed": int(seed),
        "unseen": "avoid",
        "playlists": answers,
    }
    (tmp / "answers.json").write_text(json.dumps(answers_doc) + "\n", encoding="utf-8")
    in_slices = np.flatnonzero(seen)
    track_uri, artist_uri = catalogue.uris_of(in_slices)
    table = pa.table({"track": pa.array(track_uri), "artist": pa.array(artist_uri)})
    pq.write_table(table, tmp / "tracks.parquet", compression="zstd")
    return len(entries)


def generate_mpd(
    out_dir: str | os.PathLike[str],
    n_playlists: int = 10_000,
    n_tracks: int | None = None,
    seed: int = 0,
    *,
    n_themes: int | None = None,
    min_tracks: int = 5,
    max_tracks: int = 250,
    challenge: int = 0,
) -> Path:
    """Write synthetic playlists as MPD slice files into ``out_dir`` (see the module docstring).

    Parameters
    ----------
    out_dir
        Folder to create (replaced atomically if it exists); it receives
        ``mpd.slice.0-999.json``, ``mpd.slice.1000-1999.json``, ... (the last slice may hold
        fewer playlists and is named after its real last pid).
    n_playlists, n_tracks
        Number of playlists (pids ``0 .. n_playlists - 1``) and size of the track catalogue
        (default :data:`MPD_CATALOGUE`; tracks that no playlist draws do not appear, as in
        the MPD).
    seed
        Seed of the random generator: the same arguments write the same bytes.
    n_themes
        Number of themes; by default ``n_tracks // 250`` clipped to ``[4, 32]``.
    min_tracks, max_tracks
        Bounds of the playlist lengths (the MPD's are 5 and 250).
    challenge
        Also write a challenge set of this many playlists (``challenge // 10`` per category;
        the official one has 10,000) with its answers; 0: none.

    Returns
    -------
    Path
        ``out_dir``.
    """
    write_mpd(
        out_dir,
        n_playlists,
        n_tracks,
        seed,
        n_themes=n_themes,
        min_tracks=min_tracks,
        max_tracks=max_tracks,
        challenge=challenge,
    )
    return Path(out_dir)
