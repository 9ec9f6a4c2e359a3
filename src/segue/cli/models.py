"""``segue train`` and ``segue recommend``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from segue.cli._common import (
    FormatOption,
    ItemColOption,
    UserColOption,
    WeightColOption,
    console,
    handle_errors,
    load_interactions_arg,
    out,
    parse_params,
    progress_bar,
    refuse_input_as_output,
    status,
)
from segue.cli._spark import EngineOption, SparkMasterOption, use_spark
from segue.data.interactions import Interactions
from segue.exceptions import DataFormatError, ParameterError
from segue.models.base import BaseRecommender
from segue.models.registry import model_class, model_names

ModelName = typer.Option(
    help=f"Model to train: {', '.join(model_names())} (two-stage: playlists or listens)."
)


def train_model(
    listens: Path | Interactions,
    model: str,
    params: dict,
    out_dir: Path,
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    weight_col: str | None = None,
    fmt: str = "auto",
) -> float:
    """Fit ``model`` on ``listens`` (a path or loaded data), save it; returns the fit seconds."""
    from segue.serialization import save_model

    if isinstance(listens, Interactions):
        data = listens
    else:
        data = load_interactions_arg(
            listens, user_col=user_col, item_col=item_col, weight_col=weight_col, fmt=fmt
        )
    from segue.nn.training import report_epochs

    estimator = model_class(model)().set_params(**params).validate_params()
    # neural models print a line per epoch (loss, validation NDCG) above the spinner
    with status(f"fitting {estimator!r} on {data!r}"), report_epochs(_print_epoch):
        estimator.fit(data)
    save_model(estimator, out_dir)
    return float(estimator.fit_seconds_)


def _print_epoch(epoch: object) -> None:
    console.print(f"  {epoch}", highlight=False)


def recommend_to_file(
    model_dir: Path,
    users_file: Path,
    n: int,
    out_file: Path,
    *,
    unknown: str = "fallback",
    history: Path | None = None,
) -> dict[str, int]:
    """Write ``uid sid_1 ... sid_n`` lines for every target user; returns counts for the log."""
    from segue.data.readers.listens import read_listen_interactions, read_targets
    from segue.serialization import load

    if n < 1:
        raise ParameterError(f"--n must be at least 1, got {n}")
    model = load(model_dir)
    targets = read_targets(users_file)
    hist = read_listen_interactions(history) if history is not None else None
    return write_recommendations(model, targets, n, out_file, unknown=unknown, history=hist)


def write_recommendations(
    model: BaseRecommender,
    targets: np.ndarray,
    n: int,
    out_file: Path,
    *,
    unknown: str = "fallback",
    history: Interactions | None = None,
) -> dict[str, int]:
    """Stream ``uid sid_1 ... sid_n`` lines, one scoring batch at a time, to ``out_file``.

    Memory stays at one batch of scores whatever the number of users (bench/scoring_memory.py).
    """
    from segue._atomic import atomic_open

    no_history = model.users_.numbers(targets, missing="negative") < 0
    if history is not None:
        no_history &= history.users.numbers(targets, missing="negative") < 0
    unknown_users = int(no_history.sum())
    written = short = 0
    with (
        progress_bar("recommending", len(targets), unit="users") as advance,
        atomic_open(out_file) as fh,
    ):
        for recs in model.iter_recommend(targets, n, history=history, unknown=unknown):
            fh.writelines(
                " ".join([str(user), *map(str, items)]) + "\n" for user, items in recs.lists()
            )
            written += len(recs.users)
            short += int(((recs.items >= 0).sum(axis=1) < n).sum())
            advance(len(recs.users))
    return {"users": written, "unknown": unknown_users, "short_lists": short}


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``recommend`` to the main app."""

    @app.command("train")
    @handle_errors
    def train_cmd(
        model: Annotated[str, ModelName],
        out_dir: Annotated[Path, typer.Option("--out", help="Model directory to write.")],
        listens: Annotated[
            Path | None,
            typer.Option(help="Training input: listen_count.txt, CSV/TSV, Parquet or dataset dir."),
        ] = None,
        mpd: Annotated[
            Path | None,
            typer.Option(help="Playlists to train on: MPD slices, JSON Lines or imported dir."),
        ] = None,
        melon: Annotated[
            Path | None,
            typer.Option(help="Melon train.json (or its folder); tags become items too."),
        ] = None,
        titles: Annotated[
            bool,
            typer.Option(help="Playlists: title words become items (title-only cold start)."),
        ] = True,
        config: Annotated[
            Path | None,
            typer.Option(help="TOML or JSON file of the model's parameters (--param wins)."),
        ] = None,
        param: Annotated[
            list[str] | None, typer.Option("--param", help="Hyper-parameter NAME=VALUE (repeat).")
        ] = None,
        params_file: Annotated[
            Path | None, typer.Option(help="JSON object of hyper-parameters (--param wins).")
        ] = None,
        fmt: Annotated[str, FormatOption] = "auto",
        user_col: Annotated[str, UserColOption] = "user_id",
        item_col: Annotated[str, ItemColOption] = "item_id",
        weight_col: Annotated[str | None, WeightColOption] = None,
        engine: Annotated[str, EngineOption] = "local",
        spark_master: Annotated[str, SparkMasterOption] = "local[*]",
    ) -> None:
        """Fit a model and save it as a directory (manifest.json + arrays.npz)."""
        params: dict = {}
        for source, syntax in ((config, "auto"), (params_file, "json")):
            if source is None:
                continue
            from segue.config import read_config

            found = read_config(source, fmt=syntax)
            tuned_for = found.pop("model", model)  # files written by `segue tune` name it
            if tuned_for != model:
                raise DataFormatError(
                    f"parameters are for model {tuned_for!r}, not {model!r}", path=source
                )
            params.update(found)
        params.update(parse_params(param))
        inputs = [x for x in (listens, mpd, melon) if x is not None]
        if len(inputs) != 1:
            raise ParameterError("give exactly one of --listens, --mpd or --melon")
        from segue._atomic import check_output_dir

        check_output_dir(out_dir, keep=[*inputs, config, params_file])  # before the fit
        if use_spark(engine):
            from segue.spark.engine import train_spark

            if melon is not None:
                raise ParameterError("--engine spark trains on --listens or --mpd")
            seconds = train_spark(
                model,
                params,
                out_dir,
                listens=listens,
                mpd=mpd,
                master=spark_master,
                user_col=user_col,
                item_col=item_col,
                weight_col=weight_col,
                titles=titles,
            )
            out.print(f"trained {model} on Spark in {seconds:.2f} s -> {out_dir}", highlight=False)
            return
        cls = model_class(model)
        if listens is not None and cls.needs_playlists and not getattr(cls, "fits_listens", False):
            raise ParameterError(f"--model {model} trains on playlists: give --mpd or --melon")
        if listens is None:
            from segue.cli.playlists import playlist_training_data

            data: Path | Interactions = playlist_training_data(mpd, melon, titles=titles)
        else:
            data = listens
        seconds = train_model(
            data,
            model,
            params,
            out_dir,
            user_col=user_col,
            item_col=item_col,
            weight_col=weight_col,
            fmt=fmt,
        )
        out.print(f"trained {model} in {seconds:.2f} s -> {out_dir}", highlight=False)

    @app.command("recommend")
    @handle_errors
    def recommend_cmd(
        model_dir: Annotated[Path, typer.Argument(help="Directory written by segue train.")],
        out_file: Annotated[Path, typer.Option("--out", help="Recommendations file to write.")],
        users: Annotated[Path | None, typer.Option(help="File of target user ids.")] = None,
        challenge: Annotated[
            Path | None,
            typer.Option(help="MPD challenge_set.json: write the submission CSV."),
        ] = None,
        questions: Annotated[
            Path | None,
            typer.Option(help="Melon questions (val.json style): write results.json."),
        ] = None,
        n: Annotated[
            int | None, typer.Option(help="Songs per list (100; 500 for --challenge).")
        ] = None,
        team_name: Annotated[str, typer.Option(help="MPD submission team name.")] = "segue",
        email: Annotated[
            str, typer.Option(help="MPD submission contact e-mail.")
        ] = "segue@example.org",
        unknown: Annotated[
            str,
            typer.Option(help="Users with no history: fallback (popular songs), skip or raise."),
        ] = "fallback",
        history: Annotated[
            Path | None,
            typer.Option(help="Newer listens (uid sid count) to score from instead of training."),
        ] = None,
        densify: Annotated[
            Path | None,
            typer.Option(
                help="A content-autoencoder model dir: pad short playlists with their songs' "
                "content neighbours before scoring (--challenge/--questions)."
            ),
        ] = None,
        densify_size: Annotated[
            int, typer.Option(help="--densify: songs a padded query holds at most.")
        ] = 100,
        densify_cold: Annotated[
            int,
            typer.Option(help="--densify: last places given to neighbours the model lacks."),
        ] = 0,
        tags_from: Annotated[
            str,
            typer.Option(help="Melon tags: model (its tag scores) or songs (tags of the songs)."),
        ] = "model",
        engine: Annotated[str, EngineOption] = "local",
        spark_master: Annotated[str, SparkMasterOption] = "local[*]",
    ) -> None:
        """Write recommendations: one line per user, a challenge submission, or Melon results.

        With --users: ``uid sid_1 ... sid_n`` lines. With --challenge: the MPD submission CSV
        (team_info line, then pid and 500 track URIs). With --questions: Melon results.json
        (100 songs, 10 tags each). Seeds are folded in and never returned; a playlist with no
        known seed gets the most popular tracks.
        """
        given = [x for x in (users, challenge, questions) if x is not None]
        if len(given) != 1:
            raise ParameterError("give exactly one of --users, --challenge or --questions")
        refuse_input_as_output(out_file, model_dir, *given, history, densify)
        if use_spark(engine):
            if questions is not None or history is not None or densify is not None:
                raise ParameterError("--engine spark takes --users or --challenge only")
            from segue.spark.engine import recommend_spark

            done = recommend_spark(
                model_dir,
                out_file,
                users=users,
                challenge=challenge,
                n=n or (500 if challenge is not None else 100),
                unknown=unknown,
                team_name=team_name,
                email=email,
                master=spark_master,
            )
            what = "playlists" if challenge is not None else "users"
            out.print(f"{done[what]} {what} -> {out_file} (Spark)", highlight=False)
            return
        if tags_from not in ("model", "songs"):
            raise ParameterError(f"--tags-from must be model or songs, got {tags_from!r}")
        if challenge is not None or questions is not None:
            from segue.cli.playlists import (
                load_densifier,
                write_melon_continuations,
                write_mpd_continuations,
            )
            from segue.serialization import load

            model = load(model_dir)
            dens = load_densifier(densify, densify_size, densify_cold)
            if challenge is not None:
                done = write_mpd_continuations(
                    model,
                    challenge,
                    n or 500,
                    out_file,
                    team_name=team_name,
                    email=email,
                    densify=dens,
                )
                note = f" ({done['cold']} with no seed tracks: cold start)" if done["cold"] else ""
            else:
                if n not in (None, 100):
                    raise ParameterError("Melon results have exactly 100 songs: drop --n")
                done = write_melon_continuations(
                    model, questions, out_file, densify=dens, tags_from=tags_from
                )
                note = ""
            out.print(f"{done['playlists']} playlists -> {out_file}{note}", highlight=False)
            return
        if densify is not None or tags_from != "model":
            raise ParameterError(
                "--densify and --tags-from continue playlists: give --challenge or --questions"
            )
        n = 100 if n is None else n
        counts = recommend_to_file(model_dir, users, n, out_file, unknown=unknown, history=history)
        note = ""
        if counts["unknown"]:
            how = "left out" if unknown == "skip" else "given the cold-start list"
            note = f"; {counts['unknown']} users with no history {how}"
        if counts["short_lists"]:
            note += f"; {counts['short_lists']} lists shorter than {n} (catalogue exhausted)"
        out.print(f"{counts['users']} users -> {out_file}{note}", highlight=False)
