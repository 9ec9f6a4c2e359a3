"""The two-stage model under the same contract as every other model (tests/models/contract.py).

Its data are playlists long enough for the MPD's inner question categories (40 to 70 tracks,
two taste groups), encoded as every playlist model's training rows. ``recommend`` reaches it
through the one inference path: its retrieval hook re-ranks the first stage's candidates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from contract import RecommenderContract

from segue import Interactions, Playlists
from segue.inference import playlist_interactions
from segue.ranking.two_stage import TwoStage

pytestmark = pytest.mark.slow


def long_playlists(seed: int = 0, n: int = 160, n_tracks: int = 120) -> Interactions:
    rng = np.random.default_rng(seed)
    rows = []
    for pid in range(n):
        own = np.arange(pid % 2, n_tracks, 2)  # even playlists hold even tracks, odd ones odd
        length = int(rng.integers(40, 60))
        pop = 1.0 / (1 + np.arange(len(own)))
        tracks = rng.choice(own, size=length, replace=False, p=pop / pop.sum())
        rows += [(f"p{pid:03d}", pos, f"s{t:03d}") for pos, t in enumerate(tracks)]
    entries = pd.DataFrame(rows, columns=["pid", "pos", "track"])
    table = pd.DataFrame({"pid": pd.unique(entries["pid"]), "name": None})
    tracks = pd.DataFrame({"track": pd.unique(entries["track"])})
    return playlist_interactions(Playlists(table, entries, tracks))


class TestTwoStageContract(RecommenderContract):
    #: the re-ranked list of a folded-in row need not be its training row's list: a training
    #: row is answered as a playlist with its features, a folded-in one from its row alone
    folds_in_exactly = False

    @pytest.fixture(scope="class")
    def data(self) -> Interactions:
        return long_playlists()

    def other_data(self) -> Interactions:
        return long_playlists(seed=7, n=120, n_tracks=140)

    def make_model(self) -> TwoStage:
        return TwoStage(
            {"pop": {"model": "popularity"}, "iknn": {"model": "itemknn"}},
            n=40,
            per_category=10,
            folds=1,
            num_boost_round=20,
            early_stopping_rounds=5,
            num_threads=1,
            with_titles=False,
        )
