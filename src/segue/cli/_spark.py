"""The ``--engine`` and ``--spark-master`` options of train, recommend and evaluate.

Kept apart so each command gains two options and one early branch into
:mod:`segue.spark.engine`; nothing here imports pyspark.
"""

from __future__ import annotations

import typer

from segue.exceptions import ParameterError

__all__ = ["EngineOption", "SparkMasterOption", "use_spark"]

EngineOption = typer.Option(
    "--engine", help="local (this machine) or spark (the `spark` extra; see --spark-master)."
)
SparkMasterOption = typer.Option(
    "--spark-master",
    help="Spark master with --engine spark: local[*], local[2], spark://host:7077.",
)


def use_spark(engine: str) -> bool:
    """Whether ``--engine`` asks for Spark (an unknown engine is a one-line error)."""
    if engine not in ("local", "spark"):
        raise ParameterError(f"--engine must be local or spark, got {engine!r}")
    return engine == "spark"
