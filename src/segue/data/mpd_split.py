"""A validation split of MPD playlists in the exact format of the RecSys Challenge 2018.

Why: models for the Million Playlist Dataset are tuned on held-out playlists, and the numbers
only mean something when those playlists look like the official challenge set (same ten kinds
of incomplete playlists, same JSON) and the training part is what the challenge gave (the other
playlists, whole). :func:`split_mpd` writes both, so the commands that train on
``mpd.slice.*.json`` and answer ``challenge_set.json`` run unchanged on the validation split.

The official rules
------------------
From the challenge set's README (``challenge_set.json``, version 1, February 2018;
https://recsys-challenge.spotify.com/challenge_readme, mirrored with the challenge set):

- 10,000 incomplete playlists in ten categories of 1,000: (1) title only; (2) title and first
  track; (3) title and first 5; (4) first 5, no title; (5) title and first 10; (6) first 10, no
  title; (7) title and first 25; (8) title and 25 random tracks; (9) title and first 100;
  (10) title and 100 random tracks.
- Playlist fields ``pid``, ``name`` (missing for some), ``num_holdouts`` ("the number of tracks
  that have been omitted"), ``num_samples`` ("the number of tracks included"), ``num_tracks``
  (the total) and ``tracks`` (``pos``, ``track_uri``, ``track_name``, ``artist_uri``,
  ``artist_name``, ``album_uri``, ``album_name``, ``duration_ms``); ``len(tracks) ==
  num_samples`` and ``num_samples + num_holdouts == num_tracks``.
- "All tracks in the challenge set appear in the MPD" and "All holdout tracks appear in the
  MPD": no seed or held-out track is unknown to the training data. Here, the MPD is the
  training part: every track of a chosen playlist must also occur in a playlist that stays in
  training (``unseen="avoid"``, the default).
- Challenge playlists were selected with the MPD's own criteria (the MPD README: 5 to 250
  tracks, at least 3 artists and 2 albums, ...); playlists of the source already meet them.

Choices where the README says nothing
-------------------------------------
- **Lengths per category.** The README gives none. The public challenge set's ``num_tracks``
  lies in these ranges (as tabulated by third-party re-implementations of the challenge
  split): 1: 10-50, 2: 10-78, 3: 10-100, 4-6: 40-100, 7-8: 101-250, 9-10: 150-250. They are
  used as eligibility rules (:data:`CATEGORIES`), so every playlist keeps at least 5 held-out
  tracks and the long-seed categories keep 50 or more. Categories with a title also need a
  non-blank ``name``.
- **Random seeds** (categories 8 and 10) are a uniform random subset of the positions, listed in
  playlist order with their original ``pos``; the held-out tracks are the rest.
- **Selection.** Each playlist gets a random key; the categories are filled one after another,
  the one with the fewest playlists of the right length first, each taking the eligible
  playlists in key order and skipping those already taken or whose tracks would no longer all
  occur in training. A playlist is accepted only if every track it has occurs in at least one
  other playlist still in training, and no track that an accepted playlist needs loses its last
  training playlist, so the rule holds for all chosen playlists at once.
- **Too small a source** (common with samples of the MPD, whose many one-off tracks make most
  long playlists ineligible): ``unseen="drop"`` accepts any playlist of the right length; held-
  out tracks that end up in no training playlist are removed from its answers (they cannot be
  recommended by anyone), ``num_holdouts`` and ``num_tracks`` count only the kept ones, and
  every chosen playlist keeps at least one held-out track. Seeds are never removed.
- **Repeated tracks.** A track repeated in a playlist may be both a seed and held out; held-out
  tracks are listed by position, so ``len(tracks) == num_holdouts`` in the answers. Scorers
  should treat them as a set.

Output (``out_dir``, written atomically)
----------------------------------------
``train/mpd.slice.START-END.json``
    The playlists not chosen, unchanged, 1,000 per file, in source order, with an ``info``
    block; ``START``/``END`` number the training playlists (0-999, 1000-1999, ...), not pids.
``challenge_set.json``
    ``{"date", "version": "v1", "name": "challenge_set", "description", "playlists"}``, the
    playlists grouped by category (1 to 10) in the official schema, with the track fields the
    source has. ``name`` is left out for the no-title categories.
``answers.json``
    ``{"format": "segue.mpd_answers", "version": 1, "seed", "unseen", "playlists": [{"pid",
    "category", "category_name", "num_samples", "num_holdouts", "tracks"}]}`` in the same order,
    ``tracks`` being the held-out ``track_uri`` s in playlist order.
``tracks.parquet``
    ``track``, ``artist`` for every track of the source (``artist`` as in
    :func:`~segue.data.readers.mpd.read_mpd`: the ``artist_uri``, else ``"name:"`` plus the
    artist name), for the metrics' artist-level credit.

Memory and passes: the source is read twice (a scan, then the write), never whole. The scan
keeps per-playlist numbers (pid, length, title flag, random key), the track vocabulary with
each track's artist and playlist count, and the track lists of the few thousand best candidates
per category (a heap); a third pass only happens when those candidates run out.
"""

