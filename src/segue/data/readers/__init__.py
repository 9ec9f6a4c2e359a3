"""Readers: public music datasets' files into frames, Interactions and Playlists."""

from segue.data.readers.listens import (
    read_listen_interactions,
    read_listens,
    read_targets,
    write_listens,
    write_targets,
)
from segue.data.readers.melon import read_genres, read_melon, read_song_meta
from segue.data.readers.mpd import import_mpd, iter_mpd_playlists, read_challenge_set, read_mpd
from segue.data.readers.tabular import read_table_interactions

__all__ = [
    "import_mpd",
    "iter_mpd_playlists",
    "read_challenge_set",
    "read_genres",
    "read_listen_interactions",
    "read_listens",
    "read_melon",
    "read_mpd",
    "read_song_meta",
    "read_table_interactions",
    "read_targets",
    "write_listens",
    "write_targets",
]
