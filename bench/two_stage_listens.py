"""The listen-count two-stage model against tuned peers: Last.fm hetrec-2k and the MSD sample.

The question (issue 15, section 4): does the YouTube-style ranking stage (first-stage candidates
from segue's listen-count models, a LightGBM lambdarank ranker with user and item features and
labels that follow play counts) beat the best of the peers a user would pick instead by 5%
NDCG@100? The peers, each tuned on validation:

- segue ``EASE`` (``l2`` grid);
- implicit ``AlternatingLeastSquares`` on segue's log confidence (called directly, as in
  ``bench/cf_quality.py``; the same solver as segue's WRMF);
- implicit's item-kNN: ``CosineRecommender``, ``TFIDFRecommender`` and ``BM25Recommender``
  (the best of the three by validation NDCG is the item-kNN peer).

Protocol: the seeded split of ``bench/listens_quality.py`` (``split_listens(df, seed=0)``);
every choice is made on a validation split carved out of the visible listens only
(``split_listens(visible, seed=--val-seed)``, the split ``segue.tuning.grid_search`` makes):
the peers' grid points, the two-stage model's first-stage parameters (the peers' picks, plus
segue's ItemKNN / UserKNN tuned the same way) and its variant (count labels, or count labels
with an NCF scorer as an extra ranker feature: the variants' validation NDCG is printed).
The chosen setting is refit on all the visible listens and scored once on the answers (only
the pick: the machine is shared and every two-stage fit refits its sources).
The two-stage model's own inner questions (``split_listens`` on whatever it is fit on) train
its ranker.

    .venv/bin/python bench/two_stage_listens.py [--datasets lastfm-hetrec-2k,msd-taste-42k]
        [--picks tune|recorded]

``--picks recorded`` skips the grids and takes the validation picks ``bench/cf_quality.py``
made on the same validation split (larger grids, listed in bench/README.md), for a busy
machine; the two-stage variant is still chosen on the validation split here.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402
import cf_quality as cfq  # noqa: E402

from segue.data.interactions import Interactions  # noqa: E402
from segue.models import EASE, WRMF, ItemKNN, MostPopular, UserKNN  # noqa: E402
from segue.ranking.two_stage import TwoStage  # noqa: E402
from segue.tuning import grid_search  # noqa: E402

K = 100
METRIC = f"ndcg@{K}"
DATASETS = {
    "lastfm-hetrec-2k": (common.LASTFM, common.load_lastfm),
    "msd-taste-42k": (common.MSD, common.load_msd),
}
EASE_GRID = {"l2": [100.0, 250.0, 500.0]}
ALS_GRID = {"factors": [64, 128], "alpha": [1.0, 2.0, 4.0], "regularization": [10.0, 30.0]}
KNN_PEERS = {
    "CosineRecommender": {"input": ["binary"], "K": [100, 200, 500]},
    "TFIDFRecommender": {"input": ["binary"], "K": [100, 200, 500]},
    "BM25Recommender": {"input": ["counts", "binary"], "K": [200, 500], "K1": [1.2, 100.0],
                        "B": [0.75]},
}  # fmt: skip
ITEMKNN_GRID = {"similarity": ["cosine", "bm25", "tfidf"], "neighbors": [200, 500]}
USERKNN_GRID = {"similarity": ["bm25", "tfidf"], "neighbors": [50, 100, 200]}
NCF_SCORER = {"epochs": 8, "patience": 2, "lr": 0.005, "l2": 0.001, "validation_rows": 300}
# 5 inner folds (1 before): picked on the validation splits with segue's listen-count ranker
# trees (segue.ranking.listens.LISTEN_RANKER_PARAMS); bench/README.md lists the variants tried
TWO_STAGE = {
    "n": 200,
    "folds": 5,
    "num_boost_round": 300,
    "early_stopping_rounds": 30,
    "num_threads": 1,
}
RECORDED = {
    # validation picks of bench/cf_quality.py (bench/README.md, "grids" tables): the same split,
    # the same validation split of the visible listens (seed 0), larger grids
    "lastfm-hetrec-2k": {
        "EASE": ({"l2": 250.0}, 0.3499),
        "ALS": ({"factors": 128, "alpha": 1.0, "regularization": 30.0}, 0.3683),
        "ItemKNN": ({"similarity": "cosine", "neighbors": 500}, 0.3484),
        "UserKNN": ({"similarity": "bm25", "neighbors": 100}, 0.3584),
        "knn": (("CosineRecommender", {"input": "binary", "K": 500}), 0.3331),
    },
    "msd-taste-42k": {
        "EASE": ({"l2": 100.0}, 0.2119),
        "ALS": ({"factors": 128, "alpha": 4.0, "regularization": 30.0}, 0.1871),
        "ItemKNN": ({"similarity": "cosine", "neighbors": 100}, 0.1885),
        "UserKNN": ({"similarity": "tfidf", "neighbors": 100}, 0.2208),
        "knn": (("TFIDFRecommender", {"input": "binary", "K": 500}), 0.1746),
    },
}
VARIANTS = {
    "count labels": {"labels": "counts"},
    "count labels + NCF scorer": {
        "labels": "counts",
        "scorers": {"ncf": {"model": "ncf", "params": NCF_SCORER}},
    },
}


def log(line: str) -> None:
    print(line, flush=True)


def evaluate_model(model, train: Interactions, targets, answers: Interactions) -> dict[str, Any]:
    t0 = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    lists = dict(model.recommend(targets, K).lists())
    rec_s = time.perf_counter() - t0
    return {**cfq.score(lists, answers, train), "fit_s": fit_s, "rec_s": rec_s}


def source_picks(picks: dict[str, dict]) -> dict[str, dict]:
    """The first stage's parameters from the peers' picks: WRMF takes implicit ALS's pick on
    segue's log confidence (15 iterations, seeded)."""
    als = {**picks["ALS"], "confidence": "log", "iterations": 15, "seed": 0}
    return {**picks, "ALS": als}


