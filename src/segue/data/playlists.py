"""Playlists: ordered track lists with titles, tags and track metadata, as three tables.

MPD and Melon readers both return :class:`Playlists`; models never see it directly but the
``Interactions`` it derives (playlists as rows, tracks as columns). The order of the entries is
kept (``pos``) for order-aware models and for the challenges' "first N tracks" seeds, and the
side tables (titles, tags, artists, albums, genres, dates) feed cold start and ranking features.

Tables
------
``playlists``
    One row per playlist, in reading order. ``pid`` (unique, int or str) and ``name`` (title,
    may be empty) always; readers add what their format has (``description``,
    ``num_followers``, ``tags`` as a list of strings, ``like_cnt``, ``updt_date``, ...).
``entries``
    One row per track occurrence: ``pid``, ``pos`` (0-based order in the playlist), ``track``.
    Sorted by (playlist order, pos). MPD tables hold ``track`` as a pandas categorical (codes
    into the distinct ids), so 66M entries cost 4 bytes each rather than a string each.
``tracks``
    One row per distinct track: ``track`` (unique) and whatever metadata the format has
    (``track_name``, ``artist``, ``artist_name``, ``album``, ``album_name``, ``duration_ms``,
    ``genres``, ``issue_date``, ...). Every entry's track is in it.

On disk (:meth:`Playlists.save`): ``schema.json`` plus ``playlists.parquet``,
``entries.parquet`` and ``tracks.parquet`` (zstd), written atomically.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from segue._atomic import atomic_dir
from segue.data.interactions import Interactions
from segue.data.vocab import IdMap
from segue.exceptions import DataFormatError, ParameterError

__all__ = ["Playlists", "is_playlists_dir", "load_playlists", "track_categorical"]

SCHEMA_NAME = "segue.playlists"
SCHEMA_VERSION = 1
_TABLES = ("playlists", "entries", "tracks")


@dataclass(frozen=True, eq=False)
class Playlists:
    """Playlists, their ordered entries and their tracks (see the module docstring)."""

    playlists: pd.DataFrame
    entries: pd.DataFrame
    tracks: pd.DataFrame

    def __post_init__(self) -> None:
        for name, required in (
            ("playlists", ("pid", "name")),
            ("entries", ("pid", "pos", "track")),
            ("tracks", ("track",)),
        ):
            frame = getattr(self, name)
            missing = [c for c in required if c not in frame.columns]
            if missing:
                raise ParameterError(f"Playlists.{name} lacks column(s) {missing}")
        if self.playlists["pid"].duplicated().any():
            dup = self.playlists["pid"][self.playlists["pid"].duplicated()].iloc[0]
            raise ParameterError(f"duplicate playlist id {dup!r}")
        if self.tracks["track"].duplicated().any():
            dup = self.tracks["track"][self.tracks["track"].duplicated()].iloc[0]
            raise ParameterError(f"duplicate track id {dup!r} in the track table")

    # sizes ----------------------------------------------------------------------------------
    @property
    def n_playlists(self) -> int:
        """Number of playlists (including empty ones)."""
        return len(self.playlists)

    @property
    def n_entries(self) -> int:
        """Number of track occurrences."""
        return len(self.entries)

    @property
    def n_tracks(self) -> int:
        """Number of distinct tracks."""
        return len(self.tracks)

    def describe(self) -> dict[str, Any]:
        """Sizes and length statistics, for ``segue data describe`` and model manifests."""
        lengths = self.lengths()
        return {
            "playlists": self.n_playlists,
            "entries": self.n_entries,
            "tracks": self.n_tracks,
            "empty_playlists": int((lengths == 0).sum()),
            "mean_length": float(lengths.mean()) if len(lengths) else 0.0,
            "max_length": int(lengths.max()) if len(lengths) else 0,
            "with_title": int(self.playlists["name"].fillna("").astype(str).str.len().gt(0).sum()),
        }

    def lengths(self) -> np.ndarray:
        """Entries per playlist, in playlist order."""
        counts = self.entries.groupby("pid", sort=False).size()
        return counts.reindex(self.playlists["pid"], fill_value=0).to_numpy(np.int64)

    def dates(self) -> np.ndarray | None:
        """When each playlist was last changed (``datetime64[s]``, NaT unknown), in table order.

        From Melon's ``updt_date`` or the MPD's ``modified_at`` (Unix seconds); ``None`` when
        the table has neither, as in the MPD challenge set and the followers sample.
        """
        table = self.playlists
        if "updt_date" in table.columns:
            values = pd.to_datetime(table["updt_date"], errors="coerce")
        elif "modified_at" in table.columns:
            values = pd.to_datetime(table["modified_at"], unit="s", errors="coerce")
        else:
            return None
        out = values.to_numpy(dtype="datetime64[s]")
        return None if np.isnat(out).all() else out

    # derived views --------------------------------------------------------------------------
    def playlist_ids(self) -> IdMap:
        """Vocabulary of playlists, in table order."""
        return IdMap(self.playlists["pid"].to_numpy(), kind="playlist")

    def track_ids(self) -> IdMap:
        """Vocabulary of tracks, in track-table order."""
        return IdMap(self.tracks["track"].to_numpy(), kind="track")

    def to_interactions(
        self, weight: Literal["binary", "count"] = "binary", *, items: IdMap | None = None
    ) -> Interactions:
        """Playlists x tracks; every playlist is a row, empty ones included.

        ``weight="binary"`` stores 1 for membership, ``"count"`` the number of times a track
        occurs in the playlist. ``items`` fixes the column vocabulary (entries whose track is not
        in it are dropped), as when a challenge set is scored by a trained model.
        """
        from segue.inference.encode import playlist_interactions

        return playlist_interactions(
            self, items=self.track_ids() if items is None else items, weight=weight
        )

    def slice(self, start: int, stop: int) -> Playlists:
        """Playlists ``start:stop`` (table order) with their entries; the track table is shared."""
        table = self.playlists.iloc[start:stop]
        if start == 0 and stop >= self.n_playlists:
            return self
        entries = self.entries[self.entries["pid"].isin(table["pid"])]
        return Playlists(table, entries, self.tracks)

    def track_lists(self) -> dict[Any, list[Any]]:
        """``{pid: [track, ...]}`` in playlist order (empty playlists map to ``[]``)."""
        grouped = self.entries.groupby("pid", sort=False)["track"].agg(list)
        return {pid: grouped.get(pid, []) for pid in self.playlists["pid"]}

    def track_artists(self) -> pd.Series:
        """``track -> artist`` (empty when the format has no artist)."""
        if "artist" not in self.tracks.columns:
            return pd.Series(dtype=object)
        return pd.Series(self.tracks["artist"].to_numpy(), index=self.tracks["track"].to_numpy())

    # storage --------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``schema.json`` plus one Parquet file per table, atomically."""
        with atomic_dir(path) as tmp:
            for name in _TABLES:
                table = pa.Table.from_pandas(getattr(self, name), preserve_index=False)
                pq.write_table(table, tmp / f"{name}.parquet", compression="zstd")
            schema = {"format": SCHEMA_NAME, "version": SCHEMA_VERSION, **self.describe()}
            (tmp / "schema.json").write_text(json.dumps(schema, indent=2) + "\n")
        return Path(path)


