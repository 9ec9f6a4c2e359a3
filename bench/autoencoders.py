"""The autoencoders next to EASE, WRMF, UserKNN and popularity, on every real dataset, one run.

Systems: the deep CF autoencoder by playlist and by song (``--model autoencoder``), EASE's
objective by gradient descent (``--model ease --param solver=gd``), closed-form EASE, WRMF,
UserKNN and popularity; on the playlist datasets also the content autoencoder alone
(``--model content-autoencoder``; its densification ablation is ``bench/densification.py``).

Datasets and questions (the answers are read only to score the final lists):

- ``lastfm``, ``msd``: ``split_listens(seed=0)`` as ``bench/listens_quality.py``; NDCG@100 and
  recall@100 (seen items excluded);
- ``mpd``: the real MPD split (``segue split mpd ../shared/data/spotify-mpd/
  mpd_followers10.jsonl.xz --playlists 1000 --seed 0 --unseen drop``), 500 tracks per
  challenge playlist; R-precision, NDCG, clicks overall and per category;
- ``melon-real``: questions carved by ``split_melon(seed=0)`` from the real Melon playlists of
  ``../shared/data/kakao-melon-partial/test.json`` (no song metadata exists for them); song
  nDCG@100, tag nDCG@10 and the score, overall and per question type.

Parameters: each system's small grid is tried on a validation split carved from the TRAINING
data only (``split_listens(visible, seed=1)``; ``inner_split`` / ``inner_split_melon`` of the
training playlists), the best by validation NDCG is refitted on all training data and scored
once on the answers. The neural models also stop early on questions carved from their own
training rows. Seconds per epoch are the mean of the final fit's epochs on this machine's CPU.

    .venv/bin/python bench/autoencoders.py [--datasets lastfm,msd,mpd,melon-real] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

from segue.data.interactions import Interactions  # noqa: E402
from segue.data.split import split_listens  # noqa: E402
from segue.inference import continue_playlists  # noqa: E402
from segue.inference.encode import playlist_interactions  # noqa: E402
from segue.metrics.challenges import melon_metrics, mpd_metrics  # noqa: E402
from segue.metrics.evaluate import evaluate_lists  # noqa: E402
from segue.models.registry import model_class  # noqa: E402
from segue.nn.training import report_epochs  # noqa: E402

K = 100
MPD_SOURCE = "spotify-mpd/mpd_followers10.jsonl.xz"
MELON_REAL = "kakao-melon-partial/test.json"


@dataclass
class System:
    """A model name, its label and the parameter grid tried on validation."""

    label: str
    model: str
    grid: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    playlists_only: bool = False
    listens_only: bool = False


def systems(quick: bool, n_items_hint: int) -> list[System]:
    ae_grid = [
        {"layers": [256, 128], "dropout": 0.8},
        {"layers": [512, 256], "dropout": 0.5},
    ]
    song_grid = [{"dropout": 0.8, "n_neighbors": 100}, {"dropout": 0.5, "n_neighbors": 200}]
    ease_grid = [{"l2": v} for v in (100.0, 500.0, 2000.0)]
    # EASE on the MPD's ~190K tracks: keep a catalogue the 2-core machine solves in a minute
    cap = {"max_items": 10_000} if n_items_hint > 20_000 else {}
    # a gradient step costs a few passes over four n x n matrices: on Last.fm's 17.6K artists
    # an epoch takes minutes on 2 shared cores, so above 10K items it keeps the 8,192 most
    # listened (pruned items are then never recommended: no back-fill without the inverse)
    gd_cap = {"max_items": 8192} if n_items_hint > 10_000 else {}
    out = [
        System("popularity", "popularity"),
        System("userknn", "userknn"),
        System("wrmf", "wrmf"),
        System("ease", "ease", [{**g, **cap} for g in ease_grid]),
        # EASE's objective by gradient descent, at the l2 validation chose for the closed form;
        # carved questions choose the epoch count, then a refit on all rows (segue.models.ease_gd)
        System(
            "ease-gd",
            "ease",
            [{"solver": "gd", "epochs": 30, "lr": 3e-3, "validation_rows": 500, **gd_cap}],
            listens_only=True,
        ),
        System("autoencoder[playlist]", "autoencoder", ae_grid),
        System(
            "autoencoder[song]", "autoencoder", [{"orientation": "song", **g} for g in song_grid]
        ),
        System("content-autoencoder", "content-autoencoder", [{}], playlists_only=True),
    ]
    if quick:
        for s in out:
            s.grid = s.grid[:1]
    return out


@dataclass
class Result:
    dataset: str
    system: str
    params: dict
    validation: float
    test: pd.DataFrame  # per-question metrics (listens: one row of means)
    fit_s: float
    epoch_s: float | None
    epochs: int | None


def fit_timed(name: str, params: dict, train: Interactions) -> tuple[Any, float]:
    model = model_class(name)(**params)
    start = time.perf_counter()
    with report_epochs(lambda e: print(f"    {e}", flush=True)):
        model.fit(train)
    return model, time.perf_counter() - start


def choose_and_fit(
    dataset: str,
    system: System,
    chosen: dict[str, dict],
    val_train: Interactions,
    val_score: Callable[[Any], float],
    train: Interactions,
    test_score: Callable[[Any], pd.DataFrame],
) -> Result:
    tried = []
    grid = system.grid
    if system.label == "ease-gd" and "ease" in chosen:
        grid = [{**chosen["ease"], **g} for g in grid]
    for params in grid:
        model, seconds = fit_timed(system.model, params, val_train)
        value = val_score(model)
        tried.append((value, params))
        print(
            f"  [{dataset}] {system.label} {params}: validation ndcg {value:.4f} ({seconds:.0f} s)"
        )
    best_value, best = max(tried, key=lambda t: t[0])
    chosen[system.label] = best
    model, seconds = fit_timed(system.model, best, train)
    frame = test_score(model)
    epoch_s = getattr(model, "seconds_per_epoch_", None)
    epochs = getattr(model, "epochs_trained_", None)
    means = frame.drop(columns=["group"], errors="ignore").mean()
    print(
        f"  [{dataset}] {system.label} final {best}: fit {seconds:.0f} s"
        + (f", {epochs} epochs, {epoch_s:.1f} s/epoch" if epoch_s else "")
        + "; test "
        + ", ".join(f"{k} {v:.4f}" for k, v in means.items()),
        flush=True,
    )
    return Result(dataset, system.label, best, best_value, frame, seconds, epoch_s, epochs)


# listen counts --------------------------------------------------------------------------------
def listens_scores(model: Any, train: Interactions, targets, answers: Interactions) -> dict:
    recs = model.recommend(targets, K, unknown="fallback")
    ev = evaluate_lists(dict(recs.lists()), answers, (K,), train=train)
    return {"ndcg": ev.summary[f"ndcg@{K}"], "recall": ev.summary[f"recall@{K}"]}


def run_listens(name: str, df: pd.DataFrame, quick: bool) -> list[Result]:
    split, train, answers = common.task_split(df)
    val = split_listens(split.listens, seed=1)
    val_train = Interactions.from_frame(val.listens, weight="count")
    val_answers = Interactions.from_frame(val.answers, weight="count")
    print(f"- {name}: {train.n_users} users x {train.n_items} items, {len(split.targets)} targets")
    out, chosen = [], {}
    for system in systems(quick, train.n_items):
        if system.playlists_only:
            continue
        out.append(
            choose_and_fit(
                name,
                system,
                chosen,
                val_train,
                lambda m: listens_scores(m, val_train, val.targets, val_answers)["ndcg"],
                train,
                lambda m: pd.DataFrame([listens_scores(m, train, split.targets, answers)]),
            )
        )
    return out


# MPD --------------------------------------------------------------------------------------------
def continue_lists(model: Any, queries, n: int, n_tags: int = 0) -> dict:
    tracks, tags = {}, {}
    for batch in continue_playlists(model, queries, n, n_tags=n_tags):
        for i, pid in enumerate(batch.pids):
            tracks[pid] = batch.tracks[i]
            if batch.tags is not None:
                tags[pid] = batch.tags[i]
    return {"tracks": tracks, "tags": tags}


def run_mpd(data_dir: Path, tmp: Path, quick: bool) -> list[Result]:
    from segue.data.mpd_split import split_mpd
    from segue.data.readers.mpd import read_challenge_set, read_mpd
    from segue.metrics.playlist_eval import read_mpd_answers
    from segue.ranking.inner_split import inner_split

    split = tmp / "mpd"
    split_mpd(
        common.require_file(data_dir, MPD_SOURCE), split, n_playlists=1000, seed=0, unseen="drop"
    )
    train_pl = read_mpd(split / "train")
    queries = read_challenge_set(split / "challenge_set.json")
    answers = read_mpd_answers(split / "answers.json").set_index("pid")
    tracks = pd.read_parquet(split / "tracks.parquet", columns=["track", "artist"])
    artists = dict(zip(tracks["track"], tracks["artist"], strict=True))
    inner = inner_split(train_pl, per_category=20 if quick else 40, seed=1)
    train = playlist_interactions(train_pl, with_titles=True)
    val_train = playlist_interactions(inner.train, with_titles=True)
    qcat = queries.playlists.set_index("pid")["category"]
    print(
        f"- mpd: {train.n_users} playlists x {train.n_items} columns, "
        f"{queries.n_playlists} questions"
    )

    def val_score(model: Any) -> float:
        lists = continue_lists(model, inner.queries, 500)["tracks"]
        pids = list(inner.answers)
        frame = mpd_metrics([lists[p] for p in pids], [inner.answers[p] for p in pids], artists)
        return float(frame["ndcg"].mean())

    def test_score(model: Any) -> pd.DataFrame:
        lists = continue_lists(model, queries, 500)["tracks"]
        pids = queries.playlists["pid"].tolist()
        truth = [answers.loc[p, "tracks"] for p in pids]
        frame = mpd_metrics([lists[p] for p in pids], truth, artists, index=pids)
        frame["group"] = qcat.loc[pids].to_numpy()
        return frame

    chosen: dict[str, dict] = {}
    return [
        choose_and_fit("mpd", s, chosen, val_train, val_score, train, test_score)
        for s in systems(quick, train.n_items)
        if not s.listens_only
    ]


# Melon ------------------------------------------------------------------------------------------
def run_melon(data_dir: Path, tmp: Path, quick: bool) -> list[Result]:
    from segue.data.melon_split import question_type, split_melon
    from segue.data.readers.melon import read_melon
    from segue.ranking.inner_split import inner_split_melon

    split = tmp / "melon"
    split_melon(common.require_file(data_dir, MELON_REAL), split, seed=0)
    train_pl = read_melon(split / "train.json", song_meta=False)
    queries = read_melon(split / "questions.json", song_meta=False)
    answers = {a["id"]: a for a in json.loads((split / "answers.json").read_text())}
    questions = {q["id"]: q for q in json.loads((split / "questions.json").read_text())}
    inner = inner_split_melon(train_pl, 300 if quick else 800, seed=1)
    train = playlist_interactions(train_pl, with_tags=True, with_titles=True)
    val_train = playlist_interactions(inner.train, with_tags=True, with_titles=True)
    print(
        f"- melon-real: {train.n_users} playlists x {train.n_items} columns, "
        f"{len(answers)} questions"
    )

    def score(model: Any, qs, song_truth: dict, tag_truth: dict) -> pd.DataFrame:
        got = continue_lists(model, qs, 100, n_tags=10)
        pids = [p for p in qs.playlists["pid"].tolist() if p in song_truth or p in tag_truth]
        return melon_metrics(
            [got["tracks"][p] for p in pids],
            [got["tags"].get(p, []) for p in pids],
            [song_truth.get(p, []) for p in pids],
            [tag_truth.get(p, []) for p in pids],
            index=pids,
        )

    def val_score(model: Any) -> float:
        return float(
            score(model, inner.queries, inner.answers, inner.tag_answers or {})["score"].mean()
        )

    def test_score(model: Any) -> pd.DataFrame:
        frame = score(
            model,
            queries,
            {i: a["songs"] for i, a in answers.items()},
            {i: a["tags"] for i, a in answers.items()},
        )
        frame["group"] = [question_type(questions[i]) for i in frame.index]
        return frame

    chosen: dict[str, dict] = {}
    return [
        choose_and_fit("melon-real", s, chosen, val_train, val_score, train, test_score)
        for s in systems(quick, train.n_items)
        if not s.listens_only
    ]


# report -----------------------------------------------------------------------------------------
def report(results: list[Result]) -> None:
    for dataset in dict.fromkeys(r.dataset for r in results):
        rows = [r for r in results if r.dataset == dataset]
        metrics = [c for c in rows[0].test.columns if c != "group"]
        print(f"\n## {dataset}\n")
        table = []
        for r in rows:
            means = r.test[metrics].mean()
            table.append(
                [r.system, json.dumps(r.params), f"{r.validation:.4f}"]
                + [f"{means[m]:.4f}" for m in metrics]
                + [
                    f"{r.fit_s:.0f}",
                    "" if r.epoch_s is None else f"{r.epoch_s:.1f}",
                    r.epochs or "",
                ]
            )
        headers = ["system", "params (validation pick)", "valid"] + metrics
        print(common.markdown_table(headers + ["fit s", "s/epoch", "epochs"], table))
        if "group" in rows[0].test.columns:
            main = "ndcg" if "ndcg" in metrics else "score"
            wide = pd.DataFrame({r.system: r.test.groupby("group")[main].mean() for r in rows})
            print(f"\n{main} per category / question type:\n")
            rows_ = [[g, *v] for g, v in zip(wide.index, wide.round(4).to_numpy(), strict=True)]
            print(common.markdown_table(["group", *map(str, wide.columns)], rows_))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_data_dir_option(parser)
    parser.add_argument("--datasets", default="lastfm,msd,mpd,melon-real")
    parser.add_argument(
        "--quick", action="store_true", help="first grid point only, fewer inner questions"
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    print("# Autoencoders on real data\n")
    for line in common.environment_lines():
        print(f"- {line}")
    results: list[Result] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            if name == "lastfm":
                results += run_listens(name, common.load_lastfm(args.data_dir), args.quick)
            elif name == "msd":
                results += run_listens(name, common.load_msd(args.data_dir), args.quick)
            elif name == "mpd":
                results += run_mpd(args.data_dir, Path(tmp), args.quick)
            elif name == "melon-real":
                results += run_melon(args.data_dir, Path(tmp), args.quick)
            else:
                parser.error(f"unknown dataset {name!r}")
    report(results)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
