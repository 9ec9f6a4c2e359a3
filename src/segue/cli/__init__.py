"""The ``segue`` command-line interface (typer + rich)."""
