"""faiss IVF retrieval against exact scoring of a saved WRMF at catalogue scale (issue 16).

Loads a WRMF model directory (e.g. the 1M run of ``bench/scale.py``: 2.3M tracks), continues
the same challenge playlists with ``retrieval="dense"`` (every track scored, exact top-k) and
with ``retrieval="faiss-ivf"`` at several ``nprobe``, and prints for each: the seconds (the IVF
index's build, a one-off k-means, apart), the recall@K of the IVF lists against the exact ones,
and R-precision / NDCG against the answers when ``--answers`` is given. The exact lists are
the reference; nothing is tuned here.

    .venv/bin/python bench/ivf_recall.py /work/segue-scale/1000000/models/wrmf \\
        --challenge /work/segue-scale/1000000/challenge_1000.json \\
        --answers /work/segue-scale/1000000/mpd/answers.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import continuations  # noqa: E402

from segue.data.readers.mpd import read_challenge_set
from segue.metrics.challenges import mpd_metrics
from segue.metrics.playlist_eval import _track_artists, read_mpd_answers
from segue.serialization import load


def lists_of(model, queries, k: int) -> tuple[dict[int, list[str]], float]:
    t = time.perf_counter()
    out = continuations(model, queries, k)
    return out, time.perf_counter() - t


def quality(lists: dict[int, list[str]], answers: Path | None) -> str:
    if answers is None:
        return ""
    truth = read_mpd_answers(answers)
    truth = truth[truth["pid"].isin(list(lists))]
    artists = _track_artists(answers.parent / "tracks.parquet")
    per = mpd_metrics([lists[p] for p in truth["pid"]], truth["tracks"].tolist(), artists)
    return f"R-prec {per['r_precision'].mean():.4f}, NDCG {per['ndcg'].mean():.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a saved WRMF (segue train --model wrmf)")
    parser.add_argument("--challenge", type=Path, required=True, help="challenge_set.json")
    parser.add_argument("--answers", type=Path, help="answers.json of the challenge")
    parser.add_argument("--k", type=int, default=500, help="tracks per playlist")
    parser.add_argument("--nprobe", default="16,64,256", help="comma-separated")
    parser.add_argument("--nlist", type=int, help="IVF lists (default: WRMF's rule)")
    args = parser.parse_args(argv)

    model = load(args.model)
    queries = read_challenge_set(args.challenge)
    n_items = model.item_factors_.shape[0]
    print(
        f"# ivf_recall: {args.model} ({n_items:,} item vectors, {model.factors} factors), "
        f"{len(queries.playlists):,} playlists, k={args.k}",
        flush=True,
    )
    exact, exact_s = lists_of(model.set_params(retrieval="dense"), queries, args.k)
    print(f"| retrieval | seconds | recall@{args.k} vs exact | quality |")
    print("|---|---|---|---|")
    print(f"| dense (exact) | {exact_s:.1f} | 1 | {quality(exact, args.answers)} |", flush=True)
    model.set_params(retrieval="faiss-ivf", nlist=args.nlist)
    t = time.perf_counter()
    index = model.faiss_index()
    build_s = time.perf_counter() - t
    print(f"(IVF index: nlist {index.nlist:,}, built in {build_s:.1f} s)", flush=True)
    for nprobe in [int(x) for x in args.nprobe.split(",")]:
        got, seconds = lists_of(model.set_params(nprobe=nprobe), queries, args.k)
        recall = np.mean([len(set(got[p]) & set(exact[p])) / len(exact[p]) for p in exact])
        print(
            f"| faiss-ivf nprobe={nprobe} | {seconds:.1f} | {recall:.4f} | "
            f"{quality(got, args.answers)} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
