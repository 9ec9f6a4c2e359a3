"""Ranker settings of the listen-count two-stage model, compared on validation only.

Every variant is ``bench/two_stage_listens.py``'s two-stage model (its ``--picks recorded``
sources, ``n=200``, 300 rounds) with some settings changed, fit on the visible listens of the
validation split (``split_listens`` of the task split's visible listens, seed 0) and scored on
that validation split's answers: never on the test answers. This is how the bench's 5 folds and
the listen-count ranker trees (``segue.ranking.listens.LISTEN_RANKER_PARAMS``) were chosen
(bench/README.md, "Ranker settings, chosen on validation").

``fill`` is an ablation of a feature idea, not a setting of the model: every source scores every
merged candidate (its full ``score`` gathered at the pairs) instead of leaving NaN where it did
not retrieve the pair; it patches ``segue.ranking.listens.retrieve_listen_candidates``.

    .venv/bin/python bench/two_stage_listens_variants.py                  # every variant, both sets
    .venv/bin/python bench/two_stage_listens_variants.py --datasets msd-taste-42k \\
        --variants "5 folds, small trees;5 folds, playlist trees"         # ;-separated names
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402
import cf_quality as cfq  # noqa: E402
import two_stage_listens as tsl  # noqa: E402

import segue.ranking.listens as listens  # noqa: E402

PLAYLIST_TREES = {"num_leaves": 63, "min_data_in_leaf": 50}  # the playlist ranker's
SMALL = {"num_leaves": 15, "min_data_in_leaf": 100}
TINY = {"num_leaves": 7, "min_data_in_leaf": 200}
VARIANTS: dict[str, dict[str, Any]] = {
    "1 fold, playlist trees": {"folds": 1, "ranker_params": PLAYLIST_TREES},
    "3 folds, playlist trees": {"folds": 3, "ranker_params": PLAYLIST_TREES},
    "5 folds, playlist trees": {"folds": 5, "ranker_params": PLAYLIST_TREES},
    "3 folds, small trees": {"folds": 3, "ranker_params": SMALL},
    "5 folds, small trees": {"folds": 5, "ranker_params": SMALL},
    "3 folds, tiny trees": {"folds": 3, "ranker_params": TINY},
    "3 folds, small trees, 500 candidates": {"folds": 3, "n": 500, "ranker_params": SMALL},
    "3 folds, small trees, binary labels": {
        "folds": 3, "labels": "binary", "ranker_params": SMALL,
    },
    "3 folds, small trees, rank_xendcg": {
        "folds": 3, "ranker_params": {**SMALL, "objective": "rank_xendcg"},
    },
    "3 folds, small trees, feature_fraction 0.7, lambda_l2 10": {
        "folds": 3, "ranker_params": {**SMALL, "feature_fraction": 0.7, "lambda_l2": 10},
    },
    "5 folds, small trees, learning rate 0.02, 1000 rounds": {
        "folds": 5, "num_boost_round": 1000, "early_stopping_rounds": 50,
        "ranker_params": {**SMALL, "learning_rate": 0.02},
    },
    "5 folds, small trees, bagging 0.7, feature_fraction 0.8": {
        "folds": 5,
        "ranker_params": {**SMALL, "bagging_fraction": 0.7, "bagging_freq": 1,
                          "feature_fraction": 0.8},
    },
    "5 folds, small trees, rank_xendcg": {
        "folds": 5, "ranker_params": {**SMALL, "objective": "rank_xendcg"},
    },
    "5 folds, small trees, 500 candidates": {"folds": 5, "n": 500, "ranker_params": SMALL},
    "5 folds, small trees, every source scores every candidate": {
        "folds": 5, "ranker_params": SMALL, "fill": True,
    },
}  # fmt: skip

_retrieve = listens.retrieve_listen_candidates
_fill = {"on": False}


def _retrieve_filled(models, user_idx, rows, n, n_per_source, *, mask, weights=None):
    """The library's retrieval, then (when ``fill`` is on) every source's score at every pair."""
    cands = _retrieve(models, user_idx, rows, n, n_per_source, mask=mask, weights=weights)
    if _fill["on"]:
        q, it = cands.query.astype(np.int64), cands.item.astype(np.int64)
        for j, name in enumerate(cands.sources):
            scores = np.asarray(models[name].score(user_idx, rows), dtype=np.float32)
            cands.score[:, j] = scores[q, it]
    return cands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=common.DEFAULT_DATA_DIR)
    parser.add_argument("--datasets", default=",".join(tsl.DATASETS))
    parser.add_argument("--variants", default=";".join(VARIANTS), help="names, ;-separated")
    args = parser.parse_args(argv)
    names = [v.strip() for v in args.variants.split(";") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    listens.retrieve_listen_candidates = _retrieve_filled
    print("| dataset | variant | val NDCG@100 | val recall@100 | inner recall@n | fit s |")
    print("|---|---|---|---|---|---|")
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        _, load = tsl.DATASETS[name]
        _, train, _ = common.task_split(load(args.data_dir))
        vsplit, vtrain, vanswers = cfq.validation_split(train, 0)
        picks = tsl.source_picks({k: v[0] for k, v in tsl.RECORDED[name].items() if k != "knn"})
        for label in names:
            settings = dict(VARIANTS[label])
            _fill["on"] = bool(settings.pop("fill", False))
            model = tsl.two_stage(picks, settings)
            start = time.perf_counter()
            res = tsl.evaluate_model(model, vtrain, vsplit.targets, vanswers)
            print(
                f"| {name} | {label} | {res[tsl.METRIC]:.4f} | {res[f'recall@{tsl.K}']:.4f} | "
                f"{model.inner_recall_:.4f} | {time.perf_counter() - start:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
