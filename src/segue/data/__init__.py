"""Data model, readers, dataset storage and evaluation splits."""

from segue.data.interactions import Interactions, canonical_csr, take_rows
from segue.data.io import load_interactions, save_interactions
from segue.data.melon_split import split_melon
from segue.data.mpd_split import split_mpd
from segue.data.playlists import Playlists, load_playlists
from segue.data.split import ListenSplit, split_listens
from segue.data.vocab import IdMap

__all__ = [
    "IdMap",
    "Interactions",
    "ListenSplit",
    "Playlists",
    "canonical_csr",
    "load_interactions",
    "load_playlists",
    "save_interactions",
    "split_listens",
    "split_melon",
    "split_mpd",
    "take_rows",
]
