"""Data model, readers, dataset storage and evaluation splits."""

from segue.data.interactions import Interactions, canonical_csr, take_rows
from segue.data.io import load_interactions, save_interactions
from segue.data.split import ListenSplit, split_listens
from segue.data.vocab import IdMap

__all__ = [
    "IdMap",
    "Interactions",
    "ListenSplit",
    "canonical_csr",
    "load_interactions",
    "save_interactions",
    "split_listens",
    "take_rows",
]
