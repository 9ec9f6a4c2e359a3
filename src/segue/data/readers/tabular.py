"""CSV and Parquet interaction tables with named columns (``--user-col`` and friends).

Rules beyond the column names: ids are strings (CSV) or string or integer columns (Parquet: a
float, boolean, list, struct or other column is an error, since its text form would not match
the same id elsewhere: ``1.0`` is not ``1``); an id is non-empty, at most
:data:`~segue.data.readers._limits.MAX_ID_CHARS` (1,000) characters and holds no NUL
character; weights are positive numbers that float32 holds (at most about 3.4e38). Errors
name the file and the line (CSV, the header is line 1) or row (Parquet, 0-based): also for text
that is not UTF-8 and for a record whose field count differs from the header's. A UTF-8 byte
order mark before the header is skipped, and fields of any length are read.
"""

from __future__ import annotations

import contextlib
import csv
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from segue.data.interactions import Agg, Interactions
from segue.data.readers._limits import MAX_ID_CHARS
from segue.exceptions import DataFormatError

__all__ = ["TABLE_SUFFIXES", "read_table_interactions"]

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_BIG_BLOCK = 1 << 30  # Arrow block for a CSV with a row over the default 1 MiB block


@contextlib.contextmanager
def _any_field_size() -> Iterator[None]:
    """Let the ``csv`` module read fields of any length (its default stops at 131,072)."""
    old = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _delimiter(path: Path, kind: str | None) -> str:
    """Tab for ``kind="tsv"`` or a ``.tsv`` file (when no kind is given), else comma."""
    return "\t" if (kind or path.suffix.lower().lstrip(".")) == "tsv" else ","


def _read_table(path: Path, columns: list[str], kind: str | None = None) -> pa.Table:
    delimiter = _delimiter(path, kind)
    kind = "csv" if kind == "tsv" else kind or TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataFormatError(
            f"unknown table format {path.suffix!r}; expected one of {sorted(TABLE_SUFFIXES)}",
            path=path,
        )
    try:
        if kind == "parquet":
            schema = pq.read_schema(path)
            _check_columns(path, columns, schema.names)
            _check_parquet_types(path, columns, schema)
            return pq.read_table(path, columns=columns)
        parse = pacsv.ParseOptions(delimiter=delimiter)
        convert = pacsv.ConvertOptions(
            include_columns=columns,
            column_types={c: pa.string() for c in columns[:2]},
            strings_can_be_null=False,
        )
        try:
            with pacsv.open_csv(path, parse_options=parse) as head:
                _check_columns(path, columns, head.schema.names)
            return pacsv.read_csv(path, parse_options=parse, convert_options=convert)
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc):
                raise
            # a row longer than Arrow's 1 MiB block: read again with blocks that hold it
            read = pacsv.ReadOptions(block_size=_BIG_BLOCK)
            with pacsv.open_csv(path, read_options=read, parse_options=parse) as head:
                _check_columns(path, columns, head.schema.names)
            return pacsv.read_csv(
                path, read_options=read, parse_options=parse, convert_options=convert
            )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if kind == "csv":
            found = _first_bad_csv_line(path, delimiter)
            if found is not None:
                raise DataFormatError(found[1], path=path, line=found[0]) from None
        raise DataFormatError(_one_line(exc), path=path) from None
    except (OSError, pa.ArrowException) as exc:  # a corrupt Parquet file, among others
        raise DataFormatError(f"cannot read: {_one_line(exc)}", path=path) from None