from __future__ import annotations

import heapq
import json
import numbers
import os
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from segue._atomic import atomic_dir, check_output_dir
from segue.data.readers.mpd import BATCH_PLAYLISTS, Progress, artist_key, iter_located
from segue.exceptions import DataFormatError, ParameterError

__all__ = ["CATEGORIES", "ChallengeCategory", "split_mpd"]

ANSWERS_FORMAT = "segue.mpd_answers"
ANSWERS_VERSION = 1
SLICE_SIZE = 1000
"""Training playlists per slice file, as in the MPD."""

_TRACK_FIELDS = (
    "pos",
    "track_uri",
    "artist_uri",
    "artist_name",
    "track_name",
    "album_uri",
    "album_name",
    "duration_ms",
)
_CANDIDATE_FACTOR = 3
"""Candidates kept per category in the scan: this many times what the category could consume."""
_CANDIDATE_SLACK = 64
"""... plus this many."""
_FETCH_BUDGET = 16_000_000
"""Track codes (4 bytes each) an extra pass may gather when the scan's candidates run out."""


@dataclass(frozen=True)
class ChallengeCategory:
    """One of the ten kinds of challenge playlists.

    ``n_seeds`` tracks are shown (the first ones, or a random subset when ``random``), the title
    only when ``title``; a source playlist is eligible when its length is in
    ``[min_tracks, max_tracks]`` (and it has a title, when ``title``).
    """

    number: int
    name: str
    n_seeds: int
    title: bool
    random: bool
    min_tracks: int
    max_tracks: int

    def eligible(self, length: int, titled: bool) -> bool:
        """Whether a playlist of ``length`` tracks (with a title or not) can serve."""
        return self.min_tracks <= length <= self.max_tracks and (titled or not self.title)

    def describe(self) -> str:
        """``"8 (title and 25 random tracks: 101-250 tracks and a title)"``, for messages."""
        title = " and a title" if self.title else ""
        return f"{self.number} ({self.name}: {self.min_tracks}-{self.max_tracks} tracks{title})"


CATEGORIES: tuple[ChallengeCategory, ...] = (
    ChallengeCategory(1, "title only", 0, True, False, 10, 50),
    ChallengeCategory(2, "title and first track", 1, True, False, 10, 78),
    ChallengeCategory(3, "title and first 5 tracks", 5, True, False, 10, 100),
    ChallengeCategory(4, "first 5 tracks, no title", 5, False, False, 40, 100),
    ChallengeCategory(5, "title and first 10 tracks", 10, True, False, 40, 100),
    ChallengeCategory(6, "first 10 tracks, no title", 10, False, False, 40, 100),
    ChallengeCategory(7, "title and first 25 tracks", 25, True, False, 101, 250),
    ChallengeCategory(8, "title and 25 random tracks", 25, True, True, 101, 250),
    ChallengeCategory(9, "title and first 100 tracks", 100, True, False, 150, 250),
    ChallengeCategory(10, "title and 100 random tracks", 100, True, True, 150, 250),
)
"""The ten categories of the challenge set, with the length ranges used for eligibility."""


def _overlap(c: ChallengeCategory) -> int:
    """How many categories (``c`` included) can compete for ``c``'s playlists."""
    return sum(d.min_tracks <= c.max_tracks and c.min_tracks <= d.max_tracks for d in CATEGORIES)


