"""The one model API: item kinds, the retrieval hook, fit inputs, lazy imports, saved state."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from segue import (
    WRMF,
    IdMap,
    ItemKind,
    MissingExtraError,
    MostPopular,
    ParameterError,
    Playlists,
    load,
    save,
)
from segue.inference import QueryEncoder, continue_playlists, playlist_interactions
from segue.models.base import BaseRecommender, FitData, Target


def small_playlists() -> Playlists:
    rng = np.random.default_rng(0)
    rows = []
    titles = ["chill vibes", "rock on", "chill out", "gym", None, "rock classics"]
    for pid in range(60):
        tracks = rng.choice(40, size=8, replace=False) + (0 if pid % 2 else 40)
        rows += [(pid, pos, f"t{t}") for pos, t in enumerate(tracks)]
    entries = pd.DataFrame(rows, columns=["pid", "pos", "track"])
    table = pd.DataFrame(
        {
            "pid": range(60),
            "name": [titles[p % len(titles)] for p in range(60)],
            "tags": [["a", "b"] if p % 3 else ["c"] for p in range(60)],
        }
    )
    tracks = pd.DataFrame({"track": pd.unique(entries["track"])})
    return Playlists(table, entries, tracks)


def test_item_kinds_are_data_in_the_vocabulary() -> None:
    inter = playlist_interactions(small_playlists(), with_tags=True, with_titles=True)
    items = inter.items
    kinds = items.kinds
    ids = items.ids
    assert {ItemKind(k) for k in np.unique(kinds)} == set(ItemKind)
    for kind in ItemKind:
        cols = items.columns(kind)
        assert len(cols) == items.count(kind) > 0
        assert all(str(i).startswith(kind.prefix) for i in ids[cols])
    assert items.columns(ItemKind.TRACK) is items.columns(ItemKind.TRACK)  # computed once
    assert not items.columns(ItemKind.TRACK).flags.writeable
    plain = IdMap(["x", "y"])
    assert not plain.has_kinds and plain.columns(ItemKind.TRACK).tolist() == [0, 1]
    assert len(plain.columns(ItemKind.TAG)) == 0
    # a track whose id looks like a tag is still a track: kinds are data, not prefixes
    odd = IdMap(["tag:rock", "tag:rock2"], kinds=np.array([0, 1], dtype=np.uint8))
    assert odd.columns(ItemKind.TRACK).tolist() == [0]
    assert odd != IdMap(["tag:rock", "tag:rock2"])  # same ids, other kinds
    with pytest.raises(ParameterError):
        IdMap(["a"], kinds=np.array([9], dtype=np.uint8))


def test_kinds_are_saved_with_the_model(tmp_path: Path) -> None:
    inter = playlist_interactions(small_playlists(), with_tags=True, with_titles=True)
    save(MostPopular().fit(inter), tmp_path / "m")
    loaded = load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.items_.kinds, inter.items.kinds)
    assert loaded.items_ == inter.items


def test_one_row_encoding_equals_the_batch_encoding() -> None:
    playlists = small_playlists()
    inter = playlist_interactions(playlists, with_tags=True, with_titles=True)
    encoder = QueryEncoder(inter.items)
    batch = encoder.playlists(playlists).matrix
    seeds = playlists.track_lists()
    for row, (pid, title, tags) in enumerate(
        zip(
            playlists.playlists["pid"],
            playlists.playlists["name"],
            playlists.playlists["tags"],
            strict=True,
        )
    ):
        one, extra = encoder.playlist(seeds[pid] + ["unknown"], title=title, tags=[*tags, "zz"])
        assert extra is None
        assert (one.row != batch[[row]]).nnz == 0
        assert one.unknown_tracks == ["unknown"] and one.unknown_tags == ["zz"]


class Recorder(MostPopular):
    """Popularity that records what its retrieval hook was asked (the hook is the only path)."""

    calls: list

    def _retrieve(self, batch, targets):
        self.calls.append((len(batch), {k: t.k for k, t in targets.items()}))
        return super()._retrieve(batch, targets)


def test_every_caller_goes_through_the_retrieval_hook() -> None:
    from segue.inference import Continuer
    from segue.ranking.candidates import retrieve_candidates

    playlists = small_playlists()
    inter = playlist_interactions(playlists, with_tags=True, with_titles=True)
    model = Recorder().fit(inter)
    model.calls = []
    list(continue_playlists(model, playlists, 5, n_tags=2))
    assert model.calls == [(60, {"tracks": 5, "tags": 2})]
    model.calls = []
    Continuer(model).continue_playlist(["t1"], title="chill", n=3, n_tags=1)
    assert model.calls == [(1, {"tracks": 3, "tags": 1})]
    model.calls = []
    retrieve_candidates({"pop": model}, playlists, 7)
    assert model.calls == [(60, {"tracks": 7})]
    model.calls = []
    model.recommend(inter.users.ids[:3], 4)
    assert model.calls == [(3, {"items": 4})]


def test_allow_restricts_and_exclude_removes() -> None:
    inter = playlist_interactions(small_playlists(), with_titles=True)
    model = MostPopular().fit(inter)
    tracks = inter.items.columns(ItemKind.TRACK)
    rows = inter.matrix[:4]
    found = model.retrieve(
        np.full(4, -1, dtype=np.int32),
        rows,
        {"a": Target(10, tracks[:12]), "b": Target(3)},
    )
    items_a, _ = found["a"]
    assert set(items_a[items_a >= 0].tolist()) <= set(tracks[:12].tolist())
    for r in range(4):
        assert not set(rows[[r]].indices) & set(found["b"][0][r].tolist())


def test_wrmf_faiss_is_reached_with_title_columns(monkeypatch) -> None:
    from segue.models import wrmf

    monkeypatch.setattr(wrmf, "_EXACT_ALLOW", 0)  # this catalogue is small enough for exact
    inter = playlist_interactions(small_playlists(), with_titles=True)
    dense = WRMF(factors=8, iterations=5).fit(inter)
    exact = WRMF(factors=8, iterations=5, retrieval="faiss-exact").fit(inter)
    calls = []
    index = exact.faiss_index()
    original = type(index).search

    def counting_search(self, *args, **kwargs):
        calls.append(kwargs.get("params"))
        return original(self, *args, **kwargs)

    type(index).search = counting_search
    try:
        queries = small_playlists()
        a = [b.tracks for b in continue_playlists(dense, queries, 10)]
        b = [b.tracks for b in continue_playlists(exact, queries, 10)]
    finally:
        type(index).search = original
    assert calls and calls[0] is not None  # searched, restricted to the track columns
    same = np.mean([x == y for x, y in zip(a[0], b[0], strict=True)])
    assert same > 0.9  # exact inner product: the dense lists, up to float ties


def test_restricted_ivf_search_never_returns_short_lists(monkeypatch) -> None:
    """Tags are a few columns; an IVF search restricted to them may find fewer than k."""
    from segue.models import wrmf

    monkeypatch.setattr(wrmf, "_EXACT_ALLOW", 0)
    playlists = small_playlists()
    inter = playlist_interactions(playlists, with_tags=True, with_titles=True)
    model = WRMF(factors=8, iterations=5, retrieval="faiss-ivf", nlist=20, nprobe=1).fit(inter)
    n_tags = inter.items.count(ItemKind.TAG)  # 3 tags: a, b, c
    for batch in continue_playlists(model, playlists, 10, n_tags=n_tags):
        seeds = playlists.playlists.set_index("pid")["tags"]
        for pid, tags in zip(batch.pids, batch.tags, strict=True):
            assert len(tags) == n_tags - len(set(seeds[pid]))


def test_fit_gets_validation_and_song_order() -> None:
    seen = {}

    class Probe(MostPopular):
        def _fit(self, data: FitData) -> None:
            seen["valid"] = data.valid
            seen["order"] = data.order()
            super()._fit(data)

    playlists = small_playlists()
    inter = playlist_interactions(playlists)
    valid = playlist_interactions(small_playlists())
    Probe().fit(inter, valid=valid)
    assert seen["valid"].items == inter.items
    order = seen["order"]
    assert isinstance(order, sp.csr_array) and order.shape == inter.matrix.shape
    first = playlists.entries[playlists.entries["pid"] == 0]
    cols = inter.items.numbers(first["track"].to_numpy())
    np.testing.assert_array_equal(order[[0]].toarray()[0, cols], first["pos"].to_numpy() + 1)
    Probe().fit(inter)
    assert seen["valid"] is None


def test_import_segue_loads_no_optional_extra() -> None:
    code = (
        "import sys, segue; segue.Interactions; segue.EASE; "
        "heavy = [m for m in ('torch', 'lightgbm', 'faiss', 'fastapi', 'uvicorn', 'pyspark', "
        "'implicit', 'typer', 'matplotlib') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_missing_extra_names_the_pip_extra(monkeypatch) -> None:
    from segue import _extras

    monkeypatch.setitem(sys.modules, "lightgbm", None)  # import lightgbm -> ImportError
    with pytest.raises(MissingExtraError, match=r"segue\[ranking\]"):
        _extras.require("lightgbm", "the ranker")


def test_format_1_directories_still_load(tmp_path: Path) -> None:
    """A model saved by the previous format (id maps in the manifest, dotted npz keys)."""
    inter = playlist_interactions(small_playlists(), with_titles=True)
    model = MostPopular().fit(inter)
    root = tmp_path / "old"
    root.mkdir()
    history = model.history_
    np.savez(
        root / "arrays.npz",
        popularity_=model.popularity_,
        fallback_scores_=model.fallback_scores_,
        **{f"history_.{p}": np.asarray(getattr(history, p)) for p in ("data", "indices", "indptr")},
        **{"history_.shape": np.asarray(history.shape)},
    )
    manifest = {
        "format": "segue.model",
        "format_version": 1,
        "class": "segue.models.popularity:MostPopular",
        "params": {"weighting": "users"},
        "segue_version": "0.1.0",
        "state": {"fit_seconds_": 0.1},
        "id_maps": {"users_": model.users_.to_list(), "items_": model.items_.to_list()},
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    loaded = load(root)
    np.testing.assert_array_equal(loaded.items_.kinds, inter.items.kinds)
    a = model.recommend(inter.users.ids[:5], 5)
    b = loaded.recommend(inter.users.ids[:5], 5)
    np.testing.assert_array_equal(a.items, b.items)


def test_base_class_is_abstract_about_fit() -> None:
    class Nothing(BaseRecommender):
        pass

    with pytest.raises(NotImplementedError):
        Nothing().fit(playlist_interactions(small_playlists()))
