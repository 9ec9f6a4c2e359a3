"""Two-stage continuation (candidates + LightGBM lambdarank) against its first-stage models.

On an MPD challenge split written by ``segue split mpd`` (by default the script makes one in a
temporary folder, as ``segue split mpd ../shared/data/spotify-mpd/mpd_followers10.jsonl.xz
--out val --playlists 1000 --seed 0 --unseen drop`` does, so the README's numbers are
reproduced): :class:`segue.ranking.two_stage.TwoStage` is fit on ``train/`` only (its
ranker learns on queries carved out of those playlists; ``answers.json`` is read only to score
the final lists), then every challenge playlist gets 500 tracks. Prints:

1. candidate recall@N (N = 100, 500, 1000) of each source and of the merged set, per category;
2. the ranker's learning curve (validation NDCG per boosting round, from LightGBM's log) and
   its feature importance;
3. R-precision, NDCG and clicks overall and per category: two-stage vs each first-stage model
   (each model's own top 500, seeds excluded, from the same candidate retrieval) and vs the
   merged first-stage order (reciprocal rank fusion);
4. timings: training time per stage, recommendation time per playlist at N = 1,000 split into
   first stage / features / ranker.

    .venv/bin/python bench/two_stage.py [SPLIT_DIR] [--n 1000] [--per-category 100]
                                        [--save DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

from segue.data.mpd_split import split_mpd  # noqa: E402
from segue.data.readers.mpd import read_challenge_set, read_mpd  # noqa: E402
from segue.metrics.challenges import MPD_N, mpd_metrics  # noqa: E402
from segue.metrics.playlist_eval import read_mpd_answers  # noqa: E402
from segue.ranking.candidates import candidate_recall  # noqa: E402
from segue.ranking.two_stage import TwoStage  # noqa: E402

METRICS = ("r_precision", "ndcg", "clicks")


def source_lists(candidates, j: int, n: int) -> np.ndarray:
    """``(n_queries, n)`` item indices of source ``j``'s own top ``n`` (``-1`` padded)."""
    out = np.full((len(candidates.pids), n), -1, dtype=np.int32)
    rank = candidates.rank[:, j]
    sel = ~np.isnan(rank) & (rank <= n)
    out[candidates.query[sel], rank[sel].astype(np.int64) - 1] = candidates.item[sel]
    return out


def merged_lists(candidates, n: int) -> np.ndarray:
    """The first ``n`` of the merged (fused) first-stage order."""
    out = np.full((len(candidates.pids), n), -1, dtype=np.int32)
    pos = candidates.positions()
    sel = pos <= n
    out[candidates.query[sel], pos[sel] - 1] = candidates.item[sel]
    return out


def score(lists: np.ndarray, ids: np.ndarray, truth: list, artists: dict, pids) -> pd.DataFrame:
    recs = [ids[row[row >= 0]].tolist() for row in lists]
    return mpd_metrics(recs, truth, artists, index=pids)