class _Keys:
    """One uniform random key per playlist, drawn in reading order in blocks."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._block: list[float] = []
        self._next = 0

    def draw(self) -> float:
        if self._next == len(self._block):
            self._block = self._rng.random(4096).tolist()
            self._next = 0
        self._next += 1
        return self._block[self._next - 1]


@dataclass
class _Scan:
    """What the first pass learns about the source."""

    pids: np.ndarray
    lengths: np.ndarray
    titled: np.ndarray
    keys: np.ndarray
    codes: dict[str, int]
    artists: list[str | None]
    df: np.ndarray  # per track: number of playlists holding it
    tracks: dict[int, np.ndarray]  # playlist index -> track codes by position (candidates)


def _codes_of(playlist: dict[str, Any], scan_codes: dict[str, int]) -> np.ndarray:
    """Track codes (by position) of a playlist whose tracks are all in the vocabulary."""
    return np.fromiter(
        (scan_codes[t["track_uri"]] for t in playlist.get("tracks") or ()), dtype=np.int32
    )


def _scan(
    source: Any, need: int, seed_keys: np.random.Generator, progress: Progress | None
) -> _Scan:
    """First pass: per-playlist numbers, the track vocabulary, the best candidates' tracks."""
    pids = array("q")
    lengths = array("i")
    titled = bytearray()
    keys = array("d")
    codes: dict[str, int] = {}
    artists: list[str | None] = []
    df = np.zeros(1024, dtype=np.int64)
    pending: list[np.ndarray] = []
    key_stream = _Keys(seed_keys)
    capacity = {
        c.number: _CANDIDATE_FACTOR * need * _overlap(c) + _CANDIDATE_SLACK for c in CATEGORIES
    }
    heaps: dict[int, list[tuple[float, int]]] = {c.number: [] for c in CATEGORIES}
    stored: dict[int, np.ndarray] = {}
    refs: dict[int, int] = {}

    def flush() -> None:
        nonlocal df
        if len(codes) > len(df):
            df = np.concatenate([df, np.zeros(max(len(codes), 2 * len(df)) - len(df), np.int64)])
        if pending:
            df += np.bincount(np.concatenate(pending), minlength=len(df))
            if progress is not None:
                progress(len(pending))
        pending.clear()

    for index, (playlist, _) in enumerate(iter_located(source)):
        items = playlist.get("tracks") or ()
        row = np.empty(len(items), dtype=np.int32)
        for position, track in enumerate(items):
            uri = track["track_uri"]
            code = codes.get(uri)
            if code is None:
                code = codes[uri] = len(codes)
                artists.append(artist_key(track.get("artist_uri"), track.get("artist_name")))
            row[position] = code
        pending.append(np.unique(row))
        name = playlist.get("name")
        has_title = isinstance(name, str) and bool(name.strip())
        key = key_stream.draw()
        pids.append(playlist["pid"])
        lengths.append(len(items))
        titled.append(has_title)
        keys.append(key)
        for category in CATEGORIES:
            if not capacity[category.number] or not category.eligible(len(items), has_title):
                continue
            heap = heaps[category.number]
            entry = (-key, -index)  # max-heap on (key, index): the top is the worst kept
            if len(heap) < capacity[category.number]:
                heapq.heappush(heap, entry)
            elif entry > heap[0]:
                evicted = -heapq.heappushpop(heap, entry)[1]
                refs[evicted] -= 1
                if not refs[evicted]:
                    del refs[evicted], stored[evicted]
            else:
                continue
            refs[index] = refs.get(index, 0) + 1
            stored[index] = row
        if len(pending) >= BATCH_PLAYLISTS:
            flush()
    flush()
    return _Scan(
        pids=np.frombuffer(pids, dtype=np.int64).copy(),
        lengths=np.frombuffer(lengths, dtype=np.int32).copy(),
        titled=np.frombuffer(bytes(titled), dtype=np.bool_).copy(),
        keys=np.frombuffer(keys, dtype=np.float64).copy(),
        codes=codes,
        artists=artists,
        df=df[: len(codes)].copy(),
        tracks=stored,
    )


def _fetch(source: Any, scan: _Scan, wanted: set[int], progress: Progress | None) -> None:
    """An extra pass: store the track codes of the playlists ``wanted`` (by index)."""
    done = 0
    for index, (playlist, where) in enumerate(iter_located(source)):
        if index in wanted:
            try:
                if scan.pids[index] != playlist["pid"]:
                    raise KeyError(index)
                scan.tracks[index] = _codes_of(playlist, scan.codes)
            except (KeyError, IndexError):
                raise where.error(
                    "the source changed while it was being split", playlist["pid"]
                ) from None
        done += 1
        if progress is not None and done == BATCH_PLAYLISTS:
            progress(done)
            done = 0
    if progress is not None and done:
        progress(done)


