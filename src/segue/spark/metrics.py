"""Evaluation on Spark: each partition runs segue's own metric functions, Spark averages.

Why per partition: a metric of one user (playlist) depends only on that user's list and
answers, so a partition of users computes exactly the per-user values of the single-machine
evaluation (:func:`segue.metrics.ranking.all_metrics`, :func:`segue.metrics.challenges.
mpd_metrics`); only the mean is Spark's (a float64 sum in another order: equal to the last
digits). Users with answers but no list count as all misses, as in ``segue evaluate``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

MPD_METRICS = ("r_precision", "ndcg", "clicks")

__all__ = ["MPD_METRICS", "listen_metrics_df", "mpd_metrics_df", "read_mpd_answers_df", "summary"]


def _metric_names(ks: Sequence[int]) -> list[str]:
    return [
        f"{m}@{k}" for k in sorted(ks) for m in ("ndcg", "recall", "precision", "map", "hit_rate")
    ]


def listen_metrics_df(recs: Any, answers: Any, ks: Sequence[int] = (100,)) -> Any:
    """Per-user metrics: ``recs (user, items array)`` against ``answers (user, item)``.

    Returns ``user`` and one double column per metric (``ndcg@k``, ``recall@k``,
    ``precision@k``, ``map@k``, ``hit_rate@k``).
    """
    from pyspark.sql import functions as F

    kmax = max(ks)
    truth = answers.groupBy("user").agg(F.collect_list("item").alias("truth"))
    joined = truth.join(recs.select("user", "items"), "user", "left")
    names = _metric_names(ks)

    def score(batches: Any) -> Any:
        from segue.metrics.ranking import all_metrics

        for frame in batches:
            lists = [[] if r is None else list(r)[:kmax] for r in frame["items"]]
            answers_ = [list(t) for t in frame["truth"]]
            matrix, truth_csr = _encode(lists, answers_, kmax)
            out = {"user": frame["user"]}
            for k in sorted(ks):
                out.update(all_metrics(matrix, truth_csr, k))
            yield pd.DataFrame(out)[["user", *names]]

    schema = "user string, " + ", ".join(f"`{n}` double" for n in names)
    return joined.mapInPandas(score, schema)


def _encode(lists: list[list[Any]], truth: list[list[Any]], k: int) -> tuple[Any, Any]:
    """Local integer coding of one partition's lists and answers (``-1`` pads short lists)."""
    flat_truth = [t for row in truth for t in row]
    codes, vocab = pd.factorize(pd.Series(flat_truth + [i for r in lists for i in r], dtype=object))
    n_truth = len(flat_truth)
    truth_codes, rec_codes = codes[:n_truth], codes[n_truth:]
    lengths = np.array([len(r) for r in lists], dtype=np.int64)
    matrix = np.full((len(lists), k), -1, dtype=np.int64)
    rows = np.repeat(np.arange(len(lists)), lengths)
    cols = np.arange(len(rec_codes)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    matrix[rows, cols] = rec_codes
    t_len = np.array([len(t) for t in truth], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(t_len)])
    csr = sp.csr_array(
        (np.ones(n_truth, dtype=np.float32), truth_codes, indptr), shape=(len(truth), len(vocab))
    )
    csr.sum_duplicates()
    return matrix, csr


def read_mpd_answers_df(spark: Any, path: Any) -> Any:
    """``answers.json`` of ``segue split mpd`` as ``(pid long, truth array<string>)``."""
    from pyspark.sql import functions as F

    raw = spark.read.json(str(path), multiLine=True, mode="FAILFAST")
    return raw.select(F.explode("playlists").alias("p")).select(
        F.col("p.pid").cast("long").alias("pid"), F.col("p.tracks").alias("truth")
    )


def mpd_metrics_df(
    recs: Any, answers: Any, track_artist: Mapping[str, str] | None = None, k: int = 500
) -> Any:
    """Per-playlist R-precision, NDCG and clicks of ``recs (pid, tracks)``.

    Against ``answers (pid, truth)``; ``track_artist`` (broadcast) gives R-precision its
    artist credit.
    """
    spark = recs.sparkSession
    shared = spark.sparkContext.broadcast(dict(track_artist) if track_artist else None)
    joined = answers.join(recs.select("pid", "tracks"), "pid", "left")

    def score(batches: Any) -> Any:
        from segue.metrics.challenges import mpd_metrics

        for frame in batches:
            lists = [[] if r is None else list(r) for r in frame["tracks"]]
            values = mpd_metrics(lists, [list(t) for t in frame["truth"]], shared.value, k=k)
            values.insert(0, "pid", frame["pid"].to_numpy())
            yield values.reset_index(drop=True)

    schema = "pid long, " + ", ".join(f"{m} double" for m in MPD_METRICS)
    return joined.mapInPandas(score, schema)


def summary(per_user: Any, metrics: Sequence[str]) -> dict[str, float]:
    """Means on Spark (NaN, a user without answers, is skipped as ``numpy.nanmean`` does)."""
    from pyspark.sql import functions as F

    cols = [F.avg(F.when(~F.isnan(F.col(f"`{m}`")), F.col(f"`{m}`"))).alias(m) for m in metrics]
    row = per_user.agg(*cols, F.count(F.lit(1)).alias("users")).collect()[0]
    return {name: float(row[name]) for name in [*metrics, "users"]}
