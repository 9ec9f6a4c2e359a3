"""CSV and Parquet interaction tables with named columns (``--user-col`` and friends)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from segue.data.interactions import Agg, Interactions
from segue.exceptions import DataFormatError

__all__ = ["TABLE_SUFFIXES", "read_table_interactions"]

TABLE_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}


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
            return pq.read_table(path, columns=columns)
        with pacsv.open_csv(path, parse_options=pacsv.ParseOptions(delimiter=delimiter)) as head:
            _check_columns(path, columns, head.schema.names)
        return pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                include_columns=columns,
                column_types={c: pa.string() for c in columns[:2]},
                strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        if kind == "csv":
            found = _first_ragged_line(path, delimiter)
            if found is not None:
                raise DataFormatError(found[1], path=path, line=found[0]) from None
        raise DataFormatError(str(exc).splitlines()[0], path=path) from None
    except OSError as exc:
        raise DataFormatError(f"cannot read: {exc}", path=path) from None


def _first_ragged_line(path: Path, delimiter: str) -> tuple[int, str] | None:
    """Slow exact scan for the first CSV record whose field count differs from the header's."""
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
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
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
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
    weights must be positive finite numbers; a bad value is reported with its line (CSV: the
    header is line 1) or row (Parquet, 0-based).
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
        values = table.column(col).to_pandas().astype(object)
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
                f"{row_note(row)}{weight_col!r} value '{raw.iloc[row]}' is not a positive number",
                **where(row),
            )
        weights = num
    return Interactions.from_arrays(ids[user_col], ids[item_col], weights, agg=agg)
