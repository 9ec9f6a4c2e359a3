"""Second-stage features of every (query, candidate) pair, built without a loop over pairs.

Why: the re-ranker can only beat its sources with information they do not use: how many seed
tracks share the candidate's artist or album, whether the candidate co-occurs with the *last*
seeds (playlists drift), how the title's words relate to it, and how popular it and the seeds
are. Everything here is array arithmetic over the candidate columns (NumPy, scipy.sparse), in
batches of queries; the only Python loops run over sources, features and query batches.

Feature groups (:func:`build_features` returns them in this order, names in ``FeatureMatrix``):

- per source ``s``: ``s__score``, ``s__rank`` (NaN where ``s`` did not retrieve the pair),
  ``s__score_rel`` (score divided by the query's best score of that source);
  ``n_sources`` (how many sources retrieved it), ``rrf`` (the merge's weighted reciprocal rank
  fusion score);
- query: ``q_len`` (seed tracks), ``q_artists`` (distinct seed artists), ``q_title`` (title
  present), ``q_pop_mean`` / ``q_pop_min`` / ``q_pop_max`` (``log1p`` of the seeds' playlist
  counts; NaN without seeds);
- candidate: ``c_pop`` (``log1p`` playlists holding it), ``c_occurrences`` (``log1p`` entries,
  repeats counted), ``c_artist_pop`` / ``c_album_pop`` (``log1p`` playlist-entries of its
  artist's / album's tracks; NaN when unknown), ``c_recent_pop`` (``log1p`` of its playlists
  weighted by recency, where playlists have dates: see :func:`recent_popularity`), ``c_year``
  (release year, Melon ``issue_date``; NaN when unknown);
- pair: ``p_same_artist`` / ``p_same_album`` (seed tracks sharing them) and
  ``p_same_artist_frac`` (the same over ``q_len``), ``p_co_last`` (sum over the last
  ``last_k`` seeds of the training playlists holding both), ``p_co_last_rel`` (that over the
  candidate's playlist count), ``p_co_all`` (the same over all seeds), ``p_title_words``
  (``sum_w P(candidate | title word w)`` over the query's title words), ``p_title_exact``
  (``P(candidate | whole normalised title)``), ``p_tags`` (``sum_t P(candidate | tag t)`` over
  the query's given tags, Melon); ``p_same_genre`` / ``p_same_genre_frac`` (seed songs of the
  candidate's first genre), ``p_year_diff`` (its release year minus the seeds' mean year),
  ``p_after_update`` (1 when it was released after the query playlist was last updated, which
  a real playlist cannot hold; NaN when either date is unknown).

Query columns also count the given tags (``q_tags``). Columns a dataset has no data for (genres
and dates on the MPD sample) are NaN or constant, which LightGBM ignores. The same features
rank tag candidates (Melon's tag ranker): track-only columns are then missing.

Metadata is optional input. Without it (Melon playlists read without ``song_meta.json``, MPD
tracks without artist or album fields) every feature is still computed: the candidate columns
``c_artist_pop``, ``c_album_pop`` and ``c_year`` are NaN (unknown), the count columns
``q_artists``, ``p_same_artist``, ``p_same_album``, ``p_same_genre`` and their ``_frac``
versions are 0 (no seed shares what nothing has), and ``p_year_diff`` / ``p_after_update``
are NaN.

Co-occurrence with a set of tracks is ``profile @ M`` where ``profile = seeds @ M.T`` counts, per
training playlist, how many of the tracks it holds: computed as ``M.T @ profile.T`` (sparse times
dense) for a batch of queries, then read at the batch's pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue.data.kinds import ItemKind
from segue.data.playlists import Playlists
from segue.data.vocab import IdMap
from segue.ranking.candidates import RRF_K, CandidateSet

__all__ = ["FeatureContext", "FeatureMatrix", "build_features", "recent_popularity"]

QUERY_BATCH = 128
"""Queries whose co-occurrence columns are computed at once (``n_items * 128`` floats)."""


def _codes(values: pd.Series) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes.astype(np.int32), len(uniques)


def recent_popularity(
    train: Playlists, matrix: sp.csr_array, half_life_days: float | None
) -> np.ndarray:
    """Playlists holding each item, each weighted ``0.5 ** (age / half_life_days)``.

    ``age`` is how long before the newest training playlist a playlist was last changed
    (:meth:`Playlists.dates`); a playlist without a date weighs nothing. ``half_life_days``
    ``None``, or no dates at all, gives the plain playlist count. ``matrix`` rows follow
    ``train.playlists``.
    """
    matrix = sp.csr_array(matrix)
    dates = train.dates()
    if half_life_days is None or dates is None:
        return np.bincount(matrix.indices, minlength=matrix.shape[1]).astype(np.float32)
    known = ~np.isnat(dates)
    age = np.zeros(len(dates))
    age[known] = (dates[known].max() - dates[known]) / np.timedelta64(1, "D")
    weight = np.where(known, 0.5 ** (age / half_life_days), 0.0)
    binary = sp.csr_array((np.ones_like(matrix.data), matrix.indices, matrix.indptr), matrix.shape)
    return np.asarray(binary.T @ weight, dtype=np.float32)


def _ymd(dates: np.ndarray) -> np.ndarray:
    """``yyyymmdd`` integers of ``datetime64`` values (0 for NaT)."""
    out = np.zeros(len(dates), dtype=np.int64)
    known = ~np.isnat(dates)
    days = dates[known].astype("datetime64[D]")
    years = days.astype("datetime64[Y]")
    months = days.astype("datetime64[M]")
    out[known] = (
        (years.astype(np.int64) + 1970) * 10000
        + (months - years).astype(np.int64) * 100
        + 100
        + (days - months).astype(np.int64)
        + 1
    )
    return out


@dataclass
class FeatureContext:
    """What the features need to know about the training playlists, over the models' items.

    Attributes
    ----------
    matrix
        ``(n_playlists, n_items)`` binary CSR: training playlists x items (tracks and title
        columns), the first-stage models' training matrix.
    item_pop
        Playlists holding each item (float32).
    item_occ
        Entries of each item, repeats counted (float32).
    item_artist, item_album
        Artist / album code of each item, ``-1`` when unknown or not a track (int32).
    artist_pop, album_pop
        Entries per artist / album code (float32).
    title_word, title_whole, tag
        Boolean masks of the title-word, whole-title and tag columns.
    item_recent_pop
        Recency-weighted playlist count (:func:`recent_popularity`; ``item_pop`` without dates).
    item_genre, genre_pop
        First genre code of each item (``-1``: unknown) and entries per genre code.
    item_issue
        Release date as ``yyyymmdd`` (int64, ``0``: unknown; months and days may be ``00``).
    """

    matrix: sp.csr_array
    item_pop: np.ndarray
    item_occ: np.ndarray
    item_artist: np.ndarray
    item_album: np.ndarray
    artist_pop: np.ndarray
    album_pop: np.ndarray
    title_word: np.ndarray
    title_whole: np.ndarray
    tag: np.ndarray
    item_recent_pop: np.ndarray
    item_genre: np.ndarray
    genre_pop: np.ndarray
    item_issue: np.ndarray

    @classmethod
    def build(
        cls,
        train: Playlists,
        matrix: sp.csr_array,
        items: IdMap,
        *,
        half_life_days: float | None = None,
    ) -> FeatureContext:
        """From the training playlists and the models' ``(playlists x items)`` matrix.

        ``matrix`` rows follow ``train.playlists``; ``half_life_days`` is for
        :func:`recent_popularity`.
        """
        matrix = sp.csr_array(matrix, dtype=np.float32)
        n_items = len(items)
        item_pop = np.bincount(matrix.indices, minlength=n_items).astype(np.float32)
        idx = items.numbers(train.entries["track"], missing="negative")
        item_occ = np.bincount(idx[idx >= 0], minlength=n_items).astype(np.float32)
        tracks = train.tracks
        t_idx = items.numbers(tracks["track"], missing="negative")
        known = t_idx >= 0
        arrays = {}
        for col in ("artist", "album", "genre"):
            code_of = np.full(n_items, -1, dtype=np.int32)
            n_codes = 0
            values = tracks[col] if col in tracks.columns else None
            if col == "genre" and "genres" in tracks.columns:  # Melon: a list, main one first
                values = tracks["genres"].str[0]
            if values is not None:
                codes, n_codes = _codes(values)
                code_of[t_idx[known]] = codes[known]
            has = code_of >= 0
            pop = np.bincount(code_of[has], weights=item_occ[has], minlength=n_codes)
            arrays[col] = (code_of, pop.astype(np.float32))
        kinds = items.kinds
        word = kinds == ItemKind.TITLE_WORD
        whole = kinds == ItemKind.TITLE
        tag = kinds == ItemKind.TAG
        issue = np.zeros(n_items, dtype=np.int64)
        if "issue_date" in tracks.columns:
            raw = pd.to_numeric(tracks["issue_date"], errors="coerce").fillna(0)
            issue[t_idx[known]] = raw.to_numpy(np.int64)[known]
        return cls(
            matrix=matrix,
            item_pop=item_pop,
            item_occ=item_occ,
            item_artist=arrays["artist"][0],
            item_album=arrays["album"][0],
            artist_pop=arrays["artist"][1],
            album_pop=arrays["album"][1],
            title_word=word,
            title_whole=whole,
            tag=tag,
            item_recent_pop=recent_popularity(train, matrix, half_life_days),
            item_genre=arrays["genre"][0],
            genre_pop=arrays["genre"][1],
            item_issue=issue,
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for ``np.savez`` (no object dtype)."""
        m = self.matrix
        out = {f"matrix.{p}": np.asarray(getattr(m, p)) for p in ("data", "indices", "indptr")}
        out["matrix.shape"] = np.asarray(m.shape, dtype=np.int64)
        for name in (
            "item_pop",
            "item_occ",
            "item_artist",
            "item_album",
            "artist_pop",
            "album_pop",
            "title_word",
            "title_whole",
            "tag",
            "item_recent_pop",
            "item_genre",
            "genre_pop",
            "item_issue",
        ):
            out[name] = getattr(self, name)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> FeatureContext:
        """Inverse of :meth:`to_arrays`."""
        shape = tuple(int(x) for x in arrays["matrix.shape"])
        matrix = sp.csr_array(
            (arrays["matrix.data"], arrays["matrix.indices"], arrays["matrix.indptr"]),
            shape=shape,
        )
        rest = {k: v for k, v in arrays.items() if not k.startswith("matrix.")}
        return cls(matrix=matrix, **rest)