def two_stage(picks: dict[str, dict], variant: dict) -> TwoStage:
    """The two-stage model on ``source_picks`` sources; ``variant`` overrides ``TWO_STAGE``."""
    first_stage = {
        "ease": EASE(**picks["EASE"]),
        "wrmf": WRMF(**picks["ALS"]),
        "iknn": ItemKNN(**picks["ItemKNN"]),
        "uknn": UserKNN(**picks["UserKNN"]),
        "pop": MostPopular(),
    }
    return TwoStage(first_stage, **{**TWO_STAGE, **variant})


def tune(name: str, train: Interactions, val, val_seed: int) -> tuple[dict, dict, tuple, float]:
    """Peer and source parameters by validation NDCG (grids above), on the validation split."""
    picks: dict[str, dict] = {}
    val_scores: dict[str, float] = {}
    for label, cls, grid in (
        ("EASE", EASE, EASE_GRID),
        ("ItemKNN", ItemKNN, ITEMKNN_GRID),
        ("UserKNN", UserKNN, USERKNN_GRID),
    ):
        t0 = time.perf_counter()
        res = grid_search(train, cls, grid, k=K, metric=METRIC, seed=val_seed)
        picks[label] = res.best_params
        val_scores[label] = float(res.table[METRIC].iloc[0])
        log(
            f"  {label}: {len(res.table)} grid points ({time.perf_counter() - t0:.0f} s), pick "
            f"{cfq.fmt_params(res.best_params)}, val {METRIC} {val_scores[label]:.4f}"
        )
    best, table = cfq.tune_implicit(cfq.SAME_MODEL_PEER, ALS_GRID, val, log)
    picks["ALS"] = best
    val_scores["ALS"] = float(table[METRIC].iloc[0])
    knn_pick, knn_val = None, -1.0
    for peer, grid in KNN_PEERS.items():
        point, table = cfq.tune_implicit(peer, grid, val, log)
        if float(table[METRIC].iloc[0]) > knn_val:
            knn_pick, knn_val = (peer, point), float(table[METRIC].iloc[0])
    assert knn_pick is not None
    return picks, val_scores, knn_pick, knn_val


