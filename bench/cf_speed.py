"""Speed of segue's WRMF and EASE against the ``implicit`` library they build on.

(a) **WRMF training**: ``WRMF(...).fit(interactions)`` (segue: confidence transform, implicit's
    CPU ALS solver under a one-thread BLAS limit, factor copies) against
    ``implicit.cpu.als.AlternatingLeastSquares(...).fit(C)`` called directly on the confidence
    matrix ``C`` that segue builds (computed beforehand, outside implicit's timing), same
    factors, iterations, regularisation and seed. Runs alternate between the two (the order
    flips every repetition); the median wall time is reported with segue's overhead in percent,
    the median CPU time of all threads (``time.process_time``), which a busy machine disturbs
    less, and segue's own time: its fit minus the implicit solver inside it, timed in the same
    run (the solver's ``fit`` is wrapped with a clock), which does not depend on the machine's
    load at all. On Last.fm hetrec-2k (all listens) and on synthetic listens
    (``segue.data.synthetic.generate_listens``, default 50,000 users x 20,000 songs).
(b) **Recommend for all users** of the synthetic set, top-100, seen items removed, on the same
    factors: segue's ``WRMF.recommend`` with ``retrieval="dense"``, ``"faiss-exact"`` and
    ``"faiss-ivf"`` (several ``nprobe``) against implicit's
    ``model.recommend(userids, user_items[userids], N=100)`` on an implicit model whose
    ``user_factors``/``item_factors`` are segue's arrays. Users per second (median of the
    timed runs, taken round-robin over the routes after one warm-up call each, the order
    reversed every other round; the faiss indexes are built before, their build time is
    reported apart), each route's speed against implicit as the median of per-round ratios
    (implicit's time over the route's in the same round: both ran under the same load), and
    each route's top-100 overlap with segue's dense lists (the recall of faiss-ivf against
    exact).
(c) **EASE fit time and peak memory against the item count** (float32 route,
    ``EASE(dtype="float32")``), each size in a fresh process, on synthetic listens of
    ``--ease-users`` users. Peak RSS is the kernel's high-water mark (it counts LAPACK's own
    buffers), reset after the data are built and after one warm-up fit on a tiny set (LAPACK
    code pages and thread buffers), as in ``bench/ease_speed.py``.

    .venv/bin/python bench/cf_speed.py [--parts a,b,c] [--users 50000] [--items 20000]
                                       [--ease-items 2000,5000,10000,20000] [--data-dir DIR]
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
from typing import Any

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

from segue.data.interactions import Interactions  # noqa: E402
from segue.models.wrmf import WRMF  # noqa: E402

K = 100


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def fmt_times(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


def implicit_als(args: argparse.Namespace) -> Any:
    from implicit.cpu.als import AlternatingLeastSquares

    return AlternatingLeastSquares(
        factors=args.factors,
        regularization=args.regularization,
        alpha=1.0,  # the confidences are already in the matrix, as segue passes them
        dtype=np.float32,
        iterations=args.iterations,
        random_state=0,
    )


def wrmf(args: argparse.Namespace, **extra: Any) -> WRMF:
    return WRMF(
        factors=args.factors,
        alpha=args.alpha,
        regularization=args.regularization,
        iterations=args.iterations,
        confidence="log",
        seed=0,
        **extra,
    )


# (a) training --------------------------------------------------------------------------------
class _SolverClock:
    """Wraps ``implicit.cpu.als.AlternatingLeastSquares.fit`` to time it inside segue's fit.

    segue's own work in ``WRMF.fit`` is its total time minus the solver's, measured in the same
    run, so it does not depend on how busy the machine was between two runs.
    """

    def __init__(self) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        self.cls = AlternatingLeastSquares
        self.original = AlternatingLeastSquares.fit
        self.seconds = 0.0

    def __enter__(self) -> _SolverClock:
        original, clock = self.original, self

        def timed_fit(model, *a, **kw):
            t0 = time.perf_counter()
            try:
                return original(model, *a, **kw)
            finally:
                clock.seconds += time.perf_counter() - t0

        self.seconds = 0.0
        self.cls.fit = timed_fit
        return self

    def __exit__(self, *exc: object) -> None:
        self.cls.fit = self.original


def train_speed(name: str, data: Interactions, repeat: int, args: argparse.Namespace) -> dict:
    from threadpoolctl import threadpool_limits

    model = wrmf(args)
    conf = model.confidence_matrix(data.matrix)
    cui = sp.csr_matrix((conf.data, conf.indices, conf.indptr), shape=conf.shape)
    segue_t, implicit_t, conf_t = [], [], []
    segue_cpu, implicit_cpu = [], []  # CPU seconds of all threads: less sensitive to other load
    own = []  # segue's fit minus the implicit solver inside it, same run
    last = {}
    for rep in range(repeat):
        order = ("segue", "implicit") if rep % 2 == 0 else ("implicit", "segue")
        for who in order:
            gc.collect()
            if who == "segue":
                m = wrmf(args)
                with _SolverClock() as clock:
                    t0, c0 = time.perf_counter(), time.process_time()
                    m.fit(data)
                    segue_t.append(time.perf_counter() - t0)
                own.append(segue_t[-1] - clock.seconds)
                segue_cpu.append(time.process_time() - c0)
                last["segue"] = m
            else:
                with threadpool_limits(1, "blas"):  # as segue does; implicit warns otherwise
                    als = implicit_als(args)
                    t0, c0 = time.perf_counter(), time.process_time()
                    als.fit(cui, show_progress=False)
                    implicit_t.append(time.perf_counter() - t0)
                    implicit_cpu.append(time.process_time() - c0)
                last["implicit"] = als
        t0 = time.perf_counter()  # segue's own preprocessing step, timed apart
        model.confidence_matrix(data.matrix)
        conf_t.append(time.perf_counter() - t0)
    same = float(np.abs(last["segue"].item_factors_ - last["implicit"].item_factors).max())
    return {
        "name": name,
        "shape": data.matrix.shape,
        "nnz": data.nnz,
        "segue": segue_t,
        "implicit": implicit_t,
        "segue_cpu": segue_cpu,
        "own": own,
        "implicit_cpu": implicit_cpu,
        "conf": conf_t,
        "max_factor_diff": same,
        "model": last["segue"],
    }


# (b) recommend for all -----------------------------------------------------------------------
def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Mean share of ``a``'s items (per row, padding -1 ignored) that are in ``b``'s row."""
    shares = []
    for ra, rb in zip(a, b, strict=True):
        ra = ra[ra >= 0]
        if len(ra):
            shares.append(len(np.intersect1d(ra, rb[rb >= 0])) / len(ra))
    return float(np.mean(shares))


