"""A refused allocation anywhere on the CLI path is one line on stderr and exit status 1."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import typer

from segue.cli._common import handle_errors


def _raise(exc: BaseException):
    def fail() -> None:
        raise exc

    return fail


@pytest.mark.parametrize(
    ("error", "starts"),
    [
        (lambda: np.empty(2**50, dtype=np.uint8), "error: out of memory after a peak of "),
        (_raise(pa.ArrowMemoryError("realloc of size 1073741824 failed")), "error: out of memory"),
        (_raise(pa.ArrowException("Unknown error: Wrapping x failed")), "error: Arrow failed"),
    ],
    ids=["numpy", "arrow-memory", "arrow-wrapping"],
)
def test_memory_errors_are_one_line(capsys: pytest.CaptureFixture[str], error, starts) -> None:
    @handle_errors
    def command() -> None:
        error()

    with pytest.raises(typer.Exit) as info:
        command()
    assert info.value.exit_code == 1
    err = capsys.readouterr().err
    assert err.startswith(starts) and err.count("\n") == 1, err
    assert "Traceback" not in err and "GiB" in err
    assert "use a smaller input or a machine with more memory" in err
