"""Tampered model directories: a result or one clean error naming the directory, nothing else.

Each example saves a fitted model, mutates one thing (an array element, an array's dtype or
shape, a sparse part, the manifest), then loads and recommends in this process: a crash would
kill the test run, any exception but a ``SegueError`` naming the directory fails the test.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import planted_interactions
from segue import EASE, WRMF, ItemKNN, MostPopular, SegueError, UserKNN, load, save

MODELS = {
    "ease": lambda: EASE(l2=10.0),
    "wrmf": lambda: WRMF(factors=4, iterations=2),
    "itemknn": lambda: ItemKNN(),
    "userknn": lambda: UserKNN(),
    "popularity": lambda: MostPopular(),
}


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    data = planted_interactions()
    out = {}
    for name, make in MODELS.items():
        out[name] = save(make().fit(data), root / name)
    return out


def outcome(path: Path) -> str:
    """``"ok"`` or ``"error"``; anything else raises (fails the example)."""
    try:
        model = load(path)
        model.recommend(model.users_.ids[:5], 7)
        model.recommend(["nobody"], 3, unknown="fallback")
    except SegueError as exc:
        assert str(path) in str(exc), str(exc)
        assert "\n" not in str(exc) and "allow_pickle=True" not in str(exc)
        return "error"
    return "ok"


def mutate_array(npz: Path, key: str, how: str, where: float, value: float) -> None:
    with np.load(npz, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    a = arrays[key]
    if how == "drop":
        del arrays[key]
    elif how == "truncate":
        arrays[key] = a[: len(a) // 2]
    elif how == "dtype":
        arrays[key] = a.astype(np.complex64) if a.dtype.kind != "c" else a.real
    elif how == "reshape":
        arrays[key] = a.reshape(-1)[:-1] if a.size > 1 else np.zeros((2, 2))
    elif a.size:
        flat = a.reshape(-1).copy()
        i = int(where * (flat.size - 1))
        if flat.dtype.kind == "f":
            flat[i] = value
        elif flat.dtype.kind in "iu":
            flat[i] = np.asarray(int(value) if np.isfinite(value) else -1).astype(flat.dtype)
        arrays[key] = flat.reshape(a.shape)
    np.savez(npz, **arrays)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    name=st.sampled_from(sorted(MODELS)),
    pick=st.floats(0, 1),
    how=st.sampled_from(["set", "set", "set", "drop", "truncate", "dtype", "reshape"]),
    where=st.floats(0, 1),
    value=st.sampled_from([-1.0, -7.0, 1e9, 2**31, np.nan, np.inf, 0.0, 3.0]),
)
def test_tampered_arrays(saved, tmp_path_factory, name, pick, how, where, value) -> None:
    path = tmp_path_factory.mktemp("t") / name
    shutil.copytree(saved[name], path)
    npz = path / "arrays.npz"
    with np.load(npz, allow_pickle=False) as f:
        keys = sorted(f.files)
    mutate_array(npz, keys[int(pick * (len(keys) - 1))], how, where, value)
    outcome(path)


MANIFEST_EDITS = [
    lambda m: [],
    lambda m: {k: v for k, v in m.items() if k != "class"},
    lambda m: {k: v for k, v in m.items() if k != "params"},
    lambda m: {k: v for k, v in m.items() if k != "state"},
    lambda m: m | {"params": {"no_such": 1}},
    lambda m: m | {"params": {k: "x" for k in m["params"]}},
    lambda m: m | {"class": "segue.models.popularity:MostPopular"},
    lambda m: m | {"class": "segue.models.ease:EASE"},
    lambda m: m | {"class": "segue.models.wrmf:WRMF"},
    lambda m: m | {"state": {}},
    lambda m: m | {"state": {k: {"codec": "nope"} for k in m["state"]}},
    lambda m: m | {"state": {k: 3 for k in m["state"]}},
    lambda m: m | {"state": m["state"] | {"items_": m["state"]["items_"] | {"ids": ["a", "a"]}}},
    lambda m: m | {"state": m["state"] | {"users_": m["state"]["users_"] | {"ids": [[1]]}}},
    lambda m: m | {"format_version": "2"},
]


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("edit", range(len(MANIFEST_EDITS)))
def test_tampered_manifests(saved, tmp_path, name, edit) -> None:
    path = tmp_path / name
    shutil.copytree(saved[name], path)
    manifest = json.loads((path / "manifest.json").read_text())
    edited = MANIFEST_EDITS[edit](manifest)
    (path / "manifest.json").write_text(json.dumps(edited))
    # another registered class's manifest over this state, or the class unchanged (then it loads)
    assert outcome(path) == ("ok" if edited == manifest else "error")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_missing_and_junk_files(saved, tmp_path, name) -> None:
    path = tmp_path / name
    shutil.copytree(saved[name], path)
    (path / "arrays.npz").unlink()
    assert outcome(path) == "error"
    (path / "arrays.npz").write_bytes(b"PK\x03\x04 junk")
    assert outcome(path) == "error"
    (path / "arrays.npz").write_bytes(b"")
    assert outcome(path) == "error"
    (path / "manifest.json").write_text("[1, 2]")
    assert outcome(path) == "error"


def test_an_out_of_range_history_index_is_refused(saved, tmp_path) -> None:
    """The issue's reproduction: one history_.indices entry out of range crashed recommend."""
    path = tmp_path / "ease"
    shutil.copytree(saved["ease"], path)
    npz = path / "arrays.npz"
    with np.load(npz, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    for bad in (10**6, -1):
        arrays["history_.indices"] = arrays["history_.indices"].copy()
        arrays["history_.indices"][3] = bad
        np.savez(npz, **arrays)
        with pytest.raises(SegueError, match="indices outside"):
            load(path)


@pytest.fixture(scope="module")
def two_stage_dir(tmp_path_factory) -> Path:
    from test_models_two_stage import TestTwoStageContract, long_playlists

    model = TestTwoStageContract().make_model().fit(long_playlists())
    return save(model, tmp_path_factory.mktemp("ts") / "two")


def edit_manifest(path: Path, change) -> None:
    doc = json.loads((path / "manifest.json").read_text())
    change(doc)
    (path / "manifest.json").write_text(json.dumps(doc))


def test_damaged_two_stage_directories_are_refused(two_stage_dir, tmp_path) -> None:
    """Found by bench/hostile_inputs.py: LightGBM aborted the process on a truncated ranker."""
    cases = {
        "truncated ranker": lambda p: (p / "ranker_.txt").write_bytes(
            (p / "ranker_.txt").read_bytes()[:2000]
        ),
        "junk context": lambda p: (p / "context_.safetensors").write_bytes(b"junk"),
        "ranker outside": lambda p: edit_manifest(
            p, lambda d: d["state"]["ranker_"].update(file="/etc/hostname")
        ),
        "ranker via ..": lambda p: edit_manifest(
            p, lambda d: d["state"]["ranker_"].update(file="../two/ranker_.txt")
        ),
        "source outside": lambda p: edit_manifest(
            p,
            lambda d: d["state"]["models_"]["dirs"].update(pop=str(two_stage_dir / "models_/pop")),
        ),
        "fusion weights short": lambda p: mutate_array(
            p / "arrays.npz", "fusion_weights_", "truncate", 0.0, 0.0
        ),
        "unknown task": lambda p: edit_manifest(
            p, lambda d: d["state"]["task_"].update(value="jazz")
        ),
        "feature names short": lambda p: edit_manifest(
            p, lambda d: d["state"]["feature_names_"]["value"].pop()
        ),
    }
    for what, damage in cases.items():
        path = tmp_path / what.replace(" ", "_") / "two"
        shutil.copytree(two_stage_dir, path)
        damage(path)
        assert outcome(path) == "error", what


def test_deeply_nested_manifest(saved, tmp_path) -> None:
    path = tmp_path / "pop"
    shutil.copytree(saved["popularity"], path)
    (path / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    assert outcome(path) == "error"
