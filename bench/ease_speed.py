"""EASE speed and memory: segue's implementation against the strongest plain peers.

On the Last.fm hetrec-2k listens (seeded split as in the listen-count task), every variant
fits EASE (Steck 2019, ``B = I - P diag(1/diag(P))`` with ``P = (X^T X + l2 I)^-1`` on the
binarised visible rows) and recommends top-k for all target users, seen items excluded:

- ``segue``: ``segue.models.ease.EASE(l2).fit(train)`` and ``model.recommend(targets, k)``;
- ``lapack32`` (the strongest peer): float32 Gram ``(X^T X).toarray()``, in-place
  ``scipy.linalg.lapack.spotrf`` + ``spotri``, the triangle mirrored with ``np.triu``; recommend
  by sparse ``X_t @ B``, the seen items set to ``-inf`` through the CSR indices,
  ``argpartition`` and a sort of the k;
- ``inv32``: float32 Gram and float32 ``np.linalg.inv``, the same recommend;
- ``textbook64`` (not run by default: 8.5 GiB): the ``ease_rec`` code as usually written,
  float64 Gram, ``np.linalg.inv``, dense scores, a dense mask and a full ``argsort``.

Each run of a variant is a fresh Python process, so its peak RSS (the kernel's high-water mark,
which counts BLAS/LAPACK buffers too) is its own; the high-water mark is reset between fit and
recommend (Linux ``/proc/self/clear_refs``). The machine may be shared: ``--rounds`` rounds
each run every variant once (the order reversed every other round), and a peer's speed
against segue is the median over rounds of the ratio of the two times *in the same round*.
Every peer must agree with segue: mean top-k overlap >= 0.98 and NDCG@k on the held-out
answers equal to 3 decimals.

    .venv/bin/python bench/ease_speed.py [--variants segue,lapack32,inv32] [--rounds 3]
                                         [--max-items N] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
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
VARIANTS = ("segue", "lapack32", "inv32", "textbook64")


# the peers -----------------------------------------------------------------------------------
def binary(matrix: sp.csr_array, dtype: type) -> sp.csr_matrix:
    return sp.csr_matrix(
        (np.ones(matrix.nnz, dtype=dtype), matrix.indices, matrix.indptr), shape=matrix.shape
    )


def weights_from_inverse(p: np.ndarray) -> np.ndarray:
    """``B = P / -diag(P)`` (column-wise), zero diagonal, in place."""
    diag = np.diag(p).copy()
    p /= -diag
    np.fill_diagonal(p, 0)
    return p


def lapack32_fit(matrix: sp.csr_array, l2: float) -> np.ndarray:
    """float32 Gram, Cholesky factor and inverse in place (``spotrf`` + ``spotri``)."""
    from scipy.linalg import lapack

    x = binary(matrix, np.float32)
    gram = np.asfortranarray((x.T @ x).toarray())
    gram[np.diag_indices(gram.shape[0])] += l2
    c, info = lapack.spotrf(gram, lower=False, overwrite_a=True, clean=False)
    assert info == 0, f"spotrf info={info}"
    p, info = lapack.spotri(c, lower=False, overwrite_c=True)
    assert info == 0, f"spotri info={info}"
    p = np.triu(p)
    p += np.triu(p, 1).T
    return weights_from_inverse(p)


def inv32_fit(matrix: sp.csr_array, l2: float) -> np.ndarray:
    """float32 Gram and float32 ``np.linalg.inv`` (LU)."""
    x = binary(matrix, np.float32)
    gram = (x.T @ x).toarray()
    gram[np.diag_indices(gram.shape[0])] += l2
    return weights_from_inverse(np.linalg.inv(gram))


def textbook64_fit(matrix: sp.csr_array, l2: float) -> np.ndarray:
    """ease_rec as usually written: float64 Gram, ``np.linalg.inv``."""
    x = binary(matrix, np.float64)
    gram = x.T.dot(x).toarray()
    diag = np.diag_indices(gram.shape[0])
    gram[diag] += l2
    p = np.linalg.inv(gram)
    b = p / (-np.diag(p))
    b[diag] = 0
    return b


def sparse_recommend(matrix: sp.csr_array, rows: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Sparse ``X_t @ B``, seen items to ``-inf`` by CSR indices, argpartition, sort the k."""
    x = binary(sp.csr_array(matrix[rows]), b.dtype)
    scores = np.asarray(x @ b)
    seen_rows = np.repeat(np.arange(len(rows)), np.diff(x.indptr))
    scores[seen_rows, x.indices] = -np.inf
    np.negative(scores, out=scores)
    part = np.argpartition(scores, k - 1, axis=1)[:, :k]
    order = np.argsort(np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def textbook_recommend(matrix: sp.csr_array, rows: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Dense scores, dense boolean mask of seen items, full argsort."""
    seen = matrix[rows].toarray() > 0
    scores = seen.astype(np.float64) @ b
    scores[seen] = -np.inf
    return np.argsort(-scores, axis=1)[:, :k]


PEER_FIT = {"lapack32": lapack32_fit, "inv32": inv32_fit, "textbook64": textbook64_fit}


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
    _, split, train = prepare(args.data_dir, args.max_items)
    targets = split.targets
    variant = args.worker
    out: dict = {"variant": variant}
    gc.collect()

    # (a) fit
    out["fit_base"] = common.rss_mib()
    out["reset_ok"] = common.reset_peak_rss()
    model = weights = None
    t0 = time.perf_counter()
    if variant == "segue":
        from segue.models.ease import EASE

        model = EASE(l2=args.l2).fit(train)
        out["dtype"] = f"Gram {model.gram_dtype_}, weights {model.weights_.dtype}"
    else:
        weights = PEER_FIT[variant](train.matrix, args.l2)
        out["dtype"] = str(weights.dtype)
    out["fit_s"] = time.perf_counter() - t0
    out["fit_peak"] = common.peak_rss_mib()

    # (b) recommend for all targets
    gc.collect()
    out["rec_base"] = common.rss_mib()
    common.reset_peak_rss()
    rows = train.users.numbers(targets)
    rec_times = []
    items = None
    for i in range(args.rec_repeat + 1):  # the first run is an untimed warm-up
        items = None
        t0 = time.perf_counter()
        if variant == "segue":
            items = model.recommend(targets, args.k).items
        elif variant == "textbook64":
            items = textbook_recommend(train.matrix, rows, weights, args.k)
        else:
            items = sparse_recommend(train.matrix, rows, weights, args.k)
        if i > 0:
            rec_times.append(time.perf_counter() - t0)
    out["rec_s"] = min(rec_times)
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
    print(
        f"  {variant}: fit {res['fit_s']:.2f} s, recommend {res['rec_s']:.4f} s "
        f"(process {res['wall']:.1f} s)",
        flush=True,
    )
    return res


# report --------------------------------------------------------------------------------------
def compare(a: dict, b: dict, k: int) -> dict:
    overlap, same_order = [], []
    for uid, la in a.items():
        lb = b[uid]
        overlap.append(len(set(la) & set(lb)) / k)
        same_order.append(la == lb)
    return {
        "overlap": float(np.mean(overlap)),
        "overlap_min": float(np.min(overlap)),
        "identical_lists": float(np.mean(same_order)),
    }


def median(values: list[float]) -> float:
    return float(statistics.median(values))


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
        "--variants",
        default="segue,lapack32,inv32",
        help=f"comma-separated, from {', '.join(VARIANTS)} (segue is always run)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="fresh-process runs per variant (default 3)"
    )
    parser.add_argument(
        "--rec-repeat",
        type=int,
        default=5,
        help="timed recommend runs per process, after one warm-up; the best counts (default 5)",
    )
    parser.add_argument("--l2", type=float, default=250.0, help="EASE l2 (segue's default)")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds < 1 or args.rec_repeat < 1:
        parser.error("--rounds and --rec-repeat must be at least 1")
    if args.max_items is not None and args.max_items < 1:
        parser.error("--max-items must be positive")
    variants = ["segue"] + [v.strip() for v in args.variants.split(",") if v.strip() != "segue"]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    common.require_file(args.data_dir, common.LASTFM)
    if args.worker:
        worker(args)
        return

    t_all = time.perf_counter()
    print("# EASE speed: segue vs float32 LAPACK / NumPy peers\n")
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
        f"- EASE l2={args.l2:g}, top-{args.k}; {args.rounds} rounds, each variant once per round "
        f"in a fresh process (order reversed every other round); recommend: best of "
        f"{args.rec_repeat} after a warm-up\n",
        flush=True,
    )

    runs: dict[str, list[dict]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="ease_speed_") as tmp:
        for r in range(args.rounds):
            print(f"round {r + 1}:", flush=True)
            for v in variants if r % 2 == 0 else variants[::-1]:
                runs[v].append(run_variant(v, args, Path(tmp)))

    from segue.metrics.evaluate import evaluate_lists

    seg = runs["segue"]
    rows, ok = [], True
    for v in variants:
        res = runs[v]
        last = res[-1]
        ev = evaluate_lists(last["lists"], answers, (args.k,), train=train)
        ndcg = ev.summary[f"ndcg@{args.k}"]
        fit = [x["fit_s"] for x in res]
        rec = [x["rec_s"] for x in res]
        fit_ratio = [x["fit_s"] / s["fit_s"] for x, s in zip(res, seg, strict=True)]
        rec_ratio = [x["rec_s"] / s["rec_s"] for x, s in zip(res, seg, strict=True)]
        cmp = compare(seg[-1]["lists"], last["lists"], args.k)
        rows.append(
            [
                v,
                last["dtype"],
                f"{median(fit):.2f} ({min(fit):.2f}-{max(fit):.2f})",
                f"{median(fit_ratio):.2f}x ({min(fit_ratio):.2f}-{max(fit_ratio):.2f}x)",
                f"{max(x['fit_peak'] - x['fit_base'] for x in res):,.0f}",
                f"{median(rec):.4f}",
                f"{median(rec_ratio):.2f}x ({min(rec_ratio):.2f}-{max(rec_ratio):.2f}x)",
                f"{max(x['rec_peak'] - x['rec_base'] for x in res):,.0f}",
                f"{ndcg:.4f}",
                f"{cmp['overlap']:.4f} (min {cmp['overlap_min']:.2f})",
            ]
        )
        if v == "segue":
            seg_ndcg = ndcg
            continue
        if cmp["overlap"] < MIN_OVERLAP:
            print(f"FAIL: {v}: mean top-{args.k} overlap with segue {cmp['overlap']:.4f}")
            ok = False
        if abs(ndcg - seg_ndcg) >= 5e-4:
            print(f"FAIL: {v}: NDCG@{args.k} {ndcg:.4f} differs from segue's {seg_ndcg:.4f}")
            ok = False
    print()
    print(
        common.markdown_table(
            [
                "variant",
                "dtype",
                "fit s, median (range)",
                "fit time / segue's, same round: median (range)",
                "fit peak MiB over start (max)",
                "recommend s, median",
                "recommend time / segue's: median (range)",
                "recommend peak MiB over start (max)",
                f"NDCG@{args.k}",
                f"top-{args.k} overlap with segue",
            ],
            rows,
        )
    )
    print()
    for v in variants:
        print(
            f"- {v}: fit {[round(x['fit_s'], 2) for x in runs[v]]} s, recommend "
            f"{[round(x['rec_s'], 4) for x in runs[v]]} s"
        )
    print(f"- peak reset between steps: {all(x['reset_ok'] for r in runs.values() for x in r)}")
    print(f"- total {time.perf_counter() - t_all:.1f} s")
    if not ok:
        sys.exit(1)
    print("OK: every peer agrees with segue")


if __name__ == "__main__":
    main()
