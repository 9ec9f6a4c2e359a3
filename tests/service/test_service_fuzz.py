"""Property-based fuzzing of the service: no request body, however wrong, gets a 500.

Bodies come from three hypothesis sources: arbitrary JSON values and raw bytes; objects with
the real field names and arbitrary values; and bodies drawn from the app's own OpenAPI schema
(each property's declared type, just inside and just outside its bounds, or anything at all).
Every answer must be a 200 that validates against the response schema and keeps the service's
promises (at most ``n`` tracks, no seed or excluded track, no duplicate, scores best first), or
a 4xx with a message. The in-process app runs with ``raise_server_exceptions``, so a bug that
would be a 500 fails the test with its traceback.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segue import EASE, WRMF, save_model
from segue.data.playlists import Playlists
from segue.inference import playlist_interactions
from segue.service.app import create_app
from segue.service.schemas import ContinueResponse, RecommendResponse

TRACKS = [f"t{i:02d}" for i in range(40)]
TAGS = ["calm", "loud", "gym"]
FIELDS = ["tracks", "title", "tags", "n", "n_tags", "exclude", "user"]
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def make_playlists(n: int = 60, seed: int = 0) -> Playlists:
    """Even playlists hold even tracks and tag 'calm', odd ones odd tracks and 'loud', 'gym'."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n):
        picks = rng.choice(np.arange(p % 2, 40, 2), size=8, replace=False)
        rows += [(p, pos, TRACKS[t]) for pos, t in enumerate(picks)]
    entries = pd.DataFrame(rows, columns=["pid", "pos", "track"])
    playlists = pd.DataFrame(
        {
            "pid": range(n),
            "name": [""] * n,
            "tags": [["calm"] if p % 2 == 0 else ["loud", "gym"] for p in range(n)],
        }
    )
    return Playlists(playlists, entries, pd.DataFrame({"track": TRACKS}))


@pytest.fixture(scope="module", params=["ease-tags", "wrmf-faiss"])
def local(request, tmp_path_factory) -> Iterator[TestClient]:
    """The in-process app on a tag model (EASE) and a model without tags (WRMF, faiss)."""
    root = tmp_path_factory.mktemp(request.param)
    playlists = make_playlists()
    if request.param == "ease-tags":
        model = EASE(l2=5.0).fit(playlist_interactions(playlists, with_tags=True, with_titles=True))
    else:
        model = WRMF(factors=8, iterations=3, retrieval="faiss-exact")
        model.fit(playlist_interactions(playlists))
    save_model(model, root / "model")
    with TestClient(create_app(root / "model")) as client:
        yield client


# strategies --------------------------------------------------------------------------------------
leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(TRACKS + TAGS)
)
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=25,
)
ids = st.sampled_from(TRACKS) | st.text(max_size=12) | st.integers(-(2**66), 2**66) | leaves
bodies_with_real_fields = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=6), json_values
)
nearly_valid = st.fixed_dictionaries(
    {},
    optional={
        "tracks": st.lists(ids, max_size=30),
        "title": st.none() | st.text(max_size=40),
        "tags": st.lists(st.sampled_from(TAGS) | st.text(max_size=8), max_size=5),
        "n": st.integers(-3, 1003),
        "n_tags": st.integers(-2, 102),
        "exclude": st.lists(ids, max_size=20),
    },
)


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def from_schema(
    schema: dict[str, Any], spec: dict[str, Any], valid: bool
) -> st.SearchStrategy[Any]:
    """Values for an OpenAPI schema.

    ``valid=True``: values the schema accepts, bounds included. ``valid=False``: also values
    just past each bound, and any JSON value in place of any field.
    """
    schema = _resolve(schema, spec)
    options: list[st.SearchStrategy[Any]] = []
    if "anyOf" in schema:
        options += [from_schema(s, spec, valid) for s in schema["anyOf"]]
    kind = schema.get("type")
    if kind == "integer":
        # FastAPI's OpenAPI model writes bounds as floats (1000.0, 9.223372036854776e+18)
        low = int(schema.get("minimum", int(schema.get("exclusiveMinimum", -(2**40) - 1)) + 1))
        high = int(schema.get("maximum", int(schema.get("exclusiveMaximum", 2**40 + 1)) - 1))
        options += [st.integers(low, high), st.sampled_from([low, high])]
        if not valid:
            options.append(st.sampled_from([low - 1, high + 1]))
    elif kind == "number":
        options.append(st.floats(allow_nan=not valid, allow_infinity=not valid))
    elif kind == "boolean":
        options.append(st.booleans())
    elif kind == "null":
        options.append(st.none())
    elif kind == "string":
        shortest, longest = schema.get("minLength", 0), schema.get("maxLength", 50)
        options += [
            st.text(min_size=shortest, max_size=min(longest, 40)),
            st.sampled_from(TRACKS + TAGS),
            st.just("x" * longest),
        ]
        if not valid:
            options.append(st.sampled_from(["y" * (longest + 1), ""]))
    elif kind == "array":
        item = from_schema(schema.get("items", {}), spec, valid)
        options.append(st.lists(item, max_size=8))
        if "maxItems" in schema:  # exactly at the bound (and one past it)
            sizes = [schema["maxItems"]] if valid else [schema["maxItems"], schema["maxItems"] + 1]
            options.append(st.builds(lambda v, k: [v] * k, item, st.sampled_from(sizes)))
    elif kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = {k: from_schema(props[k], spec, valid) for k in schema.get("required", [])}
        optional = {k: from_schema(v, spec, valid) for k, v in props.items() if k not in required}
        options.append(st.fixed_dictionaries(required, optional=optional))
    if valid:
        return st.one_of(options)
    return st.one_of(options * 3 + [json_values])  # the declared type 3 times in 4


