"""The official metrics of the two public playlist-continuation challenges, per playlist.

segue's generic metrics (:mod:`segue.metrics.ranking`) answer "is the model good?"; these answer
"what would the challenge's scorer have said?", so that validation numbers can be compared with
published leaderboards. Each function returns one value per playlist (never a mean), in input
order, and a playlist with an empty ground truth gets ``NaN`` for every metric (the official
scorers divide by zero there; ``NaN`` keeps it out of :func:`numpy.nanmean` and out of
:meth:`pandas.Series.mean`).

Spotify Million Playlist Dataset / RecSys Challenge 2018 (``mpd_*``)
    ``G`` is the set of withheld tracks, ``R`` the ranked list truncated to ``k = 500``.

    - **R-precision** ``= (T + 0.25 * A) / |G|``: ``T`` is the number of tracks of ``G`` among
      the first ``|G|`` recommendations; ``A`` is the number of *distinct* artists of ``G`` matched
      by those first ``|G|`` recommendations that are *not* exact hits. An exact hit earns 1 and
      no artist credit, a second non-hit track by an already credited artist earns nothing, and
      a non-hit by the artist of an exact hit still earns 0.25 (that artist is in ``G``'s artists).
    - **NDCG**: binary relevance over the whole list; ``DCG = sum_r hit_r / log2(r + 1)`` (rank 1 is
      undiscounted), divided by the DCG of ``min(|G|, k)`` hits at the top.
    - **Recommended-songs clicks** ``= floor((rank of the first hit - 1) / 10)``, or
      ``k // 10 + 1 = 51`` when no track of ``G`` is among the ``k`` recommendations.

    Sources followed: the words and constants of the challenge's evaluation section (RecSys
    Challenge 2018 rules page, recsys-challenge.spotify.com/rules, and its AIcrowd continuation,
    "Spotify Million Playlist Dataset Challenge": "All metrics will be evaluated at both the track
    level (exact track match) and the artist level (any track by the same artist is a match)";
    51 clicks "which is 1 greater than the maximum number of clicks possible"); the reference
    ``metrics.py`` Spotify AB distributed to participants (C. De Boom, v0.1, 2017-10-27:
    ``r_precision``, ``ndcg`` with ``1 / log2(1 + rank)`` and an IDCG over ``min(k, |G|)``
    items, ``playlist_extender_clicks`` returning ``int(index / 10)`` or ``k / 10 + 1``); and,
    for the artist credit, the winning team's evaluator (layer6ai-labs/RecSys2018,
    ``src/main/java/common/EvaluatorRPrecisionArtist.java``: 1 per exact hit, 0.25 per non-hit
    whose artist is among the ground truth's artists, each artist credited once).

    Reproductions of the rules page give the DCG as ``rel_1 + sum_{i>=2} rel_i / log2(i)``, which
    differs from the reference code from rank 2 on (rank 2 is undiscounted too).
    ``discount="rules"`` selects that form, for both DCG and IDCG; the default ``"reference"`` is
    the code's (and the winning team's, ``EvaluatorBinaryNDCG.java``).

Kakao Arena Melon Playlist Continuation (``melon_*``)
    Followed line by line: kakao-arena/melon-playlist-continuation ``evaluate.py``
    (``ArenaEvaluator``). ``_ndcg(gt, rec) = sum_i [rec_i in gt] / log(i + 2)`` over the first
    100 songs (10 tags), divided by ``_idcgs[len(gt)] = sum_{i < len(gt)} 1 / log(i + 2)``: the
    ideal DCG counts *every* answer item, even past the list length, so a playlist with 15 answer
    tags cannot reach a tag nDCG of 1 with 10 tags. (The log base cancels; the official code uses
    the natural log, segue ``log2``.) ``score = 0.85 * song_ndcg + 0.15 * tag_ndcg``. Where the
    official code would raise (answers longer than 100 items index past its table), segue
    continues the same sum.

Duplicates: a ground truth is a set (repeated ids count once, as in the MPD reference code's
``set(targets)``; Melon answers never repeat an id, where the official ``len(gt)`` would count a
repeat in the ideal DCG); a recommendation list that repeats an item is rejected with
:class:`~segue.exceptions.ParameterError`, as both challenges reject such submissions.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue.exceptions import ParameterError
from segue.metrics.ranking import hit_matrix

__all__ = [
    "MELON_N_SONGS",
    "MELON_N_TAGS",
    "MELON_SONG_WEIGHT",
    "MELON_TAG_WEIGHT",
    "MPD_ARTIST_CREDIT",
    "MPD_N",
    "melon_metrics",
    "melon_ndcg_idx",
    "mpd_metrics",
    "mpd_metrics_idx",
]

MPD_N = 500
"""Length of every MPD submission list, and the cut-off of all three MPD metrics."""
MPD_ARTIST_CREDIT = 0.25
"""R-precision credit for a recommended track that is not withheld but whose artist is."""
MELON_N_SONGS = 100
MELON_N_TAGS = 10
MELON_SONG_WEIGHT = 0.85
MELON_TAG_WEIGHT = 0.15

Discount = Literal["reference", "rules"]
TrackArtist = Mapping[Any, Any] | Callable[[Any], Any]


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------


def _as_rec_matrix(recs: Any, k: int) -> np.ndarray:
    """``(n, k)`` int64 recommendations: truncated to ``k``, padded with ``-1``."""
    if k < 1:
        raise ParameterError(f"k must be at least 1, got {k}")
    recs = np.asarray(recs)
    if recs.ndim != 2:
        raise ParameterError(f"recs must be 2-D (playlists x ranks), got shape {recs.shape}")
    if recs.size and not np.issubdtype(recs.dtype, np.integer):
        raise ParameterError(f"recs must hold integer item indices, got dtype {recs.dtype}")
    recs = recs[:, :k].astype(np.int64, copy=False)
    if recs.shape[1] < k:
        recs = np.pad(recs, ((0, 0), (0, k - recs.shape[1])), constant_values=-1)
    return recs


def _first_duplicate(recs: np.ndarray) -> tuple[int, int] | None:
    """``(row, item)`` of the first row that recommends a (non-padding) item twice, or None."""
    if recs.size == 0:
        return None
    s = np.sort(recs, axis=1)
    dup = (s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)
    if not dup.any():
        return None
    row = int(np.flatnonzero(dup.any(axis=1))[0])
    return row, int(s[row, 1:][dup[row]][0])


def _check_unique_rows(recs: np.ndarray) -> None:
    found = _first_duplicate(recs)
    if found is not None:
        row, item = found
        raise ParameterError(f"the list of playlist {row} (0-based) recommends item {item} twice")


def _binary_truth(truth: Any, n_rows: int) -> sp.csr_array:
    t = sp.csr_array(truth, copy=True)
    if t.shape[0] != n_rows:
        raise ParameterError(f"recs has {n_rows} rows but truth has {t.shape[0]}")
    t.sum_duplicates()
    t.eliminate_zeros()  # an explicit zero is not a relevant item
    t.data = np.ones_like(t.data)
    t.sort_indices()
    return t


def _n_relevant(truth: sp.csr_array) -> np.ndarray:
    return np.diff(truth.indptr).astype(np.int64)


def _encode_lists(
    recs: Sequence[Sequence[Hashable]], truths: Sequence[Sequence[Hashable]], k: int, what: str
) -> tuple[np.ndarray, sp.csr_array, np.ndarray]:
    """Code external ids as ints: ``(recs (n, k), truth CSR (n, V), vocabulary (V,))``."""
    if len(recs) != len(truths):
        raise ParameterError(f"{what}: {len(recs)} recommendation lists but {len(truths)} truths")
    n = len(recs)
    rec_lists = [list(r)[:k] for r in recs]
    truth_lists = [list(t) for t in truths]
    rec_len = np.fromiter((len(r) for r in rec_lists), dtype=np.int64, count=n)
    truth_len = np.fromiter((len(t) for t in truth_lists), dtype=np.int64, count=n)
    flat = np.fromiter(
        itertools.chain(itertools.chain.from_iterable(rec_lists), *truth_lists),
        dtype=object,
        count=int(rec_len.sum() + truth_len.sum()),
    )
    codes, vocab = pd.factorize(flat, sort=False)
    if (codes < 0).any():
        raise ParameterError(f"{what}: the lists contain missing ids (None/NaN)")
    n_rec = int(rec_len.sum())
    rec_codes, truth_codes = codes[:n_rec], codes[n_rec:]
    matrix = np.full((n, k), -1, dtype=np.int64)
    rows = np.repeat(np.arange(n), rec_len)
    cols = np.arange(n_rec) - np.repeat(np.cumsum(rec_len) - rec_len, rec_len)
    matrix[rows, cols] = rec_codes
    truth = sp.csr_array(
        (np.ones(len(truth_codes)), (np.repeat(np.arange(n), truth_len), truth_codes)),
        shape=(n, len(vocab)),
    )
    found = _first_duplicate(matrix)
    if found is not None:
        row, item = found
        raise ParameterError(
            f"{what}: the list of playlist {row} (0-based) recommends {vocab[item]!r} twice"
        )
    return matrix, truth, np.asarray(vocab, dtype=object)


# --------------------------------------------------------------------------------------------
# Spotify MPD / RecSys Challenge 2018
# --------------------------------------------------------------------------------------------


def _discounts(k: int, discount: Discount) -> np.ndarray:
    """Weight of ranks 1..k."""
    ranks = np.arange(1, k + 1, dtype=np.float64)
    if discount == "reference":
        return 1.0 / np.log2(ranks + 1.0)  # rank 1 -> 1, rank 2 -> 0.631
    if discount == "rules":
        return 1.0 / np.log2(np.maximum(ranks, 2.0))  # ranks 1 and 2 -> 1, rank 3 -> 0.631
    raise ParameterError(f"discount must be 'reference' or 'rules', got {discount!r}")


def _mpd_ndcg(hits: np.ndarray, n_rel: np.ndarray, discount: Discount) -> np.ndarray:
    k = hits.shape[1]
    disc = _discounts(k, discount)
    dcg = hits @ disc
    ideal = np.concatenate([[0.0], np.cumsum(disc)])[np.minimum(n_rel, k)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_rel > 0, dcg / ideal, np.nan)


def _mpd_clicks(hits: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    k = hits.shape[1]
    found = hits.any(axis=1)
    first = np.argmax(hits, axis=1)  # 0-based index of the first hit (0 when there is none)
    clicks = np.where(found, first // 10, k // 10 + 1).astype(np.float64)
    return np.where(n_rel > 0, clicks, np.nan)


def _mpd_artist_matches(
    recs: np.ndarray,
    hits: np.ndarray,
    truth: sp.csr_array,
    within: np.ndarray,
    item_artist: np.ndarray,
) -> np.ndarray:
    """Per row: distinct ground-truth artists of the non-hit tracks in the first ``|G|`` slots."""
    n = recs.shape[0]
    n_artists = np.int64(max(int(item_artist.max(initial=-1)) + 1, 1))
    # (row, artist) keys of the ground truth's artists
    t_rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(truth.indptr))
    t_art = item_artist[truth.indices]
    known = t_art >= 0
    truth_keys = np.unique(t_rows[known] * n_artists + t_art[known])
    # (row, artist) keys of the candidate recommendations: first |G|, not exact hits, artist known
    rec_art = np.where(recs >= 0, item_artist[np.maximum(recs, 0)], -1)
    cand = within & ~hits & (rec_art >= 0)
    r, c = np.nonzero(cand)
    keys = np.unique(r.astype(np.int64) * n_artists + rec_art[r, c])
    if len(truth_keys) == 0 or len(keys) == 0:
        return np.zeros(n, dtype=np.float64)
    pos = np.minimum(np.searchsorted(truth_keys, keys), len(truth_keys) - 1)
    matched = keys[truth_keys[pos] == keys]
    return np.bincount(matched // n_artists, minlength=n).astype(np.float64)


def mpd_metrics_idx(
    recs: Any,
    truth: sp.sparray | sp.spmatrix,
    item_artist: Any | None = None,
    *,
    k: int = MPD_N,
    discount: Discount = "reference",
) -> dict[str, np.ndarray]:
    """R-precision, NDCG and clicks of the MPD challenge on integer-coded lists.

    Parameters
    ----------
    recs
        ``(n_playlists, n_ranks)`` int array of item indices, best first, ``-1`` as padding.
        Only the first ``k`` ranks count; shorter lists count as padded with misses.
    truth
        ``(n_playlists, n_items)`` sparse matrix whose stored non-zero entries are the withheld
        tracks (values are ignored).
    item_artist
        ``(n_items,)`` int array: the artist index of every item, ``-1`` when unknown (an unknown
        artist never earns credit). ``None`` computes R-precision without artist credit.
    k
        The list length the challenge scores (500).
    discount
        ``"reference"`` (``1 / log2(rank + 1)``, Spotify's ``metrics.py``) or ``"rules"``
        (``rel_1 + sum_{i>=2} rel_i / log2(i)``, as typeset on the rules page).

    Returns
    -------
    dict[str, numpy.ndarray]
        ``r_precision``, ``ndcg`` and ``clicks``: float64 arrays with one value per playlist,
        ``NaN`` for a playlist without withheld tracks. See the module docstring for the
        definitions and their sources.

    Raises
    ------
    ParameterError
        Malformed shapes, a list that repeats an item, or ``item_artist`` too short.
    """
    recs = _as_rec_matrix(recs, k)
    _check_unique_rows(recs)
    truth = _binary_truth(truth, recs.shape[0])
    n_rel = _n_relevant(truth)
    hits = hit_matrix(recs, truth)
    within = np.arange(k)[None, :] < n_rel[:, None]  # the first |G| ranks
    track_hits = (hits & within).sum(axis=1).astype(np.float64)
    if item_artist is not None:
        item_artist = np.asarray(item_artist, dtype=np.int64)
        if item_artist.ndim != 1 or len(item_artist) < truth.shape[1]:
            raise ParameterError(
                f"item_artist must be 1-D with one entry per item ({truth.shape[1]}), "
                f"got shape {item_artist.shape}"
            )
        if recs.size and recs.max() >= len(item_artist):
            raise ParameterError(
                f"recs holds item {int(recs.max())} but item_artist has {len(item_artist)} items"
            )
        artists = _mpd_artist_matches(recs, hits, truth, within, item_artist)
    else:
        artists = np.zeros(len(n_rel))
    with np.errstate(invalid="ignore", divide="ignore"):
        r_prec = np.where(n_rel > 0, (track_hits + MPD_ARTIST_CREDIT * artists) / n_rel, np.nan)
    return {
        "r_precision": r_prec,
        "ndcg": _mpd_ndcg(hits.astype(np.float64), n_rel, discount),
        "clicks": _mpd_clicks(hits, n_rel),
    }


def _artist_codes(vocab: np.ndarray, track_artist: TrackArtist) -> np.ndarray:
    """Artist index per vocabulary item, ``-1`` where the track has no known artist."""
    if callable(track_artist) and not isinstance(track_artist, Mapping):
        artists = [track_artist(t) for t in vocab]
    else:
        get = track_artist.get
        artists = [get(t) for t in vocab]
    values = np.fromiter(artists, dtype=object, count=len(artists))
    codes, _ = pd.factorize(values, sort=False)  # None/NaN -> -1
    return codes.astype(np.int64)


def mpd_metrics(
    recs: Sequence[Sequence[Hashable]],
    truth: Sequence[Sequence[Hashable]],
    track_artist: TrackArtist | None = None,
    *,
    k: int = MPD_N,
    discount: Discount = "reference",
    index: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """The MPD challenge's per-playlist metrics on lists of external ids (track URIs).

    Parameters
    ----------
    recs
        One ranked list of track ids per playlist, best first (the submission's 500 URIs).
    truth
        The withheld tracks of each playlist, in the same order as ``recs``.
    track_artist
        Track id -> artist id, as a mapping or a callable returning ``None`` for unknown
        tracks. A track it does not know cannot earn artist credit. ``None``: no artist credit.
    k
        The list length the challenge scores (500).
    discount
        ``"reference"`` or ``"rules"``; see :func:`mpd_metrics_idx`.
    index
        Labels for the rows (playlist ids); the default is ``0..n-1``.

    Returns
    -------
    pandas.DataFrame
        Columns ``r_precision``, ``ndcg``, ``clicks``; one row per playlist, in input order;
        ``NaN`` for a playlist with an empty truth. Their means are the leaderboard numbers.

    Raises
    ------
    ParameterError
        ``recs`` and ``truth`` differ in length, a list repeats a track, or ids are missing.

    Examples
    --------
    >>> mpd_metrics([["t1", "t9", "t2"]], [["t1", "t2"]], k=3).round(3).to_dict("records")
    [{'r_precision': 0.5, 'ndcg': 0.92, 'clicks': 0.0}]
    """
    matrix, truth_csr, vocab = _encode_lists(recs, truth, k, "mpd_metrics")
    item_artist = None if track_artist is None else _artist_codes(vocab, track_artist)
    values = mpd_metrics_idx(matrix, truth_csr, item_artist, k=k, discount=discount)
    return pd.DataFrame(values, index=None if index is None else pd.Index(index))


# --------------------------------------------------------------------------------------------
# Kakao Arena Melon Playlist Continuation
# --------------------------------------------------------------------------------------------


def melon_ndcg_idx(recs: Any, truth: sp.sparray | sp.spmatrix, k: int) -> np.ndarray:
    """The Kakao Arena ``_ndcg`` on integer-coded lists, one value per playlist.

    Parameters
    ----------
    recs
        ``(n_playlists, n_ranks)`` int array of item indices, best first, ``-1`` as padding;
        only the first ``k`` count (the official ``rec["songs"][:100]``, ``rec["tags"][:10]``).
    truth
        ``(n_playlists, n_items)`` sparse matrix of the answer items.
    k
        100 for songs, 10 for tags.

    Returns
    -------
    numpy.ndarray
        ``DCG / IDCG(|answers|)`` with ``DCG = sum_i hit_i / log2(i + 2)`` (0-based ``i``) and
        ``IDCG(m) = sum_{i < m} 1 / log2(i + 2)``, **not** capped at ``k``; ``NaN`` for an empty
        answer (the official code divides by zero there).
    """
    recs = _as_rec_matrix(recs, k)
    _check_unique_rows(recs)
    truth = _binary_truth(truth, recs.shape[0])
    n_rel = _n_relevant(truth)
    hits = hit_matrix(recs, truth).astype(np.float64)
    dcg = hits @ (1.0 / np.log2(np.arange(k) + 2.0))
    m = int(n_rel.max(initial=0))
    idcg = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(m) + 2.0))])[n_rel]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_rel > 0, dcg / idcg, np.nan)


def melon_metrics(
    song_recs: Sequence[Sequence[Hashable]],
    tag_recs: Sequence[Sequence[Hashable]],
    song_truth: Sequence[Sequence[Hashable]],
    tag_truth: Sequence[Sequence[Hashable]],
    *,
    n_songs: int = MELON_N_SONGS,
    n_tags: int = MELON_N_TAGS,
    index: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """The Melon Playlist Continuation scores of every playlist.

    Parameters
    ----------
    song_recs, tag_recs
        Ranked song ids and tags per playlist, best first; only the first ``n_songs`` /
        ``n_tags`` count, as in the official evaluator.
    song_truth, tag_truth
        The answer songs and tags per playlist, same order.
    n_songs, n_tags
        The cut-offs (100 and 10).
    index
        Labels for the rows (playlist ids); the default is ``0..n-1``.

    Returns
    -------
    pandas.DataFrame
        ``song_ndcg``, ``tag_ndcg`` (see :func:`melon_ndcg_idx`) and
        ``score = 0.85 * song_ndcg + 0.15 * tag_ndcg``; ``NaN`` where an answer is empty. The
        mean of ``score`` over playlists is the leaderboard score.

    Raises
    ------
    ParameterError
        The four sequences differ in length, or a list repeats a song or a tag.
    """
    n = len(song_recs)
    if not (len(tag_recs) == len(song_truth) == len(tag_truth) == n):
        raise ParameterError(
            "melon_metrics: song_recs, tag_recs, song_truth and tag_truth must have the same "
            f"length, got {n}, {len(tag_recs)}, {len(song_truth)}, {len(tag_truth)}"
        )
    s_recs, s_truth, _ = _encode_lists(song_recs, song_truth, n_songs, "melon_metrics songs")
    t_recs, t_truth, _ = _encode_lists(tag_recs, tag_truth, n_tags, "melon_metrics tags")
    song = melon_ndcg_idx(s_recs, s_truth, n_songs)
    tag = melon_ndcg_idx(t_recs, t_truth, n_tags)
    return pd.DataFrame(
        {
            "song_ndcg": song,
            "tag_ndcg": tag,
            "score": MELON_SONG_WEIGHT * song + MELON_TAG_WEIGHT * tag,
        },
        index=None if index is None else pd.Index(index),
    )