def run_dataset(
    name: str, df: pd.DataFrame, val_seed: int, recorded: bool, variants: list[str]
) -> list[list[Any]]:
    split, train, answers = common.task_split(df)
    log(
        f"- {name}: {len(df):,} rows; visible {train.nnz:,} pairs ({train.n_users:,} x "
        f"{train.n_items:,}), {len(split.targets)} targets, {len(split.answers):,} answers"
    )
    val = cfq.validation_split(train, val_seed)
    vsplit, vtrain, vanswers = val
    rows: list[list[Any]] = []
    if recorded and name in RECORDED:  # picks of bench/cf_quality.py on this validation split
        if val_seed != 0:
            sys.exit("error: --picks recorded holds the picks of --val-seed 0")
        rec = RECORDED[name]
        picks = {k: v[0] for k, v in rec.items() if k != "knn"}
        val_scores = {k: v[1] for k, v in rec.items() if k != "knn"}
        knn_pick, knn_val = rec["knn"]
        log(f"  parameters: the validation picks of bench/cf_quality.py: {rec}")
    else:
        picks, val_scores, knn_pick, knn_val = tune(name, train, val, val_seed)
    best = dict(picks["ALS"])
    picks = source_picks(picks)

    # the two-stage variant, on the validation split only
    variant_val: dict[str, float | None] = {variants[0]: None}
    for label, variant in VARIANTS.items():
        if label not in variants or len(variants) == 1:  # one variant: nothing to choose
            continue
        t0 = time.perf_counter()
        res = evaluate_model(two_stage(picks, variant), vtrain, vsplit.targets, vanswers)
        variant_val[label] = res[METRIC]
        log(
            f"  two-stage ({label}): val {METRIC} {res[METRIC]:.4f} "
            f"({time.perf_counter() - t0:.0f} s)"
        )
    chosen = max(variant_val, key=lambda v: variant_val[v] or 0.0)
    log(f"  two-stage variant picked on validation: {chosen}")

    # test: every peer's pick and every two-stage variant, refit on all the visible listens
    def add(model: str, params: str, val_score: float | None, res: dict, note: str = "") -> None:
        rows.append([
            name, model, params, "-" if val_score is None else f"{val_score:.4f}",
            f"{res[METRIC]:.4f}", f"{res[f'recall@{K}']:.4f}", f"{res['fit_s']:.1f}",
            f"{res['rec_s']:.2f}", note,
        ])  # fmt: skip
        log(f"  test {model} ({params}): {METRIC} {res[METRIC]:.4f} {note}")

    pop = evaluate_model(MostPopular(), train, split.targets, answers)
    add("MostPopular", "weighting=users", None, pop)
    peers: dict[str, float] = {}
    ease = evaluate_model(EASE(**picks["EASE"]), train, split.targets, answers)
    add("segue EASE", cfq.fmt_params(picks["EASE"]), val_scores["EASE"], ease, "peer")
    peers["EASE"] = ease[METRIC]
    als_params = {k: v for k, v in best.items()}
    lists, fit_s, rec_s = cfq.run_implicit(cfq.SAME_MODEL_PEER, als_params, train, split.targets)
    als = {**cfq.score(lists, answers, train), "fit_s": fit_s, "rec_s": rec_s}
    add("implicit ALS (log confidence)", cfq.fmt_params(als_params), val_scores["ALS"], als, "peer")
    peers["implicit ALS"] = als[METRIC]
    lists, fit_s, rec_s = cfq.run_implicit(knn_pick[0], knn_pick[1], train, split.targets)
    knn = {**cfq.score(lists, answers, train), "fit_s": fit_s, "rec_s": rec_s}
    add(f"implicit {knn_pick[0]}", cfq.fmt_params(knn_pick[1]), knn_val, knn, "peer")
    peers["implicit item-kNN"] = knn[METRIC]
    for label in ("ItemKNN", "UserKNN"):
        cls = ItemKNN if label == "ItemKNN" else UserKNN
        res = evaluate_model(cls(**picks[label]), train, split.targets, answers)
        add(f"segue {label}", cfq.fmt_params(picks[label]), val_scores[label], res, "source")
    result = None
    for label, variant in VARIANTS.items():
        if label != chosen:  # the others' validation scores are in the log above
            continue
        model = two_stage(picks, variant)
        res = evaluate_model(model, train, split.targets, answers)
        note = "validation pick" if len(variant_val) > 1 else "the only variant run"
        shown = f"n={TWO_STAGE['n']}, folds={TWO_STAGE['folds']}"
        add(f"two-stage ({label})", shown, variant_val[label], res, note)
        if label == chosen:
            result = res[METRIC]
            top = model.ranker_.feature_importance().head(6)
            log(f"    inner candidate recall@200 {model.inner_recall_:.4f}; top features:")
            log("    " + ", ".join(f"{r.feature} {r.gain:.0f}" for r in top.itertuples()))
            log(
                f"    fit timings: {', '.join(f'{k} {v:.1f} s' for k, v in model.timings_.items())}"
            )
    best_peer = max(peers, key=lambda p: peers[p])
    assert result is not None
    log(
        f"  VERDICT {name}: two-stage ({chosen}) {result:.4f} vs best peer {best_peer} "
        f"{peers[best_peer]:.4f}: {result / peers[best_peer]:.3f}x (target 1.05x)"
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_data_dir_option(parser)
    common.add_split_options(parser, list(DATASETS))
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated two-stage variants to choose from on validation: {list(VARIANTS)}",
    )
    parser.add_argument(
        "--picks",
        choices=["tune", "recorded"],
        default="tune",
        help="tune the peers and sources here, or take bench/cf_quality.py's validation picks "
        "(same split and validation split; for a busy machine)",
    )
    args = parser.parse_args()
    names = common.chosen_datasets(parser, args, DATASETS)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not variants or any(v not in VARIANTS for v in variants):
        parser.error(f"--variants takes some of {list(VARIANTS)}")
    try:
        import torch

        torch.set_num_threads(1)  # small networks on a shared 2-core machine (see bench/ncf.py)
    except ImportError:
        pass
    log("# Listen-count two-stage model vs tuned peers\n")
    for line in common.environment_lines():
        log(f"- {line}")
    log(
        f"- split: split_listens(seed=0); validation: split_listens(visible, seed="
        f"{args.val_seed}); top-{K}, seen items excluded; two-stage {TWO_STAGE}\n"
    )
    t_all = time.perf_counter()
    rows = []
    for name in names:
        t0 = time.perf_counter()
        df = DATASETS[name][1](args.data_dir)
        rows += run_dataset(name, df, args.val_seed, args.picks == "recorded", variants)
        log(f"  ({name}: {time.perf_counter() - t0:.0f} s)\n")
    headers = ["dataset", "model", "params", f"val {METRIC}", f"test {METRIC}",
               f"recall@{K}", "fit s", "rec s", "note"]  # fmt: skip
    log(common.markdown_table(headers, rows))
    log(f"\n(total {time.perf_counter() - t_all:.0f} s)")


if __name__ == "__main__":
    main()
