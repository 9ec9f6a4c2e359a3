"""What a first-stage source adds to the two-stage model: an ablation, decided on validation.

For each configuration (the default sources; the default plus each ``--add`` source alone; the
default plus all of them) the two-stage model is fitted twice:

1. on an inner split of the TRAINING playlists (``inner_split`` for the MPD,
   ``inner_split_melon`` for Melon; seed 1) and scored on its questions: this decides whether a
   source helps (``helps`` = validation metric above the default's);
2. on all training playlists and scored once on the split's answers (overall and per MPD
   category / Melon question type), with the merged candidate recall of its inner questions.

With ``--peers`` (either dataset) the script also tunes, on the same inner questions, the peers
a user would pick instead: implicit's ALS (segue's WRMF wraps ``implicit.als``; factors,
regularisation and alpha on a grid) and a playlist-kNN over songs, tags and title words (UserKNN:
neighbours and similarity on a grid), and prints the two-stage model's ratio to the best of them.

Datasets: ``mpd`` is the real MPD split (``segue split mpd ../shared/data/spotify-mpd/
mpd_followers10.jsonl.xz --playlists 1000 --seed 0 --unseen drop``); ``melon-real`` carves
questions (``split_melon(seed=0)``) from ``../shared/data/kakao-melon-partial/test.json``.

    .venv/bin/python bench/two_stage_sources.py --dataset mpd \\
        --add 'ae=autoencoder' --add 'aesong=autoencoder:{"orientation": "song"}' [--folds 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

from segue.inference import continue_playlists  # noqa: E402
from segue.inference.encode import playlist_interactions  # noqa: E402
from segue.metrics.challenges import melon_metrics, mpd_metrics  # noqa: E402
from segue.models.registry import model_class  # noqa: E402
from segue.nn.training import report_epochs  # noqa: E402
from segue.ranking.two_stage import TwoStage, default_first_stage  # noqa: E402

MPD_SOURCE = "spotify-mpd/mpd_followers10.jsonl.xz"
MELON_REAL = "kakao-melon-partial/test.json"


def _markdown(frame: pd.DataFrame) -> str:
    """A frame as a markdown table (pandas' ``to_markdown`` needs tabulate, not a dependency)."""
    rows = [[index, *values] for index, values in zip(frame.index, frame.to_numpy(), strict=True)]
    return common.markdown_table([frame.index.name or "", *map(str, frame.columns)], rows)


def parse_add(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME=MODEL`` or ``NAME=MODEL:{json params}`` -> (name, first-stage spec)."""
    name, _, rest = text.partition("=")
    model, _, params = rest.partition(":")
    if not name or not model:
        raise SystemExit(f"--add wants NAME=MODEL[:JSON], got {text!r}")
    model_class(model)  # an unknown model fails now, not after an hour
    spec: dict[str, Any] = {"model": model}
    if params:
        spec["params"] = json.loads(params)
    return name, spec


class Task:
    """The split, its inner validation questions, and how to score lists of both."""

    def __init__(self, dataset: str, data_dir: Path, tmp: Path, quick: bool) -> None:
        self.dataset = dataset
        if dataset == "mpd":
            self._mpd(data_dir, tmp, quick)
        elif dataset == "melon-real":
            self._melon(data_dir, tmp, quick)
        else:
            raise SystemExit(f"unknown dataset {dataset!r}")

    def _mpd(self, data_dir: Path, tmp: Path, quick: bool) -> None:
        from segue.data.mpd_split import split_mpd
        from segue.data.readers.mpd import read_challenge_set, read_mpd
        from segue.metrics.playlist_eval import read_mpd_answers
        from segue.ranking.inner_split import inner_split

        split = tmp / "mpd"
        source = common.require_file(data_dir, MPD_SOURCE)
        split_mpd(source, split, n_playlists=1000, seed=0, unseen="drop")
        self.train = read_mpd(split / "train")
        self.queries = read_challenge_set(split / "challenge_set.json")
        answers = read_mpd_answers(split / "answers.json").set_index("pid")
        pids = self.queries.playlists["pid"].tolist()
        self.truth = {p: answers.loc[p, "tracks"] for p in pids}
        self.groups = answers.loc[pids, "category"].to_dict()  # the answers carry categories
        tracks = pd.read_parquet(split / "tracks.parquet", columns=["track", "artist"])
        self.artists = dict(zip(tracks["track"], tracks["artist"], strict=True))
        self.inner = inner_split(self.train, per_category=20 if quick else 50, seed=1)
        self.metric = "ndcg"

    def _melon(self, data_dir: Path, tmp: Path, quick: bool) -> None:
        from segue.data.melon_split import question_type, split_melon
        from segue.data.readers.melon import read_melon
        from segue.ranking.inner_split import inner_split_melon

        split = tmp / "melon"
        split_melon(common.require_file(data_dir, MELON_REAL), split, seed=0)
        self.train = read_melon(split / "train.json", song_meta=False)
        self.queries = read_melon(split / "questions.json", song_meta=False)
        answers = {a["id"]: a for a in json.loads((split / "answers.json").read_text())}
        questions = {q["id"]: q for q in json.loads((split / "questions.json").read_text())}
        self.truth = {i: a["songs"] for i, a in answers.items()}
        self.tag_truth = {i: a["tags"] for i, a in answers.items()}
        self.groups = {i: question_type(q) for i, q in questions.items()}
        self.inner = inner_split_melon(self.train, 300 if quick else 800, seed=1)
        self.metric = "score"

    # scoring --------------------------------------------------------------------------------
    def lists(self, model: Any, queries: Any) -> tuple[dict, dict]:
        if isinstance(model, TwoStage) and self.dataset == "melon-real":
            rows = model.answer_questions(queries)
            return {r["id"]: r["songs"] for r in rows}, {r["id"]: r["tags"] for r in rows}
        n, n_tags = (500, 0) if self.dataset == "mpd" else (100, 10)
        tracks, tags = {}, {}
        for batch in continue_playlists(model, queries, n, n_tags=n_tags):
            for i, pid in enumerate(batch.pids):
                tracks[pid] = batch.tracks[i]
                if batch.tags is not None:
                    tags[pid] = batch.tags[i]
        return tracks, tags

    def frame(self, model: Any, queries: Any, truth: dict, tag_truth: dict | None) -> pd.DataFrame:
        tracks, tags = self.lists(model, queries)
        pids = [p for p in queries.playlists["pid"].tolist() if p in truth]
        if self.dataset == "mpd":
            return mpd_metrics(
                [tracks[p] for p in pids], [truth[p] for p in pids], self.artists, index=pids
            )
        tag_truth = tag_truth or {}
        return melon_metrics(
            [tracks[p] for p in pids],
            [tags.get(p, []) for p in pids],
            [truth.get(p, []) for p in pids],
            [tag_truth.get(p, []) for p in pids],
            index=pids,
        )

    def validate(self, model: Any) -> float:
        inner = self.inner
        frame = self.frame(model, inner.queries, inner.answers, inner.tag_answers)
        return float(frame[self.metric].mean())

    def test(self, model: Any) -> pd.DataFrame:
        frame = self.frame(model, self.queries, self.truth, getattr(self, "tag_truth", None))
        frame["group"] = [self.groups[p] for p in frame.index]
        return frame

    def interactions(self, playlists: Any) -> Any:
        return playlist_interactions(
            playlists, with_tags=self.dataset == "melon-real", with_titles=True
        )


def fit(model: Any, data: Any) -> float:
    start = time.perf_counter()
    with report_epochs(lambda e: print(f"      {e}", flush=True)):
        model.fit(data)
    return time.perf_counter() - start


def two_stage(sources: dict, folds: int) -> TwoStage:
    return TwoStage(sources, folds=folds)


def run(args: argparse.Namespace, task: Task) -> int:
    if args.peers_only:
        peers(task, None)
        return 0
    adds = dict(parse_add(a) for a in args.add)
    configs = {"default": default_first_stage()}
    for name, spec in adds.items():
        configs[f"+{name}"] = {**default_first_stage(), name: spec}
    if len(adds) > 1:
        configs["+all"] = {**default_first_stage(), **adds}
    rows, per_group = [], {}
    for label, sources in configs.items():
        print(f"== {label}: {sorted(sources)}", flush=True)
        inner_model = two_stage(sources, args.folds)
        fit(inner_model, task.inner.train)
        valid = task.validate(inner_model)
        model = two_stage(sources, args.folds)
        seconds = fit(model, task.train)
        frame = task.test(model)
        recall = model.inner_recall_
        row = {"config": label, f"valid {task.metric}": valid, "fit s": seconds}
        cols = ["r_precision", "ndcg", "clicks"] if task.dataset == "mpd" else list(frame.columns)
        for col in cols:
            if col != "group":
                row[col] = float(frame[col].mean())
        if "recall@1000" in getattr(recall, "columns", []):
            row["inner cand. recall@1000"] = float(recall["recall@1000"].mean())
        rows.append(row)
        per_group[label] = frame.groupby("group")[task.metric].mean()
        print(f"   valid {valid:.4f}; test {row.get(task.metric):.4f}; fit {seconds:.0f} s")
    table = pd.DataFrame(rows).set_index("config")
    base = table.loc["default", f"valid {task.metric}"]
    table["helps (valid)"] = table[f"valid {task.metric}"] > base
    print(f"\n## {task.dataset}: two-stage sources (folds={args.folds})\n")
    print(_markdown(table.round(4)))
    print(f"\n{task.metric} per category / question type:\n")
    print(_markdown(pd.DataFrame(per_group).round(4)))
    if args.peers:
        peers(task, table)
    return 0


def peers(task: Task, table: pd.DataFrame | None) -> None:
    """Tuned implicit ALS and playlist-kNN, chosen on the inner questions, scored on the answers."""
    grids = {
        "implicit ALS (WRMF)": (
            "wrmf",
            [
                {"factors": f, "regularization": r, "alpha": a}
                for f in (64, 128)
                for r in (1.0, 10.0)
                for a in (2.0, 10.0)
            ],
        ),
        "playlist-kNN (UserKNN)": (
            "userknn",
            [
                {"neighbors": k, "similarity": s}
                for k in (50, 100, 200, 400)
                for s in ("cosine", "bm25")
            ],
        ),
    }
    inner_data = task.interactions(task.inner.train)
    full = task.interactions(task.train)
    results = {}
    for label, (name, grid) in grids.items():
        scored = []
        for params in grid:
            model = model_class(name)(**params)
            fit(model, inner_data)
            scored.append((task.validate(model), params))
            print(f"   {label} {params}: valid {scored[-1][0]:.4f}", flush=True)
        best_valid, best = max(scored, key=lambda t: t[0])
        model = model_class(name)(**best)
        fit(model, full)
        frame = task.test(model)
        results[label] = (best, best_valid, float(frame[task.metric].mean()))
    print("\n## peers, each tuned on the inner questions\n")
    for label, (best, valid, test) in results.items():
        print(f"- {label} {best}: valid {valid:.4f}, test {task.metric} {test:.4f}")
    best_peer = max(r[2] for r in results.values())
    if table is None:
        return
    for config, value in table[task.metric].items():
        print(f"- two-stage {config}: {value:.4f} = {value / best_peer:.3f}x the best peer")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_data_dir_option(parser)
    parser.add_argument("--dataset", default="mpd", choices=["mpd", "melon-real"])
    parser.add_argument("--add", action="append", default=[], help="NAME=MODEL[:JSON params]")
    parser.add_argument("--folds", type=int, default=1, help="inner folds of every two-stage fit")
    parser.add_argument("--peers", action="store_true", help="also tune ALS and playlist-kNN")
    parser.add_argument("--peers-only", action="store_true", help="only the tuned peers")
    parser.add_argument("--quick", action="store_true", help="fewer inner questions")
    args = parser.parse_args(argv)
    print(f"# Two-stage sources on {args.dataset}\n")
    for line in common.environment_lines():
        print(f"- {line}")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        code = run(args, Task(args.dataset, args.data_dir, Path(tmp), args.quick))
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
