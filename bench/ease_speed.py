"""EASE speed and memory: segue's implementation against the textbook NumPy one.

On the Last.fm hetrec-2k listens (seeded split as in the listen-count task), this times

(a) fit: ``segue.models.ease.EASE(l2).fit(train)`` vs the textbook ``ease_rec`` code
    (binarised X, ``G = (X^T X).toarray()`` in float64, ``P = np.linalg.inv(G)``,
    ``B = P / -diag(P)``, ``diag(B) = 0``);
(b) recommend top-k for all target users, seen items excluded: ``model.recommend(targets, k)``
    (batched sparse @ dense, CSR mask, argpartition) vs dense ``X_t @ B``, a dense boolean
    mask set to ``-inf`` and ``np.argsort(-scores)[:, :k]``.

Each variant runs in its own fresh Python process, so its peak RSS (the kernel's high-water
mark, which counts BLAS/LAPACK buffers too) is its own; the high-water mark is reset between the
two steps (Linux ``/proc/self/clear_refs``), so each step's peak is reported separately. Both
variants must agree: mean top-k overlap >= 0.98 and NDCG@k on the held-out answers equal to
3 decimals.

    .venv/bin/python bench/ease_speed.py [--max-items N] [--repeat N] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

from segue.data.interactions import Interactions  # noqa: E402
from segue.data.split import split_listens  # noqa: E402

MIN_OVERLAP = 0.98


# the textbook reference ----------------------------------------------------------------------
def reference_fit(matrix: sp.csr_array, l2: float) -> np.ndarray:
    """ease_rec (Steck 2019) as usually written: float64 Gram, ``np.linalg.inv``."""
    x = sp.csr_matrix(
        (np.ones(matrix.nnz, dtype=np.float64), matrix.indices, matrix.indptr),
        shape=matrix.shape,
    )
    gram = x.T.dot(x).toarray()
    diag = np.diag_indices(gram.shape[0])
    gram[diag] += l2
    p = np.linalg.inv(gram)
    b = p / (-np.diag(p))
    b[diag] = 0
    return b


def reference_recommend(
    matrix: sp.csr_array, rows: np.ndarray, b: np.ndarray, k: int
) -> np.ndarray:
    """Dense scores, dense boolean mask of seen items, full argsort."""
    seen = matrix[rows].toarray() > 0
    scores = seen.astype(np.float64) @ b
    scores[seen] = -np.inf
    return np.argsort(-scores, axis=1)[:, :k]


# data ----------------------------------------------------------------------------------------
def prepare(data_dir: Path, max_items: int | None):
    """Listens (optionally pruned to the most-listened items), the seeded split, Interactions."""
    df = common.load_lastfm(data_dir)
    if max_items is not None:
        listeners = df.groupby("item_id")["user_id"].nunique()
        order = listeners.reset_index().sort_values(
            ["user_id", "item_id"], ascending=[False, True], kind="stable"
        )
        keep = set(order["item_id"].iloc[:max_items])
        df = df[df["item_id"].isin(keep)].reset_index(drop=True)
    split = split_listens(df, seed=0)  # target_fraction 0.2, holdout_fraction 0.5, min_items 10
    train = Interactions.from_frame(split.listens, weight="count")
    return df, split, train


# one variant, in its own process --------------------------------------------------------------
def worker(args: argparse.Namespace) -> None:
    start_rss = common.rss_mib()
    _, split, train = prepare(args.data_dir, args.max_items)
    targets = split.targets
    out: dict = {"variant": args.worker, "import_rss": start_rss}
    gc.collect()

    # (a) fit
    out["fit_base"] = common.rss_mib()
    out["reset_ok"] = common.reset_peak_rss()
    fit_times = []
    model = weights = None
    for _ in range(args.repeat):
        model = weights = None
        gc.collect()
        t0 = time.perf_counter()
        if args.worker == "segue":
            from segue.models.ease import EASE

            model = EASE(l2=args.l2).fit(train)
        else:
            weights = reference_fit(train.matrix, args.l2)
        fit_times.append(time.perf_counter() - t0)
    out["fit_times"] = fit_times
    out["fit_peak"] = common.peak_rss_mib()
    if model is not None:
        out["gram_dtype"] = model.gram_dtype_
        out["weights_dtype"] = str(model.weights_.dtype)
    else:
        out["gram_dtype"] = out["weights_dtype"] = str(weights.dtype)

    # (b) recommend for all targets
    gc.collect()
    out["rec_base"] = common.rss_mib()
    common.reset_peak_rss()
    rec_times = []
    items = None
    for i in range(args.rec_repeat + 1):  # the first run is an untimed warm-up
        items = None
        t0 = time.perf_counter()
        if args.worker == "segue":
            items = model.recommend(targets, args.k).items
        else:
            rows = train.users.numbers(targets)
            items = reference_recommend(train.matrix, rows, weights, args.k)
        if i > 0:
            rec_times.append(time.perf_counter() - t0)
    out["rec_times"] = rec_times
    out["rec_peak"] = common.peak_rss_mib()
    ids = train.items.ids
    out["lists"] = {
        uid: ids[row[row >= 0]].tolist() for uid, row in zip(targets, items, strict=True)
    }
    with open(args.out, "w") as fh:
        json.dump(out, fh, default=float)


def run_variant(variant: str, args: argparse.Namespace, tmp: Path) -> dict:
    out = tmp / f"{variant}.json"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker", variant,
        "--out", str(out),
        "--data-dir", str(args.data_dir),
        "--repeat", str(args.repeat),
        "--rec-repeat", str(args.rec_repeat),
        "--l2", str(args.l2),
        "--k", str(args.k),
    ]  # fmt: skip
    if args.max_items is not None:
        cmd += ["--max-items", str(args.max_items)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd)
    if proc.returncode != 0:
        sys.exit(f"error: the {variant} worker failed (exit status {proc.returncode})")
    with open(out) as fh:
        res = json.load(fh)
    res["wall"] = time.perf_counter() - t0
    return res


# report --------------------------------------------------------------------------------------
def compare(a: dict, b: dict, k: int) -> dict:
    overlap, jaccard, same_order = [], [], []
    for uid, la in a.items():
        lb = b[uid]
        sa, sb = set(la), set(lb)
        overlap.append(len(sa & sb) / k)
        jaccard.append(len(sa & sb) / max(1, len(sa | sb)))
        same_order.append(la == lb)
    return {
        "overlap": float(np.mean(overlap)),
        "overlap_min": float(np.min(overlap)),
        "jaccard": float(np.mean(jaccard)),
        "identical_lists": float(np.mean(same_order)),
    }


def best(times: list[float]) -> float:
    return float(np.min(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_data_dir_option(parser)
    parser.add_argument(
        "--max-items",
        type=int,
        default=None,
        help="keep only the N items with most listeners (default: all)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="fits per variant; the best time is reported (default 1)",
    )
    parser.add_argument(
        "--rec-repeat",
        type=int,
        default=5,
        help="timed recommend runs per variant, after one warm-up (default 5)",
    )
    parser.add_argument("--l2", type=float, default=500.0)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--worker", choices=["segue", "numpy"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeat < 1 or args.rec_repeat < 1:
        parser.error("--repeat and --rec-repeat must be at least 1")
    if args.max_items is not None and args.max_items < 1:
        parser.error("--max-items must be positive")
    common.require_file(args.data_dir, common.LASTFM)
    if args.worker:
        worker(args)
        return

    t_all = time.perf_counter()
    print("# EASE speed: segue vs textbook NumPy\n")
    for line in common.environment_lines():
        print(f"- {line}")
    df, split, train = prepare(args.data_dir, args.max_items)
    answers = Interactions.from_frame(split.answers, weight="count")
    print(
        f"- data: {common.LASTFM}: {len(df):,} listens, {df['user_id'].nunique():,} users, "
        f"{df['item_id'].nunique():,} items"
        + (f" (pruned to the {args.max_items} most-listened)" if args.max_items else "")
    )
    print(
        f"- split (seed 0): visible {train.nnz:,} pairs, {train.n_users:,} users x "
        f"{train.n_items:,} items; {len(split.targets)} targets, {len(split.answers):,} answers"
    )
    print(
        f"- EASE l2={args.l2:g}, top-{args.k}, fit x{args.repeat}, recommend x{args.rec_repeat} "
        "(+1 warm-up); best time reported; each variant in a fresh process\n",
        flush=True,
    )

    with tempfile.TemporaryDirectory(prefix="ease_speed_") as tmp:
        res = {v: run_variant(v, args, Path(tmp)) for v in ("segue", "numpy")}
    s, n = res["segue"], res["numpy"]

    from segue.metrics.evaluate import evaluate_lists

    ndcg = {}
    for v in ("segue", "numpy"):
        ev = evaluate_lists(res[v]["lists"], answers, (args.k,), train=train)
        ndcg[v] = ev.summary[f"ndcg@{args.k}"]
        res[v]["seen_share"] = ev.summary["seen_share"]
    cmp = compare(s["lists"], n["lists"], args.k)

    def mem(r: dict, step: str) -> str:
        peak, base = r[f"{step}_peak"], r[f"{step}_base"]
        return f"{peak:,.0f} (+{peak - base:,.0f})"

    rows = []
    for step, key in (("fit", "fit_times"), (f"recommend top-{args.k}", "rec_times")):
        ts, tn = best(s[key]), best(n[key])
        rows.append(
            [step, f"{ts:.3f}", f"{tn:.3f}", f"{tn / ts:.1f}x", mem(s, key[:3]), mem(n, key[:3])]
        )
    print(
        common.markdown_table(
            [
                "step",
                "segue s",
                "numpy s",
                "speed-up (numpy/segue)",
                "segue peak RSS MiB (+over step start)",
                "numpy peak RSS MiB (+over step start)",
            ],
            rows,
        )
    )
    print()
    print(
        f"- segue Gram dtype: {s['gram_dtype']}, weights {s['weights_dtype']}; "
        f"numpy: {n['gram_dtype']}"
    )
    print(
        f"- RSS at step start (data loaded): segue {s['fit_base']:,.0f} MiB, "
        f"numpy {n['fit_base']:,.0f} MiB; peak reset between steps: "
        f"{s['reset_ok'] and n['reset_ok']}"
    )
    if args.repeat > 1:
        print(
            f"- fit times: segue {[round(t, 2) for t in s['fit_times']]}, "
            f"numpy {[round(t, 2) for t in n['fit_times']]}"
        )
    print(
        f"- recommend times: segue {[round(t, 3) for t in s['rec_times']]}, "
        f"numpy {[round(t, 3) for t in n['rec_times']]}"
    )
    print(
        f"- top-{args.k} agreement over {len(s['lists'])} targets: mean overlap "
        f"{cmp['overlap']:.4f} (min {cmp['overlap_min']:.2f}), mean Jaccard "
        f"{cmp['jaccard']:.4f}, identical ordered lists {cmp['identical_lists']:.1%}"
    )
    print(
        f"- NDCG@{args.k} on the answers: segue {ndcg['segue']:.4f}, numpy {ndcg['numpy']:.4f}"
        f"; seen items recommended: segue {s['seen_share']:.4f}, numpy {n['seen_share']:.4f}"
    )
    print(
        f"- wall time: segue process {s['wall']:.1f} s, numpy process {n['wall']:.1f} s, "
        f"total {time.perf_counter() - t_all:.1f} s"
    )

    ok = True
    if cmp["overlap"] < MIN_OVERLAP:
        print(f"FAIL: mean top-{args.k} overlap {cmp['overlap']:.4f} < {MIN_OVERLAP}")
        ok = False
    if abs(ndcg["segue"] - ndcg["numpy"]) >= 5e-4:
        print(
            f"FAIL: NDCG@{args.k} differs at 3 decimals: {ndcg['segue']:.4f} vs {ndcg['numpy']:.4f}"
        )
        ok = False
    if not ok:
        sys.exit(1)
    print("OK: segue and the NumPy reference agree")


if __name__ == "__main__":
    main()
