"""``two-stage.toml``: the first-stage models, N, and the ranker's settings, checked strictly.

Example (every key optional; this is the default)::

    n = 1000                  # merged candidates re-ranked per playlist
    per_category = 100        # inner challenge queries per category (the ranker's training)
    folds = 3                 # inner splits with disjoint queries, pooled for the ranker
    valid_fraction = 0.2      # of those, held out for early stopping
    with_titles = true
    task = "auto"             # "mpd", "melon" (tags as items, a tag ranker) or "auto"
    n_tags = 100              # Melon: tag candidates per source for the tag ranker
    fusion = true             # fit per-source weights of the candidate merge
    num_boost_round = 500
    early_stopping_rounds = 30

    [first_stage.userknn]
    model = "userknn"         # a name of `segue train --model`
    [first_stage.itemknn]
    model = "itemknn"
    [first_stage.wrmf]
    model = "wrmf"
    params = { factors = 128 } # any of its parameters; the rest keep their defaults
    [first_stage.popularity]
    model = "popularity"

    [ranker_params]           # LightGBM parameters
    learning_rate = 0.05

Listen counts (``segue train --listens``, ``task = "listens"`` or ``"auto"``): the inner
questions are ``split_listens`` splits (one per fold), and two more keys apply::

    labels = "counts"         # held-out items played at least the median rank higher; or "binary"
    [scorers.ncf]             # models that only score the merged candidates (ranker features)
    model = "ncf"
    params = { epochs = 10 }

An unknown key, an unknown model name or a parameter the model does not have is an error that
names it, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import os
from typing import Any

from segue.config import read_config
from segue.exceptions import DataFormatError, ParameterError
from segue.ranking.training import first_stage_model
from segue.ranking.two_stage import TwoStage

__all__ = ["load_two_stage_config", "two_stage_from_config"]


def two_stage_from_config(doc: dict[str, Any]) -> TwoStage:
    """A :class:`TwoStage` from a parsed config (module docstring); strict about every key."""
    valid = TwoStage.param_names()
    unknown = sorted(set(doc) - set(valid))
    if unknown:
        raise ParameterError(f"unknown two-stage setting(s) {unknown}; valid: {sorted(valid)}")
    kwargs = {k: v for k, v in doc.items() if k != "first_stage"}
    first_stage = None
    if "first_stage" in doc:
        first_stage = {
            name: first_stage_model(name, spec) for name, spec in doc["first_stage"].items()
        }
    return TwoStage(first_stage, **kwargs).validate_params()


def load_two_stage_config(path: str | os.PathLike[str]) -> TwoStage:
    """Read a ``two-stage.toml`` file; syntax errors name the file and line."""
    doc = read_config(path)
    try:
        return two_stage_from_config(doc)
    except ParameterError as exc:
        raise DataFormatError(str(exc), path=path) from None
