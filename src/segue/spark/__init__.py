"""Spark engine: segue's heavy steps on Apache Spark when a catalogue outgrows one machine.

Everything here runs on ``pyspark`` (the ``spark`` extra) and writes the same artefacts as the
single-machine path: a model trained on Spark is a normal segue model directory (served by
``segue serve``, read by :func:`segue.load`), recommendations are the same files, metrics the
same numbers. One idea per module:

- :mod:`~segue.spark.session`: a bounded local (or cluster) SparkSession;
- :mod:`~segue.spark.readers`: MPD slices, listen counts and Parquet straight into DataFrames;
- :mod:`~segue.spark.idmap`: deterministic distributed id maps, returned as segue id maps;
- :mod:`~segue.spark.als`: WRMF by Spark ML's implicit ALS, saved as a segue WRMF model;
- :mod:`~segue.spark.knn`: item-item co-occurrence and ItemKNN's top-K neighbours;
- :mod:`~segue.spark.scoring`: many users or playlists scored at once, the model broadcast once;
- :mod:`~segue.spark.metrics`: NDCG/recall@k and the MPD metrics per partition;
- :mod:`~segue.spark.engine`: what ``segue train|recommend|evaluate --engine spark`` call.

Nothing here imports pyspark at ``import segue`` time.
"""
