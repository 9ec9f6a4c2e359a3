"""Save and load :class:`Interactions` as a directory: ``schema.json`` plus Parquet files.

Layout (format version 1)::

    DIR/schema.json              {"format": "segue.interactions", "version": 1, counts...}
    DIR/users.parquet            column ``id``: external user ids in index order
    DIR/items.parquet            column ``id``: external item ids in index order
    DIR/interactions.parquet     ``user_idx`` int32, ``item_idx`` int32, ``weight`` float32 (zstd)

Index order is stored, so a dataset reloads with exactly the indices it was saved with.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from segue._atomic import atomic_dir
from segue.data.interactions import Interactions, canonical_csr
from segue.data.vocab import IdMap
from segue.exceptions import DataFormatError

__all__ = ["is_dataset_dir", "load_interactions", "save_interactions"]

FORMAT = "segue.interactions"
VERSION = 1


def save_interactions(data: Interactions, path: str | os.PathLike[str]) -> Path:
    """Write ``data`` to the directory ``path``, atomically.

    An existing ``path`` is replaced only when it is empty or a segue output (a dataset or model
    directory, a split); anything else raises :class:`segue._atomic.OutputError` untouched.
    """
    path = Path(path)
    coo = data.matrix.tocoo()
    with atomic_dir(path, kind="dataset") as tmp:
        pq.write_table(
            pa.table({"id": pa.array(data.users.ids, pa.string())}), tmp / "users.parquet"
        )
        pq.write_table(
            pa.table({"id": pa.array(data.items.ids, pa.string())}), tmp / "items.parquet"
        )
        table = pa.table(
            {
                "user_idx": coo.row.astype(np.int32),
                "item_idx": coo.col.astype(np.int32),
                "weight": coo.data.astype(np.float32),
            }
        )
        pq.write_table(table, tmp / "interactions.parquet", compression="zstd")
        schema = {"format": FORMAT, "version": VERSION, **data.describe()}
        (tmp / "schema.json").write_text(json.dumps(schema, indent=2) + "\n")
    return path


def is_dataset_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` looks like a directory written by :func:`save_interactions`."""
    return (Path(path) / "schema.json").is_file()


def load_interactions(path: str | os.PathLike[str]) -> Interactions:
    """Read a directory written by :func:`save_interactions`."""
    path = Path(path)
    schema_file = path / "schema.json"
    try:
        schema = json.loads(schema_file.read_text())
    except FileNotFoundError:
        raise DataFormatError("not a segue dataset directory (no schema.json)", path=path) from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            f"invalid JSON: {exc.msg}", path=schema_file, line=exc.lineno
        ) from None
    if not isinstance(schema, dict):
        schema = {}  # valid JSON but not an object: reported below as an unsupported format
    if schema.get("format") != FORMAT or schema.get("version") != VERSION:
        raise DataFormatError(
            f"unsupported dataset format {schema.get('format')!r} version {schema.get('version')!r}"
            f" (this segue reads {FORMAT!r} version {VERSION})",
            path=schema_file,
        )
    try:
        users = IdMap(pq.read_table(path / "users.parquet").column("id").to_numpy(), kind="user")
        items = IdMap(pq.read_table(path / "items.parquet").column("id").to_numpy(), kind="item")
        table = pq.read_table(path / "interactions.parquet")
        rows = table.column("user_idx").to_numpy()
        cols = table.column("item_idx").to_numpy()
        weights = table.column("weight").to_numpy()
    except (OSError, KeyError, pa.ArrowException) as exc:
        raise DataFormatError(f"cannot read dataset: {exc}", path=path) from None
    shape = (len(users), len(items))
    if len(rows) and (
        rows.max() >= shape[0] or cols.max() >= shape[1] or min(rows.min(), cols.min()) < 0
    ):
        raise DataFormatError("interaction indices out of range of the id tables", path=path)
    coo = sp.coo_array((weights, (rows, cols)), shape=shape)
    return Interactions(users, items, canonical_csr(coo.tocsr(), shape))
