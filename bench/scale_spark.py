"""The Spark rows of bench/scale.py: the same challenge path with ``--engine spark``.

``spark_steps(models, master)`` returns :class:`scale.Step` rows that train on the generated
slices directly (``spark.read.json``: Spark needs no import step), recommend the challenge set
on Spark and note the NDCG of the submission. The peak memory of a Spark step is the largest
*sum* of resident memory over the whole process tree (the Python driver, its JVM and the Python
workers), sampled every 0.2 s by this file's ``--tree-rss`` wrapper, since one process's
``ru_maxrss`` (what scale.py records for a child) would show only the JVM.

    .venv/bin/python bench/scale.py --sizes 10000,100000 --engines spark --models wrmf,itemknn
    .venv/bin/python bench/scale_spark.py --tree-rss OUT.json -- segue ...   # (used by steps)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

MASTER = "local[2]"
SPARK_MODELS = ("wrmf", "itemknn")
HERE = Path(__file__).resolve()


def _tree_rss_kib(root: int) -> int:
    """Sum of VmRSS (KiB) over ``root`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            ppid = int(fields[1])
            with open(f"/proc/{entry}/statm") as fh:
                pages = int(fh.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
        rss[int(entry)] = pages * (os.sysconf("SC_PAGE_SIZE") // 1024)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total


def tree_rss_main(out: Path, argv: list[str]) -> int:
    """Run ``argv``; write its process tree's peak summed RSS (GiB) to ``out``."""
    child = subprocess.Popen(argv)
    peak = 0
    while child.poll() is None:
        peak = max(peak, _tree_rss_kib(child.pid))
        time.sleep(0.2)
    out.write_text(json.dumps({"tree_peak_gib": peak / 2**20, "returncode": child.returncode}))
    return child.returncode


def _wrapped(d: Path, name: str, argv: list[str]) -> list[str]:
    return [
        sys.executable,
        str(HERE),
        "--tree-rss",
        str(d / "logs" / f"{name}.rss.json"),
        "--",
        *argv,
    ]


def _tree_note(d: Path, name: str, extra: str = "") -> str:
    path = d / "logs" / f"{name}.rss.json"
    peak = json.loads(path.read_text())["tree_peak_gib"] if path.exists() else float("nan")
    return f"process tree peak {peak:.2f} GiB" + (f"; {extra}" if extra else "")


def spark_steps(models: list[str], master: str = MASTER) -> list:
    """Train (on the slices) and recommend the challenge set on Spark, per model."""
    import scale  # the sibling bench script: Step, SEGUE and the NDCG note

    engine = f"spark {master}"
    steps = []
    for model in [m for m in models if scale.model_spec(m)[0] in SPARK_MODELS]:
        base, params = scale.model_spec(model)  # a spec: wrmf@factors=64 (see scale.py)
        train_name, rec_name = f"spark-train-{model}", f"spark-recommend-{model}"
        steps.append(
            scale.Step(
                f"spark train {model}",
                lambda d, m=model, b=base, p=params, n=train_name: _wrapped(
                    d,
                    n,
                    [
                        *scale.SEGUE,
                        "train",
                        "--engine",
                        "spark",
                        "--spark-master",
                        master,
                        "--mpd",
                        str(d / "mpd"),
                        "--model",
                        b,
                        "--out",
                        str(d / "models" / f"spark-{m}"),
                        *p,
                    ],
                ),  # fmt: skip
                needs=("generate",),
                engine=engine,
                after=lambda d, n=train_name: _tree_note(d, n),
            )
        )
        steps.append(
            scale.Step(
                f"spark recommend {model}",
                lambda d, m=model, n=rec_name: _wrapped(
                    d,
                    n,
                    [
                        *scale.SEGUE,
                        "recommend",
                        str(d / "models" / f"spark-{m}"),
                        "--engine",
                        "spark",
                        "--spark-master",
                        master,
                        "--challenge",
                        str(d / "mpd" / "challenge_set.json"),
                        "--out",
                        str(d / f"sub-spark-{m}.csv"),
                    ],
                ),  # fmt: skip
                needs=(f"spark train {model}",),
                engine=engine,
                after=lambda d, m=model, n=rec_name: _tree_note(
                    d, n, scale._ndcg(d / f"sub-spark-{m}.csv", d / "mpd" / "answers.json")
                ),
            )
        )
    return steps


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--tree-rss" and "--" in sys.argv:
        cut = sys.argv.index("--")
        sys.exit(tree_rss_main(Path(sys.argv[2]), sys.argv[cut + 1 :]))
    sys.exit("usage: scale_spark.py --tree-rss OUT.json -- COMMAND... (see the docstring)")
