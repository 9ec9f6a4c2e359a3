"""Shared fixtures: a small planted-taste dataset and the path to ../shared/data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segue import Interactions

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def planted_interactions(seed: int = 0, n_users: int = 40, n_items: int = 30) -> Interactions:
    """Two taste groups: even users play even songs, odd users odd songs (plus counts).

    A good CF model recommends a user songs of the user's own parity; popularity cannot.
    """
    rng = np.random.default_rng(seed)
    users, items, counts = [], [], []
    for u in range(n_users):
        own = np.arange(u % 2, n_items, 2)
        chosen = rng.choice(own, size=len(own) // 2, replace=False)
        for i in chosen:
            users.append(f"user{u:03d}")
            items.append(f"song{i:03d}")
            counts.append(int(rng.integers(1, 50)))
    # a globally popular pair of songs, listened across groups, so popularity is not parity
    for u in range(0, n_users, 3):
        users += [f"user{u:03d}"]
        items += [f"song{(u + 1) % 2:03d}"]
        counts += [1]
    return Interactions.from_arrays(users, items, counts)


@pytest.fixture
def planted() -> Interactions:
    return planted_interactions()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (the ../shared/data folder)")
    return SHARED_DATA
