"""How segue's defaults are chosen: on validation carved from TRAINING data only (issue 18).

The task's answers never choose anything. Two parts:

``listens`` (kNN, EASE, optionally WRMF): on each listen dataset (Last.fm hetrec-2k, the MSD
    Taste Profile sample), the task's split ``split_listens(df, seed=0)`` keeps its visible
    listens; ``segue.tuning.grid_search`` splits *those* again
    (``split_listens(seed=--val-seed)``), fits every grid point on the inner visible part and
    scores NDCG@100 on the carved-out listens. On the real MPD sample (``spotify-mpd``), the
    README's split (``split_mpd(..., n_playlists=1000, seed=0, unseen="drop")``) keeps its
    training playlists, ``split_mpd`` carves 1,000 validation questions out of them (seed
    ``--val-seed + 1``), and a point's score is the MPD NDCG of its 500 continuations
    (``continue_playlists``). A grid point's score across datasets is the mean of its
    validation NDCG divided by the best validation NDCG on the same dataset (so no dataset
    dominates by scale); the default is the point with the highest mean (the first of equal
    ones, in grid order).
``two-stage`` (folds, fitted fusion, sources): the real MPD split (``segue split mpd
    mpd_followers10.jsonl.xz --playlists 1000 --seed 0 --unseen drop``, made here unless a
    split folder is given) keeps its ``train/`` playlists; ``split_mpd(train/, ...,
    n_playlists=1000, seed=--val-seed + 1, unseen="drop")`` carves validation questions out of
    them; each variant of ``TwoStage`` is fit on the inner training playlists and scored
    (R-precision, NDCG, clicks) on the inner answers. The default is the variant with the
    best validation NDCG. The outer challenge set and its answers are not read.

Each part prints its table, the pick and whether it equals segue's current default.

    .venv/bin/python bench/choose_defaults.py --parts listens [--models itemknn,userknn,ease]
    .venv/bin/python bench/choose_defaults.py --parts two-stage [--split SPLIT_DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

from segue.data.interactions import Interactions  # noqa: E402
from segue.data.split import split_listens  # noqa: E402
from segue.models import EASE, WRMF, ItemKNN, UserKNN  # noqa: E402
from segue.tuning import expand_grid, grid_search  # noqa: E402

METRIC = "ndcg@100"
DATASETS = {
    "lastfm-hetrec-2k": (common.LASTFM, common.load_lastfm),
    "msd-taste-42k": (common.MSD, common.load_msd),
}
MPD = "spotify-mpd"  # playlists: validation questions carved from the training playlists
# every grid holds the model's current defaults
GRIDS: dict[str, tuple[type, dict[str, list[Any]]]] = {
    "itemknn": (
        ItemKNN,
        {
            "similarity": ["cosine", "bm25", "tfidf"],
            "neighbors": [100, 200, 500],
            "shrinkage": [0.0, 3.0],
        },
    ),
    "userknn": (
        UserKNN,
        {"similarity": ["bm25", "cosine", "tfidf"], "neighbors": [50, 100, 200]},
    ),
    "ease": (EASE, {"l2": [100.0, 250.0, 500.0, 1000.0]}),
    "wrmf": (
        WRMF,
        {
            "factors": [64, 128, 256],
            "alpha": [1.0, 2.0, 4.0, 8.0],
            "regularization": [1.0, 10.0, 30.0, 100.0],
        },
    ),
}


def current_default(cls: type, grid: dict[str, list[Any]]) -> dict[str, Any]:
    model = cls()
    return {name: getattr(model, name) for name in grid}


def fmt(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


# listens -------------------------------------------------------------------------------------
class MPDValidation:
    """Validation questions carved from the real MPD split's training playlists.

    ``search(cls, grid)`` mirrors ``grid_search``: every point is fit on the inner training
    playlists and scored by the MPD NDCG of its 500 continuations of the inner questions.
    """

    def __init__(self, split: Path, tmp: Path, seed: int, n_questions: int) -> None:
        from segue.data.mpd_split import split_mpd
        from segue.data.readers.mpd import read_challenge_set, read_mpd
        from segue.inference.encode import playlist_interactions
        from segue.metrics.playlist_eval import read_mpd_answers

        inner = tmp / "inner"
        split_mpd(split / "train", inner, n_playlists=n_questions, seed=seed, unseen="drop")
        self.train = playlist_interactions(read_mpd(inner / "train"))
        self.queries = read_challenge_set(inner / "challenge_set.json")
        answers = read_mpd_answers(inner / "answers.json").set_index("pid")
        self.pids = list(answers.index)
        self.truth = answers.loc[self.pids, "tracks"].tolist()
        tracks = pd.read_parquet(inner / "tracks.parquet", columns=["track", "artist"])
        self.artists = dict(zip(tracks["track"], tracks["artist"], strict=True))
        self.description = (
            f"inner split of {split / 'train'} (split_mpd, {n_questions} questions, seed "
            f"{seed}, unseen='drop'): {self.train.n_users:,} playlists x "
            f"{self.train.n_items:,} columns; metric: MPD NDCG of 500 continuations"
        )

    def search(self, cls: type, grid: dict[str, list[Any]]) -> dict[str, float]:
        from segue.inference.continuation import continue_playlists
        from segue.metrics.challenges import mpd_metrics

        out = {}
        for point in expand_grid(grid):
            model = cls(**point).fit(self.train)
            lists = {}
            for batch in continue_playlists(model, self.queries, 500):
                lists.update(zip(batch.pids.tolist(), batch.tracks, strict=True))
            per = mpd_metrics([lists[p] for p in self.pids], self.truth, self.artists)
            out[fmt(point)] = float(per["ndcg"].mean())
        return out


def listens_part(args: argparse.Namespace, tmp: Path) -> None:
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    trains: dict[str, Any] = {}
    for name in names:
        if name == MPD:
            source = common.require_file(args.data_dir, "spotify-mpd/mpd_followers10.jsonl.xz")
            from segue.data.mpd_split import split_mpd

            split_mpd(source, tmp / "val", n_playlists=1000, seed=0, unseen="drop")
            trains[name] = MPDValidation(tmp / "val", tmp, args.val_seed + 1, 1000)
            print(f"- {name}: {trains[name].description}", flush=True)
            continue
        relative, load = DATASETS[name]
        common.require_file(args.data_dir, relative)
        split = split_listens(load(args.data_dir), seed=0)  # the task's split: answers unused
        trains[name] = Interactions.from_frame(split.listens, weight="count")
        data = trains[name]
        print(
            f"- {name}: visible listens of the task split, {data.n_users:,} users x "
            f"{data.n_items:,} items, {data.nnz:,} pairs (validation carved from these, seed "
            f"{args.val_seed})",
            flush=True,
        )
    for model_name in [m.strip() for m in args.models.split(",") if m.strip()]:
        cls, grid = GRIDS[model_name]
        if args.grid is not None:  # a sub-grid, e.g. to settle one comparison on one dataset
            grid = json.loads(args.grid)
        points = expand_grid(grid)
        frame = pd.DataFrame({"params": [fmt(p) for p in points]})
        for name, data in trains.items():
            t0 = time.perf_counter()
            if name == MPD:
                by = data.search(cls, grid)
            else:
                res = grid_search(data, cls, grid, metric=METRIC, seed=args.val_seed)
                table = res.table.iterrows()
                by = {fmt({k: row[k] for k in grid}): row[METRIC] for _, row in table}
            frame[name] = [by[p] for p in frame["params"]]
            print(
                f"  {model_name} on {name}: {len(points)} points in "
                f"{time.perf_counter() - t0:.0f} s",
                flush=True,
            )
        rel = frame[list(trains)] / frame[list(trains)].max()
        frame["mean relative"] = rel.mean(axis=1)
        pick = int(np.argmax(frame["mean relative"].to_numpy()))  # first of equal bests
        default = fmt(current_default(cls, grid))
        print(f"\n### {model_name}: validation {METRIC} (carved from training listens)\n")
        rows = [
            [
                p + (" (current default)" if p == default else ""),
                *[f"{frame.loc[i, n]:.4f}" for n in trains],
                f"{frame.loc[i, 'mean relative']:.4f}",
            ]
            for i, p in enumerate(frame["params"])
        ]
        print(common.markdown_table(["params", *trains, "mean relative"], rows))
        for name in trains:
            best = frame.loc[frame[name].idxmax(), "params"]
            print(f"- best on {name} alone: {best}")
        chosen = frame.loc[pick, "params"]
        d = frame.index[frame["params"] == default]
        print(
            f"- PICK {model_name}: {chosen} (mean relative {frame.loc[pick, 'mean relative']:.4f})"
            f"; current default {default}"
            + (
                f" (mean relative {frame.loc[d[0], 'mean relative']:.4f})"
                if len(d)
                else " (not in the grid)"
            )
            + (": SAME" if chosen == default else ": DIFFERENT"),
            flush=True,
        )


# two-stage -----------------------------------------------------------------------------------
def _without(source: str) -> dict[str, Any]:
    """The default first stage less one source (a source ablation)."""
    from segue.ranking.two_stage import default_first_stage

    return {"first_stage": {k: v for k, v in default_first_stage().items() if k != source}}


TWO_STAGE_VARIANTS: dict[str, Any] = {
    "folds=3, fitted fusion (default)": {},
    "folds=1, fitted fusion": {"folds": 1},
    "folds=3, plain RRF (fusion=False)": {"fusion": False},
    "default sources less itemknn": lambda: _without("itemknn"),
    "default sources less pop": lambda: _without("pop"),
}


def two_stage_part(args: argparse.Namespace, split: Path) -> None:
    from segue.data.mpd_split import split_mpd
    from segue.data.readers.mpd import read_challenge_set, read_mpd
    from segue.metrics.challenges import MPD_N, mpd_metrics
    from segue.metrics.playlist_eval import read_mpd_answers
    from segue.ranking.two_stage import TwoStage

    names = [v for v in TWO_STAGE_VARIANTS if args.variants is None or v in args.variants]
    with tempfile.TemporaryDirectory(prefix="choose_defaults_") as tmp:
        inner = Path(tmp) / "inner"
        split_mpd(
            split / "train", inner, n_playlists=args.inner_playlists, seed=args.val_seed + 1,
            unseen="drop",
        )  # fmt: skip
        train = read_mpd(inner / "train")
        queries = read_challenge_set(inner / "challenge_set.json")
        answers = read_mpd_answers(inner / "answers.json").set_index("pid")
        tracks = pd.read_parquet(inner / "tracks.parquet", columns=["track", "artist"])
        artists = dict(zip(tracks["track"], tracks["artist"], strict=True))
        print(
            f"- validation carved from {split / 'train'}: {train.n_playlists:,} inner training "
            f"playlists, {queries.n_playlists:,} validation questions (seed {args.val_seed + 1})",
            flush=True,
        )
        rows, ndcg = [], {}
        for name in names:
            t0 = time.perf_counter()
            params = TWO_STAGE_VARIANTS[name]
            model = TwoStage(**(params() if callable(params) else params)).fit(train)
            fit_s = time.perf_counter() - t0
            ranked = model.rank(queries, MPD_N)
            ids = model.items_.ids
            recs = [ids[row[row >= 0]].tolist() for row in ranked.tracks]
            truth = [answers.loc[p, "tracks"] for p in ranked.pids]
            m = mpd_metrics(recs, truth, artists, index=ranked.pids).mean()
            ndcg[name] = float(m["ndcg"])
            rows.append(
                [name, f"{m['r_precision']:.4f}", f"{m['ndcg']:.4f}", f"{m['clicks']:.2f}",
                 f"{fit_s:.0f}"]
            )  # fmt: skip
            print(f"  {name}: NDCG {m['ndcg']:.4f} (fit {fit_s:.0f} s)", flush=True)
    print("\n### two-stage: validation questions carved from the training playlists\n")
    print(common.markdown_table(["variant", "R-prec", "NDCG", "clicks", "fit s"], rows))
    chosen = max(names, key=lambda n: ndcg[n])  # first of equal bests
    default = next(iter(TWO_STAGE_VARIANTS))
    print(
        f"- PICK two-stage: {chosen}; current default {default}"
        + (": SAME" if chosen == default else ": DIFFERENT")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_data_dir_option(parser)
    parser.add_argument("--parts", default="listens", help="listens, two-stage or both")
    parser.add_argument(
        "--datasets", default=",".join([*DATASETS, MPD]), help="for listens (and MPD playlists)"
    )
    parser.add_argument("--models", default="itemknn,userknn,ease", help="for listens")
    parser.add_argument("--val-seed", type=int, default=0, help="seed of the validation split")
    parser.add_argument("--split", type=Path, default=None, help="MPD split folder (two-stage)")
    parser.add_argument("--inner-playlists", type=int, default=1000, help="validation questions")
    parser.add_argument("--variants", default=None, help="two-stage variants (names; all)")
    parser.add_argument("--grid", default=None, help="JSON grid replacing the model's (listens)")
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts <= {"listens", "two-stage"}:
        parser.error(f"--parts takes listens and/or two-stage, got {args.parts!r}")
    unknown = {m.strip() for m in args.models.split(",")} - set(GRIDS)
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}; choose from {', '.join(GRIDS)}")
    if args.variants is not None:
        args.variants = [v.strip() for v in args.variants.split(";") if v.strip()]
    t0 = time.perf_counter()
    print("# Defaults chosen on validation carved from training data (bench/choose_defaults.py)\n")
    for line in common.environment_lines():
        print(f"- {line}")
    if "listens" in parts:
        with tempfile.TemporaryDirectory(prefix="choose_defaults_") as tmp:
            listens_part(args, Path(tmp))
    if "two-stage" in parts:
        if args.split is not None:
            two_stage_part(args, args.split)
        else:
            from segue.data.mpd_split import split_mpd

            source = common.require_file(args.data_dir, "spotify-mpd/mpd_followers10.jsonl.xz")
            with tempfile.TemporaryDirectory(prefix="choose_defaults_") as tmp:
                split_mpd(source, Path(tmp) / "val", n_playlists=1000, seed=0, unseen="drop")
                two_stage_part(args, Path(tmp) / "val")
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