def recommend_speed(model: WRMF, data: Interactions, args: argparse.Namespace) -> dict:
    """Time every route round-robin (route 1, 2, ..., then again), so that a burst of other load
    on the machine slows all routes alike; one untimed warm-up call per route first (it also
    builds the faiss indexes, timed apart)."""
    import copy

    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    users = data.users.ids
    rows = np.arange(data.n_users, dtype=np.int32)
    user_items = sp.csr_matrix(
        (data.matrix.data, data.matrix.indices, data.matrix.indptr), shape=data.matrix.shape
    )

    def segue_view(**params: Any) -> WRMF:
        """The fitted model, same factor arrays, own parameters and own faiss index cache."""
        view = copy.copy(model)
        view._caches = {}
        return view.set_params(**params)

    # implicit on the same factors
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(factors=model.factors, dtype=np.float32, random_state=0)
    als.user_factors = model.user_factors_
    als.item_factors = model.item_factors_

    def implicit_rec() -> np.ndarray:
        ids, _ = als.recommend(rows, user_items[rows], N=K, filter_already_liked_items=True)
        return np.asarray(ids)

    dense = segue_view(retrieval="dense")
    exact_faiss = segue_view(retrieval="faiss-exact")
    ivf = segue_view(retrieval="faiss-ivf")
    routes: list[tuple[str, Any]] = [
        ("segue WRMF.recommend, dense", lambda: dense.recommend(users, K).items),
        ("implicit recommend (same factors)", implicit_rec),
        ("segue WRMF.recommend, faiss-exact", lambda: exact_faiss.recommend(users, K).items),
    ]
    build = {"segue WRMF.recommend, faiss-exact": 0.0}
    t0 = time.perf_counter()
    exact_faiss.faiss_index()
    build["segue WRMF.recommend, faiss-exact"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    nlist = ivf.faiss_index().nlist
    ivf_build = time.perf_counter() - t0
    for i, nprobe in enumerate(args.nprobe):
        label = f"segue WRMF.recommend, faiss-ivf, nprobe={nprobe} (nlist {nlist})"
        if i == 0:
            build[label] = ivf_build

        def search(nprobe: int = nprobe) -> np.ndarray:
            ivf.set_params(nprobe=nprobe)  # a search-time setting: the index is kept
            return ivf.recommend(users, K).items

        routes.append((label, search))

    results = {label: fn() for label, fn in routes}  # warm-up, and the lists compared
    times: dict[str, list[float]] = {label: [] for label, _ in routes}
    for rep in range(args.rec_repeat):
        for label, fn in routes if rep % 2 == 0 else routes[::-1]:  # the order flips
            gc.collect()
            t0 = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t0)
    return {
        "routes": [
            (label, times[label], build.get(label, 0.0), results[label]) for label, _ in routes
        ],
        "exact": results["segue WRMF.recommend, dense"],
        "n_users": len(users),
    }


