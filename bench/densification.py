"""Densification ablation (issue 14): CF alone, content alone, CF with densified queries.

The Kakao Arena Melon write-up padded short questions with each seed song's nearest content
neighbours (a metadata autoencoder) before its CF model scored them. This script measures that
on three playlist datasets, per Melon question type / MPD category:

- ``melon-gen``: ``segue generate melon`` data (song_meta.json: dates, genres, artists,
  albums) split by ``segue split melon``; song nDCG@100, tag nDCG@10, score;
- ``mpd``: the real MPD split (``segue split mpd ../shared/data/spotify-mpd/
  mpd_followers10.jsonl.xz --playlists 1000 --seed 0 --unseen drop``); artist and album are the
  metadata; R-precision, NDCG, clicks;
- ``melon-real``: questions carved (``split_melon``) from the real playlists of
  ``../shared/data/kakao-melon-partial/test.json``. No song_meta.json exists for them: the
  content model there has only the tags of the training playlists holding each song.

Systems: the content autoencoder alone, and each CF model (UserKNN, segue's strongest cheap
playlist model; EASE where the catalogue is small) alone and with densified queries
(:mod:`segue.inference.densify`); on Melon also the "tags of the recommended songs" rule next
to the model's own tag scores. Densification settings (size, weight, cold slots) are chosen per
CF model on a validation split carved from the *training* playlists (the same split function,
seed + 1); the content model stops early on its own holdout carved from training rows. Answers
are read only to score the final lists.

    .venv/bin/python bench/densification.py [--datasets melon-gen,mpd,melon-real]

``run_dataset(name, args)`` returns the result tables, for ``bench/autoencoders.py``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

from segue.data.melon_split import question_type, split_melon  # noqa: E402
from segue.data.mpd_split import split_mpd  # noqa: E402
from segue.data.readers.melon import read_melon  # noqa: E402
from segue.data.readers.mpd import read_challenge_set, read_mpd  # noqa: E402
from segue.inference import continue_playlists  # noqa: E402
from segue.inference.densify import Densifier  # noqa: E402
from segue.inference.encode import playlist_interactions  # noqa: E402
from segue.metrics.challenges import MPD_N, melon_metrics, mpd_metrics  # noqa: E402
from segue.metrics.playlist_eval import read_mpd_answers  # noqa: E402
from segue.models.content_autoencoder import ContentAutoencoder  # noqa: E402
from segue.models.ease import EASE  # noqa: E402
from segue.models.knn import UserKNN  # noqa: E402

DATASETS = ("melon-gen", "mpd", "melon-real")
MPD_SOURCE = "spotify-mpd/mpd_followers10.jsonl.xz"
MELON_REAL = "kakao-melon-partial/test.json"

GRID = {"size": (25, 50, 100), "weight": (1.0,), "cold_slots": (0, 10)}
"""Densification settings tried on validation (per_seed is the write-up's 3). The value of an
added song is 1: UserKNN and EASE binarise their queries, so another weight changes nothing."""

CONTENT = {
    "melon-gen": {"hidden": [256, 256, 512], "epochs": 8, "patience": 2},
    "mpd": {
        "hidden": [64, 64, 128],
        "max_features": 2048,
        "epochs": 2,
        "patience": 1,
        "batch_size": 1024,
        "validation_rows": 200,
    },
    "melon-real": {
        "hidden": [128, 128, 256],
        "epochs": 3,
        "patience": 1,
        "validation_rows": 300,
    },
}
"""Content autoencoder sizes: the write-up's 512/1024 shape, narrowed to fit 2 loaded cores."""

CF_MODELS = {
    "melon-gen": {"userknn": UserKNN, "ease": EASE},
    "mpd": {"userknn": UserKNN},
    "melon-real": {"userknn": UserKNN},
}
"""CF models tried on validation (EASE only where the catalogue is small: 51K songs on real
Melon and 64K tracks on the MPD split make its inverse take minutes)."""


# one dataset = train playlists, queries, a scorer -------------------------------------------
class Task:
    """Training playlists, query playlists and how to score lists on them."""

    def __init__(self, kind: str, train: Any, queries: Any, score: Any, n: int, n_tags: int):
        self.kind, self.train, self.queries = kind, train, queries
        self.score, self.n, self.n_tags = score, n, n_tags

    def interactions(self) -> Any:
        melon = self.kind == "melon"
        return playlist_interactions(self.train, with_tags=melon, with_titles=True)


def melon_task(folder: Path, song_meta: bool = True) -> Task:
    train = read_melon(folder / "train.json", song_meta=None if song_meta else False)
    queries = read_melon(folder / "questions.json", song_meta=False)
    answers = {a["id"]: a for a in json.loads((folder / "answers.json").read_text())}
    questions = {q["id"]: q for q in json.loads((folder / "questions.json").read_text())}

    def score(pids: list, tracks: list, tags: list) -> pd.DataFrame:
        frame = melon_metrics(
            tracks,
            tags,
            [answers[p]["songs"] for p in pids],
            [answers[p]["tags"] for p in pids],
            index=pids,
        )
        frame["bucket"] = [question_type(questions[p]) for p in pids]
        return frame

    return Task("melon", train, queries, score, 100, 10)


def mpd_task(folder: Path) -> Task:
    train = read_mpd(folder / "train")
    queries = read_challenge_set(folder / "challenge_set.json")
    answers = read_mpd_answers(folder / "answers.json").set_index("pid")
    tracks = pd.read_parquet(folder / "tracks.parquet", columns=["track", "artist"])
    artists = dict(zip(tracks["track"], tracks["artist"], strict=True))

    def score(pids: list, lists: list, _tags: list) -> pd.DataFrame:
        frame = mpd_metrics(lists, [answers.loc[p, "tracks"] for p in pids], artists, index=pids)
        frame["bucket"] = [str(answers.loc[p, "category"]) for p in pids]
        return frame

    return Task("mpd", train, queries, score, MPD_N, 0)


def lists_of(model: Any, task: Task, **options: Any) -> tuple[list, list, list]:
    pids, tracks, tags = [], [], []
    for batch in continue_playlists(model, task.queries, task.n, n_tags=task.n_tags, **options):
        pids += batch.pids.tolist()
        tracks += batch.tracks
        tags += batch.tags or [[] for _ in batch.tracks]
    return pids, tracks, tags


def main_metric(task: Task) -> str:
    return "score" if task.kind == "melon" else "ndcg"


# the ablation on one split -------------------------------------------------------------------
def fit_models(
    task: Task, cf_models: dict[str, Any], content_params: dict
) -> tuple[dict[str, Any], Any, dict[str, float]]:
    data = task.interactions()
    seconds: dict[str, float] = {}
    cfs = {}
    for name, cls in cf_models.items():
        start = time.perf_counter()
        cfs[name] = cls().fit(data)
        seconds[name] = round(time.perf_counter() - start, 2)
    start = time.perf_counter()
    content = ContentAutoencoder(device="cpu", **content_params).fit(data)
    seconds["content"] = round(time.perf_counter() - start, 2)
    seconds["content_epochs"] = content.epochs_trained_
    return cfs, content, seconds


def choose(task: Task, cfs: dict[str, Any], content: Any) -> tuple[dict, pd.DataFrame]:
    """Per CF model, the densification settings best on ``task`` (a validation split)."""
    metric = main_metric(task)
    rows = []
    for cf_name, cf in cfs.items():
        alone = task.score(*lists_of(cf, task))[metric].mean()
        rows.append({"cf": cf_name, "size": 0, "weight": 0.0, "cold_slots": 0, metric: alone})
        for size, weight, cold in itertools.product(*GRID.values()):
            dens = Densifier(content, size=size, weight=weight, cold_slots=cold)
            frame = task.score(*lists_of(cf, task, densify=dens))
            rows.append(
                {
                    "cf": cf_name,
                    "size": size,
                    "weight": weight,
                    "cold_slots": cold,
                    metric: frame[metric].mean(),
                }
            )
    table = pd.DataFrame(rows)
    print(f"  validation {metric} (size 0: CF alone):")
    print(table.round(4).to_string(index=False))
    settings = {}
    for cf_name, part in table[table["size"] > 0].groupby("cf", sort=False):
        best = part.loc[part[metric].idxmax()]
        settings[cf_name] = {k: type(GRID[k][0])(best[k]) for k in GRID}
    return settings, table


def evaluate(
    task: Task, cfs: dict[str, Any], content: Any, settings: dict[str, dict]
) -> pd.DataFrame:
    systems = {"content": lists_of(content, task)}
    for cf_name, cf in cfs.items():
        dens = Densifier(content, **settings[cf_name])
        systems[cf_name] = lists_of(cf, task)
        systems[f"{cf_name} + densified"] = lists_of(cf, task, densify=dens)
        if task.kind == "melon":
            systems[f"{cf_name}, song tags"] = lists_of(cf, task, tags_from="songs")
            systems[f"{cf_name} + densified, song tags"] = lists_of(
                cf, task, densify=dens, tags_from="songs"
            )
    frames = []
    for name, lists in systems.items():
        frame = task.score(*lists)
        frame["system"] = name
        frames.append(frame)
    return pd.concat(frames)


def report(name: str, scores: pd.DataFrame, task: Task) -> None:
    metrics = (
        ["song_ndcg", "tag_ndcg", "score"]
        if task.kind == "melon"
        else [
            "r_precision",
            "ndcg",
            "clicks",
        ]
    )
    order = list(dict.fromkeys(scores["system"]))
    print(f"\n== {name}: final metrics (answers read only here), overall")
    print(scores.groupby("system", sort=False)[metrics].mean().loc[order].round(4).to_string())
    for metric in metrics:
        if metric == "tag_ndcg":
            continue
        wide = scores.pivot_table(index="bucket", columns="system", values=metric, sort=True)
        counts = scores[scores["system"] == order[0]].groupby("bucket").size()
        wide.insert(0, "n", counts)
        print(f"-- {metric} per {'question type' if task.kind == 'melon' else 'category'}")
        print(wide[["n", *order]].round(4).to_string())


def prepare(name: str, args: argparse.Namespace, tmp: Path) -> tuple[Task, Task]:
    """(validation task carved from the training playlists, final task) for a dataset."""
    if name == "melon-gen":
        from segue.data.synthetic.melon import generate_melon

        generate_melon(
            tmp / "gen", n_playlists=args.playlists, n_songs=args.songs, n_tags=args.tags, seed=0
        )
        split_melon(tmp / "gen" / "train.json", tmp / "val", seed=0)
        split_melon(tmp / "val" / "train.json", tmp / "inner", seed=1)
        return melon_task(tmp / "inner"), melon_task(tmp / "val")
    if name == "melon-real":
        records = json.loads(common.require_file(args.data_dir, MELON_REAL).read_bytes())
        keep = [r for r in records if len(r["songs"]) >= 10 and len(r["tags"]) >= 1]
        (tmp / "real").mkdir()
        (tmp / "real" / "train.json").write_text(json.dumps(keep, ensure_ascii=False))
        split_melon(tmp / "real" / "train.json", tmp / "val", seed=0)
        split_melon(tmp / "val" / "train.json", tmp / "inner", seed=1)
        return melon_task(tmp / "inner", False), melon_task(tmp / "val", False)
    source = common.require_file(args.data_dir, MPD_SOURCE)
    split_mpd(source, tmp / "val", n_playlists=1000, seed=0, unseen="drop")
    split_mpd(tmp / "val" / "train", tmp / "inner", n_playlists=500, seed=1, unseen="drop")
    return mpd_task(tmp / "inner"), mpd_task(tmp / "val")


def run_dataset(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """The ablation on one dataset: validation choice, then the final tables."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        inner, final = prepare(name, args, Path(tmp))
        print(
            f"\n##### {name}: {final.train.n_playlists} training playlists, "
            f"{final.queries.n_playlists} queries ({time.perf_counter() - start:.0f} s to prepare)"
        )
        cfs, content, seconds = fit_models(inner, CF_MODELS[name], CONTENT[name])
        print(f"  validation fit seconds: {seconds}; content features {content.feature_fields_}")
        settings, grid = choose(inner, cfs, content)
        print(f"  chosen on validation: {settings}")
        cfs, content, seconds = fit_models(final, CF_MODELS[name], CONTENT[name])
        print(f"  final fit seconds: {seconds}")
        scores = evaluate(final, cfs, content, settings)
        report(name, scores, final)
        return {
            "settings": settings,
            "grid": grid,
            "scores": scores,
            "seconds": seconds,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_data_dir_option(parser)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--playlists", type=int, default=4000, help="melon-gen playlists")
    parser.add_argument("--songs", type=int, default=8000, help="melon-gen songs")
    parser.add_argument("--tags", type=int, default=400, help="melon-gen tags")
    args = parser.parse_args(argv)
    pd.set_option("display.width", 220)
    logging.basicConfig(format="  %(message)s")
    logging.getLogger("segue.nn").setLevel(logging.INFO)  # one line per epoch
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    bad = [n for n in names if n not in DATASETS]
    if bad:
        parser.error(f"unknown dataset(s) {bad}; choose from {list(DATASETS)}")
    print("\n".join(common.environment_lines()))
    np.seterr(all="ignore")
    for name in names:
        run_dataset(name, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
