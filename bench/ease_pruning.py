"""What EASE's item pruning and ridge back-fill cost on Last.fm hetrec-2k (issue 18).

On the listen-count task's split (``split_listens(seed=0)``), fits of ``EASE(l2=500)``:
``max_items=--kept`` with ``backfill_neighbors=0`` (pruned items are never recommended);
``max_items=--kept`` with the default back-fill (each pruned item's column regressed on the
kept items, its 200 largest weights kept); and with ``--full`` the full model (the same fit as
the README's "EASE, l2=500 (default)" row of ``bench/listens_quality.py``). Prints fit time
(best of ``--repeat``) and NDCG@100 on the answers for each.

    .venv/bin/python bench/ease_pruning.py [--kept 4000] [--repeat 3] [--full] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

from segue.metrics.evaluate import evaluate_lists  # noqa: E402
from segue.models import EASE  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_data_dir_option(parser)
    parser.add_argument("--kept", type=int, default=4000, help="max_items of the pruned fits")
    parser.add_argument("--repeat", type=int, default=3, help="fits per variant (best time)")
    parser.add_argument("--full", action="store_true", help="also fit the full model")
    args = parser.parse_args()
    common.require_file(args.data_dir, common.LASTFM)
    split, train, answers = common.task_split(common.load_lastfm(args.data_dir))
    print("# EASE pruning and back-fill on Last.fm hetrec-2k\n")
    for line in common.environment_lines():
        print(f"- {line}")
    print(f"- split_listens(seed=0): {train.n_users:,} users x {train.n_items:,} items\n")
    variants = {
        **({"full": {}} if args.full else {}),
        f"max_items={args.kept}, no back-fill": {"max_items": args.kept, "backfill_neighbors": 0},
        f"max_items={args.kept}, back-fill (default 200)": {"max_items": args.kept},
    }
    rows = []
    for name, params in variants.items():
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            model = EASE(l2=500.0, **params).fit(train)
            times.append(time.perf_counter() - t0)
        recs = model.recommend(split.targets, 100)
        ndcg = evaluate_lists(dict(recs.lists()), answers, [100], train=train).summary["ndcg@100"]
        rows.append([name, f"{len(model.kept_items_):,}", f"{min(times):.2f}", f"{ndcg:.4f}"])
        print(f"  {name}: fit {[round(t, 2) for t in times]} s, NDCG@100 {ndcg:.4f}", flush=True)
    print()
    print(common.markdown_table(["variant", "items kept", "fit s (best)", "NDCG@100"], rows))


if __name__ == "__main__":
    main()
