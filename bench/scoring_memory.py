"""Recommend-for-all memory: 10x the users must not raise the peak.

One EASE model is trained once on synthetic listens of ``--users`` users (default 100,000) and
``--items`` songs. Then, each in a fresh process that loads the saved model, top-100 lists are
written for the first 10% of the users and for all of them, three ways:

- ``segue recommend`` (streamed): ``write_recommendations``, the CLI's path, which scores one batch
  (about 128 MiB of scores) at a time and writes each batch as it comes;
- ``Recs`` in memory: ``model.recommend`` for everyone, then write (the arrays of the answer
  are ``n x k`` and so grow with the users);
- the textbook dense route: ``X @ B`` for all users at once, then ``argpartition``.

Peak RSS is reported above the process's RSS after loading the model and scoring two users
once (BLAS thread buffers, lazy imports; the model and its training matrix are the same in
both runs), and as a ratio between the 10x and 1x runs.

    .venv/bin/python bench/scoring_memory.py [--users 100000] [--items 5000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

CHILD = r"""
import json, sys, time
sys.path.insert(0, {bench!r})
import _common as common
import numpy as np
from segue.serialization import load_model
from segue.cli.models import write_recommendations
from segue.data.readers.listens import read_targets

model_dir, users_file, out_file, way = sys.argv[1:5]
model = load_model(model_dir)
targets = read_targets(users_file)
model.recommend(targets[:2], 100)  # warm-up: BLAS thread buffers and lazy imports, once
common.reset_peak_rss()
base = common.rss_mib()
start = time.perf_counter()
if way == "streamed":
    write_recommendations(model, targets, 100, out_file)
elif way == "in-memory":
    recs = model.recommend(targets, 100)
    with open(out_file, "w") as fh:
        for user, items in recs.lists():
            fh.write(" ".join([str(user), *map(str, items)]) + "\n")
else:  # dense: all scores at once
    idx = model.users_.numbers(targets)
    scores = np.asarray(model.history_[idx] @ model.weights_)
    scores[model.history_[idx].nonzero()] = -np.inf
    top = np.argpartition(-scores, 100, axis=1)[:, :100]
    np.savetxt(out_file, top, fmt="%d")
seconds = time.perf_counter() - start
print(json.dumps({{"base": base, "peak": common.peak_rss_mib(), "seconds": seconds}}))
"""


def measure(model_dir: Path, users_file: Path, out_file: Path, way: str) -> dict:
    code = CHILD.format(bench=str(Path(__file__).resolve().parent))
    proc = subprocess.run(
        [sys.executable, "-c", code, str(model_dir), str(users_file), str(out_file), way],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"child failed ({way}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--ways", default="streamed,in-memory,dense")
    args = parser.parse_args()

    from segue import EASE, Interactions, save_model
    from segue.data.readers.listens import write_targets
    from segue.data.synthetic.listens import generate_listens

    print("# Recommend-for-all memory (bench/scoring_memory.py)\n")
    for line in common.environment_lines():
        print(f"- {line}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        df = generate_listens(args.users, args.items, seed=0)
        data = Interactions.from_frame(df, weight="count")
        model = EASE().fit(data)
        save_model(model, tmp / "model")
        print(
            f"- data: {data.n_users:,} users, {data.n_items:,} songs, {data.nnz:,} pairs; "
            f"EASE trained and saved in {time.perf_counter() - t0:.1f} s\n"
        )
        all_users = data.users.ids
        small = all_users[: len(all_users) // 10]
        write_targets(tmp / "small.txt", small)
        write_targets(tmp / "all.txt", all_users)
        rows = []
        for way in args.ways.split(","):
            a = measure(tmp / "model", tmp / "small.txt", tmp / "out.txt", way)
            b = measure(tmp / "model", tmp / "all.txt", tmp / "out.txt", way)
            extra_a, extra_b = a["peak"] - a["base"], b["peak"] - b["base"]
            rows.append(
                [
                    way,
                    f"{extra_a:.0f}",
                    f"{extra_b:.0f}",
                    f"{extra_b / max(extra_a, 1.0):.2f}x",
                    f"{len(small) / a['seconds']:,.0f}",
                    f"{len(all_users) / b['seconds']:,.0f}",
                ]
            )
            print(f"  {way}: done", file=sys.stderr)
        headers = [
            "route",
            f"peak extra MiB, {len(small):,} users",
            f"peak extra MiB, {len(all_users):,} users",
            "10x users / 1x",
            "users/s (1x)",
            "users/s (10x)",
        ]
        print(common.markdown_table(headers, rows))
        print(
            "\nPeak extra = peak RSS during recommendation minus RSS after loading the model "
            "(same model in every run)."
        )


if __name__ == "__main__":
    main()
