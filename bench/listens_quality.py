"""Accuracy of segue's models on real listen counts, in the format of the listen-count task.

For Last.fm hetrec-2k (user, artist, listen count) and the MSD Taste Profile sample
(user, song, play count): a seeded split (``split_listens(seed=0)``: 20% of the users with at
least 10 items become targets, half of each target's items are held out as answers), then

- ``MostPopular`` (items by number of listeners);
- ``EASE`` with its default ``l2`` (250, chosen by ``bench/choose_defaults.py`` on validation);
- ``EASE`` with ``l2`` chosen on a *validation* split carved out of the visible listens only
  (``split_listens`` again, on the visible data), by validation NDCG@100, then refitted on all
  the visible listens. The answers are never used for tuning.

Each model recommends 100 items per target (seen items excluded), scored on the answers with
``segue.metrics.evaluate.evaluate_lists``.

    .venv/bin/python bench/listens_quality.py [--l2-grid 50,100,250,500,1000,2500] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

from segue.data.interactions import Interactions  # noqa: E402
from segue.data.split import split_listens  # noqa: E402
from segue.metrics.evaluate import evaluate_lists  # noqa: E402
from segue.models import EASE, MostPopular  # noqa: E402

K = 100
DATASETS = {
    "lastfm-hetrec-2k": (common.LASTFM, common.load_lastfm),
    "msd-taste-42k": (common.MSD, common.load_msd),
}


def fit_and_evaluate(model, train: Interactions, targets, answers: Interactions) -> dict:
    t0 = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    recs = model.recommend(targets, K)
    rec_s = time.perf_counter() - t0
    ev = evaluate_lists(dict(recs.lists()), answers, (10, K), train=train)
    return {**ev.summary, "fit_s": fit_s, "rec_s": rec_s}


def run_dataset(name: str, df: pd.DataFrame, grid: list[float], val_seed: int):
    split, train, answers = common.task_split(df)
    print(
        f"- {name}: {len(df):,} rows, {df['user_id'].nunique():,} users, "
        f"{df['item_id'].nunique():,} items; visible {train.nnz:,} pairs "
        f"({train.n_users:,} x {train.n_items:,}), {len(split.targets)} targets, "
        f"{len(split.answers):,} answers",
        flush=True,
    )

    # l2 by validation NDCG@100 on a split of the visible listens only
    val = split_listens(split.listens, seed=val_seed)
    val_train = Interactions.from_frame(val.listens, weight="count")
    val_answers = Interactions.from_frame(val.answers, weight="count")
    val_rows = []
    for l2 in grid:
        res = fit_and_evaluate(EASE(l2=l2), val_train, val.targets, val_answers)
        val_rows.append((l2, res[f"ndcg@{K}"], res["fit_s"]))
        print(
            f"  validation l2={l2:g}: NDCG@{K} {res[f'ndcg@{K}']:.4f} (fit {res['fit_s']:.1f} s)",
            flush=True,
        )
    best_l2 = max(val_rows, key=lambda r: r[1])[0]
    if best_l2 in (min(grid), max(grid)) and len(grid) > 1:
        print(f"  note: the pick l2={best_l2:g} is at the edge of the grid", flush=True)

    results = []
    pop = fit_and_evaluate(MostPopular(), train, split.targets, answers)
    results.append(("MostPopular", "weighting=users", pop))
    default_l2 = EASE().l2
    default = fit_and_evaluate(EASE(), train, split.targets, answers)
    results.append(("EASE", f"l2={default_l2:g} (default)", default))
    if best_l2 == default_l2:
        results.append(
            ("EASE", f"l2={default_l2:g} (validation pick = default; same fit)", default)
        )
    else:
        tuned = fit_and_evaluate(EASE(l2=best_l2), train, split.targets, answers)
        results.append(("EASE", f"l2={best_l2:g} (validation pick)", tuned))
    return results, val_rows, len(val.targets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_data_dir_option(parser)
    parser.add_argument(
        "--l2-grid",
        default="50,100,250,500,1000,2500",
        help="comma-separated l2 values tried on the validation split",
    )
    common.add_split_options(parser, list(DATASETS))
    args = parser.parse_args()
    try:
        grid = [float(v) for v in args.l2_grid.split(",") if v.strip()]
    except ValueError:
        parser.error(f"--l2-grid must be numbers separated by commas, got {args.l2_grid!r}")
    if not grid or min(grid) <= 0:
        parser.error("--l2-grid needs at least one positive value")
    names = common.chosen_datasets(parser, args, DATASETS)

    t_all = time.perf_counter()
    print("# Listen-count accuracy on real data\n")
    for line in common.environment_lines():
        print(f"- {line}")
    print(
        f"- split: split_listens(seed=0, target_fraction=0.2, holdout_fraction=0.5, "
        f"min_items=10); validation: split_listens(visible, seed={args.val_seed}); "
        f"l2 grid {grid}; top-{K}, seen items excluded\n",
        flush=True,
    )

    table, val_table = [], []
    for name in names:
        rel, loader = DATASETS[name]
        results, val_rows, n_val = run_dataset(name, loader(args.data_dir), grid, args.val_seed)
        pop_ndcg = results[0][2][f"ndcg@{K}"]
        for model, params, r in results:
            table.append([
                name, model, params,
                f"{r[f'ndcg@{K}']:.4f}", f"{r[f'recall@{K}']:.4f}", f"{r[f'map@{K}']:.4f}",
                f"{r['hit_rate@10']:.4f}", f"{r[f'coverage@{K}']:.4f}",
                f"{r['fit_s']:.2f}", f"{r['rec_s']:.3f}",
                f"{r[f'ndcg@{K}'] / pop_ndcg:.2f}",
            ])  # fmt: skip
            if r["seen_share"] != 0 or r["missing_users"] != 0:
                print(
                    f"WARNING: {name} {model} {params}: seen_share {r['seen_share']}, "
                    f"missing_users {r['missing_users']}"
                )
        best = max(val_rows, key=lambda v: v[1])[0]
        for l2, ndcg, fit_s in val_rows:
            val_table.append(
                [
                    name,
                    f"{l2:g}",
                    n_val,
                    f"{ndcg:.4f}",
                    f"{fit_s:.2f}",
                    "<- picked" if l2 == best else "",
                ]
            )

    print("\n## Test (answers of the seeded split)\n")
    print(
        common.markdown_table(
            [
                "dataset",
                "model",
                "params",
                f"NDCG@{K}",
                f"recall@{K}",
                f"MAP@{K}",
                "hit_rate@10",
                f"coverage@{K}",
                "fit s",
                "recommend s",
                "NDCG / MostPopular",
            ],
            table,
        )
    )
    print("\n## EASE l2 selection (validation split of the visible listens only)\n")
    print(
        common.markdown_table(
            ["dataset", "l2", "validation targets", f"val NDCG@{K}", "fit s", ""], val_table
        )
    )
    print(f"\ntotal time {time.perf_counter() - t_all:.1f} s")


if __name__ == "__main__":
    main()