def _shown(value: object) -> str:
    """A value for a one-line message: quoted, control characters escaped, cut at 40."""
    text = str(value)
    if len(text) > 40:
        text = text[:37] + "..."
    if text.isprintable():
        return f"'{text}'"
    return repr(text)


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line (Arrow's run over several)."""
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or repr(exc)


def _id_type_ok(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)


def _weight_type_ok(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
    )


def _check_parquet_types(path: Path, columns: list[str], schema: pa.Schema) -> None:
    """Id columns must hold strings or integers, the weight column numbers (or number text)."""
    for position, name in enumerate(columns):
        kind = schema.field(name).type
        if position < 2 and not _id_type_ok(kind):
            raise DataFormatError(
                f"column {name!r} holds {kind} values: ids must be strings or integers "
                "(a float or list column would be read as text that matches no other id)",
                path=path,
            )
        if position == 2 and not _weight_type_ok(kind):
            raise DataFormatError(
                f"column {name!r} holds {kind} values: weights must be numbers", path=path
            )


def _first_bad_csv_line(path: Path, delimiter: str) -> tuple[int, str] | None:
    """The first line that is not UTF-8, else the first ragged record (see below)."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                return number, f"not valid UTF-8 ({exc.reason} at byte {exc.start})"
    return _first_ragged_line(path, delimiter)


def _first_ragged_line(path: Path, delimiter: str) -> tuple[int, str] | None:
    """Slow exact scan for the first CSV record whose field count differs from the header's."""
    with (
        _any_field_size(),
        open(path, newline="", encoding="utf-8-sig", errors="replace") as fh,
    ):
        reader = csv.reader(fh, delimiter=delimiter)
        width = None
        for record in reader:
            if width is None:
                width = len(record)
            elif record and len(record) != width:
                return reader.line_num, f"expected {width} fields, found {len(record)}"
    return None


def _csv_line_of_row(path: Path, delimiter: str, row: int) -> int:
    """1-based line of data row ``row`` (0-based), counting blank lines as Arrow skips them."""
    with (
        _any_field_size(),
        open(path, newline="", encoding="utf-8-sig", errors="replace") as fh,
    ):
        reader = csv.reader(fh, delimiter=delimiter)
        seen = -1  # the header is record -1
        for record in reader:
            if not record:
                continue
            if seen == row:
                return reader.line_num
            seen += 1
    return row + 2


def _check_columns(path: Path, wanted: list[str], have: list[str]) -> None:
    missing = [c for c in wanted if c not in have]
    if missing:
        raise DataFormatError(f"missing column(s) {missing}; the file has {have}", path=path)


def read_table_interactions(
    path: str | os.PathLike[str],
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    weight_col: str | None = None,
    agg: Agg = "sum",
    kind: str | None = None,
) -> Interactions:
    """Read a CSV/TSV/Parquet table of interactions into :class:`Interactions`.

    ``kind`` ("csv", "tsv" or "parquet") overrides the guess from the file suffix.

    Without ``weight_col`` every row counts 1 (duplicates summed into a count). With it, the
    weights must be positive finite numbers that float32 holds; a bad value is reported with
    its line (CSV: the header is line 1) or row (Parquet, 0-based). The module docstring has
    the rules for ids.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError("no such file", path=path)
    columns = [user_col, item_col] + ([weight_col] if weight_col else [])
    table = _read_table(path, columns, kind)
    if table.num_rows == 0:
        raise DataFormatError("the file is empty: no interactions", path=path)
    is_csv = (kind or TABLE_SUFFIXES[path.suffix.lower()]) in ("csv", "tsv")

    def where(row: int) -> dict[str, object]:
        if not is_csv:
            return {"path": path}
        return {"path": path, "line": _csv_line_of_row(path, _delimiter(path, kind), row)}

    def row_note(row: int) -> str:
        return "" if is_csv else f"row {row}: "

    ids = {}
    for col in columns[:2]:
        column = table.column(col)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            too_long = pc.greater(pc.utf8_length(column), MAX_ID_CHARS)
            has_nul = pc.match_substring(column, "\x00")
            flags = pc.fill_null(pc.or_(too_long, has_nul), False).to_numpy(zero_copy_only=False)
            if flags.any():
                row = int(np.flatnonzero(flags)[0])
                value = column[row].as_py()
                shown = repr(value[:30] + "..." if len(value) > 30 else value)
                reason = (
                    f"{len(value):,} characters (at most {MAX_ID_CHARS:,})"
                    if len(value) > MAX_ID_CHARS
                    else "a NUL character"
                )
                raise DataFormatError(f"{row_note(row)}{col!r} {shown} has {reason}", **where(row))
        values = column.to_pandas().astype(object)
        bad = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataFormatError(f"{row_note(row)}empty {col!r}", **where(row))
        ids[col] = values.astype(str).to_numpy(dtype=object)
    weights = None
    if weight_col:
        raw = table.column(weight_col).to_pandas()
        num = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(num) | (num <= 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataFormatError(
                f"{row_note(row)}{weight_col!r} value {_shown(raw.iloc[row])} "
                "is not a positive number",
                **where(row),
            )
        huge = num > _FLOAT32_MAX
        if huge.any():
            row = int(np.flatnonzero(huge)[0])
            raise DataFormatError(
                f"{row_note(row)}{weight_col!r} value {_shown(raw.iloc[row])} is too large "
                f"(weights are float32: at most {_FLOAT32_MAX:.4g})",
                **where(row),
            )
        weights = num
    with np.errstate(over="ignore"):  # a sum past float32 is reported just below
        inter = Interactions.from_arrays(ids[user_col], ids[item_col], weights, agg=agg)
    if weights is not None and not np.isfinite(inter.matrix.data).all():
        raise DataFormatError(
            f"the {weight_col!r} values of one (user, item) pair sum to more than float32 holds "
            f"({_FLOAT32_MAX:.4g})",
            path=path,
        )
    return inter
