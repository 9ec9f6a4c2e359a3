"""The Spark engine against the single-machine path on real data (issue 16, section 3).

On Last.fm hetrec-2k (segue's listen split, seed 0) and on the real MPD split
(``segue split mpd mpd_followers10.jsonl.xz --playlists 1000 --seed 0 --unseen drop``), one
local Spark (``--master``, default ``local[2]``, 4 GB driver heap) and one process:

1. **id maps and matrix**: Spark's sorted id maps and training matrix against the
   single-machine reading renumbered to them (the single-machine path numbers ids in order of
   first appearance; with the same numbering every later step must agree);
2. **co-occurrence**: Spark's ``M^T M`` pairs against SciPy's;
3. **ItemKNN** (defaults: binary cosine, shrinkage 3, 200 neighbours; and bm25 on counts for
   Last.fm): the kept neighbour matrix, entry for entry;
4. **lists**: the same ItemKNN model (trained on one machine) scored on Spark
   (``mapInPandas``, model broadcast) against ``model.recommend`` / ``continue_playlists``;
5. **metrics**: the Spark per-partition metrics of those lists against ``segue evaluate``'s
   functions (NDCG/recall@100 for Last.fm; R-precision, NDCG, clicks for the MPD);
6. **WRMF vs Spark ALS**: WRMF's defaults (log confidence, alpha 8, lambda 30, 15 iterations)
   at 64 factors (Spark's pure-Java Cholesky makes the default 256 an hour per MPD fit) by
   implicit on one machine and by Spark ML's ALS (same confidence; regParam a multiple of the
   mapping from lambda, the multiple chosen on inner validation carved from the training data:
   ``split_listens(seed=1)`` of the training listens, ``split_mpd(seed=1)`` of the training
   playlists), both scored by the same segue code; the NDCG gap is the tolerance.

    .venv/bin/python bench/spark_parity.py --mpd-split /tmp/spk/split
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_data_dir_option, continuations, load_lastfm  # noqa: E402

from segue.data.interactions import Interactions  # noqa: E402
from segue.data.readers.listens import read_listen_interactions, write_listens  # noqa: E402
from segue.data.split import split_listens  # noqa: E402
from segue.models.knn import ItemKNN  # noqa: E402
from segue.models.wrmf import WRMF  # noqa: E402
from segue.serialization import save_model  # noqa: E402


def renumbered(single: Interactions, like: Interactions) -> Interactions:
    """``single``'s pairs in ``like``'s vocabularies (Spark's sorted ids)."""
    coo = sp.coo_array(single.matrix)
    return Interactions.from_arrays(
        single.users.ids[coo.row],
        single.items.ids[coo.col],
        coo.data,
        user_ids=like.users,
        item_ids=like.items,
    )


def differing(a: sp.csr_array, b: sp.csr_array) -> str:
    a, b = sp.csr_array(a), sp.csr_array(b)
    diff = abs(a - b)
    scale = max(float(abs(b).max()), 1e-30)
    worst = float(diff.max()) if diff.nnz else 0.0
    return (
        f"nnz {a.nnz:,} vs {b.nnz:,}, differing entries {diff.nnz:,}, "
        f"max |diff| {worst:.3g} (relative to the largest value {worst / scale:.2g})"
    )


def same_rows(a: sp.csr_array, b: sp.csr_array) -> str:
    """Rows whose kept neighbour sets are equal (the lists, values aside)."""
    a, b = sp.csr_array(a), sp.csr_array(b)
    same = sum(
        np.array_equal(
            a.indices[a.indptr[r] : a.indptr[r + 1]], b.indices[b.indptr[r] : b.indptr[r + 1]]
        )
        for r in range(a.shape[0])
    )
    return f"{same:,} of {a.shape[0]:,} rows with the same neighbours"


def cooc_check(coded, train: Interactions, full: bool = True) -> str:
    """Spark's co-occurrence pairs against SciPy's ``B^T B``.

    ``full``: every entry compared on the driver. Otherwise (the MPD's tens of millions of
    pairs, on a machine shared with other jobs) the pair count, the sum of the counts and a
    keyed checksum ``sum n * ((i * 1000003 + j) mod 2^31)`` are compared, each computed by
    Spark and by NumPy.
    """
    from pyspark.sql import functions as F

    from segue.spark.knn import cooccurrence

    n = train.n_items
    t = time.perf_counter()
    pairs = cooccurrence(coded)
    if full:
        table = pairs.toArrow()
        rows, cols = table.column("i").to_numpy(), table.column("j").to_numpy()
        got = sp.csr_array(
            (table.column("n").to_numpy().astype(np.float64), (rows, cols)), shape=(n, n)
        )
    else:
        key = (F.col("i").cast("long") * 1000003 + F.col("j")) % (1 << 31)  # exact int64 sums
        row = pairs.agg(
            F.count(F.lit(1)).alias("pairs"),
            F.sum("n").alias("total"),
            F.sum(F.col("n") * key).alias("checksum"),
        ).collect()[0]
    spark_s = time.perf_counter() - t
    t = time.perf_counter()
    binary = sp.csr_array(train.matrix, copy=True)
    binary.data[:] = 1
    want = sp.csr_array(binary.T @ binary, dtype=np.float64)
    single_s = time.perf_counter() - t
    timing = f"Spark {spark_s:.1f} s, SciPy {single_s:.1f} s"
    if full:
        return f"co-occurrence: {differing(got, want)}; {timing}"
    coo = sp.coo_array(want)
    key = (coo.row.astype(np.int64) * 1000003 + coo.col) % (1 << 31)
    counts = coo.data.astype(np.int64)
    mine = (coo.nnz, int(counts.sum()), int((counts * key).sum()))
    theirs = (int(row["pairs"]), int(row["total"]), int(row["checksum"]))
    verdict = "equal" if mine == theirs else "DIFFERENT"
    return (
        f"co-occurrence: pairs, total and checksum {verdict} "
        f"(Spark {theirs}, SciPy {mine}); {timing}"
    )


def knn_check(
    coded, train: Interactions, single: Interactions, params: dict
) -> tuple[str, ItemKNN]:
    from segue.spark.knn import fit_itemknn

    t = time.perf_counter()
    on_spark = fit_itemknn(coded, train, ItemKNN(**params))
    spark_s = time.perf_counter() - t
    t = time.perf_counter()
    local = ItemKNN(**params).fit(single)
    single_s = time.perf_counter() - t
    a, b = on_spark.similarity_, local.similarity_
    return (
        f"ItemKNN {params or 'defaults'}: {differing(a, b)}; {same_rows(a, b)}; "
        f"Spark {spark_s:.1f} s, one machine {single_s:.1f} s",
        local,
    )


def ndcg_listens(
    spark, model_dir: Path, model, targets: np.ndarray, answers: Path
) -> dict[str, float]:
    """Lists on Spark vs ``model.recommend``; Spark metrics vs ``evaluate_lists``."""
    from segue.metrics.evaluate import evaluate_lists
    from segue.spark import metrics as sm
    from segue.spark.readers import read_listens_df
    from segue.spark.scoring import recommend_users_df

    frame = spark.createDataFrame(
        [(i, str(u)) for i, u in enumerate(targets)], "order long, user string"
    )
    t = time.perf_counter()
    got = recommend_users_df(spark, model_dir, frame, 100).orderBy("order").toPandas()
    spark_s = time.perf_counter() - t
    t = time.perf_counter()
    want = dict(model.recommend(list(targets), 100, unknown="fallback").lists())
    single_s = time.perf_counter() - t
    same = sum(
        list(g) == [str(x) for x in want[u]] for u, g in zip(got["user"], got["items"], strict=True)
    )
    truth = read_listen_interactions(answers)
    local = evaluate_lists({u: [str(x) for x in v] for u, v in want.items()}, truth, [100]).summary
    recs = spark.createDataFrame(got[["user", "items"]])
    names = ["ndcg@100", "recall@100"]
    on_spark = sm.summary(
        sm.listen_metrics_df(recs, read_listens_df(spark, answers).select("user", "item"), [100]),
        names,
    )
    out = {f"{n} (one machine)": local[n] for n in names}
    out |= {f"{n} (Spark)": on_spark[n] for n in names}
    out["identical lists"] = same
    out["users"] = len(targets)
    out["recommend s (Spark / one machine)"] = f"{spark_s:.1f} / {single_s:.1f}"
    return out


def lastfm(spark, args, work: Path) -> None:
    from segue.spark.collect import to_interactions
    from segue.spark.idmap import encode
    from segue.spark.readers import read_listens_df

    split = split_listens(load_lastfm(args.data_dir), seed=0)
    write_listens(work / "lastfm_train.txt", split.listens)
    write_listens(work / "lastfm_answers.txt", split.answers)
    print("\n## Last.fm hetrec-2k (split_listens seed 0)")
    t = time.perf_counter()
    users, items, coded = encode(read_listens_df(spark, work / "lastfm_train.txt"))
    coded = coded.cache()
    train = to_interactions(users, items, coded)
    print(f"read + id maps + matrix on Spark: {time.perf_counter() - t:.1f} s, {train!r}")
    single = renumbered(read_listen_interactions(work / "lastfm_train.txt"), train)
    print(f"matrix vs one machine: {differing(train.matrix, single.matrix)}")
    print(cooc_check(coded, train))
    line, knn = knn_check(coded, train, single, {})
    print(line, flush=True)
    print(knn_check(coded, train, single, {"similarity": "bm25", "binarize": False})[0])
    save_model(knn, work / "lastfm_knn")
    targets = np.asarray(split.targets, dtype=object).astype(str)
    print(
        "ItemKNN lists and metrics:",
        ndcg_listens(spark, work / "lastfm_knn", knn, targets, work / "lastfm_answers.txt"),
    )
    inner = split_listens(split.listens, seed=1)  # validation carved from the training listens
    write_listens(work / "lastfm_inner_train.txt", inner.listens)
    write_listens(work / "lastfm_inner_answers.txt", inner.answers)
    inner_coded = encode(read_listens_df(spark, work / "lastfm_inner_train.txt"))
    inner_coded = (*inner_coded[:2], inner_coded[2].cache())
    inner_targets = np.asarray(inner.targets, dtype=object).astype(str)
    wrmf_vs_als(
        coded,
        train,
        single,
        listens_score(targets, work / "lastfm_answers.txt"),
        (
            inner_coded[2],
            to_interactions(*inner_coded),
            listens_score(inner_targets, work / "lastfm_inner_answers.txt"),
        ),
        "lastfm",
    )


# Spark's ALS solves each row by Cholesky in pure-Java LAPACK (no native LAPACK here): its cost
# is rows x factors^3 / 3 per iteration, so WRMF's default 256 factors take about an hour per
# fit on the MPD split (18.4K Last.fm rows: 317 s). Both engines run at 64 factors instead.
PARITY_FACTORS = 64
# Spark's regParam, as multiples of default_reg_param, chosen on inner validation.
REG_MULTIPLES = (1 / 64, 1 / 16, 1 / 4, 1.0, 4.0)


def wrmf_vs_als(coded, train, single, test_score, inner, tag) -> None:
    """WRMF (implicit) against Spark ALS at PARITY_FACTORS, Spark's regParam chosen on ``inner``.

    ``inner`` is ``(coded, train, score)`` of the inner validation, carved from the training
    data (never the answers); a score is ``score(model) -> (ndcg, text)``. Both engines are
    then fitted on ``coded``/``train`` (``single``: the same matrix read on one machine) and
    scored by ``test_score``.
    """
    from segue.spark.als import default_reg_param, fit_wrmf

    params = {"factors": PARITY_FACTORS}
    inner_coded, inner_train, inner_score = inner
    base = default_reg_param(
        WRMF(**params), inner_train.n_users, inner_train.n_items, inner_train.nnz
    )
    print(
        f"WRMF vs Spark ALS at {PARITY_FACTORS} factors (WRMF's other defaults); Spark's "
        f"regParam = m x default mapping ({base:.4g} on the inner training data), m chosen "
        "on inner validation:"
    )
    tried = {}
    for m in REG_MULTIPLES:
        t = time.perf_counter()
        model = fit_wrmf(inner_coded, inner_train, WRMF(**params), reg_param=m * base)
        tried[m] = inner_score(model)[0]
        print(f"  inner m={m:g}: ndcg {tried[m]:.4f} ({time.perf_counter() - t:.1f} s)", flush=True)
    best = max(tried, key=tried.get)
    t = time.perf_counter()
    local = WRMF(**params).fit(single)
    single_s = time.perf_counter() - t
    reg = best * default_reg_param(WRMF(**params), train.n_users, train.n_items, train.nnz)
    t = time.perf_counter()
    on_spark = fit_wrmf(coded, train, WRMF(**params), reg_param=reg)
    spark_s = time.perf_counter() - t
    print(
        f"  test ({tag}): implicit {single_s:.1f} s, Spark ALS {spark_s:.1f} s "
        f"(m={best:g}, regParam {reg:.4g})"
    )
    scores = {}
    for name, model in (("implicit WRMF", local), ("Spark ALS", on_spark)):
        scores[name], text = test_score(model)
        print(f"  {name}: {text}")
    gap = scores["Spark ALS"] / scores["implicit WRMF"] - 1
    print(f"  Spark ALS NDCG vs implicit WRMF: {gap:+.1%}", flush=True)


def listens_score(targets, answers: Path):
    """``score(model) -> (ndcg@100, text)`` for listen-count targets and their answers."""
    from segue.metrics.evaluate import evaluate_lists

    truth = read_listen_interactions(answers)

    def score(model):
        recs = dict(model.recommend(list(targets), 100, unknown="fallback").lists())
        s = evaluate_lists(recs, truth, [100]).summary
        return s["ndcg@100"], f"ndcg@100 {s['ndcg@100']:.4f}, recall@100 {s['recall@100']:.4f}"

    return score


def mpd_score(challenge: Path, answers: Path):
    """``score(model) -> (ndcg, text)`` on an MPD challenge set and its answers."""
    from segue.data.readers.mpd import read_challenge_set
    from segue.metrics.challenges import mpd_metrics
    from segue.metrics.playlist_eval import _track_artists, read_mpd_answers

    queries = read_challenge_set(challenge)
    truth = read_mpd_answers(answers)
    artists = _track_artists(answers.parent / "tracks.parquet")

    def score(model):
        lists = continuations(model, queries, 500)
        per = mpd_metrics([lists[p] for p in truth["pid"]], truth["tracks"].tolist(), artists)
        text = ", ".join(f"{m} {per[m].mean():.4f}" for m in ("r_precision", "ndcg", "clicks"))
        return float(per["ndcg"].mean()), text

    return score


def mpd(spark, args, work: Path) -> None:
    from segue.cli.playlists import playlist_training_data
    from segue.data.mpd_split import split_mpd
    from segue.data.readers.mpd import read_challenge_set
    from segue.metrics.challenges import mpd_metrics
    from segue.metrics.playlist_eval import _track_artists, read_mpd_answers
    from segue.spark import metrics as sm
    from segue.spark.collect import to_interactions
    from segue.spark.idmap import encode
    from segue.spark.readers import read_mpd_df
    from segue.spark.scoring import continue_playlists_df

    root = args.mpd_split
    print(f"\n## MPD split {root} (train slices, 1,000 challenge playlists)")
    t = time.perf_counter()
    titles = bool(args.titles)
    frame = read_mpd_df(spark, root / "train", with_titles=titles)
    users, items, coded = encode(frame, user_kind="playlist")
    coded = coded.cache()
    train = to_interactions(users, items, coded)
    print(f"read + id maps + matrix on Spark: {time.perf_counter() - t:.1f} s, {train!r}")
    one = playlist_training_data(root / "train", None, titles=titles)
    single = renumbered(Interactions(one.users, one.items, one.matrix), train)
    same_kinds = np.array_equal(
        one.items.kinds[one.items.numbers(train.items.ids)], train.items.kinds
    )
    print(
        f"matrix vs one machine ({'--titles' if titles else '--no-titles'}): "
        f"{differing(train.matrix, single.matrix)}; column kinds identical: {same_kinds}"
    )
    if "mpd-lists" in args.parts:  # lists, metrics and ALS only (an ItemKNN fitted here)
        knn = ItemKNN().fit(single)
    else:
        print(cooc_check(coded, train, full=False), flush=True)
        line, knn = knn_check(coded, train, single, {})
        print(line, flush=True)
    save_model(knn, work / "mpd_knn")
    challenge, answers = root / "challenge_set.json", root / "answers.json"
    t = time.perf_counter()
    got = continue_playlists_df(spark, work / "mpd_knn", challenge, 500).orderBy("order").toPandas()
    spark_s = time.perf_counter() - t
    t = time.perf_counter()
    want = continuations(knn, read_challenge_set(challenge), 500)
    single_s = time.perf_counter() - t
    same = sum(list(g) == want[p] for p, g in zip(got["pid"], got["tracks"], strict=True))
    print(
        f"ItemKNN continuations: {same} of {len(got)} identical; "
        f"Spark {spark_s:.1f} s, one machine {single_s:.1f} s"
    )
    truth = read_mpd_answers(answers)
    artists = _track_artists(root / "tracks.parquet")
    local = mpd_metrics([want[p] for p in truth["pid"]], truth["tracks"].tolist(), artists)
    on_spark = sm.summary(
        sm.mpd_metrics_df(
            spark.createDataFrame(got[["pid", "tracks"]]),
            sm.read_mpd_answers_df(spark, answers),
            artists,
        ),
        sm.MPD_METRICS,
    )
    for m in sm.MPD_METRICS:
        print(
            f"  {m}: one machine {local[m].mean():.6f}, Spark {on_spark[m]:.6f}, "
            f"diff {abs(local[m].mean() - on_spark[m]):.1e}"
        )
    inner = work / "mpd_inner"  # validation carved from the training playlists
    split_mpd(root / "train", inner, n_playlists=500, seed=1, unseen="drop")
    inner_coded = encode(
        read_mpd_df(spark, inner / "train", with_titles=titles), user_kind="playlist"
    )
    inner_coded = (*inner_coded[:2], inner_coded[2].cache())
    wrmf_vs_als(
        coded,
        train,
        single,
        mpd_score(challenge, answers),
        (
            inner_coded[2],
            to_interactions(*inner_coded),
            mpd_score(inner / "challenge_set.json", inner / "answers.json"),
        ),
        "mpd",
    )


def blas(spark) -> str:
    jvm = spark.sparkContext._jvm
    try:
        b = jvm.dev.ludovic.netlib.blas.BLAS.getInstance().getClass().getName()
        lp = jvm.dev.ludovic.netlib.lapack.LAPACK.getInstance().getClass().getName()
        return f"BLAS {b}, LAPACK {lp}"
    except Exception as exc:  # noqa: BLE001 - the report must not stop here
        return f"unknown ({exc})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_dir_option(parser)
    parser.add_argument("--mpd-split", type=Path, required=True, help="segue split mpd --out DIR")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument(
        "--parts",
        default="lastfm,mpd",
        help="lastfm, mpd, or mpd-lists (MPD without the item-item steps)",
    )
    parser.add_argument("--driver-memory", default="4g", help="JVM heap of the driver")
    parser.add_argument(
        "--titles",
        action="store_true",
        help="MPD: title words as columns on both engines (segue train's default)",
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    from segue.spark.session import spark_session

    t = time.perf_counter()
    spark = spark_session(args.master, driver_memory=args.driver_memory)
    print(
        f"# spark_parity: Spark {spark.version} on {args.master}, "
        f"started in {time.perf_counter() - t:.1f} s"
    )
    with tempfile.TemporaryDirectory(prefix="segue-spark-parity-") as tmp:
        work = Path(tmp)
        if "lastfm" in args.parts:
            lastfm(spark, args, work)
        if "mpd" in args.parts:  # "mpd" or "mpd-lists"
            mpd(spark, args, work)
    print(f"\nJVM linear algebra used by Spark ML's ALS: {blas(spark)}")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
