"""What comes back to the driver: the training matrix, and a model made fitted from Spark state.

Why the matrix comes back: a segue model carries its training rows (``history_``, the items a
user must not be recommended again) and the cold-start popularity, and the model format stores
them. At the MPD's 66M entries that is 0.5 GB of CSR, well inside one driver; the steps that do
not fit (the ALS solves, the item-item products) stay on the executors.

How it comes back: :func:`arrow_tables`, a partition at a time. ``DataFrame.toArrow()`` collects
everything in one job, and Spark refuses a job whose results pass ``spark.driver.maxResultSize``
(1 GiB by default). Streamed, the limit applies to one partition, and the driver holds the
arrays it keeps plus one chunk. The largest result, ItemKNN's neighbour lists (gigabytes at the
full MPD), goes through Parquet instead (:func:`columns_via_parquet`): at 100K generated
playlists in a 4 GiB local JVM, task results that large were lost from the block manager.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from segue.data.interactions import Interactions, canonical_csr
from segue.data.vocab import IdMap
from segue.exceptions import ParameterError
from segue.models.base import BaseRecommender

__all__ = [
    "arrow_tables",
    "collect_columns",
    "columns_via_parquet",
    "finish_fit",
    "scratch_dir",
    "to_interactions",
]

_ROWS_PER_CHUNK = 1 << 20  # rows per Arrow chunk sent to the driver (about 12 MiB of entries)


def arrow_tables(frame: Any, rows_per_chunk: int = _ROWS_PER_CHUNK) -> Iterator[pa.Table]:
    """``frame``'s rows on the driver as Arrow tables, one partition's chunk at a time.

    The executors write each partition's record batches as Arrow IPC streams of about
    ``rows_per_chunk`` rows (``mapInArrow``); the driver pulls them with ``toLocalIterator``,
    which runs one job per partition, so no job's result is the whole frame.
    """

    def pack(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        pending: list[pa.RecordBatch] = []
        held = 0

        def blob() -> pa.RecordBatch:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, pending[0].schema) as writer:
                for batch in pending:
                    writer.write_batch(batch)
            return pa.RecordBatch.from_pydict({"blob": [sink.getvalue().to_pybytes()]})

        for batch in batches:
            if batch.num_rows:
                pending.append(batch)
                held += batch.num_rows
            if held >= rows_per_chunk:
                yield blob()
                pending, held = [], 0
        if pending:
            yield blob()

    packed = frame.mapInArrow(pack, "blob binary")
    for row in packed.toLocalIterator(prefetchPartitions=False):
        yield pa.ipc.open_stream(row["blob"]).read_all()


def collect_columns(frame: Any, dtypes: dict[str, Any]) -> dict[str, np.ndarray]:
    """The named columns of ``frame`` as NumPy arrays of ``dtypes``, streamed (see above).

    Each chunk is converted as it arrives, so the driver never holds Arrow and NumPy copies of
    the whole frame at once.
    """
    return _columns(arrow_tables(frame.select(*dtypes)), dtypes)


def _columns(tables: Iterator[pa.Table], dtypes: dict[str, Any]) -> dict[str, np.ndarray]:
    """Concatenated NumPy columns of Arrow ``tables``, each chunk converted as it arrives."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in dtypes}
    for table in tables:
        for name, dtype in dtypes.items():
            column = table.column(name).to_numpy(zero_copy_only=False)
            parts[name].append(np.asarray(column).astype(dtype, copy=False))
    return {
        name: np.concatenate(chunks) if chunks else np.empty(0, dtype=dtypes[name])
        for name, chunks in parts.items()
    }


def scratch_dir() -> Path:
    """Where executors write results for the driver: ``$SEGUE_SPARK_SCRATCH`` or the temp dir.

    On a cluster this must be a folder the driver and every executor see (a shared mount),
    like the inputs.
    """
    return Path(os.environ.get("SEGUE_SPARK_SCRATCH") or tempfile.gettempdir())


def columns_via_parquet(frame: Any, dtypes: dict[str, Any]) -> dict[str, np.ndarray]:
    """Like :func:`collect_columns`, through Parquet files the executors write.

    The files go to a fresh folder under :func:`scratch_dir`, are read back by row group
    (converted chunk by chunk, as above) and removed, whatever happens.
    """
    import pyarrow.parquet as pq

    master = frame.sparkSession.sparkContext.master
    if not master.startswith("local") and not os.environ.get("SEGUE_SPARK_SCRATCH"):
        raise ParameterError(
            f"on a cluster ({master}) set SEGUE_SPARK_SCRATCH to a folder the driver and every "
            "executor see (a shared mount): results too large to send back are written there"
        )
    folder = scratch_dir() / f"segue-spark-{uuid.uuid4().hex}"
    try:
        frame.select(*dtypes).write.parquet(folder.resolve().as_uri())  # file:, not fs.defaultFS
        groups = (
            handle.read_row_group(group, columns=list(dtypes))
            for handle in map(pq.ParquetFile, sorted(folder.glob("*.parquet")))
            for group in range(handle.num_row_groups)
        )
        return _columns(groups, dtypes)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def to_interactions(users: IdMap, items: IdMap, coded: Any) -> Interactions:
    """The coded ``(u, i, count)`` DataFrame as segue :class:`Interactions` (streamed)."""
    got = collect_columns(coded, {"u": np.int32, "i": np.int32, "count": np.float32})
    rows, cols, values = got["u"], got["i"], got["count"]
    shape = (len(users), len(items))
    matrix = canonical_csr(sp.coo_array((values, (rows, cols)), shape=shape).tocsr(), shape)
    return Interactions(users, items, matrix)


def finish_fit(
    model: BaseRecommender, train: Interactions, state: dict[str, Any], started: float
) -> BaseRecommender:
    """Make ``model`` fitted with learned ``state`` computed elsewhere (on Spark).

    Sets what :meth:`BaseRecommender.fit` sets around ``_fit`` (training view, items, fit
    time), so the model saves, loads and serves like one fitted on one machine.
    """
    model.validate_params()
    for name in list(model.learned_state()):
        delattr(model, name)
    model._set_training_view(train)
    for name, value in state.items():
        setattr(model, name, value)
    model.items_ = train.items
    model.fit_seconds_ = time.perf_counter() - started
    model.check_state()
    return model
