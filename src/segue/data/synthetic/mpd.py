"""Synthetic playlists in the exact file format of the Spotify Million Playlist Dataset.

The real MPD cannot be shipped (its license forbids redistribution), yet the demo, the tests of
the MPD split and the playlist models need MPD-shaped input with the properties that matter for
playlist continuation. :func:`generate_mpd` writes official-format slice files
(``mpd.slice.0-999.json``, ...: ``{"info": ..., "playlists": [...]}`` with every field of the
original schema) that :func:`segue.data.readers.mpd.read_mpd` and
:func:`segue.data.mpd_split.split_mpd` read like the real thing.

How the data are made (one :func:`numpy.random.default_rng` seeded with ``seed``, so a seed
always gives the same bytes):

1. **Themes.** There are ``n_themes`` themes (by default about one per 250 tracks, between 4 and
   the 32 built-in ones: "rock", "chill", "workout", "country", ...). Theme sizes are uneven
   (Dirichlet with concentration 2).
2. **Tracks.** Every track belongs to one theme and has a global popularity that follows a
   power law (rank ``r`` weighs ``r ** -0.9``, ranks shuffled). Inside its theme its weight is
   that popularity to the power 0.8 times a lognormal factor, so each theme has its own hits.
   Tracks are grouped into artists (1-12 tracks each, inside one theme) and albums (1-6 tracks
   of one artist), with ``spotify:track:``/``spotify:artist:``/``spotify:album:`` uris of 22
   base-62 characters, names and durations.
3. **Playlists.** A playlist picks a theme (in proportion to its size), a length (lognormal
   with median 45, clipped to ``[min_tracks, max_tracks]``, 5 and 250 as in the MPD) and draws
   its tracks without repeats: most from its theme, a playlist-specific share (2-30 %) from
   global popularity. About 2 % of playlists repeat one track, as real ones sometimes do.
4. **Titles correlate with content.** 90 % of titles are a variant of the theme's words
   ("Chill Vibes", "chill", "CHILL 2017"), the rest generic ("my playlist", "music"), so
   title-only recommendation has signal but is not trivial.
5. **Other fields** as in the MPD: ``collaborative`` (the strings ``"true"``/``"false"``),
   ``modified_at`` (a day between 2010 and Oct 2017), ``num_followers``, ``num_edits``,
   ``num_albums``, ``num_artists``, ``duration_ms`` and, for 2 %, a ``description``.

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
from pathlib import Path
from typing import Any

import numpy as np

from segue._atomic import atomic_dir
from segue.exceptions import ParameterError

__all__ = ["generate_mpd"]

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
_BASE62 = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
_FIRST_DAY = 1262304000  # 2010-01-01
_LAST_DAY = 1509408000  # 2017-10-31


def _uris(rng: np.random.Generator, kind: str, n: int) -> list[str]:
    """``n`` distinct ``spotify:KIND:`` uris of 22 random base-62 characters."""
    chars = _BASE62[rng.integers(0, 62, size=(n, 22))]
    ids = ["".join(row) for row in chars]
    if len(set(ids)) != n:  # 62**22 values: never in practice, but stay correct
        raise ParameterError("uri collision; use another seed")
    return [f"spotify:{kind}:{i}" for i in ids]


def _chunks(rng: np.random.Generator, n: int, largest: int) -> np.ndarray:
    """Group labels 0, 0, 1, 1, 1, 2, ... for ``n`` items in runs of 1..``largest``."""
    sizes = rng.integers(1, largest + 1, size=n)
    return np.repeat(np.arange(n), sizes)[:n]


def _title(rng: np.random.Generator, words: tuple[str, ...]) -> str:
    if rng.random() < 0.1:
        base = str(rng.choice(_GENERIC_TITLES))
    else:
        base = str(rng.choice(words))
    style = rng.random()
    if style < 0.4:
        return base
    if style < 0.75:
        return base.title()
    if style < 0.85:
        return base.upper()
    return f"{base} {int(rng.integers(2010, 2018))}"


def _check_int(name: str, value: Any, low: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ParameterError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def generate_mpd(
    out_dir: str | os.PathLike[str],
    n_playlists: int = 10_000,
    n_tracks: int = 20_000,
    seed: int = 0,
    *,
    n_themes: int | None = None,
    min_tracks: int = 5,
    max_tracks: int = 250,
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
        (tracks that no playlist draws do not appear, as in the MPD).
    seed
        Seed of the random generator: the same arguments write the same bytes.
    n_themes
        Number of themes; by default ``n_tracks // 250`` clipped to ``[4, 32]``.
    min_tracks, max_tracks
        Bounds of the playlist lengths (the MPD's are 5 and 250).

    Returns
    -------
    Path
        ``out_dir``.
    """
    n_playlists = _check_int("n_playlists", n_playlists, 1)
    n_tracks = _check_int("n_tracks", n_tracks, 1)
    min_tracks = _check_int("min_tracks", min_tracks, 1)
    max_tracks = _check_int("max_tracks", max_tracks, min_tracks)
    if n_themes is None:
        n_themes = min(len(_THEMES), max(4, n_tracks // 250))
    n_themes = _check_int("n_themes", n_themes, 1)
    n_themes = min(n_themes, n_tracks)
    rng = np.random.default_rng(seed)

    # tracks: theme, popularity, artists, albums, metadata
    theme_share = rng.dirichlet(np.full(n_themes, 2.0))
    theme_of = rng.choice(n_themes, size=n_tracks, p=theme_share)
    theme_of[rng.permutation(n_tracks)[:n_themes]] = np.arange(n_themes)  # no empty theme
    popularity = np.arange(1, n_tracks + 1, dtype=np.float64) ** -0.9
    popularity = popularity[rng.permutation(n_tracks)]
    in_theme = popularity**0.8 * rng.lognormal(0.0, 1.0, size=n_tracks)
    order = np.argsort(theme_of, kind="stable")  # tracks of a theme are contiguous here
    artist_of = np.empty(n_tracks, dtype=np.int64)
    album_of = np.empty(n_tracks, dtype=np.int64)
    n_artists = n_albums = 0
    for theme in range(n_themes):
        members = order[theme_of[order] == theme]
        artists = _chunks(rng, len(members), 12)
        artist_of[members] = artists + n_artists
        n_artists += int(artists.max()) + 1
        # albums: runs inside each artist
        for artist in np.unique(artists):
            tracks = members[artists == artist]
            albums = _chunks(rng, len(tracks), 6)
            album_of[tracks] = albums + n_albums
            n_albums += int(albums.max()) + 1
    track_uri = _uris(rng, "track", n_tracks)
    artist_uri = _uris(rng, "artist", n_artists)
    album_uri = _uris(rng, "album", n_albums)
    words, nouns = len(_ARTIST_WORDS), len(_ARTIST_NOUNS)
    artist_name = [
        f"{_ARTIST_WORDS[a % words]} {_ARTIST_NOUNS[(a // words) % nouns]}"
        + (f" {a // (words * nouns) + 1}" if a >= words * nouns else "")
        for a in range(n_artists)
    ]
    duration = rng.integers(90_000, 420_000, size=n_tracks)
    track_objects = [
        {
            "artist_name": artist_name[artist_of[t]],
            "track_uri": track_uri[t],
            "artist_uri": artist_uri[artist_of[t]],
            "track_name": f"Track {t + 1}",
            "album_uri": album_uri[album_of[t]],
            "duration_ms": int(duration[t]),
            "album_name": f"Album {album_of[t] + 1}",
        }
        for t in range(n_tracks)
    ]
    theme_tracks = [np.flatnonzero(theme_of == k) for k in range(n_themes)]
    theme_cdf = [np.cumsum(in_theme[m]) / in_theme[m].sum() for m in theme_tracks]
    global_cdf = np.cumsum(popularity) / popularity.sum()
    theme_words = [
        _THEMES[k % len(_THEMES)]
        if k < len(_THEMES)
        else tuple(f"{w} {k // len(_THEMES) + 1}" for w in _THEMES[k % len(_THEMES)])
        for k in range(n_themes)
    ]

    playlists: list[dict[str, Any]] = []
    with atomic_dir(out_dir) as tmp:
        for pid in range(n_playlists):
            theme = int(rng.choice(n_themes, p=theme_share))
            length = int(np.clip(round(rng.lognormal(math.log(45), 0.9)), min_tracks, max_tracks))
            length = min(length, n_tracks)
            global_share = rng.uniform(0.02, 0.3)
            chosen: list[int] = []
            seen: set[int] = set()
            for _ in range(20):  # draws with repeats, keep first occurrences
                m = 2 * (length - len(chosen)) + 8
                from_global = rng.random(m) < global_share
                u = rng.random(m)
                members = theme_tracks[theme]
                picks = np.where(
                    from_global,
                    np.minimum(np.searchsorted(global_cdf, u), n_tracks - 1),
                    members[np.minimum(np.searchsorted(theme_cdf[theme], u), len(members) - 1)],
                )
                for t in picks.tolist():
                    if t not in seen:
                        seen.add(t)
                        chosen.append(t)
                        if len(chosen) == length:
                            break
                if len(chosen) == length:
                    break
            if len(chosen) > 1 and len(chosen) < max_tracks and rng.random() < 0.02:
                repeat = chosen[int(rng.integers(0, len(chosen)))]
                chosen.insert(int(rng.integers(1, len(chosen) + 1)), repeat)
            tracks = [{"pos": pos, **track_objects[t]} for pos, t in enumerate(chosen)]
            playlist: dict[str, Any] = {
                "name": _title(rng, theme_words[theme]),
                "collaborative": "true" if rng.random() < 0.02 else "false",
                "pid": pid,
                "modified_at": int(rng.integers(_FIRST_DAY // 86400, _LAST_DAY // 86400 + 1))
                * 86400,
                "num_tracks": len(tracks),
                "num_albums": len({album_of[t] for t in chosen}),
                "num_followers": int(rng.geometric(0.4)),
            }
            if rng.random() < 0.02:
                playlist["description"] = f"songs for {theme_words[theme][0]}"
            playlist.update(
                {
                    "tracks": tracks,
                    "num_edits": int(rng.geometric(0.15)),
                    "duration_ms": int(sum(int(duration[t]) for t in chosen)),
                    "num_artists": len({artist_of[t] for t in chosen}),
                }
            )
            playlists.append(playlist)
            if len(playlists) == SLICE_SIZE or pid == n_playlists - 1:
                start = pid + 1 - len(playlists)
                info = {
                    "generated_on": f"synthetic (segue.data.synthetic.mpd, seed={seed})",
                    "slice": f"{start}-{pid}",
                    "version": "v1",
                }
                text = json.dumps({"info": info, "playlists": playlists})
                (tmp / f"mpd.slice.{start}-{pid}.json").write_text(text, encoding="utf-8")
                playlists = []
    return Path(out_dir)
