"""Sources that read the seeds' order (tcn) get the query playlists in the first stage."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from sequences import query_playlists, ring_playlists  # noqa: E402

from segue.inference import continue_playlists, playlist_interactions  # noqa: E402
from segue.models.tcn import TCN  # noqa: E402
from segue.ranking.candidates import retrieve_candidates  # noqa: E402

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def one_thread():
    """A tiny network: one thread is several times faster than two on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_first_stage_reads_the_seeds_in_order() -> None:
    playlists, lists = ring_playlists(150, seed=0)
    model = TCN(dim=8, blocks=1, window=6, epochs=3, batch_size=32, validation_rows=0)
    model.fit(playlist_interactions(playlists))
    seeds = [songs[:6] for songs in lists[:20]]
    queries = query_playlists(seeds)
    cands = retrieve_candidates({"tcn": model}, queries, n=10)
    ranks = cands.rank[:, 0]
    got = [cands.item[(cands.query == q) & (ranks <= 10)] for q in range(len(seeds))]
    got = [
        items[np.argsort(ranks[(cands.query == q) & (ranks <= 10)])] for q, items in enumerate(got)
    ]
    direct = next(iter(continue_playlists(model, queries, 10)))
    for q, tracks in enumerate(direct.tracks):
        assert model.items_.ids[got[q]].tolist() == tracks
    reversed_queries = query_playlists([s[::-1] for s in seeds])
    other = retrieve_candidates({"tcn": model}, reversed_queries, n=10)
    assert not np.array_equal(other.item, cands.item)  # the order reached the source
