"""``segue demo``: both tasks end to end on generated data, ending in results tables.

Listen counts: generate -> split -> train -> recommend -> evaluate (NDCG, recall, ...).
Playlists: generate MPD slices -> challenge split with the ten categories -> train ->
submission CSV -> the challenge's metrics per category, with a PNG plot.
"""

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
    from segue.data.readers.listens import read_listens, write_listens
    from segue.data.split import split_listens, write_listen_split
    from segue.data.synthetic.listens import generate_listens
    from segue.metrics.evaluate import evaluate_files

    raw = workdir / "listen_count.txt"
    write_listens(raw, generate_listens(users, items, seed=seed))
    split = split_listens(read_listens(raw), seed=seed)
    vdir = write_listen_split(split, workdir / "validation")
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


def run_playlist_demo(
    workdir: Path, *, playlists: int, tracks: int, seed: int, models: list[str]
) -> tuple[dict[str, dict[str, float]], list[Path]]:
    """MPD-format playlists: split, train, write submissions, score them per category."""
    from segue.cli.playlists import playlist_training_data, write_mpd_continuations
    from segue.data.mpd_split import split_mpd
    from segue.data.synthetic.mpd import generate_mpd
    from segue.metrics.playlist_eval import evaluate_mpd
    from segue.models.registry import model_class
    from segue.serialization import save_model

    generate_mpd(workdir / "mpd", n_playlists=playlists, n_tracks=tracks, seed=seed)
    vdir = workdir / "mpd-validation"
    split_mpd(workdir / "mpd", vdir, n_playlists=playlists // 6 // 10 * 10, seed=seed)
    train = playlist_training_data(vdir / "train", None)
    submissions, fit_s = {}, {}
    for name in models:
        model = model_class(name)().fit(train)
        fit_s[name] = float(model.fit_seconds_)
        save_model(model, workdir / "mpd-models" / name)
        path = workdir / "submissions" / f"{name}.csv"
        write_mpd_continuations(
            model,
            vdir / "challenge_set.json",
            500,
            path,
            team_name="segue-demo",
            email="demo@example.org",
        )
        submissions[name] = path
    result = evaluate_mpd(submissions, vdir / "answers.json")
    plots = result.plot(workdir / "submissions" / "mpd")
    summary = {name: {**result.summary[name], "fit_s": fit_s[name]} for name in models}
    return summary, plots


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
        playlists: Annotated[int, typer.Option(help="Synthetic playlists (MPD format).")] = 6000,
        tracks: Annotated[int, typer.Option(help="Synthetic track catalogue.")] = 8000,
    ) -> None:
        """Both tasks on generated data: listens and playlist continuation, every model."""
        from segue.cli.evaluate import metrics_table

        out.print(
            f"segue demo: {users} synthetic users x {items} songs, 20% of eligible users are "
            f"targets with half their songs hidden; files in {workdir}/",
            highlight=False,
        )
        models = ["popularity", "ease", "wrmf", "itemknn", "userknn"]
        results = run_demo(workdir, users=users, items=items, seed=seed, models=models)
        out.print(metrics_table(results, title="Held-out listens, top-100 per target user"))
        base = results["popularity"]["ndcg@100"]
        best = max(models, key=lambda m: results[m]["ndcg@100"])
        out.print(
            f"Best: {best}, NDCG@100 {results[best]['ndcg@100'] / base:.2f}x popularity's.",
            highlight=False,
        )
        out.print(
            f"\nPlaylist continuation: {playlists} synthetic playlists in the MPD format, a "
            "challenge split with the RecSys Challenge 2018's ten categories, 500 tracks each",
            highlight=False,
        )
        summary, plots = run_playlist_demo(
            workdir, playlists=playlists, tracks=tracks, seed=seed, models=models
        )
        out.print(metrics_table(summary, title="Challenge metrics (clicks: lower is better)"))
        for path in plots:
            out.print(f"per-bucket plot -> {path}", highlight=False)