@dataclass
class _Choice:
    category: ChallengeCategory
    seeds: np.ndarray  # positions shown, increasing


def _select(
    source: Any,
    scan: _Scan,
    need: int,
    unseen: str,
    rng: np.random.Generator,
    progress: Progress | None,
) -> tuple[dict[int, _Choice], dict[int, list[int]], dict[int, int], np.ndarray]:
    """Choose the challenge playlists; see "Selection" in the module docstring."""
    count = scan.df.copy()  # training playlists holding each track, as choices are made
    required = np.zeros(len(count), dtype=bool)  # tracks some chosen playlist needs in training
    chosen: dict[int, _Choice] = {}
    per_category: dict[int, list[int]] = {}
    eligible: dict[int, np.ndarray] = {}
    for c in CATEGORIES:
        mask = (scan.lengths >= c.min_tracks) & (scan.lengths <= c.max_tracks)
        if c.title:
            mask &= scan.titled
        idx = np.flatnonzero(mask)
        eligible[c.number] = idx[np.lexsort((idx, scan.keys[idx]))]
    rejected: set[int] = set()  # under "avoid", a rejected playlist stays rejected
    processing = sorted(CATEGORIES, key=lambda c: (len(eligible[c.number]), c.number))
    for rank, category in enumerate(processing):
        order = eligible[category.number]
        taken: list[int] = []
        position = 0
        while len(taken) < need and position < len(order):
            index = int(order[position])
            if index in chosen or index in rejected:
                position += 1
                continue
            if index not in scan.tracks:  # the scan's candidates ran out: one more pass
                later = [eligible[c.number] for c in processing[rank + 1 :]]
                wanted = _next_candidates(scan, [order[position:], *later], chosen, rejected)
                _fetch(source, scan, wanted, progress)
            position += 1
            row = scan.tracks[index]
            unique = np.unique(row)
            low = count[unique] < 2  # would lose their last training playlist
            if (low & required[unique]).any() or (unseen == "avoid" and low.any()):
                if unseen == "avoid":  # counts only fall: it will never be usable
                    rejected.add(index)
                    del scan.tracks[index]
                continue
            if unseen == "avoid":
                seeds = _seed_positions(category, len(row), rng)
                keep = unique
            else:
                seeds = _seed_positions(category, len(row), rng)
                held = np.ones(len(row), dtype=bool)
                held[seeds] = False
                held_tracks = np.unique(row[held])
                keep = held_tracks[count[held_tracks] >= 2]
                if not len(keep):
                    continue
            count[unique] -= 1
            required[keep] = True
            chosen[index] = _Choice(category, seeds)
            taken.append(index)
            del scan.tracks[index]
        per_category[category.number] = taken
    eligible_counts = {number: len(order) for number, order in eligible.items()}
    return chosen, per_category, eligible_counts, count


def _next_candidates(
    scan: _Scan, orders: list[np.ndarray], chosen: dict[int, Any], rejected: set[int]
) -> set[int]:
    """Playlists whose tracks one extra pass should gather, in priority order.

    The rest of the current category's candidates first, then those of the categories still to
    fill, up to :data:`_FETCH_BUDGET` track codes (at least one playlist).
    """
    wanted: set[int] = set()
    budget = _FETCH_BUDGET
    for order in orders:
        for j in order.tolist():
            if j in chosen or j in rejected or j in scan.tracks or j in wanted:
                continue
            if budget < scan.lengths[j] and wanted:
                return wanted
            wanted.add(j)
            budget -= int(scan.lengths[j])
    return wanted


def _seed_positions(
    category: ChallengeCategory, length: int, rng: np.random.Generator
) -> np.ndarray:
    if category.random:
        return np.sort(rng.choice(length, size=category.n_seeds, replace=False))
    return np.arange(category.n_seeds)


def _too_few(
    n_playlists: int,
    need: int,
    unseen: str,
    per_category: dict[int, list[int]],
    eligible: dict[int, int],
) -> ParameterError:
    lines = []
    for c in CATEGORIES:
        got = len(per_category[c.number])
        status = f"{got} chosen" if got >= need else f"only {got} usable"
        lines.append(f"  category {c.describe()}: {eligible[c.number]} of that length, {status}")
    rule = (
        "a playlist is usable only if every one of its tracks also occurs in a playlist that "
        "stays in training (the official rule; unseen='drop' relaxes it)"
        if unseen == "avoid"
        else "a playlist is usable only if one of its held-out tracks stays in training"
    )
    return ParameterError(
        f"the source has too few eligible playlists for n_playlists={n_playlists} "
        f"({need} per category); {rule}:\n" + "\n".join(lines)
    )


