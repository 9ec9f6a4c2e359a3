"""Training input straight into Spark DataFrames ``(user, item: string, count: double)``.

Why: at the MPD's 66M entries the single-machine readers hold every id string in the driver; on
Spark the files are parsed by the executors and only the distinct ids ever reach the driver (for
the saved id maps). Three inputs, as ``segue train`` takes them:

- MPD slices (``mpd.slice.*.json``, the official multi-line format) or JSON Lines of playlists
  (one playlist per line, as ``segue split mpd`` writes): ``spark.read.json``, playlists and
  tracks exploded; a row is a playlist (``pid``), a column a ``track_uri`` (1.0 for
  membership, as the single-machine ``playlist_interactions``), and, as there, title words
  and whole titles as more columns, with a ``kind`` column saying which is which;
- listen counts, ``uid sid count`` separated by white space (the Echo Nest / segue format);
- Parquet with named user, item and (optional) weight columns.

A malformed line is one clear error naming the file and line (found by segue's own exact line
check on the first offending file), never a JVM traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segue.data.kinds import ItemKind
from segue.data.titles import title_pairs
from segue.exceptions import DataFormatError

__all__ = ["read_listens_df", "read_mpd_df", "read_parquet_df", "read_training_df"]


def _files(path: Path, patterns: tuple[str, ...]) -> list[str]:
    if path.is_file():
        return [str(path)]
    if path.is_dir():
        for pattern in patterns:  # the first pattern that matches: slices before other JSON
            found = sorted(str(p) for p in path.glob(pattern))
            if found:
                return found
    raise DataFormatError(f"no {' or '.join(patterns)} file here", path=path)


def read_mpd_df(spark: Any, path: str | os.PathLike[str], *, with_titles: bool = False) -> Any:
    """Playlist x track counts from MPD slices or playlist JSON Lines (see the module doc).

    Returns a DataFrame ``user`` (the pid, a long, as the single-machine playlist ids),
    ``item`` (the track URI), ``count``: 1.0 for membership, as the single-machine
    ``playlist_interactions`` stores it (a track repeated in a playlist counts once), and
    ``kind`` (the :class:`~segue.data.kinds.ItemKind` code of the column, a byte).

    ``with_titles``: each playlist's title words and whole normalised title are columns too
    (``title:chill``, ``title=chill vibes``), made per partition by the single-machine
    :func:`segue.data.titles.title_pairs`, so a title-only query is scored as on one machine.
    """
    from pyspark.sql import functions as F

    path = Path(path)
    slices = _files(path, ("mpd.slice.*.json", "*.jsonl", "*.jsonl.gz", "*.json"))
    multi = [f for f in slices if f.endswith(".json")]
    lines = [f for f in slices if not f.endswith(".json")]
    frames = []
    if multi:
        raw = spark.read.json(multi, multiLine=True, mode="FAILFAST")
        if "playlists" not in raw.columns:
            raise DataFormatError("MPD slice without a 'playlists' list", path=multi[0])
        frames.append(raw.select(F.explode("playlists").alias("p")).select("p.*"))
    if lines:
        frames.append(spark.read.json(lines, mode="FAILFAST"))
    playlists = frames[0]
    for other in frames[1:]:
        playlists = playlists.unionByName(other, allowMissingColumns=True)
    for column in ("pid", "tracks"):
        if column not in playlists.columns:
            raise DataFormatError(f"playlists lack the field {column!r}", path=path)
    entries = playlists.select(
        F.col("pid").cast("long").alias("user"), F.explode("tracks").alias("t")
    ).select("user", F.col("t.track_uri").alias("item"))
    bad = entries.where(F.col("user").isNull() | F.col("item").isNull()).limit(1).collect()
    if bad:
        raise DataFormatError(
            f"a playlist entry without pid or track_uri (pid {bad[0]['user']!r})", path=path
        )
    entries = entries.withColumn("kind", F.lit(int(ItemKind.TRACK)).cast("tinyint"))
    if with_titles and "name" in playlists.columns:
        names = playlists.select(
            F.col("pid").cast("long").alias("pid"), F.col("name").cast("string").alias("name")
        )
        entries = entries.unionByName(names.mapInPandas(_title_columns, _TITLE_SCHEMA))
    # one row per (playlist, column); an id that is both a track and a title column (it cannot
    # be with MPD's URIs) is the track, as in one machine's vocabulary
    entries = entries.groupBy("user", "item").agg(F.min("kind").alias("kind"))
    return entries.withColumn("count", F.lit(1.0))


_TITLE_SCHEMA = "user long, item string, kind tinyint"


def _title_columns(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """``(user, item, kind)`` title pairs of a partition's ``(pid, name)`` rows."""
    for frame in frames:
        rows, cols, kinds = title_pairs(frame["pid"].to_numpy(), frame["name"])
        yield pd.DataFrame(
            {
                "user": rows.astype(np.int64),
                "item": pd.Series(cols, dtype=object),
                "kind": kinds.astype(np.int8),
            }
        )


