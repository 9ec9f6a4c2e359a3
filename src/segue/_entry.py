"""The ``segue`` console script: the CLI, or the extra to install when it is missing."""

from __future__ import annotations

import sys


def main() -> None:
    """Run the CLI; without its optional dependencies, say which extra installs them."""
    try:
        from segue.cli.main import main as cli_main
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        sys.stderr.write(
            f"error: segue's command line needs the package {missing}; install it with "
            "pip install 'segue[cli]' (or 'segue[all]')\n"
        )
        raise SystemExit(1) from None
    cli_main()
