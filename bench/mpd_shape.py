"""Expected statistics of ``segue generate mpd`` at any size, from the generator's own arrays.

Generating 1M playlists takes a quiet machine a long while; the shape at 1M can be computed
instead. The catalogue of :mod:`segue.data.synthetic.mpd` (seed 0) gives every track's
probability per draw, ``p_t = (1 - g) * q_t + g * pi_t`` (``q_t``: its weight in its theme times
the theme's share, ``pi_t``: global popularity, ``g``: the mean global share); with ``D = N *
mean length`` draws a track appears with probability ``1 - exp(-D p_t)`` (Poisson), an artist or
an album when one of its tracks does. Titles are simulated: ``N`` playlists' theme, first track
and title kind and style, drawn as the generator draws them, counted as distinct strings.

These are expectations (draws within a playlist are without repeats, which adds a little), to
be set beside the statistics that ``segue generate mpd`` prints for the sizes actually run.

    .venv/bin/python bench/mpd_shape.py --sizes 10000,100000,300000,1000000
"""

from __future__ import annotations

import argparse

import numpy as np

from segue.data.synthetic import mpd as gen


def expected(sizes: list[int], seed: int = 0) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    cat = gen._Catalogue(rng, gen.MPD_CATALOGUE, len(gen._THEMES), seed)
    n = cat.n
    pi = np.diff(cat.global_cdf, prepend=0.0)
    q = np.zeros(n)
    for k, (members, cdf) in enumerate(zip(cat.members, cat.member_cdf, strict=True)):
        q[members] = np.diff(cdf, prepend=0.0) * cat.theme_share[k]
    g = (0.02 + 0.15) / 2  # rng.uniform(0.02, 0.15) per playlist
    p = (1 - g) * q + g * pi
    lengths = np.clip(np.round(rng.lognormal(np.log(gen._MEDIAN_LENGTH), 0.9, 2_000_000)), 5, 250)
    mean_length = float(lengths.mean())
    rows = []
    for size in sizes:
        seen = -np.expm1(-size * mean_length * p)
        log_miss = np.log1p(-np.minimum(seen, 1 - 1e-15))
        artists = -np.expm1(np.bincount(cat.artist_of, weights=log_miss)).sum()
        albums = -np.expm1(np.bincount(cat.album_of, weights=log_miss)).sum()
        rows.append(
            {
                "playlists": size,
                "entries": size * mean_length,
                "tracks": seen.sum(),
                "artists": artists,
                "albums": albums,
                "titles": _titles(cat, p, q, pi, g, size, rng),
                "top_track_playlists": size * mean_length * p.max(),
            }
        )
    return rows


def _titles(cat, p, q, pi, g, size, rng) -> int:
    """Distinct titles of ``size`` simulated playlists (the generator's title rules)."""
    n_themes = len(cat.theme_share)
    theme = rng.choice(n_themes, size=size, p=cat.theme_share)
    first = np.empty(size, dtype=np.int64)
    from_global = rng.random(size) < g
    u = rng.random(size)
    first[from_global] = np.minimum(np.searchsorted(cat.global_cdf, u[from_global]), cat.n - 1)
    for k in range(n_themes):
        at = ~from_global & (theme == k)
        members, cdf = cat.members[k], cat.member_cdf[k]
        first[at] = members[np.minimum(np.searchsorted(cdf, u[at]), len(members) - 1)]
    kind = rng.random(size)
    word = rng.integers(0, 4, size)
    generic = rng.integers(0, len(gen._GENERIC_TITLES), size)
    with_word = rng.random(size) < 0.5
    style = np.searchsorted([0.4, 0.75, 0.85], rng.random(size))
    year = np.where(style == 3, rng.integers(2010, 2018, size), 0)
    is_generic = kind < gen._GENERIC
    is_artist = ~is_generic & (kind < gen._GENERIC + gen._ARTIST_TITLES)
    key = np.where(
        is_generic,
        generic,
        np.where(is_artist, cat.artist_of[first] * 200 + with_word * (1 + theme * 4 + word), 0),
    )
    key = np.where(~is_generic & ~is_artist, theme * 4 + word, key)
    # artists named with a theme word keep theme and word; the others only the artist
    table = np.stack([is_generic * 1 + is_artist * 2, key, style, year], axis=1)
    return len(np.unique(table, axis=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,300000,1000000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = expected(sizes)
    cols = ["playlists", "entries", "tracks", "artists", "albums", "titles", "top_track_playlists"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{r[c]:,.0f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
