"""``segue demo``: the whole listen-count path on generated data, ending in a results table."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from segue.cli._common import handle_errors, out


def run_demo(
    workdir: Path,
    *,
    users: int,
    items: int,
    seed: int,
    models: list[str],
    k: int = 100,
) -> dict[str, dict[str, float]]:
    """Generate -> split -> train -> recommend -> evaluate, through the CLI's own functions."""
    from segue.cli.models import recommend_to_file, train_model
    from segue.data.readers.listens import read_listens, write_listens, write_targets
    from segue.data.split import split_listens
    from segue.data.synthetic import generate_listens
    from segue.metrics.evaluate import evaluate_files

    raw = workdir / "listen_count.txt"
    write_listens(raw, generate_listens(users, items, seed=seed))
    split = split_listens(read_listens(raw), seed=seed)
    vdir = workdir / "validation"
    write_listens(vdir / "listen_count.txt", split.listens)
    write_targets(vdir / "target_users.txt", split.targets)
    write_listens(vdir / "answers.txt", split.answers)
    results: dict[str, dict[str, float]] = {}
    for name in models:
        fit_s = train_model(vdir / "listen_count.txt", name, {}, workdir / "models" / name)
        start = time.perf_counter()
        recs_file = workdir / "recs" / f"{name}.txt"
        recommend_to_file(workdir / "models" / name, vdir / "target_users.txt", k, recs_file)
        rec_s = time.perf_counter() - start
        ev = evaluate_files(
            recs_file, vdir / "answers.txt", [10, k], listens_path=vdir / "listen_count.txt"
        )
        keep = [f"ndcg@{k}", f"recall@{k}", f"map@{k}", "ndcg@10", "hit_rate@10", f"coverage@{k}"]
        results[name] = {m: ev.summary[m] for m in keep} | {"fit_s": fit_s, "recommend_s": rec_s}
    return results


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the main app."""

    @app.command("demo")
    @handle_errors
    def demo_cmd(
        workdir: Annotated[Path, typer.Option("--out", help="Where the files go.")] = Path(
            "demo-out"
        ),
        users: Annotated[int, typer.Option(help="Synthetic users.")] = 3000,
        items: Annotated[int, typer.Option(help="Synthetic songs.")] = 5000,
        seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    ) -> None:
        """Generate listens, split them, train popularity and EASE, evaluate, print the table."""
        from segue.cli.evaluate import metrics_table

        out.print(
            f"segue demo: {users} synthetic users x {items} songs, 20% of eligible users are "
            f"targets with half their songs hidden; files in {workdir}/",
            highlight=False,
        )
        results = run_demo(
            workdir, users=users, items=items, seed=seed, models=["popularity", "ease"]
        )
        out.print(metrics_table(results, title="Held-out listens, top-100 per target user"))
        base, best = results["popularity"]["ndcg@100"], results["ease"]["ndcg@100"]
        out.print(f"EASE NDCG@100 is {best / base:.2f}x popularity's.", highlight=False)
