"""Playlist-continuation commands: generate, import and split MPD and Melon data.

Also the training input of ``segue train --mpd/--melon`` and the submission writers behind
``segue recommend --challenge/--questions``.

``segue evaluate`` scores the files these write (see :mod:`segue.cli.evaluate`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from segue.cli._common import handle_errors, out, progress_bar, status
from segue.cli.data import data_app, generate_app, split_app
from segue.exceptions import ParameterError

MELON_N_SONGS = 100
MELON_N_TAGS = 10


# data ---------------------------------------------------------------------------------------
def _mpd_file_count(path: Path) -> int | None:
    from segue.data.readers.mpd import list_mpd_files

    try:
        files = list_mpd_files(path)
    except Exception:  # the reader raises the real error with its context a moment later
        return None
    slices = [f for f in files if f.name.startswith("mpd.slice.")]
    return 1000 * len(slices) if len(slices) == len(files) else None


def load_mpd_playlists(path: Path):
    """An imported playlists directory, or MPD slices / JSON Lines read with a progress bar."""
    from segue.data.playlists import is_playlists_dir, load_playlists
    from segue.data.readers.mpd import read_mpd

    if path.is_dir() and is_playlists_dir(path):
        with status(f"loading {path}"):
            return load_playlists(path)
    with progress_bar(f"reading {path.name}", _mpd_file_count(path), unit="playlists") as adv:
        return read_mpd(path, progress=adv)


def melon_file(path: Path, name: str) -> Path:
    """``path`` itself, or ``path/name`` when ``path`` is a Melon folder."""
    return path / name if path.is_dir() else path


@generate_app.command("mpd")
@handle_errors
def generate_mpd_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder of mpd.slice.*.json to write.")],
    playlists: Annotated[int, typer.Option(help="Number of playlists.")] = 10_000,
    tracks: Annotated[
        int | None,
        typer.Option(help="Track catalogue (default: 2.9M, giving the MPD's 2.26M at 1M)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    challenge: Annotated[
        int,
        typer.Option(help="Also write challenge_set.json (official: 10000) and its answers."),
    ] = 0,
) -> None:
    """Synthetic playlists in the official MPD slice format, streamed (titles follow content)."""
    import json

    from segue.data.synthetic.mpd import write_mpd

    with progress_bar(f"generating {playlists} playlists", playlists, unit="playlists") as adv:
        stats = write_mpd(out_dir, playlists, tracks, seed, challenge=challenge, progress=adv)
    out.print(json.dumps(stats.as_dict()), highlight=False)
    extra = f" and {stats.challenge_playlists} challenge playlists" if challenge else ""
    out.print(f"{playlists} playlists{extra} -> {out_dir}", highlight=False)


@generate_app.command("melon")
@handle_errors
def generate_melon_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the Melon files.")],
    playlists: Annotated[int, typer.Option(help="Playlists over train, val and test.")] = 2000,
    songs: Annotated[int, typer.Option(help="Songs in song_meta.json.")] = 5000,
    tags: Annotated[int, typer.Option(help="Size of the tag vocabulary.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Synthetic Kakao Arena Melon files: train/val/test.json, song_meta.json, genres."""
    from segue.data.synthetic.melon import generate_melon

    with status(f"generating {playlists} Melon playlists"):
        info = generate_melon(out_dir, n_playlists=playlists, n_songs=songs, n_tags=tags, seed=seed)
    out.print(
        f"{info['n_train']} train, {info['n_val']} val and {info['n_test']} test playlists "
        f"over {info['n_songs']} songs -> {out_dir}",
        highlight=False,
    )


@data_app.command("import-mpd")
@handle_errors
def import_mpd_cmd(
    source: Annotated[Path, typer.Argument(help="MPD slices folder, glob, or JSON Lines file.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Playlists directory (Parquet).")],
) -> None:
    """Stream MPD JSON into Parquet, one slice in memory at a time (the full MPD fits)."""
    from segue._atomic import check_output_dir
    from segue.data.playlists import load_playlists
    from segue.data.readers.mpd import import_mpd

    check_output_dir(out_dir, keep=[source])
    with progress_bar(f"importing {source.name}", _mpd_file_count(source), unit="playlists") as adv:
        import_mpd(source, out_dir, progress=adv)
    info = load_playlists(out_dir).describe()
    out.print(
        f"{info['playlists']} playlists, {info['entries']} entries, {info['tracks']} tracks "
        f"-> {out_dir}",
        highlight=False,
    )


@split_app.command("mpd")
@handle_errors
def split_mpd_cmd(
    source: Annotated[Path, typer.Argument(help="MPD slices folder, glob, or JSON Lines file.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for train/, challenge, answers.")],
    playlists: Annotated[int, typer.Option(help="Challenge playlists (10 categories).")] = 10_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    unseen: Annotated[
        str,
        typer.Option(
            help="avoid: only playlists whose tracks all stay in training (the official rule); "
            "drop: any playlist, hidden tracks no training playlist has are dropped (small data)."
        ),
    ] = "avoid",
) -> None:
    """Hold out a challenge set with the RecSys Challenge 2018's ten categories."""
    from segue.data.mpd_split import split_mpd

    if unseen not in ("avoid", "drop"):
        raise ParameterError(f"--unseen must be avoid or drop, got {unseen!r}")
    with progress_bar("splitting (two passes)", None, unit="playlists") as adv:
        info = split_mpd(
            source, out_dir, n_playlists=playlists, seed=seed, unseen=unseen, progress=adv
        )
    dropped = (
        f", {info['dropped_holdouts']} unseen hidden tracks dropped" if unseen == "drop" else ""
    )
    out.print(
        f"{info['challenge_playlists']} challenge playlists in {len(info['categories'])} "
        f"categories, {info['train_playlists']} training playlists{dropped} -> {out_dir}",
        highlight=False,
    )


