"""A SparkSession sized for segue: bounded driver heap, no UI, few shuffle partitions.

Why a helper: ``pyspark``'s defaults (200 shuffle partitions, a UI on port 4040, a heap as large
as the JVM picks) suit a cluster, not a shared laptop; and a missing Java must be one clear line,
not a Py4J traceback.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from segue._extras import require
from segue.exceptions import MissingExtraError, SegueError

__all__ = ["DEFAULT_MASTER", "SparkFailure", "java_missing_reason", "spark_errors", "spark_session"]

DEFAULT_MASTER = "local[*]"


def java_missing_reason() -> str | None:
    """Why Spark cannot start here (no Java on PATH or JAVA_HOME), or None when it can."""
    home = os.environ.get("JAVA_HOME")
    if home and os.path.exists(os.path.join(home, "bin", "java")):
        return None
    if shutil.which("java"):
        return None
    return "Spark needs a Java runtime (JDK 17 or 21): none on PATH and JAVA_HOME is unset"


class SparkFailure(SegueError):
    """Spark itself failed (a task error, or the JVM died): the CLI prints one line."""


@contextmanager
def spark_errors(what: str) -> Iterator[None]:
    """Turn Spark's and Py4J's failures into one :class:`SparkFailure` line.

    A JVM killed by the out-of-memory killer leaves the driver with "connection refused" from
    Py4J (a network error); the message then says the JVM stopped answering and names the
    likely cause. A Java exception the JVM answered with (``Py4JJavaError``: a failed job, a
    result over ``spark.driver.maxResultSize``) is named by its own message, not by the Py4J
    call around it. Used as a decorator of the engine's entry points (a ``contextmanager`` is
    one).
    """
    try:
        yield
    except SegueError:
        raise
    except Exception as exc:
        py4j = "py4j" in type(exc).__module__
        if not (py4j or isinstance(exc, ConnectionError) or "pyspark" in type(exc).__module__):
            raise
        if isinstance(exc, ConnectionError) or (py4j and type(exc).__name__ != "Py4JJavaError"):
            reason = "the Spark JVM stopped answering (killed, often by the out-of-memory killer)"
        else:
            reason = _java_reason(str(exc)) or repr(exc)
        raise SparkFailure(f"{what} failed on Spark: {reason}") from None


def _java_reason(text: str) -> str:
    """The first line of a Spark/Java error that says what failed, with a hint where known."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    # Py4JJavaError: "An error occurred while calling o42.x." then ": org...Exception: why"
    said = next(
        (x for x in lines if "Exception: " in x or "Error: " in x), lines[0] if lines else ""
    )
    why = said.lstrip(": ")
    if "Exception: " in why:
        why = why.split("Exception: ", 1)[1]
    if "spark.driver.maxResultSize" in why:
        why += (
            "; the result is collected on the driver: a smaller model (fewer neighbours) or a "
            "larger driver (SEGUE_SPARK_DRIVER_MEMORY and spark.driver.maxResultSize)"
        )
    return why[:400]


def spark_session(
    master: str = DEFAULT_MASTER,
    *,
    app_name: str = "segue",
    driver_memory: str | None = None,
    shuffle_partitions: int | None = None,
    conf: dict[str, str] | None = None,
) -> Any:
    """Get (or create) the SparkSession for ``master``.

    Parameters
    ----------
    master
        ``local[*]``, ``local[2]``, ``spark://host:7077``, ``yarn``...
    driver_memory
        JVM heap of the driver (only honoured when this call starts the JVM); default
        ``$SEGUE_SPARK_DRIVER_MEMORY`` or ``4g``.
    shuffle_partitions
        ``spark.sql.shuffle.partitions``; None: 4 per core for ``local[n]``, Spark's 200
        elsewhere.
    conf
        More Spark settings (win over the ones above).
    """
    reason = java_missing_reason()
    if reason is not None:
        raise MissingExtraError(reason)
    pyspark_sql = require("pyspark.sql", "the Spark engine")
    if driver_memory is None:
        driver_memory = os.environ.get("SEGUE_SPARK_DRIVER_MEMORY", "4g")
    if shuffle_partitions is None:
        shuffle_partitions = _local_partitions(master)
    # the executors' Python must be this one (it has segue and its dependencies); the launcher
    # reads the variable, not only the setting
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        pyspark_sql.SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.driver.memory", driver_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.pyspark.python", os.environ["PYSPARK_PYTHON"])
    )
    if shuffle_partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _local_partitions(master: str) -> int | None:
    """4 shuffle partitions per local core (``local[*]``: per CPU), None for a cluster."""
    if not master.startswith("local"):
        return None
    inside = master[len("local") :].strip("[]").split(",")[0]
    if inside in ("", "*"):
        cores = os.cpu_count() or 1
    else:
        try:
            cores = max(1, int(inside))
        except ValueError:
            return None
    return 4 * cores
