"""Id maps built on Spark: distinct ids, sorted, numbered by ``zipWithIndex``; deterministic.

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
    always get the same numbers.
    """
    spark = frame.sparkSession
    distinct = frame.select(column).distinct().orderBy(column)
    numbered = distinct.rdd.zipWithIndex().map(lambda pair: (pair[0][0], int(pair[1])))
    schema = f"{column} {distinct.schema[column].dataType.simpleString()}, {index} int"
    table = spark.createDataFrame(numbered, schema).cache()
    ids = table.orderBy(index).select(column).toPandas()[column].to_numpy()
    if ids.dtype != object:  # numeric ids (MPD pids) stay numbers, as Python ints
        ids = np.asarray(ids.tolist(), dtype=object)
    return IdMap(ids, kind=kind), table


def encode(frame: Any, *, user_kind: str = "user") -> tuple[IdMap, IdMap, Any]:
    """``(users, items, DataFrame(u int, i int, count double))`` from ``user, item, count``.

    The id tables are joined back (broadcast when they are small, a shuffle join otherwise).
    """
    users, user_table = index_column(frame, "user", "u", kind=user_kind)
    items, item_table = index_column(frame, "item", "i", kind="item")
    coded = frame.join(user_table, "user").join(item_table, "item").select("u", "i", "count")
    return users, items, coded
