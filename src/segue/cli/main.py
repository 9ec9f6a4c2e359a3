"""The ``segue`` command: typer app with every subcommand registered."""

from __future__ import annotations

import typer

from segue import __version__
from segue.cli import data, demo, evaluate, models, playlists, serve, tune  # noqa: F401 (registers)

app = typer.Typer(
    name="segue",
    help="Music recommendation from implicit feedback: import, split, train, evaluate, recommend.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.add_typer(data.split_app, name="split")
app.add_typer(data.generate_app, name="generate")
app.add_typer(data.data_app, name="data")
models.register(app)
evaluate.register(app)
tune.register(app)
serve.register(app)
demo.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"segue {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True),
) -> None:
    """Music recommendation from implicit feedback."""


def main() -> None:
    """Console-script entry point: SIGTERM/SIGHUP unwind (temporaries removed), then exit."""
    from segue._atomic import signal_cleanup

    with signal_cleanup():
        app()
