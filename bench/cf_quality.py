"""Accuracy of segue's collaborative-filtering models against the ``implicit`` library.

On Last.fm hetrec-2k (user, artist, listen count) and the MSD Taste Profile sample (user, song,
play count), with the listen-count task's seeded split (``split_listens(df, seed=0)``: 20% of
the users with at least 10 items become targets, half of each target's items are the answers):

- segue: ``MostPopular``, ``EASE``, ``WRMF``, ``ItemKNN``, ``UserKNN``, each at its defaults and
  tuned;
- implicit, called directly: ``AlternatingLeastSquares`` (CPU) on the *same* confidence matrix
  segue's WRMF builds (``WRMF.confidence_matrix``: ``1 + alpha log(1 + count)``, implicit's own
  alpha left at 1, same seed), so a grid point is the same model as segue's; also once at
  implicit's defaults on the raw counts. ``BM25Recommender``, ``CosineRecommender`` and
  ``TFIDFRecommender`` on the raw counts or on 0/1 (a grid dimension), K (and K1, B) tuned.

Tuning never sees the answers: every grid point is fitted on a validation split carved out of
the visible listens only (``segue.tuning.grid_search``, which splits them again with
``split_listens(seed=--val-seed)``; the implicit peers use the very same split, checked), the
best by validation NDCG@100 is refitted on all the visible listens and scored on the answers.
Every model returns 100 items per target with already-heard items removed (implicit:
``recommend(userids, user_items[userids], N=100, filter_already_liked_items=True)``), scored
by ``segue.metrics.evaluate.evaluate_lists``. implicit runs with BLAS limited to one thread
(``threadpoolctl``), as segue's WRMF does around the same solver.

Exit status 1 when, on either dataset, segue's model picked by validation NDCG@100 is below
implicit's model picked the same way, on NDCG@100 or recall@100 of the answers. (The best rows
by answer score are printed too, for information: picking by them would tune on the answers.)

    .venv/bin/python bench/cf_quality.py [--datasets lastfm-hetrec-2k,msd-taste-42k]
                                         [--val-seed 0] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

from segue.data.interactions import Interactions  # noqa: E402
from segue.data.split import split_listens  # noqa: E402
from segue.metrics.evaluate import evaluate_lists  # noqa: E402
from segue.models import EASE, MostPopular  # noqa: E402
from segue.models.knn import ItemKNN, UserKNN  # noqa: E402
from segue.models.wrmf import WRMF  # noqa: E402
from segue.tuning import expand_grid, grid_search  # noqa: E402

K = 100
METRIC = f"ndcg@{K}"
DATASETS = {
    "lastfm-hetrec-2k": (common.LASTFM, common.load_lastfm),
    "msd-taste-42k": (common.MSD, common.load_msd),
}

# grids (small enough for the whole script to take a few minutes on 2 cores) -----------------
WRMF_GRID = {"factors": [64, 128], "alpha": [1.0, 2.0, 4.0], "regularization": [1.0, 10.0, 30.0]}
SEGUE_MODELS: list[tuple[str, type, dict[str, list[Any]]]] = [
    ("MostPopular", MostPopular, {"weighting": ["users", "count"]}),
    ("EASE", EASE, {"l2": [50.0, 100.0, 250.0, 500.0, 1000.0]}),
    ("WRMF", WRMF, WRMF_GRID),
    ("ItemKNN", ItemKNN, {"similarity": ["cosine", "bm25", "tfidf"], "neighbors": [100, 200, 500]}),
    ("UserKNN", UserKNN, {"similarity": ["bm25", "tfidf"], "neighbors": [50, 100, 200]}),
]
SAME_MODEL_PEER = "ALS (segue's confidence)"
# implicit: (name, grid, defaults row or None)
IMPLICIT_MODELS: list[tuple[str, dict[str, list[Any]], dict[str, Any] | None]] = [
    (
        SAME_MODEL_PEER,
        WRMF_GRID,
        None,  # its defaults are segue WRMF's defaults: same model, same row
    ),
    ("ALS (implicit defaults, raw counts)", {}, {"factors": 100, "regularization": 0.01}),
    (
        "BM25Recommender",
        {"input": ["counts", "binary"], "K": [100, 200, 500], "K1": [1.2, 100.0], "B": [0.75, 1.0]},
        {"input": "counts", "K": 20, "K1": 1.2, "B": 0.75},
    ),
    (
        "CosineRecommender",
        {"input": ["counts", "binary"], "K": [100, 200, 500]},
        {"input": "counts", "K": 20},
    ),
    (
        "TFIDFRecommender",
        {"input": ["counts", "binary"], "K": [100, 200, 500]},
        {"input": "counts", "K": 20},
    ),
]


# one model run -------------------------------------------------------------------------------
@dataclass
class Run:
    model: str
    source: str
    params: str
    how: str  # "defaults" / "tuned"
    val: float | None  # validation NDCG@100 of the chosen point (tuned rows)
    summary: dict[str, float]
    fit_s: float
    rec_s: float
    extra: dict[str, Any] = field(default_factory=dict)


def score(lists: dict, answers: Interactions, train: Interactions) -> dict[str, float]:
    return evaluate_lists(lists, answers, (10, K), train=train).summary


def run_segue(cls: type, params: dict, train: Interactions, targets) -> tuple[dict, float, float]:
    model = cls(**params)
    t0 = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    recs = model.recommend(targets, K)
    rec_s = time.perf_counter() - t0
    return dict(recs.lists()), fit_s, rec_s


def _implicit_quiet() -> Any:
    """implicit's kNN weighting returns COO and then warns about its own conversion."""
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.filterwarnings("ignore", message="Method expects CSR input")
    return ctx


