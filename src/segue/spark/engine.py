"""What ``segue train|recommend|evaluate --engine spark`` run: files in, the usual files out.

Why a separate module: the CLI stays a thin layer and the same three steps can be called from
Python or a notebook on a cluster. Outputs are the single-machine ones: a model directory
(:func:`segue.serialization.save_model`), recommendation lines or the MPD submission CSV
(written by the driver, atomically, in input order), and the metric means.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segue.exceptions import DataFormatError, ParameterError
from segue.spark.session import DEFAULT_MASTER, spark_errors, spark_session

__all__ = ["SPARK_MODELS", "evaluate_spark", "recommend_spark", "train_spark"]

SPARK_MODELS = ("wrmf", "itemknn")
"""Models whose training runs on Spark (ALS; item-item products and top-K)."""


@spark_errors("training")  # Spark's failures as one-line errors
def train_spark(
    model: str,
    params: dict[str, Any],
    out_dir: Path,
    *,
    listens: Path | None = None,
    mpd: Path | None = None,
    master: str = DEFAULT_MASTER,
    user_col: str = "user_id",
    item_col: str = "item_id",
    weight_col: str | None = None,
    titles: bool = True,
) -> float:
    """Train ``model`` on Spark and save it; returns the fit seconds.

    ``titles``: on playlists, title words are columns too (title-only cold start), as on one
    machine.

    ``params`` are the model's hyper-parameters; for WRMF ``reg_param`` (Spark's regParam)
    may be given too (default: see :func:`segue.spark.als.default_reg_param`).
    """
    from segue.models.registry import model_class
    from segue.serialization import save_model
    from segue.spark.collect import to_interactions
    from segue.spark.idmap import encode
    from segue.spark.readers import read_training_df

    if model not in SPARK_MODELS:
        raise ParameterError(
            f"--engine spark trains {' or '.join(SPARK_MODELS)}, not {model!r} "
            "(other models train on one machine: drop --engine)"
        )
    params = dict(params)
    reg_param = params.pop("reg_param", None)
    if reg_param is not None and model != "wrmf":
        raise ParameterError("reg_param is a parameter of Spark's ALS (--model wrmf)")
    estimator = model_class(model)().set_params(**params).validate_params()
    spark = spark_session(master)
    frame = read_training_df(
        spark,
        listens=listens,
        mpd=mpd,
        user_col=user_col,
        item_col=item_col,
        weight_col=weight_col,
        titles=titles,
    )
    users, items, coded = encode(frame, user_kind="playlist" if mpd is not None else "user")
    coded = coded.cache()
    train = to_interactions(users, items, coded)
    if model == "wrmf":
        from segue.spark.als import fit_wrmf

        fitted = fit_wrmf(
            coded, train, estimator, reg_param=None if reg_param is None else float(reg_param)
        )
    else:
        from segue.spark.knn import fit_itemknn

        fitted = fit_itemknn(coded, train, estimator)
    coded.unpersist()
    save_model(fitted, out_dir)
    return float(fitted.fit_seconds_)


@spark_errors("recommending")  # Spark's failures as one-line errors
def recommend_spark(
    model_dir: Path,
    out_file: Path,
    *,
    users: Path | None = None,
    challenge: Path | None = None,
    n: int = 100,
    unknown: str = "fallback",
    team_name: str = "segue",
    email: str = "segue@example.org",
    master: str = DEFAULT_MASTER,
) -> dict[str, int]:
    """Recommend on Spark to every user of ``users`` or every playlist of ``challenge``.

    Writes what ``segue recommend`` writes (``uid sid...`` lines, or the MPD submission CSV),
    rows in input order; returns counts for the log.
    """
    from segue._atomic import atomic_open

    if (users is None) == (challenge is None):
        raise ParameterError("give exactly one of --users or --challenge with --engine spark")
    if unknown not in ("fallback", "skip"):
        raise ParameterError("--engine spark takes --unknown fallback or skip")
    spark = spark_session(master)
    if challenge is not None:
        from segue.metrics.submission import write_mpd_submission
        from segue.spark.scoring import continue_playlists_df

        found = continue_playlists_df(spark, model_dir, challenge, n).orderBy("order")
        rows = [(int(r["pid"]), list(r["tracks"])) for r in found.toLocalIterator()]
        short = [pid for pid, tracks in rows if len(tracks) < n]
        if short:
            raise DataFormatError(
                f"{len(short)} playlists (first: pid {short[0]}) got fewer than {n} tracks "
                "(lower --n)",
                path=challenge,
            )
        write_mpd_submission(out_file, rows, team_name=team_name, email=email, n=n)
        return {"playlists": len(rows)}
    from segue.spark.scoring import recommend_users_df

    targets = _targets_df(spark, users)
    found = recommend_users_df(spark, model_dir, targets, n, unknown=unknown).orderBy("order")
    written = 0
    with atomic_open(out_file) as fh:
        for row in found.toLocalIterator():
            fh.write(" ".join([row["user"], *row["items"]]) + "\n")
            written += 1
    return {"users": written}


def _targets_df(spark: Any, path: Path) -> Any:
    """Target user ids (one per line, as ``segue recommend --users``) with their line order."""
    from pyspark.sql import functions as F

    if not Path(path).is_file():
        raise DataFormatError("no such file", path=path)
    lines = spark.read.text(str(path)).select(F.trim("value").alias("user"))
    numbered = lines.rdd.zipWithIndex().map(lambda p: (int(p[1]), p[0]["user"]))
    frame = spark.createDataFrame(numbered, "order long, user string")
    return frame.where(F.col("user") != "")


@spark_errors("evaluation")  # Spark's failures as one-line errors
def evaluate_spark(
    recs: list[Path],
    answers: Path,
    *,
    ks: list[int] | None = None,
    master: str = DEFAULT_MASTER,
) -> dict[str, dict[str, float]]:
    """Metric means of each recommendation file against ``answers``, computed on Spark.

    MPD ``answers.json`` (of ``segue split mpd``): R-precision (with artist credit when
    ``tracks.parquet`` lies beside it), NDCG and clicks of submission CSVs. Listen answers
    (``uid sid count``): ndcg, recall, precision, map and hit rate at each ``k`` of
    ``uid sid...`` files.
    """
    from segue.metrics.playlist_eval import is_mpd_answers
    from segue.spark import metrics as sm

    spark = spark_session(master)
    out: dict[str, dict[str, float]] = {}
    if is_mpd_answers(answers):
        from segue.metrics.playlist_eval import _track_artists

        truth = sm.read_mpd_answers_df(spark, answers)
        artists = _track_artists(Path(answers).parent / "tracks.parquet")
        for path in recs:
            per = sm.mpd_metrics_df(_submission_df(spark, path), truth, artists)
            out[str(path)] = sm.summary(per, sm.MPD_METRICS)
        return out
    from segue.spark.readers import read_listens_df

    ks = sorted(set(ks or [100]))
    truth = read_listens_df(spark, answers).select("user", "item")
    for path in recs:
        per = sm.listen_metrics_df(_lists_df(spark, path), truth, ks)
        out[str(path)] = sm.summary(per, sm._metric_names(ks))
    return out


def _lists_df(spark: Any, path: Path) -> Any:
    """``uid sid_1 ... sid_n`` lines as ``(user, items)``."""
    from pyspark.sql import functions as F

    if not Path(path).is_file():
        raise DataFormatError("no such file", path=path)
    parts = F.split(F.trim("value"), r"\s+")
    lines = spark.read.text(str(path)).where(F.trim("value") != "")
    return lines.select(parts.getItem(0).alias("user"), F.slice(parts, 2, 1 << 30).alias("items"))


def _submission_df(spark: Any, path: Path) -> Any:
    """An MPD submission CSV (``team_info`` line, then ``pid, uri, ...``) as ``(pid, tracks)``."""
    from pyspark.sql import functions as F

    if not Path(path).is_file():
        raise DataFormatError("no such file", path=path)
    text = spark.read.text(str(path)).select(F.trim("value").alias("line"))
    line = F.col("line")
    rows = text.where((line != "") & ~line.startswith("#") & ~line.startswith("team_info"))
    parts = F.transform(F.split("line", ","), lambda s: F.trim(s))
    frame = rows.select(
        parts.getItem(0).try_cast("long").alias("pid"), F.slice(parts, 2, 1 << 30).alias("tracks")
    )
    bad = frame.where(F.col("pid").isNull()).limit(1).collect()
    if bad:
        raise DataFormatError("a line does not start with a playlist id", path=path)
    dup = frame.groupBy("pid").count().where(F.col("count") > 1).limit(1).collect()
    if dup:
        raise DataFormatError(f"playlist {dup[0]['pid']} has a second line", path=path)
    return frame