@dataclass(frozen=True)
class FeatureMatrix:
    """``values``: ``(n_pairs, n_features)`` float32 (NaN = missing); ``names``: its columns."""

    values: np.ndarray
    names: list[str]

    def frame(self) -> pd.DataFrame:
        """As a DataFrame, for inspection."""
        return pd.DataFrame(self.values, columns=self.names)


def _gather(m: sp.csr_array, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``m[rows[i], cols[i]]`` for every i (0 where not stored; ``cols < 0`` gives 0)."""
    m = sp.csr_array(m)
    m.sum_duplicates()
    n_cols = m.shape[1]
    entry_rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    keys = entry_rows * n_cols + m.indices  # sorted: csr rows, then sorted indices
    out = np.zeros(len(rows), dtype=np.float32)
    if not len(keys):
        return out
    want = rows.astype(np.int64) * n_cols + np.maximum(cols, 0)
    pos = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    hit = (keys[pos] == want) & (cols >= 0)
    out[hit] = m.data[pos[hit]]
    return out


def _cooccurrence(
    profiles: list[sp.csr_array], matrix_t: sp.csr_array, query: np.ndarray, item: np.ndarray
) -> list[np.ndarray]:
    """``(profile @ M)[query, item]`` for each ``(n_queries, n_playlists)`` profile."""
    n_q = profiles[0].shape[0]
    starts = np.searchsorted(query, np.arange(n_q + 1))
    out = [np.zeros(len(query), dtype=np.float32) for _ in profiles]
    for lo in range(0, n_q, QUERY_BATCH):
        hi = min(n_q, lo + QUERY_BATCH)
        a, b = starts[lo], starts[hi]
        if a == b:
            continue
        q_local = query[a:b] - lo
        for j, profile in enumerate(profiles):
            block = profile[lo:hi]
            if block.nnz == 0:
                continue
            dense = matrix_t @ block.T.toarray()  # (n_items, batch)
            out[j][a:b] = dense[item[a:b], q_local]
    return out


def _last_seeds(queries: Playlists, items: IdMap, pids: np.ndarray, last_k: int) -> sp.csr_array:
    """``(n_queries, n_items)`` binary CSR of each query's last ``last_k`` seeds by ``pos``."""
    entries = queries.entries.sort_values(["pid", "pos"], kind="stable")
    rank_from_end = entries.groupby("pid", sort=False).cumcount(ascending=False).to_numpy()
    last = entries[rank_from_end < last_k]
    row = IdMap(pids, kind="playlist").numbers(last["pid"].to_numpy(), missing="negative")
    col = items.numbers(last["track"], missing="negative")
    keep = (row >= 0) & (col >= 0)
    m = sp.csr_array(
        (np.ones(int(keep.sum()), np.float32), (row[keep], col[keep])),
        shape=(len(pids), len(items)),
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def _after_update(
    queries: Playlists, pids: np.ndarray, issue: np.ndarray, q: np.ndarray, it: np.ndarray
) -> np.ndarray:
    """1 where the candidate was released after its query was last updated (NaN: unknown)."""
    out = np.full(len(q), np.nan, dtype=np.float32)
    dates = queries.dates()
    if dates is None:
        return out
    by_pid = pd.Series(_ymd(dates), index=queries.playlists["pid"].to_numpy())
    updated = by_pid[~by_pid.index.duplicated()].reindex(pids).fillna(0).to_numpy(np.int64)
    released = issue[it]
    known = (updated[q] > 0) & (released > 0)
    out[known] = released[known] > updated[q][known]
    return out


def _log_pop(pop: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """``log1p(pop[code])`` per pair; NaN where the code is unknown (``-1``) or out of ``pop``.

    Without metadata (a Melon file read without ``song_meta.json``) there are no codes at all
    and ``pop`` is empty: every pair is NaN then, never an index error.
    """
    out = np.full(len(codes), np.nan, dtype=np.float32)
    known = (codes >= 0) & (codes < len(pop))
    out[known] = np.log1p(pop[codes[known]])
    return out


def _row_stats(m: sp.csr_array, values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per row of binary ``m``: mean, min and max of ``values`` over its columns (NaN if none)."""
    n = m.shape[0]
    rows = np.repeat(np.arange(n), np.diff(m.indptr))
    v = values[m.indices].astype(np.float64)
    count = np.bincount(rows, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(rows, weights=v, minlength=n) / count
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    np.minimum.at(lo, rows, v)
    np.maximum.at(hi, rows, v)
    lo[count == 0] = np.nan
    hi[count == 0] = np.nan
    return mean, lo, hi


def build_features(
    candidates: CandidateSet, queries: Playlists, context: FeatureContext, *, last_k: int = 5
) -> FeatureMatrix:
    """The features of every pair of ``candidates`` (see the module docstring).

    Parameters
    ----------
    candidates
        From :func:`~segue.ranking.candidates.retrieve_candidates` on ``queries``.
    queries
        The playlists continued (their entries' ``pos`` decides the last seeds).
    context
        Built from the training playlists of the first-stage models.
    last_k
        Seeds counted as "last" for ``p_co_last``.
    """
    q, it = candidates.query.astype(np.int64), candidates.item.astype(np.int64)
    n_q = len(candidates.pids)
    hist = sp.csr_array(candidates.history, dtype=np.float32)
    ctx = context
    is_track = ~(ctx.title_word | ctx.title_whole | ctx.tag)
    cols: dict[str, np.ndarray] = {}

    # per-source columns
    for j, name in enumerate(candidates.sources):
        score = candidates.score[:, j]
        cols[f"{name}__score"] = score
        cols[f"{name}__rank"] = candidates.rank[:, j]
        best = np.full(n_q, np.nan, dtype=np.float32)
        ok = ~np.isnan(score)
        np.fmax.at(best, q[ok], score[ok])
        with np.errstate(invalid="ignore", divide="ignore"):
            cols[f"{name}__score_rel"] = score / best[q]
    cols["n_sources"] = np.sum(~np.isnan(candidates.rank), axis=1).astype(np.float32)
    weights = np.ones(len(candidates.sources)) if candidates.weights is None else candidates.weights
    cols["rrf"] = np.nansum(weights / (RRF_K + candidates.rank), axis=1).astype(np.float32)

    # query columns
    seeds = sp.csr_array(hist[:, np.flatnonzero(is_track)])
    seed_cols = np.flatnonzero(is_track)
    seeds = sp.csr_array(
        (np.ones(seeds.nnz, np.float32), seed_cols[seeds.indices], seeds.indptr),
        shape=hist.shape,
    )
    q_len = np.diff(seeds.indptr).astype(np.float32)
    seed_rows = np.repeat(np.arange(n_q), np.diff(seeds.indptr))
    seed_art = ctx.item_artist[seeds.indices]
    n_art = int(ctx.artist_pop.shape[0])
    art_counts = sp.csr_array(
        (
            np.ones(int((seed_art >= 0).sum()), np.float32),
            (seed_rows[seed_art >= 0], seed_art[seed_art >= 0]),
        ),
        shape=(n_q, max(n_art, 1)),
    )
    art_counts.sum_duplicates()
    q_artists = np.diff(art_counts.indptr).astype(np.float32)
    title_cols = ctx.title_word | ctx.title_whole
    q_title = (np.diff(sp.csr_array(hist[:, np.flatnonzero(title_cols)]).indptr) > 0).astype(
        np.float32
    )
    mean, lo, hi = _row_stats(seeds, np.log1p(ctx.item_pop))
    q_tags = np.diff(sp.csr_array(hist[:, np.flatnonzero(ctx.tag)]).indptr).astype(np.float32)
    cols["q_len"] = q_len[q]
    cols["q_artists"] = q_artists[q]
    cols["q_title"] = q_title[q]
    cols["q_tags"] = q_tags[q]
    cols["q_pop_mean"], cols["q_pop_min"], cols["q_pop_max"] = mean[q], lo[q], hi[q]

    # candidate columns
    art, alb = ctx.item_artist[it], ctx.item_album[it]
    cols["c_pop"] = np.log1p(ctx.item_pop[it])
    cols["c_occurrences"] = np.log1p(ctx.item_occ[it])
    cols["c_artist_pop"] = _log_pop(ctx.artist_pop, art)
    cols["c_album_pop"] = _log_pop(ctx.album_pop, alb)
    cols["c_recent_pop"] = np.log1p(ctx.item_recent_pop[it])
    year = np.where(ctx.item_issue >= 10000, ctx.item_issue // 10000, np.nan).astype(np.float32)
    cols["c_year"] = year[it]

    # pair columns: artist and album overlap
    cols["p_same_artist"] = _gather(art_counts, q, art)
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["p_same_artist_frac"] = np.where(q_len[q] > 0, cols["p_same_artist"] / q_len[q], 0.0)
    seed_alb = ctx.item_album[seeds.indices]
    n_alb = max(int(ctx.album_pop.shape[0]), 1)
    alb_counts = sp.csr_array(
        (
            np.ones(int((seed_alb >= 0).sum()), np.float32),
            (seed_rows[seed_alb >= 0], seed_alb[seed_alb >= 0]),
        ),
        shape=(n_q, n_alb),
    )
    alb_counts.sum_duplicates()
    cols["p_same_album"] = _gather(alb_counts, q, alb)
    seed_gen = ctx.item_genre[seeds.indices]
    gen_counts = sp.csr_array(
        (
            np.ones(int((seed_gen >= 0).sum()), np.float32),
            (seed_rows[seed_gen >= 0], seed_gen[seed_gen >= 0]),
        ),
        shape=(n_q, max(int(ctx.genre_pop.shape[0]), 1)),
    )
    gen_counts.sum_duplicates()
    cols["p_same_genre"] = _gather(gen_counts, q, ctx.item_genre[it])
    with np.errstate(invalid="ignore", divide="ignore"):
        cols["p_same_genre_frac"] = np.where(q_len[q] > 0, cols["p_same_genre"] / q_len[q], 0.0)
    seed_year = year[seeds.indices]
    dated = np.isfinite(seed_year)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_year = np.bincount(
            seed_rows[dated], weights=seed_year[dated], minlength=n_q
        ) / np.bincount(seed_rows[dated], minlength=n_q)
    cols["p_year_diff"] = year[it] - mean_year[q]
    cols["p_after_update"] = _after_update(queries, candidates.pids, ctx.item_issue, q, it)

    # pair columns: co-occurrence through the training playlists
    m = ctx.matrix
    m_t = sp.csr_array(m.T)
    last = _last_seeds(queries, candidates.items, candidates.pids, last_k)
    df = np.maximum(ctx.item_pop, 1.0)
    word_w = sp.csr_array(hist.multiply((ctx.title_word / df)[None, :]))
    whole_w = sp.csr_array(hist.multiply((ctx.title_whole / df)[None, :]))
    tag_w = sp.csr_array(hist.multiply((ctx.tag / df)[None, :]))
    profiles = [sp.csr_array(x @ m_t) for x in (last, seeds, word_w, whole_w, tag_w)]
    co_last, co_all, title_words, title_exact, tags = _cooccurrence(profiles, m_t, q, it)
    cols["p_co_last"] = co_last
    cols["p_co_last_rel"] = co_last / df[it]
    cols["p_co_all"] = co_all
    cols["p_title_words"] = title_words
    cols["p_title_exact"] = title_exact
    cols["p_tags"] = tags

    names = list(cols)
    values = np.empty((len(q), len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        values[:, j] = cols[name]
    return FeatureMatrix(values=values, names=names)