def read_listens_df(spark: Any, path: str | os.PathLike[str]) -> Any:
    """``uid sid count`` lines (white space separated) as ``user, item, count`` (summed).

    Duplicate (user, item) lines are summed, as the single-machine reader does.
    """
    from pyspark.sql import functions as F

    path = Path(path)
    files = _files(path, ("*.txt", "*.tsv"))
    text = spark.read.text(files)
    fields = F.split(F.trim(F.col("value")), r"\s+")
    parsed = (
        text.where(F.trim(F.col("value")) != "")
        .select(
            F.size(fields).alias("n"),
            fields.getItem(0).alias("user"),
            fields.getItem(1).alias("item"),
            fields.getItem(2).alias("raw"),
            F.input_file_name().alias("file"),
        )
        .withColumn("count", F.col("raw").try_cast("double"))
    )
    ok = (
        (F.col("n") == 3)
        & F.col("count").isNotNull()
        & (F.col("count") > 0)
        & (F.col("count") == F.floor("count"))
    )
    bad = parsed.where(~ok).select("file").limit(1).collect()
    if bad:
        _raise_first_bad(bad[0]["file"], files)
    if parsed.limit(1).count() == 0:
        raise DataFormatError("the file is empty: no interactions", path=path)
    return parsed.groupBy("user", "item").agg(F.sum("count").alias("count"))


def _raise_first_bad(uri: str, files: list[str]) -> None:
    """Name the file and line of the first malformed record (segue's exact line check)."""
    from segue.data.readers.listens import _first_bad_line

    local = next((f for f in files if uri.endswith(Path(f).name)), files[0])
    found = _first_bad_line(Path(local))
    if found is None:
        raise DataFormatError("a line is not 'uid sid count' with a positive count", path=local)
    raise DataFormatError(found[1], path=local, line=found[0])


def read_parquet_df(
    spark: Any,
    path: str | os.PathLike[str],
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    weight_col: str | None = None,
) -> Any:
    """Parquet with named columns as ``user, item, count`` (weights summed; 1 per row without)."""
    from pyspark.sql import functions as F

    raw = spark.read.parquet(str(path))
    missing = [c for c in (user_col, item_col, weight_col) if c and c not in raw.columns]
    if missing:
        raise DataFormatError(f"missing column(s) {missing}; have {raw.columns}", path=path)
    weight = F.col(weight_col).cast("double") if weight_col else F.lit(1.0)
    frame = raw.select(
        F.col(user_col).cast("string").alias("user"),
        F.col(item_col).cast("string").alias("item"),
        weight.alias("count"),
    )
    bad = frame.where(
        F.col("user").isNull() | F.col("item").isNull() | ~(F.col("count") > 0)
    ).limit(1)
    if bad.count():
        raise DataFormatError("a row with a missing id or a weight that is not positive", path=path)
    return frame.groupBy("user", "item").agg(F.sum("count").alias("count"))


def read_training_df(
    spark: Any,
    *,
    listens: Path | None = None,
    mpd: Path | None = None,
    user_col: str = "user_id",
    item_col: str = "item_id",
    weight_col: str | None = None,
    titles: bool = True,
) -> Any:
    """The one training input ``segue train --engine spark`` was given, as a DataFrame.

    ``titles``: playlist title words become columns (as ``segue train --titles`` on one
    machine, the default there too).
    """
    if mpd is not None:
        return read_mpd_df(spark, mpd, with_titles=titles)
    if listens is None:
        raise DataFormatError("give --listens or --mpd", path=".")
    if Path(listens).suffix == ".parquet" or (
        Path(listens).is_dir() and any(Path(listens).glob("*.parquet"))
    ):
        return read_parquet_df(
            spark, listens, user_col=user_col, item_col=item_col, weight_col=weight_col
        )
    return read_listens_df(spark, listens)