@split_app.command("melon")
@handle_errors
def split_melon_cmd(
    train: Annotated[Path, typer.Argument(help="A complete Melon train.json (or its folder).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for train/questions/answers.")],
    fraction: Annotated[float, typer.Option(help="Share of playlists made questions.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Hide songs, tags and titles of some playlists, as the Melon questions do."""
    from segue.data.melon_split import split_melon

    info = split_melon(melon_file(train, "train.json"), out_dir, fraction=fraction, seed=seed)
    out.print(
        f"{info['n_questions']} questions, {info['n_train']} training playlists -> {out_dir}",
        highlight=False,
    )


# training and recommending -------------------------------------------------------------------
def playlist_training_data(mpd: Path | None, melon: Path | None, *, titles: bool = True):
    """The Interactions to fit: playlists x tracks (MPD) or x songs and tags (Melon).

    With ``titles``, title words are columns too, so title-only playlists are scored from them.
    The playlists travel with them (their order and metadata, for the models that read them).
    """
    from segue.inference.encode import playlist_interactions

    if mpd is not None:
        return playlist_interactions(load_mpd_playlists(mpd), with_titles=titles)
    from segue.data.readers.melon import read_melon

    if melon is None:
        raise ParameterError("give --mpd or --melon")
    with status(f"reading {melon}"):
        playlists = read_melon(melon_file(melon, "train.json"))
    return playlist_interactions(playlists, with_tags=True, with_titles=titles)


def load_densifier(content_dir: Path | None, size: int = 100, cold_slots: int = 0) -> Any:
    """The :class:`~segue.inference.densify.Densifier` of ``--densify DIR``, or None."""
    if content_dir is None:
        return None
    from segue.inference.densify import Densifier
    from segue.serialization import load

    content = load(content_dir)
    if not hasattr(content, "neighbours"):
        raise ParameterError(
            f"--densify {content_dir}: a {type(content).__name__} model has no content "
            "neighbours; train one with --model content-autoencoder"
        )
    return Densifier(content, size=size, cold_slots=cold_slots)


def _mpd_rows(
    model: Any, queries: Any, n: int, challenge: Path, densify: Any = None
) -> Iterator[tuple[int, list]]:
    """``(pid, tracks)`` per challenge playlist, batch by batch (never all lists at once).

    A playlist with fewer than ``n`` tracks stops the submission (its file is never written).
    """
    from segue.exceptions import DataFormatError
    from segue.inference.continuation import continue_playlists

    with progress_bar("continuing playlists", queries.n_playlists, unit="playlists") as adv:
        for batch in continue_playlists(model, queries, n, progress=adv, densify=densify):
            for pid, tracks in zip(batch.pids.tolist(), batch.tracks, strict=True):
                if len(tracks) < n:
                    raise DataFormatError(
                        f"pid {pid} got {len(tracks)} tracks, fewer than {n}: the model knows "
                        "too few tracks beyond its seeds for a submission of this length "
                        "(lower --n)",
                        path=challenge,
                    )
                yield pid, tracks


def write_mpd_continuations(
    model: Any,
    challenge: Path,
    n: int,
    out_file: Path,
    *,
    team_name: str,
    email: str,
    densify: Any = None,
) -> dict[str, int]:
    """Continue every challenge playlist and stream the official submission CSV.

    Lists are written as their batch is scored, so memory does not grow with the number of
    challenge playlists (bench/scale.py checks it); the file appears only when all are written.
    ``densify`` (a :class:`~segue.inference.densify.Densifier`) pads short queries first.
    """
    from segue.data.readers.mpd import read_challenge_set
    from segue.metrics.submission import write_mpd_submission

    queries = read_challenge_set(challenge)
    rows = _mpd_rows(model, queries, n, challenge, densify)
    write_mpd_submission(out_file, rows, team_name=team_name, email=email, n=n)
    empty = int((queries.lengths() == 0).sum())
    return {"playlists": queries.n_playlists, "cold": empty}


def write_melon_continuations(
    model: Any, questions: Path, out_file: Path, *, densify: Any = None, tags_from: str = "model"
) -> dict[str, int]:
    """Answer every Melon question with 100 songs and 10 tags, in the results format.

    ``densify`` pads short questions with content neighbours first; ``tags_from="songs"``
    takes the tags most attached to the recommended songs.
    """
    from segue.data.readers.melon import read_melon
    from segue.inference.continuation import continue_playlists
    from segue.metrics.submission import write_melon_results

    queries = read_melon(questions, song_meta=False)
    rows: list[dict[str, Any]] = []
    with progress_bar("answering questions", queries.n_playlists, unit="playlists") as adv:
        for batch in continue_playlists(
            model,
            queries,
            MELON_N_SONGS,
            n_tags=MELON_N_TAGS,
            progress=adv,
            densify=densify,
            tags_from=tags_from,  # type: ignore[arg-type]
        ):
            assert batch.tags is not None
            rows += [
                {"id": int(pid), "songs": [int(s) for s in songs], "tags": tags}
                for pid, songs, tags in zip(batch.pids, batch.tracks, batch.tags, strict=True)
            ]
    from segue.exceptions import DataFormatError, SegueError

    try:
        write_melon_results(out_file, rows)
    except SegueError as exc:  # a question the model cannot answer in full (no file named)
        if str(questions) in str(exc):
            raise
        raise DataFormatError(
            f"cannot answer every question: {exc} (the model knows too few songs or tags "
            "beyond what the question gives)",
            path=questions,
        ) from None
    return {"playlists": len(rows)}
