"""Many users or playlists scored at once on Spark, the model broadcast once per executor.

Why: recommending for 10,000 challenge playlists (or millions of users) is embarrassingly
parallel once every executor holds the model. The saved model directory (safe formats only) is
broadcast as bytes; each Python worker writes it into the application's Spark files folder
(``SparkFiles.getRootDirectory()``, which Spark deletes when the application stops) and loads it
with :func:`segue.load` the first time it needs it (workers are reused between tasks, so once
per worker, not per task). Each partition then calls the model's normal entry points
(``recommend`` for users, :func:`~segue.inference.continuation.continue_playlists` for
playlists), so the lists are the ones the single-machine path writes, row for row.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from segue.exceptions import DataFormatError

__all__ = ["broadcast_model", "continue_playlists_df", "recommend_users_df"]

_LOADED: dict[str, Any] = {}  # per Python worker: model digest -> loaded model


def broadcast_model(spark: Any, model_dir: str | Path) -> tuple[Any, str]:
    """Broadcast the files of a saved model: ``(broadcast of {relative path: bytes}, digest)``."""
    root = Path(model_dir)
    files = {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
    digest = hashlib.sha256()
    for name, data in files.items():
        digest.update(name.encode())
        digest.update(hashlib.sha256(data).digest())
    return spark.sparkContext.broadcast(files), digest.hexdigest()


def _model(shared: Any, digest: str) -> Any:
    """The broadcast model, loaded once per Python worker.

    Its files are written once per application and machine to a folder named by their digest
    (written to a temporary sibling, then renamed), so workers reuse one copy instead of leaving
    one per worker behind (Spark's workers leave by ``os._exit``: no clean-up of theirs runs).
    The folder is inside the application's Spark files folder, which Spark removes when the
    application stops; a copy in the system temp folder would outlive it (hundreds of MB a run).
    """
    model = _LOADED.get(digest)
    if model is None:
        from segue.serialization import load

        folder = _copies_root() / f"segue-model-{digest[:32]}"
        if not folder.is_dir():
            staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
            for name, data in shared.value.items():
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            try:
                os.rename(staging, folder)
            except OSError:  # another worker renamed its copy first: the same bytes
                shutil.rmtree(staging, ignore_errors=True)
        model = load(folder)
        _LOADED.clear()  # one model per worker at a time
        _LOADED[digest] = model
    return model


def _copies_root() -> Path:
    """The running application's Spark files folder (on a worker, or on the driver)."""
    from pyspark import SparkFiles

    return Path(SparkFiles.getRootDirectory())


def recommend_users_df(
    spark: Any, model_dir: str | Path, users: Any, n: int, *, unknown: str = "fallback"
) -> Any:
    """``(order, user, items)`` for a DataFrame ``(order long, user string)`` of target users.

    ``items`` is the list of ``n`` recommended item ids (shorter when the catalogue runs out);
    users without history follow ``unknown`` (``fallback`` or ``skip``), as ``segue recommend``.
    """
    shared, digest = broadcast_model(spark, model_dir)

    def score(batches: Any) -> Any:
        model = _model(shared, digest)
        for frame in batches:
            ids = frame["user"].to_numpy(dtype=object)
            order = frame["order"].to_numpy()
            keep = {u: o for u, o in zip(ids, order, strict=True)}
            for recs in model.iter_recommend(ids, n, unknown=unknown):
                lists = list(recs.lists())
                yield pd.DataFrame(
                    {
                        "order": [keep[u] for u, _ in lists],
                        "user": [str(u) for u, _ in lists],
                        "items": [[str(i) for i in items] for _, items in lists],
                    }
                )

    return users.mapInPandas(score, "order long, user string, items array<string>")


_CHALLENGE_SCHEMA = (
    "playlists array<struct<pid: long, name: string, tracks: array<struct<track_uri: string>>>>"
)


def continue_playlists_df(spark: Any, model_dir: str | Path, challenge: str | Path, n: int) -> Any:
    """``(order, pid, tracks)``: ``n`` tracks continuing every playlist of a challenge set.

    The challenge set (official format) is read by ``spark.read.json``; each partition rebuilds
    its playlists as segue :class:`~segue.data.playlists.Playlists` and calls
    :func:`~segue.inference.continuation.continue_playlists`.
    """
    from pyspark.sql import functions as F

    # an explicit schema: inferred from a file whose playlists all have "tracks": [] (a
    # title-only challenge), tracks would be an array of strings, not of track structs
    raw = spark.read.json(str(challenge), schema=_CHALLENGE_SCHEMA, multiLine=True, mode="FAILFAST")
    if raw.where(F.col("playlists").isNull()).limit(1).count():
        raise DataFormatError("a challenge set without a 'playlists' list", path=challenge)
    rows = raw.select(F.posexplode("playlists").alias("order", "p"))
    tracks = F.coalesce(
        F.transform("p.tracks", lambda t: t["track_uri"]), F.array().cast("array<string>")
    )
    queries = rows.select(
        F.col("order").cast("long").alias("order"),
        F.col("p.pid").cast("long").alias("pid"),
        F.col("p.name").alias("name"),
        tracks.alias("tracks"),
    )
    shared, digest = broadcast_model(spark, model_dir)

    def run(batches: Any) -> Any:
        from segue.data.playlists import Playlists, track_categorical
        from segue.inference.continuation import continue_playlists

        model = _model(shared, digest)
        for frame in batches:
            seeds = [list(t) if t is not None else [] for t in frame["tracks"]]
            lengths = np.array([len(s) for s in seeds], dtype=np.int64)
            pids = frame["pid"].to_numpy(np.int64)
            flat = [t for s in seeds for t in s]
            playlists = Playlists(
                playlists=pd.DataFrame({"pid": pids, "name": frame["name"].to_numpy(object)}),
                entries=pd.DataFrame(
                    {
                        "pid": np.repeat(pids, lengths),
                        "pos": np.concatenate([np.arange(k) for k in lengths] or [[]]).astype(
                            np.int64
                        ),
                        "track": track_categorical(pd.Series(flat, dtype=object)),
                    }
                ),
                tracks=pd.DataFrame({"track": pd.unique(pd.Series(flat, dtype=object))}),
            )
            order = dict(zip(pids.tolist(), frame["order"].tolist(), strict=True))
            for batch in continue_playlists(model, playlists, n):
                yield pd.DataFrame(
                    {
                        "order": [order[int(p)] for p in batch.pids],
                        "pid": [int(p) for p in batch.pids],
                        "tracks": [list(map(str, t)) for t in batch.tracks],
                    }
                )

    return queries.mapInPandas(run, "order long, pid long, tracks array<string>")