# (c) EASE scaling, one size per process ------------------------------------------------------
def hwm_mib() -> float:
    """The kernel's RSS high-water mark of this process (``VmHWM``, MiB), reset by
    ``common.reset_peak_rss``.

    Not ``common.peak_rss_mib``: that also takes ``getrusage().ru_maxrss``, which
    ``clear_refs`` does not reset and which, in a child started by ``subprocess``, starts at
    the *parent's* peak (Linux records the old image's high-water mark at ``exec``), so a worker
    would report its parent's peak whenever that is larger.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def ease_worker(args: argparse.Namespace) -> None:
    from segue.data.synthetic.listens import generate_listens
    from segue.models import EASE

    # warm-up on a tiny set: LAPACK/BLAS code pages and thread buffers, once, before the reset
    EASE(l2=args.l2, dtype="float32").fit(
        Interactions.from_frame(generate_listens(300, 200, seed=1), weight="count")
    )
    df = generate_listens(args.ease_users, args.worker_items, seed=0)
    data = Interactions.from_frame(df, weight="count")
    del df
    gc.collect()
    base = common.rss_mib()
    reset_ok = common.reset_peak_rss()
    t0 = time.perf_counter()
    model = EASE(l2=args.l2, dtype="float32").fit(data)
    fit_s = time.perf_counter() - t0
    res = {
        "items": data.n_items,
        "users": data.n_users,
        "nnz": data.nnz,
        "fit_s": fit_s,
        "base": base,
        "peak": hwm_mib(),
        "reset_ok": reset_ok,
        "gram_dtype": model.gram_dtype_,
        "kept": len(model.kept_items_),
    }
    with open(args.out, "w") as fh:
        json.dump(res, fh)


def ease_scaling(args: argparse.Namespace) -> list[dict]:
    out = []
    with tempfile.TemporaryDirectory(prefix="cf_speed_") as tmp:
        for n in args.ease_items:
            path = Path(tmp) / f"ease_{n}.json"
            cmd = [
                sys.executable, str(Path(__file__).resolve()),
                "--worker-items", str(n), "--ease-users", str(args.ease_users),
                "--l2", str(args.l2), "--out", str(path),
            ]  # fmt: skip
            t0 = time.perf_counter()
            proc = subprocess.run(cmd)
            if proc.returncode != 0:
                sys.exit(f"error: the EASE worker for {n} items failed (exit {proc.returncode})")
            with open(path) as fh:
                res = json.load(fh)
            res["wall"] = time.perf_counter() - t0
            res["asked"] = n
            out.append(res)
            print(
                f"  EASE {res['items']:,} items: fit {res['fit_s']:.1f} s, peak "
                f"{res['peak']:,.0f} MiB",
                flush=True,
            )
    return out


# main ----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_data_dir_option(parser)
    parser.add_argument("--parts", default="a,b,c", help="which of a (train), b (recommend), c")
    parser.add_argument("--users", type=int, default=50_000, help="synthetic users for (a), (b)")
    parser.add_argument("--items", type=int, default=20_000, help="synthetic songs for (a), (b)")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--regularization", type=float, default=10.0)
    parser.add_argument("--alpha", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=5, help="training runs on Last.fm (a)")
    parser.add_argument(
        "--repeat-large", type=int, default=5, help="training runs on the synthetic set (a)"
    )
    parser.add_argument("--rec-repeat", type=int, default=5, help="timed recommend runs (b)")
    parser.add_argument("--nprobe", default="4,16,64", help="faiss-ivf nprobe values (b)")
    parser.add_argument(
        "--ease-items", default="2000,5000,10000,20000", help="EASE catalogue sizes (c)"
    )
    parser.add_argument("--ease-users", type=int, default=50_000, help="synthetic users (c)")
    parser.add_argument("--l2", type=float, default=500.0, help="EASE l2 (c)")
    parser.add_argument("--worker-items", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_items:
        ease_worker(args)
        return
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts <= {"a", "b", "c"}:
        parser.error(f"--parts takes a, b, c; got {args.parts!r}")
    try:
        args.nprobe = [int(v) for v in args.nprobe.split(",") if v.strip()]
        args.ease_items = [int(v) for v in args.ease_items.split(",") if v.strip()]
    except ValueError:
        parser.error("--nprobe and --ease-items take integers separated by commas")
    if "a" in parts:
        common.require_file(args.data_dir, common.LASTFM)

    import faiss
    import implicit

    from segue.data.synthetic.listens import generate_listens

    t_all = time.perf_counter()
    print("# WRMF and EASE speed: segue vs implicit\n")
    for line in common.environment_lines():
        print(f"- {line}")
    print(f"- implicit {implicit.__version__} (CPU), faiss {faiss.__version__}")
    print(
        f"- WRMF: factors={args.factors}, iterations={args.iterations}, "
        f"regularization={args.regularization:g}, alpha={args.alpha:g}, log confidence, seed 0\n",
        flush=True,
    )

    large = None
    if parts & {"a", "b"}:
        t0 = time.perf_counter()
        df = generate_listens(args.users, args.items, seed=0)
        t1 = time.perf_counter()
        large = Interactions.from_frame(df, weight="count")
        print(
            f"- synthetic: generate_listens({args.users:,}, {args.items:,}, seed=0): "
            f"{large.n_users:,} users x {large.n_items:,} songs, {large.nnz:,} pairs "
            f"(generated in {t1 - t0:.1f} s; Interactions.from_frame, i.e. the id mapping, "
            f"{time.perf_counter() - t1:.2f} s, not part of fit)\n",
            flush=True,
        )
        del df

    model = None
    if "a" in parts:
        lastfm = Interactions.from_frame(common.load_lastfm(args.data_dir), weight="count")
        results = [train_speed("Last.fm hetrec-2k (all listens)", lastfm, args.repeat, args)]
        print(f"  (a) Last.fm done: {fmt_times(results[0]['segue'])}", flush=True)
        results.append(train_speed("synthetic", large, args.repeat_large, args))
        model = results[-1]["model"]
        rows = []
        for r in results:
            s, i, c = median(r["segue"]), median(r["implicit"]), median(r["conf"])
            sc, ic = median(r["segue_cpu"]), median(r["implicit_cpu"])
            o = median(r["own"])
            rows.append(
                [
                    r["name"],
                    f"{r['shape'][0]:,} x {r['shape'][1]:,}, {r['nnz']:,} nnz",
                    len(r["segue"]),
                    f"{s:.3f}",
                    f"{i:.3f}",
                    f"{min(r['segue']):.3f} / {min(r['implicit']):.3f}",
                    f"{s - i:+.3f}",
                    f"{100 * (s - i) / i:+.1f}%",
                    f"{sc:.3f} / {ic:.3f} ({100 * (sc - ic) / ic:+.1f}%)",
                    f"{o:.3f} ({100 * o / i:.2f}%)",
                    f"{c:.3f}",
                    f"{r['max_factor_diff']:.1e}",
                ]
            )
        print("\n## (a) WRMF training: segue WRMF.fit vs implicit ALS.fit on the same matrix\n")
        print(
            common.markdown_table(
                ["data", "size", "runs", "segue s (median)", "implicit s (median)",
                 "best s, segue / implicit", "difference s (medians)", "segue overhead",
                 "CPU s (median), segue / implicit",
                 "segue outside the solver s (% of implicit)", "confidence transform s",
                 "max |item factor diff|"],
                rows,
            )
        )  # fmt: skip
        for r in results:
            print(
                f"- {r['name']}: segue {fmt_times(r['segue'])}, implicit "
                f"{fmt_times(r['implicit'])}, confidence transform {fmt_times(r['conf'])}; CPU "
                f"seconds: segue {fmt_times(r['segue_cpu'])}, implicit "
                f"{fmt_times(r['implicit_cpu'])}; segue outside the solver "
                f"{[round(v, 4) for v in r['own']]}"
            )
        print(flush=True)

    if "b" in parts:
        if model is None:
            model = wrmf(args).fit(large)
        res = recommend_speed(model, large, args)
        exact = res["exact"]
        n = res["n_users"]
        implicit_times = res["routes"][1][1]
        rows = []
        for label, times, build, items in res["routes"]:
            t = median(times)
            # paired by round: both sides ran within seconds of each other, under the same load
            ratios = [i / s for i, s in zip(implicit_times, times, strict=True)]
            rows.append(
                [
                    label,
                    f"{t:.2f}",
                    f"{min(times):.2f}",
                    f"{n / t:,.0f}",
                    f"{median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}x)",
                    f"{build:.2f}" if build else "",
                    f"{overlap(exact, items):.4f}",
                ]
            )
        print(
            f"\n## (b) recommend top-{K} for all {n:,} users (seen removed), same factors\n",
        )
        print(
            common.markdown_table(
                ["route", "s (median)", "best s", "users/s (median)",
                 "speed vs implicit: median of per-round ratios (range)",
                 "index build s",
                 f"overlap with exact top-{K}"],
                rows,
            )
        )  # fmt: skip
        for label, times, _, _ in res["routes"]:
            print(f"- {label}: {fmt_times(times)}")
        ratios = [i / s for i, s in zip(implicit_times, res["routes"][0][1], strict=True)]
        print(
            f"- segue dense against implicit recommend, per round: "
            f"{[round(r, 2) for r in ratios]}; median {median(ratios):.2f}x"
        )
        print(flush=True)

    if "c" in parts:
        print(
            f"\n## (c) EASE fit (float32, l2={args.l2:g}) against the item count, "
            f"{args.ease_users:,} synthetic users, one fresh process per size\n",
            flush=True,
        )
        res = ease_scaling(args)
        rows = []
        prev = None
        for r in res:
            matrix_mib = r["kept"] ** 2 * 4 / 2**20
            grow = ""
            if prev is not None:
                grow = (
                    f"{r['fit_s'] / prev['fit_s']:.1f}x (items {r['items'] / prev['items']:.1f}x)"
                )
            rows.append(
                [
                    f"{r['items']:,}",
                    f"{r['nnz']:,}",
                    r["gram_dtype"],
                    f"{r['fit_s']:.2f}",
                    grow,
                    f"{matrix_mib:,.0f}",
                    f"{r['peak']:,.0f} (+{r['peak'] - r['base']:,.0f})",
                    f"{(r['peak'] - r['base']) / matrix_mib:.2f}",
                ]
            )
            prev = r
        print()
        print(
            common.markdown_table(
                ["items", "pairs", "Gram dtype", "fit s", "fit growth", "n x n float32 MiB",
                 "peak RSS MiB (+over start)", "(peak - start) / n x n matrix"],
                rows,
            )
        )  # fmt: skip
        print(
            f"- peak reset after the data were built: {all(r['reset_ok'] for r in res)}; "
            f"worker wall times {[round(r['wall'], 1) for r in res]} s"
        )
    print(f"\ntotal time {time.perf_counter() - t_all:.1f} s")


if __name__ == "__main__":
    main()
