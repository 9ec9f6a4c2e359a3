"""Candidates: per-source top-N merged by item index; recall per source and merged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from segue.continuation import continue_playlists, playlist_interactions, title_columns
from segue.data.playlists import Playlists
from segue.data.vocab import IdMap
from segue.exceptions import ParameterError
from segue.models.knn import ItemKNN
from segue.models.popularity import MostPopular
from segue.ranking.candidates import (
    answer_matrix,
    candidate_recall,
    merge_candidates,
    pair_labels,
    retrieve_candidates,
)


def _playlists(rows: dict, names: dict) -> Playlists:
    entries = pd.DataFrame(
        [(pid, pos, t) for pid, ts in rows.items() for pos, t in enumerate(ts)],
        columns=["pid", "pos", "track"],
    )
    tracks = pd.DataFrame({"track": sorted(set(entries["track"]))})
    table = pd.DataFrame({"pid": list(names), "name": list(names.values())})
    return Playlists(playlists=table, entries=entries, tracks=tracks)


@pytest.fixture
def fitted():
    rng = np.random.default_rng(0)
    rows = {p: [f"t{i}" for i in rng.choice(40, 8, replace=False)] for p in range(60)}
    train = _playlists(rows, {p: f"mix {p % 3}" for p in range(60)})
    inter = playlist_interactions(train, with_titles=True)
    models = {"itemknn": ItemKNN().fit(inter), "pop": MostPopular().fit(inter)}
    queries = _playlists(
        {100: ["t1", "t2"], 101: ["t3"]}, {100: "mix 1", 101: "mix 2", 102: "mix 0"}
    )
    return models, queries


def test_sources_match_continue_playlists_and_exclude_seeds_and_titles(fitted):
    models, queries = fitted
    cands = retrieve_candidates(models, queries, 10)
    items = models["pop"].items_
    titles = set(title_columns(items).tolist())
    for j, name in enumerate(cands.sources):
        batch = next(continue_playlists(models[name], queries, 10))
        for row in range(len(cands.pids)):
            sel = (cands.query == row) & ~np.isnan(cands.rank[:, j])
            order = np.argsort(cands.rank[sel, j])
            got = items.ids[cands.item[sel][order]].tolist()
            assert got == batch.tracks[row]
    assert not titles & set(cands.item.tolist())
    seeds = {0: {"t1", "t2"}, 1: {"t3"}}
    for row, bad in seeds.items():
        assert not bad & set(items.ids[cands.item[cands.query == row]].tolist())
    # de-duplicated, sorted by query, each query cut to n by top()
    keys = cands.query.astype(np.int64) * len(items) + cands.item
    assert len(np.unique(keys)) == len(keys) and np.all(np.diff(cands.query) >= 0)
    assert cands.top(5).group_sizes().tolist() == [5, 5, 5]


def test_merge_and_recall_by_hand():
    items = IdMap(np.array(list("abcdef"), dtype=object), kind="item")
    import scipy.sparse as sp

    hist = sp.csr_array((2, 6), dtype=np.float32)
    top_a = np.array([[0, 1, 2], [3, -1, -1]], dtype=np.int32)
    top_b = np.array([[2, 4, 5], [3, 5, 0]], dtype=np.int32)
    score = np.ones((2, 3), dtype=np.float32)
    c = merge_candidates(
        ["A", "B"], [top_a, top_b], [score, score], 3, items, hist, np.array([7, 8])
    )
    # query 0: c (A3, B1) first by fusion; union a b c e f
    assert c.group_sizes().tolist() == [5, 3]
    assert items.ids[c.item[c.query == 0]][0] == "c"
    answers = {7: ["a", "f", "zzz"], 8: ["b"]}
    truth = answer_matrix(answers, c.pids, items)
    assert truth.nnz == 3  # the unknown track is dropped
    labels = pair_labels(c, truth)
    assert labels.sum() == 2  # a and f for query 0; b was retrieved by nobody for query 1
    recall = candidate_recall(c, answers, pd.Series({7: 1, 8: 2}), cutoffs=(1, 3))
    # query 0: A@1 = {a} -> 1/2; B@3 = {c, e, f} -> 1/2; query 1 recall 0
    assert recall.loc["1", "A@1"] == 0.5 and recall.loc["1", "B@3"] == 0.5
    assert recall.loc["all", "A@1"] == 0.25 and recall.loc["2", "merged@3"] == 0.0
    assert recall.loc["1", "merged@3"] == 0.5  # c, a, ... the merged top 3 hold a only


def test_needs_models_sharing_items(fitted):
    models, queries = fitted
    with pytest.raises(ParameterError):
        retrieve_candidates({}, queries)
    other = _playlists({0: ["x", "y"], 1: ["y", "z"]}, {0: "a", 1: "b"})
    stranger = MostPopular().fit(playlist_interactions(other))
    with pytest.raises(ParameterError):
        retrieve_candidates({**models, "stranger": stranger}, queries)