def _check_args(n_playlists: Any, seed: Any, unseen: Any) -> int:
    if not isinstance(n_playlists, numbers.Integral) or isinstance(n_playlists, bool):
        raise ParameterError(f"n_playlists must be an integer, got {n_playlists!r}")
    if n_playlists < len(CATEGORIES):
        raise ParameterError(
            f"n_playlists must be at least {len(CATEGORIES)} (one per category), got {n_playlists}"
        )
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ParameterError(f"seed must be a non-negative integer, got {seed!r}")
    if unseen not in ("avoid", "drop"):
        raise ParameterError(f"unseen must be 'avoid' or 'drop', got {unseen!r}")
    return int(n_playlists) // len(CATEGORIES)


def _write_json(path: Path, document: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(document, fh)
        fh.write("\n")


def _write_slice(folder: Path, start: int, playlists: list[dict[str, Any]], date: str) -> str:
    end = start + len(playlists) - 1
    name = f"mpd.slice.{start}-{end}.json"
    info = {"generated_on": date, "slice": f"{start}-{end}", "version": "v1"}
    _write_json(folder / name, {"info": info, "playlists": playlists})
    return name


def _challenge_tracks(items: list[dict[str, Any]], positions: Iterable[int]) -> list[dict]:
    out = []
    for position in positions:
        track = items[position]
        entry = {key: track[key] for key in _TRACK_FIELDS if track.get(key) is not None}
        entry.setdefault("pos", int(position))
        out.append({key: entry[key] for key in _TRACK_FIELDS if key in entry})
    return out


def split_mpd(
    source: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    n_playlists: int = 10_000,
    seed: int = 0,
    unseen: Literal["avoid", "drop"] = "avoid",
    date: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Hold out challenge-style playlists from MPD files and write a challenge and its answers.

    See the module docstring for the rules, the choices and the files written.

    Parameters
    ----------
    source
        MPD slices (folder, pattern or file) or JSON Lines playlists, as
        :func:`~segue.data.readers.mpd.read_mpd` reads them.
    out_dir
        Folder to write (replaced atomically when the split succeeds). An existing one must be
        empty or a segue output (:func:`segue._atomic.atomic_dir`) and must not hold the
        source.
    n_playlists
        Challenge playlists in all: ``n_playlists // 10`` per category.
    seed
        Seed of the random choices; the same source and seed give the same files (but for the
        ``date`` fields).
    unseen
        ``"avoid"`` (official): choose only playlists whose tracks all stay in training.
        ``"drop"``: any playlist of the right length; held-out tracks no training playlist has
        are removed from the answers.
    date
        The ``date`` of the challenge set and ``generated_on`` of the training slices; by default
        the current UTC time in the MPD's format (``2018-01-16 08:47:28.198015``).
    progress
        Called with the number of playlists read since the last call, on every pass (so a run
        reports about twice the number of playlists in the source).

    Returns
    -------
    dict
        ``out_dir``, ``seed``, ``unseen``, ``source_playlists``, ``source_tracks``,
        ``train_playlists``, ``train_slices``, ``challenge_playlists``, ``dropped_holdouts``
        and ``categories``: per category its ``number``, ``name``, ``eligible`` (playlists of
        the right length) and ``chosen``.

    Raises
    ------
    ParameterError
        Bad arguments, or too few eligible playlists for some category (the message gives,
        per category, how many playlists have the right length and how many could be used).
    segue._atomic.OutputError
        ``out_dir`` is something segue must not replace (checked before reading the source).
    DataFormatError
        A malformed source (nothing is written then).
    """
    need = _check_args(n_playlists, seed, unseen)
    check_output_dir(out_dir, keep=[source])  # before the two passes, not after them
    if date is None:
        date = str(datetime.now(timezone.utc).replace(tzinfo=None))
    key_seed, choice_seed = np.random.SeedSequence(int(seed)).spawn(2)
    scan = _scan(source, need, np.random.default_rng(key_seed), progress)
    if len(scan.pids) == 0:
        raise DataFormatError("no playlists found", path=str(source))
    chosen, per_category, eligible, count = _select(
        source, scan, need, unseen, np.random.default_rng(choice_seed), progress
    )
    if any(len(per_category[c.number]) < need for c in CATEGORIES):
        raise _too_few(int(n_playlists), need, unseen, per_category, eligible)
    scan.tracks.clear()
    in_training = count >= 1

    challenge: dict[int, dict[str, Any]] = {}
    answers: dict[int, dict[str, Any]] = {}
    dropped = 0
    slices: list[str] = []
    n_train = 0
    with atomic_dir(out_dir, kind="mpd-split", keep=[source]) as tmp:
        train = tmp / "train"
        train.mkdir()
        buffer: list[dict[str, Any]] = []
        done = 0
        index = -1
        for index, (playlist, where) in enumerate(iter_located(source)):
            items = playlist.get("tracks") or []
            if (
                index >= len(scan.pids)
                or scan.pids[index] != playlist["pid"]
                or scan.lengths[index] != len(items)
            ):
                raise where.error("the source changed while it was being split", playlist["pid"])
            choice = chosen.get(index)
            if choice is None:
                buffer.append(playlist)
                if len(buffer) == SLICE_SIZE:
                    slices.append(_write_slice(train, n_train, buffer, date))
                    n_train += len(buffer)
                    buffer = []
            else:
                held = np.ones(len(items), dtype=bool)
                held[choice.seeds] = False
                held_uris = [items[p]["track_uri"] for p in np.flatnonzero(held)]
                kept = [u for u in held_uris if in_training[scan.codes[u]]]
                if unseen == "avoid" and len(kept) != len(held_uris):  # pragma: no cover
                    raise AssertionError("a held-out track left training")
                dropped += len(held_uris) - len(kept)
                category = choice.category
                entry: dict[str, Any] = {"pid": playlist["pid"]}
                if category.title:
                    entry["name"] = playlist["name"]
                entry["num_holdouts"] = len(kept)
                entry["num_samples"] = len(choice.seeds)
                entry["num_tracks"] = len(choice.seeds) + len(kept)
                entry["tracks"] = _challenge_tracks(items, choice.seeds.tolist())
                challenge[index] = entry
                answers[index] = {
                    "pid": playlist["pid"],
                    "category": category.number,
                    "category_name": category.name,
                    "num_samples": len(choice.seeds),
                    "num_holdouts": len(kept),
                    "tracks": kept,
                }
            done += 1
            if progress is not None and done == BATCH_PLAYLISTS:
                progress(done)
                done = 0
        if progress is not None and done:
            progress(done)
        if index + 1 != len(scan.pids):
            raise DataFormatError(
                "the source changed while it was being split (fewer playlists on the second pass)",
                path=str(source),
            )
        if buffer:
            slices.append(_write_slice(train, n_train, buffer, date))
            n_train += len(buffer)
        order = [i for c in CATEGORIES for i in per_category[c.number]]
        _write_json(
            tmp / "challenge_set.json",
            {
                "date": date,
                "version": "v1",
                "name": "challenge_set",
                "description": (
                    f"validation challenge set made by segue.data.mpd_split.split_mpd "
                    f"(seed={int(seed)}, unseen={unseen!r}, {need} playlists in each of the "
                    f"{len(CATEGORIES)} RecSys Challenge 2018 categories)"
                ),
                "playlists": [challenge[i] for i in order],
            },
        )
        _write_json(
            tmp / "answers.json",
            {
                "format": ANSWERS_FORMAT,
                "version": ANSWERS_VERSION,
                "seed": int(seed),
                "unseen": unseen,
                "playlists": [answers[i] for i in order],
            },
        )
        tracks = pa.table(
            {
                "track": pa.array(list(scan.codes), type=pa.string()),
                "artist": pa.array(scan.artists, type=pa.string()),
            }
        )
        pq.write_table(tracks, tmp / "tracks.parquet", compression="zstd")
    return {
        "out_dir": str(out_dir),
        "seed": int(seed),
        "unseen": unseen,
        "source_playlists": len(scan.pids),
        "source_tracks": len(scan.codes),
        "train_playlists": n_train,
        "train_slices": len(slices),
        "challenge_playlists": len(order),
        "dropped_holdouts": dropped,
        "categories": [
            {
                "number": c.number,
                "name": c.name,
                "eligible": eligible[c.number],
                "chosen": len(per_category[c.number]),
            }
            for c in CATEGORIES
        ],
    }