def table(per: dict[str, pd.DataFrame], category: pd.Series) -> pd.DataFrame:
    rows = []
    for name, frame in per.items():
        overall = frame[list(METRICS)].mean()
        rows.append({"model": name, "category": "all", **overall.to_dict()})
        for cat, grp in frame.groupby(category.to_numpy(), sort=True):
            rows.append({"model": name, "category": str(cat), **grp[list(METRICS)].mean()})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("split", nargs="?", type=Path, default=None, help="split folder")
    common.add_data_dir_option(parser)
    parser.add_argument("--n", type=int, default=1000, help="merged candidates re-ranked")
    parser.add_argument("--per-category", type=int, default=None, help="inner queries per category")
    parser.add_argument(
        "--folds", type=int, default=None, help="inner splits with disjoint queries"
    )
    parser.add_argument("--save", type=Path, default=None, help="save the fitted model here")
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
    start = time.perf_counter()
    train = read_mpd(split / "train")
    queries = read_challenge_set(split / "challenge_set.json")
    print(
        f"read {train.n_playlists} training playlists, {queries.n_playlists} queries "
        f"in {time.perf_counter() - start:.1f}s"
    )

    options = {"per_category": args.per_category, "folds": args.folds}
    model = TwoStage(n=args.n, **{k: v for k, v in options.items() if v is not None})
    start = time.perf_counter()
    model.fit(train)
    fit_seconds = time.perf_counter() - start
    assert model.ranker_ is not None

    weights = model.fusion_weights_
    if weights is not None:
        print(f"fusion weights {dict(zip(model.models_, weights.tolist(), strict=True))}")
    print(f"cold start: half-life {model.cold_half_life_} days; inner recall@100 per choice:")
    print({k: round(v, 4) for k, v in model.cold_scores_.items()})
    print("\n== inner split: merged candidate recall (training queries, for reference)")
    print(model.inner_recall_.round(3).to_string())

    print("\n== ranker learning curve (validation NDCG, every 10 rounds)")
    curve = model.ranker_.learning_curve()
    print(curve.iloc[::10].round(4).to_string())
    print(f"best iteration {model.ranker_.best_iteration} of {len(curve)}")
    print("\n== feature importance (gain)")
    print(model.ranker_.feature_importance().round(1).to_string(index=False))

    # --- final evaluation: answers read only now
    answers = read_mpd_answers(split / "answers.json").set_index("pid")
    tracks = pd.read_parquet(split / "tracks.parquet", columns=["track", "artist"])
    artists = dict(zip(tracks["track"], tracks["artist"], strict=True))
    start = time.perf_counter()
    ranked = model.rank(queries, MPD_N)
    pids, lists, cands, seconds = (ranked.pids, ranked.tracks, ranked.candidates, ranked.seconds)
    rec_seconds = time.perf_counter() - start
    answer_lists = {p: answers.loc[p, "tracks"] for p in pids}
    category = answers.loc[pids, "category"]
    category.index = pids

    print(
        f"\n== candidate recall on the challenge queries (union holds up to "
        f"{len(cands.sources)} x {max(args.n, MPD_N)} per query)"
    )
    recall = candidate_recall(cands, answer_lists, category, cutoffs=(100, 500, args.n))
    for cut in (100, 500, args.n):
        cols = [c for c in recall.columns if c.endswith(f"@{cut}")]
        print(f"-- @{cut}")
        print(recall[cols].round(3).to_string())

    ids = model.items_.ids
    truth = [answer_lists[p] for p in pids]
    per = {"two-stage": score(lists, ids, truth, artists, pids)}
    for j, name in enumerate(cands.sources):
        per[name] = score(source_lists(cands, j, MPD_N), ids, truth, artists, pids)
    per["merged (rrf)"] = score(merged_lists(cands, MPD_N), ids, truth, artists, pids)
    results = table(per, category)
    print("\n== final metrics (answers.json), overall and per category")
    for metric in METRICS:
        wide = results.pivot(index="category", columns="model", values=metric)
        wide = wide.reindex(["all", *sorted(set(wide.index) - {"all"}, key=int)])
        print(f"-- {metric}")
        print(wide[list(per)].round(4).to_string())

    best = max(
        (m for m in per if m not in ("two-stage", "merged (rrf)")),
        key=lambda m: per[m]["ndcg"].mean(),
    )
    ok = True
    summary = results.set_index(["model", "category"])
    for cat in summary.loc["two-stage"].index:
        if cat != "all" and int(cat) == 1:
            continue  # title only: no seed tracks
        ts, bs = summary.loc[("two-stage", cat)], summary.loc[(best, cat)]
        wins = ts["ndcg"] > bs["ndcg"] and ts["r_precision"] > bs["r_precision"]
        ok &= bool(wins)
        if not wins:
            print(f"two-stage does not beat {best} in category {cat}")
    clicks_ok = summary.loc[("two-stage", "all"), "clicks"] <= summary.loc[(best, "all"), "clicks"]
    print(
        f"\nbest single model by NDCG: {best}; two-stage beats it on NDCG and R-precision "
        f"overall and in every category with seeds: {ok}; clicks not worse: {clicks_ok}"
    )

    print("\n== timings")
    for key, value in model.timings_.items():
        print(f"train {key:28s} {value:8.2f} s")
    print(f"train total                        {fit_seconds:8.2f} s")
    n_q = len(pids)
    print(
        f"recommend {n_q} playlists at N={args.n}: {rec_seconds:.2f} s "
        f"({1000 * rec_seconds / n_q:.1f} ms per playlist)"
    )
    for key, value in seconds.items():
        print(f"  {key:12s} {1000 * value / n_q:8.2f} ms per playlist")
    for name, value in cands.seconds.items():
        print(f"    source {name:10s} {1000 * value / n_q:8.2f} ms per playlist")
    if args.save:
        from segue import save

        save(model, args.save)
        print(f"saved to {args.save}")
    return 0 if ok and clicks_ok else 1


if __name__ == "__main__":
    sys.exit(main())
