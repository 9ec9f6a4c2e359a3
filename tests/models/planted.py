"""Planted taste groups with held-out items: does a model learn, or only count popularity?

Users fall into ``groups`` taste groups; each plays a random half of its group's songs plus a
few globally popular songs. A fifth of each user's group songs is held out. A model that learns
the groups finds the held-out songs; popularity cannot (every group's songs are equally
popular, and the popular songs are already played).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from segue import Interactions
from segue.metrics.ranking import ndcg_at_k
from segue.models.base import BaseRecommender

__all__ = ["held_out_ndcg", "planted_holdout"]


def planted_holdout(
    *, n_users: int = 240, n_items: int = 160, groups: int = 4, seed: int = 0
) -> tuple[Interactions, sp.csr_array]:
    """Training interactions and the held-out truth (rows aligned to the training users)."""
    rng = np.random.default_rng(seed)
    popular = np.arange(4)
    users, items, held_users, held_items = [], [], [], []
    for u in range(n_users):
        own = np.arange(4 + u % groups, n_items, groups)
        chosen = rng.choice(own, size=len(own) // 2, replace=False)
        n_held = max(1, len(chosen) // 5)
        for i in chosen[n_held:]:
            users.append(f"u{u:04d}")
            items.append(f"s{i:04d}")
        for i in popular:
            users.append(f"u{u:04d}")
            items.append(f"s{i:04d}")
        held_users += [u] * n_held
        held_items += chosen[:n_held].tolist()
    train = Interactions.from_arrays(users, items, np.ones(len(users)))
    rows = train.users.numbers(np.array([f"u{u:04d}" for u in held_users], dtype=object))
    cols = train.items.numbers(
        np.array([f"s{i:04d}" for i in held_items], dtype=object), missing="negative"
    )
    keep = cols >= 0
    truth = sp.csr_array(
        (np.ones(keep.sum(), dtype=np.float32), (rows[keep], cols[keep])),
        shape=(train.n_users, train.n_items),
    )
    return train, truth


def held_out_ndcg(model: BaseRecommender, train: Interactions, truth: sp.csr_array, k: int = 10):
    """Mean NDCG@k of a fitted model's lists for the training users on the held-out items."""
    recs = model.recommend(train.users.ids, k)
    return float(np.nanmean(ndcg_at_k(recs.items, truth, k)))
