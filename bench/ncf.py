"""NCF measured honestly: full-catalogue ranking on Last.fm against its own dot product and WRMF.

He et al. (2017) evaluated NCF by ranking each held-out item among 100 sampled negatives;
Rendle et al. (2020) showed that such sampled metrics flatter it and that a tuned dot product
beats it under full ranking. This script ranks the *whole* catalogue for every target (seen
items excluded), on the seeded split of ``bench/listens_quality.py`` (Last.fm hetrec-2k,
``split_listens(df, seed=0)``), for

- ``NCF`` (NeuMF: GMF + MLP towers, fused), and the dot product of **its own GMF part** (the
  trained NeuMF's GMF user and item vectors and output weights, MLP dropped);
- ``NCF(towers="gmf")``: the GMF tower trained alone (a dot product learned with NCF's loss
  and sampler);
- ``WRMF``, ``EASE`` and popularity.

Every parameter is picked on a validation split carved out of the visible listens only
(``segue.tuning.grid_search``: ``split_listens(visible, seed=--val-seed)``), refit on all the
visible listens, and scored once on the answers. The neural models stop early on their own
holdout carved from their training rows. Printed per model: NDCG@100, recall@100, fit seconds,
epochs, seconds per epoch and the seconds to score every target against the whole catalogue
(torch on one thread: on a busy 2-core machine, two threads made an NCF epoch 20x slower).

    .venv/bin/python bench/ncf.py [--data-dir DIR] [--val-seed 0] [--quick]
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

from segue.data.interactions import Interactions  # noqa: E402
from segue.metrics.evaluate import evaluate_lists  # noqa: E402
from segue.models import EASE, NCF, WRMF, MostPopular  # noqa: E402
from segue.models.topk import topk  # noqa: E402
from segue.tuning import grid_search  # noqa: E402

K = 100
METRIC = f"ndcg@{K}"
NCF_FIXED = {"epochs": 30, "patience": 3, "validation_rows": 300}
MODELS: list[tuple[str, type, dict[str, list[Any]], dict[str, Any]]] = [
    ("MostPopular", MostPopular, {"weighting": ["users"]}, {}),
    ("EASE", EASE, {"l2": [250.0, 500.0]}, {}),
    ("WRMF", WRMF, {"factors": [64, 128], "alpha": [1.0, 2.0], "regularization": [10.0, 30.0]},
     {}),
    ("NCF (NeuMF)", NCF, {"l2": [0.0, 0.001]}, {**NCF_FIXED, "lr": 0.005}),
    ("NCF GMF tower alone", NCF, {"l2": [0.0, 0.001]},
     {**NCF_FIXED, "lr": 0.005, "factors": 64, "towers": "gmf"}),
]  # fmt: skip


QUICK_NCF = {"lr": 0.005, "l2": 0.001, "epochs": 10, "patience": 2, "validation_rows": 200}
QUICK: list[tuple[str, type, dict[str, Any]]] = [
    # bench/cf_quality.py's validation picks on the same validation split (bench/README.md)
    ("MostPopular", MostPopular, {"weighting": "users"}),
    ("EASE", EASE, {"l2": 250.0}),
    ("WRMF", WRMF, {"factors": 128, "alpha": 1.0, "regularization": 30.0}),
    # NCF: lr and l2 from a look at the validation split (no grid here); epochs by early
    # stopping on the model's own holdout carved from its training rows
    ("NCF (NeuMF)", NCF, QUICK_NCF),
    ("NCF GMF tower alone", NCF, {**QUICK_NCF, "factors": 64, "towers": "gmf"}),
]


def log(line: str) -> None:
    print(line, flush=True)


def gmf_part_lists(model: NCF, train: Interactions, targets) -> tuple[dict, float]:
    """Top-K of the trained NeuMF's GMF part alone: ``p_u . (q_i * h_gmf) + b``."""
    w = model.weights_
    f = int(model.factors)
    t0 = time.perf_counter()
    rows = train.users.numbers(np.asarray(targets, dtype=object))
    item_side = w["item_gmf.weight"] * w["out.weight"][0, :f]
    scores = w["user_gmf.weight"][rows] @ item_side.T + w["out.bias"][0]
    items, _ = topk(scores.astype(np.float32), K, exclude=train.matrix[rows])
    seconds = time.perf_counter() - t0
    ids = train.items.ids
    return {u: ids[r[r >= 0]].tolist() for u, r in zip(targets, items, strict=True)}, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_data_dir_option(parser)
    parser.add_argument("--val-seed", type=int, default=0, help="seed of the validation split")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="no grids: bench/cf_quality.py's validation picks and one NCF setting (busy machine)",
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    t_all = time.perf_counter()
    df = common.load_lastfm(args.data_dir)
    split, train, answers = common.task_split(df)
    log("# NCF under full ranking (Last.fm hetrec-2k)\n")
    for line in common.environment_lines():
        log(f"- {line}")
    log(f"- torch {torch.__version__}, {torch.get_num_threads()} thread")
    log(
        f"- split: split_listens(seed=0): visible {train.nnz:,} pairs ({train.n_users:,} x "
        f"{train.n_items:,}), {len(split.targets)} targets, {answers.nnz:,} answers; tuning: "
        f"grid_search on split_listens(visible, seed={args.val_seed}); top-{K} of the whole "
        "catalogue, seen items excluded\n"
    )
    rows = []

    def add(name: str, params: dict, val: float | None, ev: dict, extra: dict) -> None:
        rows.append([
            name, ", ".join(f"{k}={v}" for k, v in params.items()) or "-",
            "-" if val is None else f"{val:.4f}", f"{ev[METRIC]:.4f}", f"{ev[f'recall@{K}']:.4f}",
            f"{extra['fit_s']:.1f}", extra.get("epochs", "-"), extra.get("s_epoch", "-"),
            f"{extra['score_s']:.2f}",
        ])  # fmt: skip
        log(f"  test {name} ({params}): {METRIC} {ev[METRIC]:.4f}, recall {ev[f'recall@{K}']:.4f}")

    runs = (
        [(name, cls, None, params) for name, cls, params in QUICK]
        if args.quick
        else [(name, cls, grid, fixed) for name, cls, grid, fixed in MODELS]
    )
    for name, cls, grid, fixed in runs:
        val: float | None = None
        if grid is None:
            best_params, grid = dict(fixed), dict(fixed)
        else:
            t0 = time.perf_counter()
            res = grid_search(train, cls, grid, fixed=fixed, k=K, metric=METRIC, seed=args.val_seed)
            val = float(res.table[METRIC].iloc[0])
            best_params = res.best_params
            log(
                f"  {name}: {len(res.table)} grid points ({time.perf_counter() - t0:.0f} s), "
                f"pick { {k: best_params[k] for k in grid} }, val {METRIC} {val:.4f}"
            )
        model = cls(**best_params)
        t0 = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        lists = dict(model.recommend(split.targets, K).lists())
        score_s = time.perf_counter() - t0
        ev = evaluate_lists(lists, answers, (K,), train=train).summary
        extra: dict[str, Any] = {"fit_s": fit_s, "score_s": score_s}
        if isinstance(model, NCF):
            extra["epochs"] = model.epochs_trained_
            extra["s_epoch"] = f"{model.seconds_per_epoch_:.1f}"
        params = {k: best_params[k] for k in grid}
        add(name, params, val, ev, extra)
        if isinstance(model, NCF) and model.towers == "neumf":
            lists, score_s = gmf_part_lists(model, train, split.targets)
            ev = evaluate_lists(lists, answers, (K,), train=train).summary
            add("NeuMF's own GMF part (dot product)", params, None, ev,
                {"fit_s": 0.0, "score_s": score_s})  # fmt: skip
    headers = ["model", "picked on validation", f"val {METRIC}", f"test {METRIC}",
               f"recall@{K}", "fit s", "epochs", "s/epoch", "score s (all targets)"]  # fmt: skip
    log("\n" + common.markdown_table(headers, rows))
    log(f"\n(total {time.perf_counter() - t_all:.0f} s)")


if __name__ == "__main__":
    main()
