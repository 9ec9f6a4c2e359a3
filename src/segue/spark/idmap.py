"""Id maps built on Spark: distinct ids, sorted, numbered by ``zipWithIndex``; deterministic.

Playlist item columns carry a ``kind`` (track, title word, whole title: see
:mod:`segue.data.kinds`); they are sorted by kind, then id, so the tracks come first as on one
machine, and the saved vocabulary records every column's kind.

Why sorted ids: the single-machine path numbers ids in order of first appearance, which on a
cluster depends on how the files were split into tasks; the sorted order does not, so two runs
(or two clusters) give the same model files. Only the distinct ids reach the driver, which
needs them anyway for the saved :class:`~segue.data.vocab.IdMap` (the model format is the
single-machine one, so ``segue serve`` and :func:`segue.load` read a Spark-trained model).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from segue.data.vocab import IdMap

__all__ = ["encode", "index_column"]


def index_column(frame: Any, column: str, index: str, *, kind: str) -> tuple[IdMap, Any]:
    """Number the distinct values of ``column``: ``(IdMap, DataFrame(column, index))``.

    The values are sorted (a range-partitioned global sort) and numbered ``0..n-1`` by
    ``zipWithIndex``, whose numbering follows the partitions of the sorted data: the same ids
    always get the same numbers. With a ``kind`` column in ``frame`` the sort is by kind, then
    value; a value seen with two kinds keeps the smaller (a track), as one machine's
    vocabulary does.
    """
    from pyspark.sql import functions as F

    spark = frame.sparkSession
    kinds = "kind" in frame.columns
    if kinds:
        distinct = frame.groupBy(column).agg(F.min("kind").alias("kind")).orderBy("kind", column)
    else:
        distinct = frame.select(column).distinct().orderBy(column)
    numbered = distinct.rdd.zipWithIndex().map(lambda pair: (*pair[0], int(pair[1])))
    schema = f"{column} {distinct.schema[column].dataType.simpleString()}"
    schema += ", kind tinyint" if kinds else ""
    table = spark.createDataFrame(numbered, f"{schema}, {index} int").cache()
    local = table.orderBy(index).select(column, *(["kind"] if kinds else [])).toPandas()
    ids = local[column].to_numpy()
    if ids.dtype != object:  # numeric ids (MPD pids) stay numbers, as Python ints
        ids = np.asarray(ids.tolist(), dtype=object)
    codes = local["kind"].to_numpy(np.uint8) if kinds else None
    return IdMap(ids, kind=kind, kinds=codes), table.select(column, index)


def encode(frame: Any, *, user_kind: str = "user") -> tuple[IdMap, IdMap, Any]:
    """``(users, items, DataFrame(u int, i int, count double))`` from ``user, item, count``.

    An optional ``kind`` column gives the item vocabulary its column kinds (see above).

    The id tables are joined back (broadcast when they are small, a shuffle join otherwise).
    """
    users, user_table = index_column(frame.select("user"), "user", "u", kind=user_kind)
    item_columns = ["item", "kind"] if "kind" in frame.columns else ["item"]
    items, item_table = index_column(frame.select(*item_columns), "item", "i", kind="item")
    coded = frame.join(user_table, "user").join(item_table, "item").select("u", "i", "count")
    return users, items, coded
