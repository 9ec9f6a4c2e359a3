"""Item-item co-occurrence and ItemKNN's top-K neighbours on Spark, same numbers as one machine.

Why this split of work: the expensive part of ItemKNN is the item x item product (every pair
of items a user shares: ``sum_u deg(u)^2`` pairs, billions at MPD scale); Spark does it as a
self-join on the user and a sum per pair. Everything that decides *values* runs the
single-machine code on each partition's NumPy arrays, so the results are the same:

- the entry weights (cosine, tfidf, bm25) come from :func:`segue.models.knn._weigh_rows`'s
  formula with the idf and length statistics computed once and broadcast;
- the similarity of a pair is :meth:`ItemKNN._similarities` (float32, shrinkage);
- the top-K of every item row is :func:`segue.models.knn._top_per_row` on a block of whole
  rows (a row's result depends only on that row, ties included), then the self entry and
  zeros are dropped as in :meth:`ItemKNN._fit`.

Exactness: with binary input (the default) and cosine, every product is an integer count and
the similarity matrix is bit-for-bit the single-machine one. With tfidf/bm25 weights the sums
over users run in another order (float64 on Spark, float32 in SciPy): values agree to float32
rounding, and a neighbour list can differ only where two candidates tie to that precision.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from segue.data.interactions import Interactions
from segue.models.knn import ItemKNN, _csr_from_entries, _top_per_row
from segue.spark.collect import columns_via_parquet, finish_fit

__all__ = ["cooccurrence", "fit_itemknn", "item_similarity_entries"]

_PAIRS_PER_GROUP = 1 << 21  # candidate pairs one top-K call holds (about 50 MiB of pandas)
_PAIRS_PER_PARTITION = 1 << 23  # candidate pairs one task sorts (a few groups)


def cooccurrence(coded: Any) -> Any:
    """``(i, j, n)``: the number of users (playlists) holding both items, ``i != j`` included.

    Each stored (user, item) pair counts once, whatever its value: the product of the binary
    matrix with itself, ``M^T M``, as sparse pairs.
    """
    from pyspark.sql import functions as F

    left = coded.select("u", F.col("i"))
    right = coded.select("u", F.col("i").alias("j"))
    return left.join(right, "u").groupBy("i", "j").agg(F.count(F.lit(1)).alias("n"))


def _entry_weights(
    model: ItemKNN, coded: Any, n_items: int, persisted: list[Any]
) -> tuple[Any, np.ndarray]:
    """Weighted entries ``(i, u, w)`` (w float32 as a float) and the float64 row norms.

    Rows are items, columns users, as in :meth:`ItemKNN._fit`; the idf over users and the
    bm25 length statistics are aggregated on Spark and the weights computed by the NumPy
    formula of :func:`segue.models.knn._weigh_rows`.
    """
    from pyspark.sql import functions as F

    x = F.lit(1.0) if model.binarize else F.col("count")
    entries = coded.select("i", "u", x.cast("double").alias("x"))
    spark = coded.sparkSession
    if model.similarity == "cosine":
        weighted = entries.select("i", "u", F.col("x").alias("w64"))
    else:
        holders = entries.groupBy("u").count().toPandas()
        n_users = int(holders["u"].max()) + 1 if len(holders) else 0
        held = np.zeros(n_users, dtype=np.int64)
        held[holders["u"].to_numpy()] = holders["count"].to_numpy()
        idf = math.log(max(1, n_items)) - np.log1p(held)
        sums = entries.groupBy("i").agg(F.sum("x").alias("s")).toPandas()
        row_sums = np.zeros(n_items, dtype=np.float64)
        row_sums[sums["i"].to_numpy()] = sums["s"].to_numpy()
        mean_length = float(row_sums.sum() / max(1, n_items))
        k1, b = float(model.bm25_k1), float(model.bm25_b)
        length = (1.0 - b) + b * row_sums / (mean_length if mean_length > 0 else 1.0)
        stats = spark.sparkContext.broadcast((idf, length))
        similarity = model.similarity

        def weigh(batches: Any) -> Any:
            idf_, length_ = stats.value
            for frame in batches:
                xs = frame["x"].to_numpy(np.float64)
                cols = frame["u"].to_numpy()
                if similarity == "bm25":
                    rows = frame["i"].to_numpy()
                    w = xs * (k1 + 1.0) / (k1 * length_[rows] + xs) * idf_[cols]
                else:  # tfidf
                    w = np.sqrt(xs) * idf_[cols]
                yield pd.DataFrame({"i": frame["i"], "u": frame["u"], "w64": w})

        weighted = entries.mapInPandas(weigh, "i int, u int, w64 double")
    weighted = weighted.cache()
    persisted.append(weighted)
    squares = weighted.groupBy("i").agg(F.sum(F.col("w64") * F.col("w64")).alias("ss"))
    sq = squares.toPandas()
    norms = np.zeros(n_items, dtype=np.float64)
    norms[sq["i"].to_numpy()] = np.sqrt(sq["ss"].to_numpy())
    # the products use the float32 weights, as SciPy's float32 matrix does
    w32 = weighted.select("i", "u", F.col("w64").cast("float").cast("double").alias("w"))
    return w32, norms


def item_similarity_entries(
    model: ItemKNN, coded: Any, n_items: int, *, persisted: list[Any] | None = None
) -> Any:
    """``(i, j, s)``: ItemKNN's kept neighbours of every item (self entry and zeros dropped).

    The frames it persists on the way (the weighted entries, the pair products) are appended
    to ``persisted``, for the caller to ``unpersist()`` once the result is computed.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    model.validate_params()
    if persisted is None:
        persisted = []  # the caller does not release them: they stay until the session stops
    weights, norms = _entry_weights(model, coded, n_items, persisted)
    left = weights.select("u", "i", F.col("w").alias("wi"))
    right = weights.select("u", F.col("i").alias("j"), F.col("w").alias("wj"))
    # on disk, not in the JVM heap: hundreds of millions of pairs at 100K playlists, read twice
    # (counted, then ranked); in memory they took the execution memory of the top-K's sorts
    products = (
        left.join(right, "u")
        .groupBy("i", "j")
        .agg(F.sum(F.col("wi") * F.col("wj")).alias("dot"))
        .persist(StorageLevel.DISK_ONLY)
    )
    persisted.append(products)
    n_pairs = products.count()
    per_row = max(1.0, n_pairs / max(1, n_items))
    rows_per_group = max(1, int(_PAIRS_PER_GROUP // per_row))
    spark = coded.sparkSession
    shared = spark.sparkContext.broadcast(norms)
    params = model.get_params()
    neighbors = int(model.neighbors)

    def top(frame: pd.DataFrame) -> pd.DataFrame:
        knn = ItemKNN(**params)
        norms_ = shared.value
        rows = frame["i"].to_numpy(np.int64)
        lo = int(rows.min())
        local = rows - lo
        height = int(local.max()) + 1
        products_ = sp.csr_array(
            (
                frame["dot"].to_numpy().astype(np.float32),
                (local, frame["j"].to_numpy(np.int64)),
            ),
            shape=(height, n_items),
        )
        products_.sum_duplicates()
        sims = knn._similarities(products_, norms_[lo : lo + height], norms_)
        kept = _top_per_row(sims, neighbors)
        r = np.repeat(np.arange(height), np.diff(kept.indptr)) + lo
        keep = (r != kept.indices) & (kept.data != 0)
        return pd.DataFrame(
            {"i": r[keep].astype(np.int32), "j": kept.indices[keep], "s": kept.data[keep]}
        )

    grouped = products.withColumn("g", (F.col("i") / rows_per_group).cast("int"))
    # partitions of about _PAIRS_PER_PARTITION pairs: each task sorts its pairs by group before
    # the top-K (applyInPandas), and with Spark's default partition count a task at 100K
    # generated playlists held ~40M pairs and ran out of execution memory in a 4 GiB JVM
    default = int(spark.conf.get("spark.sql.shuffle.partitions"))
    parts = max(default, math.ceil(n_pairs / _PAIRS_PER_PARTITION))
    grouped = grouped.repartition(parts, "g")  # groupBy("g") reuses this partitioning
    return grouped.groupBy("g").applyInPandas(top, "i int, j int, s float")


def fit_itemknn(coded: Any, train: Interactions, model: ItemKNN) -> ItemKNN:
    """Fit ``model`` (its hyper-parameters) with the item-item step on Spark; returns it."""
    started = time.perf_counter()
    n = train.n_items
    persisted: list[Any] = []
    try:
        entries = columns_via_parquet(  # gigabytes at scale: written by the executors, read back
            item_similarity_entries(model, coded, n, persisted=persisted),
            {"i": np.int32, "j": np.int32, "s": np.float32},
        )
    finally:
        for frame in persisted:  # their memory and disk, before the driver builds the matrix
            frame.unpersist()
    similarity = _csr_from_entries(entries["i"], entries["j"], entries["s"], (n, n))
    return finish_fit(model, train, {"similarity_": similarity}, started)
