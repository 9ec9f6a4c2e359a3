"""EASE by gradient descent (``solver="gd"``) against the closed form on the same questions.

Last.fm hetrec-2k restricted to its ``--items`` most-listened artists; 500 users hide a random
20% of their artists (``segue.nn.holdout.carve_holdout``, seed 1). Both solvers fit the rest
with the same ``l2`` and are scored by NDCG@100 on the hidden artists; the gradient solver at
several epoch counts (256 rows per step, Adam at ``--lr``), with seconds per epoch.

    .venv/bin/python bench/ease_gd.py [--items 2000] [--l2 200] [--epochs 10,25] [--lr 1e-3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

from segue import EASE, Interactions  # noqa: E402
from segue.metrics.ranking import ndcg_at_k  # noqa: E402
from segue.nn.holdout import carve_holdout  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_data_dir_option(parser)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--l2", type=float, default=200.0)
    parser.add_argument("--epochs", default="10,25")
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    df = common.load_lastfm(args.data_dir)
    top = df["item_id"].value_counts().index[: args.items]
    df = df[df["item_id"].isin(top)]
    full = Interactions.from_frame(df, weight="count")
    holdout = carve_holdout(full.matrix, n_rows=500, seed=1)
    train = Interactions(full.users, full.items, sp.csr_array(holdout.train, dtype=np.float32))
    queries = sp.csr_array(holdout.train[holdout.rows])
    print(f"Last.fm, {train.n_users} users x {train.n_items} artists, l2={args.l2:g}")

    def ndcg(model: EASE) -> float:
        items, _ = model.recommend_idx(holdout.rows, queries, 100)
        return float(np.nanmean(ndcg_at_k(items, holdout.answers, 100)))

    start = time.perf_counter()
    closed = EASE(l2=args.l2).fit(train)
    want = ndcg(closed)
    print(f"closed form: NDCG@100 {want:.4f} ({time.perf_counter() - start:.1f} s)")
    for epochs in (int(e) for e in args.epochs.split(",")):
        start = time.perf_counter()
        gd = EASE(l2=args.l2, solver="gd", epochs=epochs, lr=args.lr).fit(train)
        got = ndcg(gd)
        print(
            f"gd, {epochs} epochs: NDCG@100 {got:.4f} = {got / want:.4f}x the closed form "
            f"({time.perf_counter() - start:.1f} s, {gd.seconds_per_epoch_:.1f} s/epoch)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