def is_playlists_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a directory written by :meth:`Playlists.save`."""
    schema = Path(path) / "schema.json"
    if not schema.is_file():
        return False
    try:
        return json.loads(schema.read_text(encoding="utf-8")).get("format") == SCHEMA_NAME
    except (ValueError, UnicodeDecodeError):
        return False


def load_playlists(path: str | os.PathLike[str]) -> Playlists:
    """Read a directory written by :meth:`Playlists.save`."""
    root = Path(path)
    schema_path = root / "schema.json"
    try:
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFormatError(
            "not a segue playlists directory (no schema.json)", path=root
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataFormatError(f"schema.json is not valid JSON: {exc}", path=schema_path) from None
    if schema.get("format") != SCHEMA_NAME:
        raise DataFormatError(
            f"format is {schema.get('format')!r}, not {SCHEMA_NAME!r}", path=schema_path
        )
    if schema.get("version") != SCHEMA_VERSION:
        raise DataFormatError(f"unsupported version {schema.get('version')!r}", path=schema_path)
    frames = {}
    for name in _TABLES:
        file = root / f"{name}.parquet"
        if not file.is_file():
            raise DataFormatError(f"missing {name}.parquet", path=root)
        if name == "entries":
            frames[name] = _read_entries(file)
        else:
            frames[name] = pq.read_table(file).to_pandas()
        pa.default_memory_pool().release_unused()  # the decode buffers, back to the system
    return Playlists(**frames)


def _read_entries(file: Path) -> pd.DataFrame:
    """The entries table, its string ``track`` column as a categorical built row group by row group.

    ``entries.track`` repeats each track id in every playlist that has it (66M times for the
    MPD's 2.26M tracks). Read whole, even as Parquet dictionaries, it costs a dictionary per
    row group (38M strings at the MPD's 1,000 row groups); here each row group's dictionary is
    mapped into one growing vocabulary and only int32 codes are kept, so the peak is one row
    group plus the codes. Categories are in order of first appearance.
    """
    source = pq.ParquetFile(file, read_dictionary=["track"])
    schema = source.schema_arrow
    plain = [f for f in schema if f.name != "track"]
    if (
        "track" not in schema.names
        or not pa.types.is_dictionary(schema.field("track").type)
        or not all(pa.types.is_integer(f.type) or pa.types.is_floating(f.type) for f in plain)
    ):
        return source.read().to_pandas()  # not string ids (Melon song numbers): as stored
    n_rows = source.metadata.num_rows
    # filled in place, group by group: no list of parts and no concatenated copy
    frame = {
        f.name: np.empty(n_rows, np.int32 if f.name == "track" else f.type.to_pandas_dtype())
        for f in schema
    }
    vocabulary: dict[str, int] = {}
    start = 0
    for group in range(source.num_row_groups):
        table = source.read_row_group(group)
        stop = start + table.num_rows
        track = table.column("track").combine_chunks()
        if track.null_count or any(table.column(f.name).null_count for f in schema):
            return source.read().to_pandas()  # Playlists refuses it with its own message
        local = track.dictionary.to_pylist()
        code_of = np.fromiter(
            (vocabulary.setdefault(t, len(vocabulary)) for t in local), np.int32, len(local)
        )
        for name, column in frame.items():
            if name == "track":
                column[start:stop] = code_of[track.indices.to_numpy()]
            else:
                column[start:stop] = table.column(name).to_numpy()
        start = stop
    frame["track"] = _categorical(frame["track"], list(vocabulary))
    return pd.DataFrame(frame, columns=schema.names, copy=False)


def track_categorical(values: Any) -> pd.Categorical:
    """Track ids as a categorical with categories in order of first appearance.

    The form of ``entries.track`` in MPD tables (:func:`load_playlists` and
    :func:`~segue.data.readers.mpd.read_mpd` give the same).
    """
    codes, uniques = pd.factorize(values, sort=False)
    return _categorical(codes.astype(np.int32), list(uniques))


def _categorical(codes: np.ndarray, categories: list[Any]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype="str"))