def run_implicit(
    name: str, params: dict, train: Interactions, targets
) -> tuple[dict, float, float]:
    """Fit one implicit model on ``train`` and recommend top-K (seen removed) for ``targets``."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import (
        BM25Recommender,
        CosineRecommender,
        TFIDFRecommender,
    )
    from threadpoolctl import threadpool_limits

    counts = train.matrix
    user_items = sp.csr_matrix(
        (counts.data.astype(np.float32), counts.indices, counts.indptr), shape=counts.shape
    )
    if params.get("input") == "binary":
        user_items.data[:] = 1.0
    ctx = _implicit_quiet()
    try:
        with threadpool_limits(1, "blas"):
            if name.startswith("ALS"):
                if name == SAME_MODEL_PEER:
                    conf = WRMF(alpha=params["alpha"], confidence="log").confidence_matrix(counts)
                    fit_input = sp.csr_matrix(
                        (conf.data, conf.indices, conf.indptr), shape=conf.shape
                    )
                else:  # implicit's documented use: raw counts as confidences
                    fit_input = user_items
                model = AlternatingLeastSquares(
                    factors=params["factors"],
                    regularization=params["regularization"],
                    alpha=1.0,
                    dtype=np.float32,
                    iterations=15,
                    random_state=0,
                )
            elif name == "BM25Recommender":
                model = BM25Recommender(K=params["K"], K1=params["K1"], B=params["B"])
                fit_input = user_items
            elif name == "CosineRecommender":
                model = CosineRecommender(K=params["K"])
                fit_input = user_items
            elif name == "TFIDFRecommender":
                model = TFIDFRecommender(K=params["K"])
                fit_input = user_items
            else:
                raise ValueError(name)
            t0 = time.perf_counter()
            model.fit(fit_input, show_progress=False)
            fit_s = time.perf_counter() - t0
            rows = train.users.numbers(np.asarray(targets, dtype=object))
            t0 = time.perf_counter()
            ids, _ = model.recommend(rows, user_items[rows], N=K, filter_already_liked_items=True)
            rec_s = time.perf_counter() - t0
    finally:
        ctx.__exit__(None, None, None)
    item_ids = train.items.ids
    lists = {u: item_ids[r[r >= 0]].tolist() for u, r in zip(targets, np.asarray(ids), strict=True)}
    return lists, fit_s, rec_s


def fmt_params(params: dict) -> str:
    def one(v: Any) -> str:
        return f"{v:g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{k}={one(v)}" for k, v in params.items()) if params else "-"


# validation ----------------------------------------------------------------------------------
def validation_split(train: Interactions, seed: int):
    """The split ``segue.tuning.grid_search`` makes (same frame, same call)."""
    frame = train.to_frame().rename(columns={"weight": "count"})
    split = split_listens(frame, seed=seed)
    return (
        split,
        Interactions.from_frame(split.listens, weight="count"),
        Interactions.from_frame(split.answers, weight="count"),
    )


def tune_implicit(
    name: str, grid: dict, val, log: Callable[[str], None]
) -> tuple[dict, pd.DataFrame]:
    split, vtrain, vanswers = val
    rows = []
    for point in expand_grid(grid):
        lists, fit_s, _ = run_implicit(name, point, vtrain, split.targets)
        summary = score(lists, vanswers, vtrain)
        rows.append({**point, METRIC: summary[METRIC], f"recall@{K}": summary[f"recall@{K}"]})
    table = pd.DataFrame(rows)
    best = int(np.argmax(table[METRIC].to_numpy()))  # first of equal bests (grid order)
    table = table.iloc[np.argsort(-table[METRIC].to_numpy(), kind="stable")].reset_index(drop=True)
    top = table[METRIC].iloc[0]
    log(f"  implicit {name}: {len(rows)} grid points, best val {METRIC} {top:.4f}")
    return expand_grid(grid)[best], table


def edge_note(grid: dict, best: dict) -> str:
    """Names of numeric parameters whose pick is at the edge of a grid of 3+ values."""
    edges = []
    for key, values in grid.items():
        nums = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(nums) >= 3 and len(nums) == len(values) and best[key] in (min(nums), max(nums)):
            edges.append(key)
    return ", ".join(edges)


# one dataset ---------------------------------------------------------------------------------
def run_dataset(name: str, df: pd.DataFrame, val_seed: int, log: Callable[[str], None]):
    split, train, answers = common.task_split(df)
    targets = split.targets
    log(
        f"- {name}: {len(df):,} rows, {df['user_id'].nunique():,} users, "
        f"{df['item_id'].nunique():,} items; visible {train.nnz:,} pairs "
        f"({train.n_users:,} x {train.n_items:,}), {len(targets)} targets, "
        f"{len(split.answers):,} answers"
    )
    val = validation_split(train, val_seed)
    log(
        f"  validation split (of the visible listens, seed {val_seed}): "
        f"{len(val[0].targets)} targets, {val[1].nnz:,} visible pairs, {val[2].nnz:,} held out"
    )
    runs: list[Run] = []
    grids: list[list[Any]] = []

    def final(model, source, params, how, val_score, runner, label=None) -> Run:
        lists, fit_s, rec_s = runner(params)
        summary = score(lists, answers, train)
        if summary["missing_users"] != 0 or (summary["seen_share"] != 0 and source == "segue"):
            log(
                f"WARNING: {name} {model} {params}: seen_share {summary['seen_share']}, "
                f"missing_users {summary['missing_users']}"
            )
        r = Run(model, source, label or fmt_params(params), how, val_score, summary, fit_s, rec_s)
        runs.append(r)
        log(
            f"  {source} {model} ({how}: {r.params}): test {METRIC} {summary[METRIC]:.4f}, "
            f"recall@{K} {summary[f'recall@{K}']:.4f}, fit {fit_s:.2f} s"
        )
        return r

    # segue models ----------------------------------------------------------------------------
    for model_name, cls, grid in SEGUE_MODELS:
        t0 = time.perf_counter()
        res = grid_search(train, cls, grid, k=K, metric=METRIC, seed=val_seed)
        expected = {"targets": len(val[0].targets), "visible_pairs": val[1].nnz,
                    "held_out_pairs": val[2].nnz}  # fmt: skip
        if res.split != expected:  # the implicit peers must be tuned on the same split
            sys.exit(f"error: validation splits differ: grid_search {res.split}, here {expected}")
        best = res.best_params
        log(
            f"  segue {model_name}: {len(res.table)} grid points in "
            f"{time.perf_counter() - t0:.1f} s (fits {res.table['fit_s'].sum():.1f} s), "
            f"best val {METRIC} {res.table[METRIC].iloc[0]:.4f}"
        )

        def runner(p, cls=cls):
            return run_segue(cls, p, train, targets)

        defaults_in_grid = {k: v for k, v in cls().get_params().items() if k in grid}
        label = fmt_params(defaults_in_grid)
        default = final(model_name, "segue", {}, "defaults", None, runner, label)
        if best == defaults_in_grid:
            tuned = Run(**{**default.__dict__, "how": "tuned", "params": fmt_params(best)})
            tuned.extra = {}
            tuned.val = float(res.table[METRIC].iloc[0])
            tuned.extra["same_as_defaults"] = True
            runs.append(tuned)
            log(f"  segue {model_name}: validation pick = defaults ({fmt_params(best)})")
        else:
            final(model_name, "segue", best, "tuned", float(res.table[METRIC].iloc[0]), runner)
        grids.append(
            [model_name, "segue", len(res.table), f"{res.table[METRIC].iloc[0]:.4f}",
             f"{res.table[METRIC].iloc[-1]:.4f}", fmt_params(best), edge_note(grid, best)]
        )  # fmt: skip

    # implicit peers --------------------------------------------------------------------------
    for model_name, grid, defaults in IMPLICIT_MODELS:

        def runner(p, model_name=model_name):
            return run_implicit(model_name, p, train, targets)

        if defaults is not None:
            label = fmt_params(defaults)
            final(model_name, "implicit", defaults, "defaults", None, runner, label)
        if grid:
            t0 = time.perf_counter()
            best, table = tune_implicit(model_name, grid, val, log)
            log(f"    ({time.perf_counter() - t0:.1f} s)")
            final(model_name, "implicit", best, "tuned", float(table[METRIC].iloc[0]), runner)
            grids.append(
                [model_name, "implicit", len(table), f"{table[METRIC].iloc[0]:.4f}",
                 f"{table[METRIC].iloc[-1]:.4f}", fmt_params(best), edge_note(grid, best)]
            )  # fmt: skip
    return train, runs, grids


def verdict(name: str, runs: list[Run]) -> tuple[list[str], bool]:
    """Pass/fail on each side's model picked by *validation* NDCG only (the answers pick
    nothing); the best rows by test score are printed for information, not judged."""
    lines = []
    rec = f"recall@{K}"
    for metric in (METRIC, rec):
        seg = max((r for r in runs if r.source == "segue"), key=lambda r: r.summary[metric])
        imp = max((r for r in runs if r.source == "implicit"), key=lambda r: r.summary[metric])
        lines.append(
            f"- {name}, best {metric} over all rows (by test score: information, not the "
            f"verdict): segue {seg.model} ({seg.params}) {seg.summary[metric]:.4f} vs implicit "
            f"{imp.model} ({imp.params}) {imp.summary[metric]:.4f}: ratio "
            f"{seg.summary[metric] / imp.summary[metric]:.3f}"
        )
    # implicit's own recommenders only: the ALS row on segue's confidence matrix is segue's WRMF
    # model (same solver, same input, same seed), so it ties segue by construction
    own = [r for r in runs if r.source == "implicit" and r.model != SAME_MODEL_PEER]
    seg = max((r for r in runs if r.source == "segue"), key=lambda r: r.summary[METRIC])
    imp = max(own, key=lambda r: r.summary[METRIC])
    lines.append(
        f"- {name}, best {METRIC} without the ALS row on segue's confidence matrix (by test "
        f"score: information): segue {seg.model} {seg.summary[METRIC]:.4f} vs implicit "
        f"{imp.model} ({imp.params}) {imp.summary[METRIC]:.4f}: ratio "
        f"{seg.summary[METRIC] / imp.summary[METRIC]:.3f}"
    )
    # the verdict: each side's tuned model with the best *validation* NDCG
    seg = max((r for r in runs if r.source == "segue" and r.val is not None), key=lambda r: r.val)
    imp = max(
        (r for r in runs if r.source == "implicit" and r.val is not None), key=lambda r: r.val
    )
    ndcg_ratio = seg.summary[METRIC] / imp.summary[METRIC]
    rec_ratio = seg.summary[rec] / imp.summary[rec]
    ok = ndcg_ratio >= 1.0 and rec_ratio >= 1.0
    lines.append(
        f"- {name}, VERDICT, each side's model picked by validation {METRIC}: segue "
        f"{seg.model} (val {seg.val:.4f}) test {seg.summary[METRIC]:.4f} / recall "
        f"{seg.summary[rec]:.4f} vs implicit {imp.model} (val {imp.val:.4f}) test "
        f"{imp.summary[METRIC]:.4f} / recall {imp.summary[rec]:.4f}: NDCG ratio "
        f"{ndcg_ratio:.3f}, recall ratio {rec_ratio:.3f} "
        + ("(segue >= peers)" if ok else "(SEGUE BELOW PEERS)")
    )
    return lines, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_data_dir_option(parser)
    common.add_split_options(parser, list(DATASETS))
    args = parser.parse_args()
    names = common.chosen_datasets(parser, args, DATASETS)

    import implicit

    def log(line: str) -> None:
        print(line, flush=True)

    t_all = time.perf_counter()
    print("# Collaborative filtering accuracy: segue vs implicit\n")
    for line in common.environment_lines():
        print(f"- {line}")
    print(
        f"- implicit {implicit.__version__} (CPU, BLAS limited to 1 thread around its calls)\n"
        f"- split: split_listens(seed=0); tuning: grid_search / same validation split of the "
        f"visible listens (seed {args.val_seed}), best by val {METRIC}, refit on all visible; "
        f"top-{K}, seen items excluded\n",
        flush=True,
    )
    results = {}
    for name in names:
        rel, loader = DATASETS[name]
        t0 = time.perf_counter()
        results[name] = run_dataset(name, loader(args.data_dir), args.val_seed, log)
        log(f"  ({name}: {time.perf_counter() - t0:.1f} s)\n")

    all_ok = True
    summary_lines = []
    for name in names:
        _, runs, grids = results[name]
        print(f"\n## {name}: test (answers of the seeded split)\n")
        rows = []
        for r in runs:
            rows.append(
                [
                    r.model,
                    r.source,
                    r.how + (" (= defaults)" if r.extra.get("same_as_defaults") else ""),
                    r.params,
                    "" if r.val is None else f"{r.val:.4f}",
                    f"{r.summary[METRIC]:.4f}",
                    f"{r.summary[f'recall@{K}']:.4f}",
                    f"{r.summary['hit_rate@10']:.4f}",
                    f"{r.summary[f'coverage@{K}']:.4f}",
                    f"{r.summary['seen_share']:.4f}",
                    f"{r.fit_s:.2f}",
                    f"{r.rec_s:.3f}",
                ]
            )
        print(
            common.markdown_table(
                ["model", "source", "", "params", f"val {METRIC}", f"NDCG@{K}", f"recall@{K}",
                 "hit_rate@10", f"coverage@{K}", "seen share", "fit s", "recommend s"],
                rows,
            )
        )  # fmt: skip
        leaky = [f"{r.model} ({r.params})" for r in runs if r.summary["seen_share"] > 0]
        if leaky:
            print(
                f"\nseen share > 0: {'; '.join(leaky)}. implicit's item-item scorer, asked for "
                f"{K} items with filter_already_liked_items=True, pads a list with fewer than {K} "
                "candidates with the user's own items (score 0) at its end. Such items can never "
                "be answers (the answers are items the user had not heard), so NDCG and recall "
                "are the same as for the list without them."
            )
        print(f"\n### {name}: grids (validation split of the visible listens only)\n")
        print(
            common.markdown_table(
                ["model", "source", "points", f"best val {METRIC}", f"worst val {METRIC}",
                 "pick", "pick at grid edge"],
                grids,
            )
        )  # fmt: skip
        lines, ok = verdict(name, runs)
        summary_lines += lines
        all_ok &= ok

    print("\n## segue's best vs implicit's best\n")
    for line in summary_lines:
        print(line)
    print(f"\ntotal time {time.perf_counter() - t_all:.1f} s")
    if not all_ok:
        print("FAIL: segue's validation pick is below implicit's on some dataset/metric")
        sys.exit(1)
    print(
        "OK: segue's validation-picked model >= implicit's validation-picked model on every "
        "dataset, NDCG@100 and recall@100"
    )


if __name__ == "__main__":
    main()
