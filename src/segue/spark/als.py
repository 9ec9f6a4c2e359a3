"""WRMF trained by Spark ML's implicit ALS, saved as a segue :class:`~segue.models.wrmf.WRMF`.

Why Spark's ALS: it is the distributed solver of the Hu-Koren-Volinsky objective that a cluster
already has (``pyspark.ml.recommendation.ALS(implicitPrefs=True)``); segue keeps everything
around it (id maps, fold-in, retrieval, saving).

Mapping of the conventions:

- **confidence**: Spark sets ``c = 1 + alpha * |r|``. segue's WRMF uses ``1 + alpha * count``
  (``confidence="linear"``) or ``1 + alpha * log(1 + count / eps)`` (``"log"``); Spark is given
  ``r = count`` or ``r = log(1 + count / eps)`` and the model's ``alpha``, so every pair gets
  exactly WRMF's confidence.
- **regularisation**: Spark scales ``regParam`` by the number of ratings of the row it solves
  (ALS-WR), segue's ``regularization`` is unscaled. The mapping makes the mean of the scaled
  values over all solved rows equal WRMF's lambda: ``lambda * (users + items) / (2 * nnz)``.
  It is the default for counts (on Last.fm's inner validation it beat 1/64 to 4 times itself).
  On membership data (every count 1: playlists) the scaling regularises popular tracks, rows
  with thousands of ratings, far more than WRMF does, and the default is 1/64 of the mapping:
  on the real MPD split's inner validation (training playlists only) NDCG was 0.283 at 1/64,
  0.282 at 1/16, 0.271 at 1/4, 0.109 at 1 and 0.012 at 4. The resulting gaps to WRMF are
  measured in bench/spark_parity.py.
- the initial factors and the solver (Cholesky on normal equations, not conjugate gradient)
  differ, so the factors are not those of ``implicit``; fold-in of new playlists is WRMF's own
  exact least-squares step, with the unscaled lambda, as for any saved WRMF.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from segue._extras import require
from segue.data.interactions import Interactions
from segue.models.wrmf import WRMF
from segue.spark.collect import arrow_tables, finish_fit

__all__ = ["MEMBERSHIP_REG_MULTIPLE", "als_factors", "default_reg_param", "fit_wrmf"]


MEMBERSHIP_REG_MULTIPLE = 1 / 64  # chosen on inner validation of the MPD (module docstring)


def default_reg_param(
    model: WRMF, n_users: int, n_items: int, nnz: int, *, membership: bool = False
) -> float:
    """Spark ``regParam`` whose mean scaled value over all solved rows is WRMF's lambda.

    With ``membership`` (every count 1) it is :data:`MEMBERSHIP_REG_MULTIPLE` times that.
    """
    mapped = float(model.regularization) * (n_users + n_items) / (2.0 * max(1, nnz))
    return mapped * MEMBERSHIP_REG_MULTIPLE if membership else mapped


def als_factors(
    coded: Any,
    n_users: int,
    n_items: int,
    model: WRMF,
    *,
    reg_param: float,
    block_count: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """User and item factors (float32, in index order) of Spark's implicit ALS on ``coded``."""
    from pyspark.sql import functions as F

    recommendation = require("pyspark.ml.recommendation", "the Spark engine's WRMF")
    if model.confidence == "log":
        rating = F.log1p(F.col("count") / float(model.eps))
    else:
        rating = F.col("count")
    ratings = coded.select("u", "i", rating.cast("float").alias("r"))
    als = recommendation.ALS(
        rank=int(model.factors),
        maxIter=int(model.iterations),
        regParam=float(reg_param),
        alpha=float(model.alpha),
        implicitPrefs=True,
        userCol="u",
        itemCol="i",
        ratingCol="r",
        seed=0 if model.seed is None else int(model.seed),
        coldStartStrategy="nan",
    )
    if block_count:
        als = als.setNumUserBlocks(block_count).setNumItemBlocks(block_count)
    fitted = als.fit(ratings)
    users = _dense(fitted.userFactors, n_users, int(model.factors))
    items = _dense(fitted.itemFactors, n_items, int(model.factors))
    return users, items


def _dense(factors: Any, n: int, rank: int) -> np.ndarray:
    """Spark's ``(id, features)`` factor table as an ``(n, rank)`` float32 array by id."""
    out = np.zeros((n, rank), dtype=np.float32)
    # streamed (see collect.py), 32K rows a chunk: 32 MiB at 256 factors
    for table in arrow_tables(factors.select("id", "features"), rows_per_chunk=1 << 15):
        ids = table.column("id").to_numpy()
        flat = table.column("features").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        out[ids] = flat.reshape(len(ids), rank)
    return out


def fit_wrmf(
    coded: Any,
    train: Interactions,
    model: WRMF,
    *,
    reg_param: float | None = None,
) -> WRMF:
    """Fit ``model`` (its hyper-parameters) with Spark's ALS; returns it fitted.

    ``train`` is the same data collected on the driver (the model's ``history_``).
    """
    started = time.perf_counter()
    model.validate_params()
    if reg_param is None:
        membership = bool(np.all(train.matrix.data == 1))
        reg_param = default_reg_param(
            model, train.n_users, train.n_items, train.nnz, membership=membership
        )
    users, items = als_factors(coded, train.n_users, train.n_items, model, reg_param=reg_param)
    state = {"user_factors_": users, "item_factors_": items}
    return finish_fit(model, train, state, started)
