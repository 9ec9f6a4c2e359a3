"""Two-stage continuation on Melon-format data: song nDCG@100, tag nDCG@10 and the score.

The Kakao Arena data is not in ``../shared/data``, so this runs on files that segue generates
in the exact Melon schema (``segue generate melon``: themes tie songs, tags, titles, genres and
release dates together, and no playlist holds a song released after its ``updt_date``). The
path is the one the CLI takes:

    segue generate melon --out gen --playlists 12000 --songs 20000 --tags 800 --seed 0
    segue split melon gen/train.json --out val --seed 0
    segue train --melon val --model two-stage --out models/ts
    segue recommend models/ts --questions val/questions.json --out ts.json
    segue evaluate ts.json ... --answers val/answers.json

The script does the same in memory, and scores each first-stage model (refit on all training
playlists, as the two-stage model uses them) with its own 100 songs and 10 tags for comparison.
``answers.json`` is read only to score the final lists. Prints the inner candidate recall, the
learning curves, song/tag nDCG and score overall and per question type, and timings.

    .venv/bin/python bench/two_stage_melon.py [--playlists 12000] [--songs 20000] [--tags 800]
                                              [--folds 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from segue.data.melon_split import question_type, split_melon
from segue.data.readers.melon import read_melon
from segue.data.synthetic.melon import generate_melon
from segue.inference import continue_playlists
from segue.metrics.challenges import melon_metrics
from segue.ranking.two_stage import TwoStage

METRICS = ("song_ndcg", "tag_ndcg", "score")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--playlists", type=int, default=12000)
    parser.add_argument("--songs", type=int, default=20000)
    parser.add_argument("--tags", type=int, default=800)
    parser.add_argument("--folds", type=int, default=None, help="inner splits for the ranker")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    pd.set_option("display.width", 200)
    with tempfile.TemporaryDirectory() as tmp:
        gen, val = Path(tmp) / "gen", Path(tmp) / "val"
        generate_melon(
            gen, n_playlists=args.playlists, n_songs=args.songs, n_tags=args.tags, seed=args.seed
        )
        split_melon(gen / "train.json", val, seed=args.seed)
        return run(args, val)


def run(args: argparse.Namespace, val: Path) -> int:
    train = read_melon(val / "train.json")
    queries = read_melon(val / "questions.json", song_meta=False)
    print(f"{train.n_playlists} training playlists, {queries.n_playlists} questions")
    model = TwoStage(**({"folds": args.folds} if args.folds else {}))
    start = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - start
    assert model.ranker_ is not None and model.tag_ranker_ is not None
    weights = model.fusion_weights_.tolist()
    print(f"fusion weights {dict(zip(model.models_, weights, strict=True))}")
    print(f"cold start: half-life {model.cold_half_life_} days; inner recall@100 per choice:")
    print({k: round(v, 4) for k, v in model.cold_scores_.items()})
    print("\n== inner questions: candidate recall (songs)")
    print(model.inner_recall_.round(3).to_string())
    print("\n== inner questions: candidate recall (tags)")
    print(model.inner_tag_recall_.round(3).to_string())
    for name, ranker in (("song", model.ranker_), ("tag", model.tag_ranker_)):
        curve = ranker.learning_curve()
        print(f"\n== {name} ranker learning curve (every 10 rounds)")
        print(curve.iloc[::10].round(4).to_string())
        print(f"best iteration {ranker.best_iteration} of {len(curve)}")
        print(ranker.feature_importance().head(12).round(1).to_string(index=False))

    start = time.perf_counter()
    results = {"two-stage": model.answer_questions(queries)}
    rec_seconds = time.perf_counter() - start
    for name, source in model.models_.items():
        rows = []
        for batch in continue_playlists(source, queries, 100, n_tags=10):
            assert batch.tags is not None
            rows += [
                {"id": pid, "songs": songs, "tags": tags}
                for pid, songs, tags in zip(batch.pids, batch.tracks, batch.tags, strict=True)
            ]
        results[name] = rows

    answers = {a["id"]: a for a in json.loads((val / "answers.json").read_text())}
    questions = {q["id"]: q for q in json.loads((val / "questions.json").read_text())}
    frames = []
    for name, rows in results.items():
        ids = [r["id"] for r in rows]
        frame = melon_metrics(
            [r["songs"] for r in rows],
            [r["tags"] for r in rows],
            [answers[i]["songs"] for i in ids],
            [answers[i]["tags"] for i in ids],
            index=ids,
        )
        frame["model"] = name
        frame["question"] = [question_type(questions[i]) for i in ids]
        frames.append(frame)
    scores = pd.concat(frames)
    print("\n== final metrics (answers.json)")
    overall = scores.groupby("model", sort=False)[list(METRICS)].mean()
    print(overall.round(4).to_string())
    for metric in METRICS:
        wide = scores.pivot_table(index="question", columns="model", values=metric, sort=False)
        print(f"-- {metric} per question type")
        print(wide[list(results)].round(4).to_string())
    best = overall.drop("two-stage")["score"].idxmax()
    wins = overall.loc["two-stage", "score"] > overall.loc[best, "score"]
    print(f"\nbest single model by score: {best}; two-stage beats it: {bool(wins)}")

    print("\n== timings")
    for key, value in model.timings_.items():
        print(f"train {key:28s} {value:8.2f} s")
    print(f"train total                        {fit_seconds:8.2f} s")
    n_q = queries.n_playlists
    print(f"answer {n_q} questions: {rec_seconds:.2f} s ({1000 * rec_seconds / n_q:.1f} ms each)")
    return 0 if wins else 1


if __name__ == "__main__":
    sys.exit(main())
