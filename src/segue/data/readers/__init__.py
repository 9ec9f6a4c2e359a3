"""Readers turn files in the formats of public music datasets into frames and Interactions."""

from segue.data.readers.listens import (
    read_listen_interactions,
    read_listens,
    read_targets,
    write_listens,
    write_targets,
)
from segue.data.readers.tabular import read_table_interactions

__all__ = [
    "read_listen_interactions",
    "read_listens",
    "read_table_interactions",
    "read_targets",
    "write_listens",
    "write_targets",
]