# checks ----------------------------------------------------------------------------------------
def send(local: TestClient, path: str, body: Any):
    """POST ``body`` as JSON; NaN and Infinity are written as Python's json module writes them."""
    raw = json.dumps(body, allow_nan=True)
    return local.post(path, content=raw, headers={"content-type": "application/json"})


def check_answer(res, body: Any, path: str) -> None:
    assert res.status_code != 500, res.text
    assert res.status_code in (200, 400, 404, 413, 415, 422), (res.status_code, res.text)
    payload = res.json()
    if res.status_code != 200:
        assert isinstance(payload["detail"], str) and payload["detail"]
        return
    assert isinstance(body, dict)
    if path == "/v1/recommend":
        answer = RecommendResponse.model_validate(payload)
        assert len(answer.tracks) <= body.get("n", 100)
        return
    answer = ContinueResponse.model_validate(payload)
    n = body.get("n", 100)
    assert len(answer.tracks) <= n and len(answer.tracks) == len(answer.scores)
    assert len(set(answer.tracks)) == len(answer.tracks)
    assert all(math.isfinite(s) for s in answer.scores)
    assert answer.scores == sorted(answer.scores, reverse=True)
    given_ids = set(body.get("tracks", [])) | set(body.get("exclude", []))
    assert not set(answer.tracks) & given_ids
    assert set(answer.unknown_tracks) <= set(body.get("tracks", []))
    assert len(answer.tags) <= body.get("n_tags", 10)
    assert not set(answer.tags) & set(body.get("tags", []))


PATHS = ["/v1/continue", "/v1/recommend"]


# properties --------------------------------------------------------------------------------------
@FUZZ
@given(body=json_values | bodies_with_real_fields, path=st.sampled_from(PATHS))
def test_any_json_body(local, body, path) -> None:
    check_answer(send(local, path, body), body, path)


@FUZZ
@given(body=nearly_valid)
def test_nearly_valid_continue_requests(local, body) -> None:
    res = send(local, "/v1/continue", body)
    check_answer(res, body, "/v1/continue")
    n_ok = 1 <= body.get("n", 100) <= 1000 and 0 <= body.get("n_tags", 10) <= 100
    if n_ok and all(
        isinstance(t, str | int) for t in body.get("tracks", []) + body.get("exclude", [])
    ):
        return  # may still be a 422 for a bad id (empty, too long, not int64): checked above
    assert res.status_code == 422


@FUZZ
@given(raw=st.binary(max_size=300), path=st.sampled_from(PATHS))
def test_raw_bytes(local, raw, path) -> None:
    res = local.post(path, content=raw, headers={"content-type": "application/json"})
    assert res.status_code in (200, 400, 404, 422), (res.status_code, res.text)


@FUZZ
@given(data=st.data(), valid=st.booleans())
def test_bodies_drawn_from_the_openapi_schema(local, data, valid) -> None:
    """Bodies the schema accepts succeed (or are too large); any other gets a 4xx, never a 500."""
    spec = local.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        op = ops.get("post")
        if op is None or path.startswith("/admin/"):  # needs a token: test_service_ops.py
            continue
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        body = data.draw(from_schema(schema, spec, valid), label=path)
        res = send(local, path, body)
        check_answer(res, body, path)
        if valid:  # 404: a user id the model does not know; 413: the 1 MiB limit
            assert res.status_code in ((200, 413) if path == "/v1/continue" else (200, 404, 413))


def test_known_user_and_unknown_user(local) -> None:
    assert local.post("/v1/recommend", json={"user": 0, "n": 5}).status_code == 200
    assert local.post("/v1/recommend", json={"user": "0", "n": 5}).status_code == 200
    assert local.post("/v1/recommend", json={"user": 10**6}).status_code == 404
