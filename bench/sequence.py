"""Order-aware and deep retrieval on the real MPD split: tcn and youtube-dnn next to WRMF, UserKNN.

On an MPD challenge split written by ``segue split mpd`` (by default the script makes one in a
temporary folder, as ``segue split mpd ../shared/data/spotify-mpd/mpd_followers10.jsonl.xz
--out val --playlists 1000 --seed 0 --unseen drop`` does), every model is fit on ``train/``
(playlists x tracks, title words as columns) and continues every challenge playlist with 1,000
tracks, the seeds given in their order. Prints, overall and per category:

1. R-precision, NDCG and clicks of each model's top 500 (the challenge's metrics);
2. candidate recall@100/500/1000 (share of the held-out tracks in the top N): what a model
   would bring to a two-stage ranker;
3. training seconds (and seconds per epoch for the neural models, CPU, ``--threads``).

With ``--part ablation`` (or ``all``), the two-stage model (``--folds`` inner folds of
``--per-category`` questions per category) is fit with its default sources, then with each
neural source added; it prints the merged candidate recall on its inner (training) questions,
which is what may decide the default source set, and, from ``answers.json``, the merged
recall@100/500/1000 and the final R-precision, NDCG and clicks, overall and NDCG per category.

The neural models are fit once per learning rate; each stops early on NDCG@100 of a holdout
carved from the training rows (500 playlists whose last 20% of songs are hidden), and the fit
with the best holdout NDCG is kept: ``answers.json`` is read only to score the final lists of
the kept models. WRMF and UserKNN run with segue's defaults.

    .venv/bin/python bench/sequence.py [SPLIT_DIR] [--epochs 6] [--threads 1]
                                       [--part retrieval|ablation|all] [--source-lr LR]
                                       [--folds 1] [--per-category 50]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

from segue.data.mpd_split import split_mpd  # noqa: E402
from segue.data.readers.mpd import read_challenge_set, read_mpd  # noqa: E402
from segue.inference import playlist_interactions  # noqa: E402
from segue.metrics.challenges import MPD_N, mpd_metrics  # noqa: E402
from segue.metrics.playlist_eval import read_mpd_answers  # noqa: E402
from segue.models.registry import model_class  # noqa: E402

METRICS = ("r_precision", "ndcg", "clicks")
CUTS = (100, 500, 1000)
NEURAL = ("tcn", "youtube-dnn")
LEARNING_RATES = (3e-3, 1e-2)


def scores(lists: dict, answers: dict, artists: dict, pids: list) -> pd.DataFrame:
    """Per query: the challenge metrics on the top 500 and recall at each cut."""
    recs = [lists[p][:MPD_N] for p in pids]
    truth = [answers[p] for p in pids]
    frame = mpd_metrics(recs, truth, artists, index=pids)[list(METRICS)]
    for cut in CUTS:
        frame[f"recall@{cut}"] = [
            len(set(lists[p][:cut]) & set(answers[p])) / max(1, len(set(answers[p]))) for p in pids
        ]
    return frame


def fit(name: str, params: dict, data: Any) -> tuple[Any, float]:
    model = model_class(name)(**params)
    start = time.perf_counter()
    model.fit(data)
    return model, time.perf_counter() - start


def fit_best(name: str, base: dict, data: Any) -> tuple[Any, float, dict]:
    """Fit once per learning rate; keep the model with the best holdout NDCG@100.

    The holdout is carved from the training rows by the model itself (their last songs
    hidden), so the choice never sees an answer; only the chosen model is then evaluated.
    """
    best, best_seconds, found = None, 0.0, {}
    for lr in LEARNING_RATES:
        model, seconds = fit(name, {**base, "lr": lr}, data)
        found[lr] = max(e.metric for e in model.epochs_)
        print(f"  {name} lr={lr:g}: holdout NDCG@100 {found[lr]:.4f}, {seconds:.0f} s", flush=True)
        if best is None or found[lr] > max(e.metric for e in best.epochs_):
            best, best_seconds = model, seconds
    return best, best_seconds, found


def ablation(
    args: argparse.Namespace,
    train: Any,
    queries: Any,
    answers: dict,
    artists: dict,
    category: Any,
    sources: dict[str, dict],
) -> None:
    """Two-stage with its default sources, and with each neural source added (an ablation).

    Every configuration learns from the training playlists only (its inner folds); the
    merged recall on those inner questions is what would decide the default source set.
    """
    from segue.ranking.candidates import candidate_recall
    from segue.ranking.two_stage import TwoStage, default_first_stage

    pids = queries.playlists["pid"].tolist()
    configs = {"default": default_first_stage()}
    for label, spec in sources.items():
        configs[f"default + {label}"] = {**default_first_stage(), label: spec}
    rows, per_category = [], {}
    for label, first_stage in configs.items():
        model = TwoStage(
            first_stage, folds=args.folds, per_category=args.per_category, num_threads=1
        )
        start = time.perf_counter()
        model.fit(train)
        seconds = time.perf_counter() - start
        ranked = model.rank(queries, MPD_N)
        ids = model.items_.ids
        lists = {
            p: ids[r[r >= 0]].tolist() for p, r in zip(ranked.pids, ranked.tracks, strict=True)
        }
        frame = scores(lists, answers, artists, pids)
        recall = candidate_recall(
            ranked.candidates,
            answers,
            pd.Series(category, index=pids),
            cutoffs=CUTS,
        )
        inner = model.inner_recall_
        inner_col = [c for c in inner.columns if c.startswith("merged@")][-1]
        rows.append(
            {
                "config": label,
                "inner merged recall": float(inner.loc["all", inner_col]),
                **{f"merged@{c}": float(recall.loc["all", f"merged@{c}"]) for c in CUTS},
                **{m: float(frame[m].mean()) for m in METRICS},
                "fit_s": seconds,
            }
        )
        per_category[label] = frame["ndcg"].groupby(category).mean()
        print(
            f"two-stage {label}: NDCG {frame['ndcg'].mean():.4f}, fit {seconds:.0f} s", flush=True
        )
    print("\n== two-stage ablation (inner recall: training questions; the rest: answers.json)")
    print(pd.DataFrame(rows).set_index("config").round(4).to_string())
    print("\n-- two-stage NDCG per category")
    print(pd.DataFrame(per_category).round(4).to_string())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("split", nargs="?", type=Path, default=None, help="split folder")
    common.add_data_dir_option(parser)
    parser.add_argument("--epochs", type=int, default=6, help="most epochs of a neural model")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument(
        "--part",
        choices=("retrieval", "ablation", "all"),
        default="retrieval",
        help="single models, the two-stage ablation, or both",
    )
    parser.add_argument(
        "--source-lr",
        type=float,
        default=None,
        help="--part ablation: the neural sources' learning rate (the one retrieval chose)",
    )
    parser.add_argument("--folds", type=int, default=1, help="two-stage inner folds (ablation)")
    parser.add_argument(
        "--per-category", type=int, default=50, help="two-stage inner questions (ablation)"
    )
    args = parser.parse_args(argv)
    pd.set_option("display.width", 200)
    if args.split is not None:
        return run(args, args.split)
    source = common.require_file(args.data_dir, "spotify-mpd/mpd_followers10.jsonl.xz")
    with tempfile.TemporaryDirectory() as tmp:
        split_mpd(source, Path(tmp) / "val", n_playlists=1000, seed=0, unseen="drop")
        return run(args, Path(tmp) / "val")


def run(args: argparse.Namespace, split: Path) -> int:
    """Everything the module docstring lists, on the split folder ``split``."""
    import torch

    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="    %(message)s")
    logging.getLogger("segue.nn").setLevel(logging.INFO)  # one line per epoch
    train = read_mpd(split / "train")
    queries = read_challenge_set(split / "challenge_set.json")
    data = playlist_interactions(train, with_titles=True)
    print(f"{train.n_playlists} training playlists, {queries.n_playlists} queries; {data!r}")
    print(f"torch threads {torch.get_num_threads()}; CPU {common.cpu_model()}")

    common_params = {"epochs": args.epochs, "patience": 2, "validation_rows": 500, "seed": 0}
    specs: dict[str, tuple[str, dict]] = {
        "wrmf": ("wrmf", {}),
        "userknn": ("userknn", {}),
        "tcn": ("tcn", {**common_params, "samples": 2, "sample_power": 0.75}),
        "youtube-dnn": ("youtube-dnn", {**common_params, "samples": 4}),
    }
    chosen: dict[str, Any] = {}
    best_params: dict[str, dict] = {}
    if args.part == "ablation":
        if args.source_lr is None:
            raise SystemExit("--part ablation needs --source-lr (the lr the retrieval part chose)")
        best_params = {label: {"lr": args.source_lr} for label in NEURAL}

    answers_frame = read_mpd_answers(split / "answers.json").set_index("pid")
    tracks = pd.read_parquet(split / "tracks.parquet", columns=["track", "artist"])
    artists = dict(zip(tracks["track"], tracks["artist"], strict=True))
    pids = queries.playlists["pid"].tolist()
    answers = {p: answers_frame.loc[p, "tracks"] for p in pids}
    category = answers_frame.loc[pids, "category"].to_numpy()

    per: dict[str, pd.DataFrame] = {}
    timing: dict[str, dict[str, float]] = {}
    for label, (name, params) in specs.items():
        if args.part == "ablation":
            break
        if name in NEURAL:
            model, seconds, chosen[label] = fit_best(name, {**params, "device": "cpu"}, data)
            best_params[label] = {"lr": model.lr}
        else:
            model, seconds = fit(name, params, data)
        start = time.perf_counter()
        lists = common.continuations(model, queries, max(CUTS), batch_size=200)
        rec_seconds = time.perf_counter() - start
        per[label] = scores(lists, answers, artists, pids)
        timing[label] = {
            "fit_s": seconds,
            "epochs": getattr(model, "epochs_trained_", float("nan")),
            "s_per_epoch": getattr(model, "seconds_per_epoch_", float("nan")),
            "ms_per_query": 1000 * rec_seconds / len(pids),
        }
        print(f"{label}: fit {seconds:.1f} s, NDCG {per[label]['ndcg'].mean():.4f}", flush=True)
    if per:
        print_tables(per, category, chosen, timing)
    if args.part != "retrieval":
        sources = {
            label.replace("-", "_"): {
                "model": specs[label][0],
                "params": {**specs[label][1], **best_params[label], "device": "cpu"},
            }
            for label in NEURAL
        }
        ablation(args, train, queries, answers, artists, category, sources)
    return 0


def print_tables(per: dict, category: Any, chosen: dict, timing: dict) -> None:
    """The single-model tables: metrics and recall overall and per category, timings."""
    print("\nholdout NDCG@100 per learning rate (training rows only; the best was kept):")
    print(chosen)
    for column in (*METRICS, *(f"recall@{c}" for c in CUTS)):
        wide = pd.DataFrame(
            {
                label: pd.concat(
                    [
                        pd.Series({"all": frame[column].mean()}),
                        frame[column].groupby(category).mean().rename(str),
                    ]
                )
                for label, frame in per.items()
            }
        )
        print(f"\n-- {column}")
        print(wide.round(4).to_string())
    print("\n-- timings (CPU)")
    print(pd.DataFrame(timing).T.round(2).to_string())


if __name__ == "__main__":
    sys.exit(main())
