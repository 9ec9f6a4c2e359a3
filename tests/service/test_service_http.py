"""The HTTP service end to end: a real ``segue serve`` process on a free loopback port.

Covers the happy path, cold start, unknown ids, every bound (n, seed count, body size by
Content-Length and by streamed bytes), malformed JSON, wrong types and content types, the
user endpoint, and that ``/v1/continue`` gives exactly the lists of ``continue_playlists`` and
of ``segue recommend --challenge`` / ``--questions`` for the same seeds. The Melon (tags) model
runs through the in-process app, the MPD model through the real server, and ``--workers 2``
through a second real server.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from segue import EASE, WRMF, Interactions, ItemKNN, MostPopular, UserKNN, load_model, save_model
from segue.cli.main import app as cli_app
from segue.data.melon_split import split_melon
from segue.data.mpd_split import split_mpd
from segue.data.readers.melon import read_melon
from segue.data.readers.mpd import read_challenge_set, read_mpd
from segue.data.synthetic.melon import generate_melon
from segue.data.synthetic.mpd import generate_mpd
from segue.inference import continue_playlists, playlist_interactions
from segue.inference.continuer import Continuer
from segue.service.app import MAX_BODY_BYTES, create_app
from segue.service.schemas import ContinueResponse, RecommendResponse

N_CHALLENGE = 60
PATHS = ["/v1/continue", "/v1/recommend"]


# fixtures ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mpd(tmp_path_factory) -> dict:
    """A small MPD split and an EASE model on it (pruned to 400 items, so back-fill runs)."""
    root = tmp_path_factory.mktemp("mpd")
    generate_mpd(root / "gen", n_playlists=700, n_tracks=1200, seed=0)
    split_mpd(root / "gen", root / "val", n_playlists=N_CHALLENGE, seed=0, unseen="drop")
    train = playlist_interactions(read_mpd(root / "val" / "train"), with_titles=True)
    save_model(EASE(l2=50.0, max_items=400).fit(train), root / "ease")
    queries = read_challenge_set(root / "val" / "challenge_set.json")
    return {
        "root": root,
        "model_dir": root / "ease",
        "model": load_model(root / "ease"),
        "challenge": root / "val" / "challenge_set.json",
        "queries": queries,
        "seeds": queries.track_lists(),
        "titles": dict(zip(queries.playlists["pid"], queries.playlists["name"], strict=True)),
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    """A ``segue serve`` child process: its base URL, the process, and its output so far."""

    url: str
    proc: subprocess.Popen
    log: IO[bytes]

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


@contextlib.contextmanager
def serve_process(
    model_dir: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    quiet: bool = True,
    timeout: float = 60.0,
) -> Iterator[Served]:
    """``segue serve`` in a child process, once ``/ready``; always stopped afterwards.

    ``quiet`` adds ``--no-access-log --log-level warning``; ``env`` is added to the environment.
    """
    output = ""
    for _attempt in range(3):  # a port taken between free_port() and bind: try another
        port = free_port()
        cmd = [sys.executable, "-m", "segue", "serve", str(model_dir), "--port", str(port)]
        cmd += ["--host", "127.0.0.1", *extra]
        if quiet:
            cmd += ["--no-access-log", "--log-level", "warning"]
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        with tempfile.TemporaryFile() as log:  # a file, not a pipe: the server never blocks
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env)
            url = f"http://127.0.0.1:{port}"
            try:
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline and proc.poll() is None:
                    try:
                        if httpx.get(f"{url}/ready", timeout=1.0).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.1)
                if proc.poll() is None and time.monotonic() < deadline:
                    yield Served(url, proc, log)
                    return
            finally:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                log.seek(0)
                output = log.read().decode(errors="replace")[-3000:]
    raise RuntimeError(f"segue serve did not start; its last output:\n{output}")


@contextlib.contextmanager
def running_server(model_dir: Path, *extra: str, timeout: float = 60.0) -> Iterator[str]:
    """``segue serve`` in a child process; yields its base URL and always stops it."""
    with serve_process(model_dir, *extra, timeout=timeout) as served:
        yield served.url


@pytest.fixture(scope="module")
def server(mpd) -> Iterator[str]:
    with running_server(mpd["model_dir"]) as url:
        yield url


@pytest.fixture(scope="module")
def client(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30.0) as c:
        yield c


def post(client: httpx.Client, body: object, path: str = "/v1/continue") -> httpx.Response:
    return client.post(path, json=body)


def continue_reference(model, seeds: list, n: int) -> tuple[list, list]:
    """``continue_playlists`` for one playlist with these seeds: (tracks, scores)."""
    import pandas as pd

    from segue.data.playlists import Playlists

    playlists = pd.DataFrame({"pid": [0], "name": [""]})
    entries = pd.DataFrame({"pid": [0] * len(seeds), "pos": range(len(seeds)), "track": seeds})
    tracks = pd.DataFrame({"track": list(dict.fromkeys(seeds))})
    (batch,) = continue_playlists(model, Playlists(playlists, entries, tracks), n)
    return batch.tracks[0], batch.track_scores[0].astype(float).tolist()


def some_seeds(mpd, length: int = 10) -> list:
    for seeds in mpd["seeds"].values():
        if len(seeds) >= length:
            return list(seeds)
    raise AssertionError("no challenge playlist that long")


# service basics ------------------------------------------------------------------------------
def test_health_model_info_and_openapi(client, mpd) -> None:
    assert client.get("/health").json() == {"status": "ok", "model": "EASE"}
    info = client.get("/v1/model").json()
    assert info["model"] == "EASE" and info["class_path"] == "segue.models.ease:EASE"
    assert info["params"]["max_items"] == 400
    model = mpd["model"]
    assert info["training"]["rows"] == len(model.users_)
    assert info["training"]["items"] == len(model.items_) > info["training"]["tracks"]  # titles
    assert info["training"]["interactions"] == model.history_.nnz
    assert info["version"]["segue"] and info["version"]["format_version"] == 2
    assert info["has_tags"] is False and info["uses_title"] is True
    schema = client.get("/openapi.json").json()
    assert {"/v1/continue", "/v1/recommend", "/health", "/v1/model"} <= set(schema["paths"])
    body = schema["components"]["schemas"]["ContinueRequest"]["properties"]
    assert body["n"]["maximum"] == 1000 and body["tracks"]["maxItems"] == 1000
    assert client.get("/nowhere").status_code == 404
    assert client.get("/v1/continue").status_code == 405


def test_happy_path(client, mpd) -> None:
    seeds = some_seeds(mpd, 10)
    res = post(client, {"tracks": seeds, "title": "road trip", "n": 100})
    assert res.status_code == 200, res.text
    body = ContinueResponse.model_validate(res.json())
    assert len(body.tracks) == len(body.scores) == 100
    assert len(set(body.tracks)) == 100 and not set(body.tracks) & set(seeds)
    assert body.scores == sorted(body.scores, reverse=True)
    assert body.unknown_tracks == [] and body.tags == [] and not body.cold_start
    assert body.model == "EASE" and 0 <= body.took_ms < 10_000
    assert res.headers["content-type"] == "application/json"


def test_cold_start_is_the_popularity_list(client, mpd) -> None:
    model = mpd["model"]
    tracks = Continuer(model).track_idx  # not the title columns
    popular = np.sort(model.fallback_scores_[tracks])[::-1][:50].astype(float).tolist()
    for body in ({"n": 50}, {"n": 50, "title": "qzxv wqpt"}, {"n": 50, "tags": ["rock"]}):
        res = post(client, body).json()
        assert res["cold_start"] is True
        assert res["tracks"] == continue_reference(model, [], 50)[0]
        assert res["scores"] == popular  # playlists per track
    assert post(client, {"n": 50, "tags": ["rock"]}).json()["unknown_tags"] == ["rock"]
    # the default n is 100
    assert len(post(client, {}).json()["tracks"]) == 100


def test_unknown_ids_are_reported_not_fatal(client, mpd) -> None:
    seeds = some_seeds(mpd, 5)[:5]
    unknown = ["spotify:track:nope", 12345, "x" * 512]
    mixed = [unknown[0], *seeds[:2], unknown[1], *seeds[2:], unknown[2]]
    res = post(client, {"tracks": mixed, "n": 30}).json()
    assert res["unknown_tracks"] == unknown
    known_only = post(client, {"tracks": seeds, "n": 30}).json()
    assert res["tracks"] == known_only["tracks"] and res["scores"] == known_only["scores"]
    only_unknown = post(client, {"tracks": unknown, "n": 30}).json()
    assert only_unknown["cold_start"] is True
    assert only_unknown["tracks"] == post(client, {"n": 30}).json()["tracks"]


def test_seeds_and_exclude_never_come_back(client, mpd) -> None:
    seeds = some_seeds(mpd, 10)
    first = post(client, {"tracks": seeds, "n": 40}).json()["tracks"]
    exclude = first[:5] + first[10:12] + ["spotify:track:unknown"]
    res = post(client, {"tracks": seeds, "n": 40, "exclude": exclude}).json()
    assert not set(res["tracks"]) & (set(exclude) | set(seeds)) and len(res["tracks"]) == 40
    longer, _ = continue_reference(mpd["model"], seeds, 40 + len(exclude))
    assert res["tracks"] == [t for t in longer if t not in exclude][:40]
    # excluding from the cold-start list too
    cold = post(client, {"n": 10, "exclude": exclude}).json()["tracks"]
    assert not set(cold) & set(exclude)


# equality with the library and the CLI -------------------------------------------------------
def test_continue_equals_continue_playlists_and_segue_recommend(client, mpd, tmp_path) -> None:
    model, queries, seeds = mpd["model"], mpd["queries"], mpd["seeds"]
    n = 500
    expected: dict = {}
    for batch in continue_playlists(model, queries, n):
        for pid, tracks, scores in zip(batch.pids, batch.tracks, batch.track_scores, strict=True):
            expected[pid] = (tracks, scores.astype(float).tolist())
    out = tmp_path / "submission.csv"
    res = CliRunner().invoke(
        cli_app,
        [
            "recommend",
            str(mpd["model_dir"]),
            "--challenge",
            str(mpd["challenge"]),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("team_info")
    cli = {int(line.split(",")[0]): [t.strip() for t in line.split(",")[1:]] for line in lines[1:]}
    assert set(cli) == set(expected) and len(cli) == N_CHALLENGE
    cold = 0
    for pid, (tracks, scores) in expected.items():
        title = mpd["titles"][pid]  # None or NaN when the category has no title
        body = {"tracks": list(seeds[pid]), "n": n}
        if isinstance(title, str):
            body["title"] = title
        got = post(client, body).json()
        assert got["tracks"] == tracks == cli[pid], pid
        assert got["scores"] == scores, pid  # float32 values, exactly
        cold += got["cold_start"]
    # a title-only playlist is cold only when none of its title words is known
    assert cold < sum(len(s) == 0 for s in seeds.values())


def test_melon_tags_equal_segue_recommend_questions(tmp_path) -> None:
    generate_melon(tmp_path / "gen", n_playlists=400, n_songs=600, n_tags=60, seed=0)
    split_melon(tmp_path / "gen" / "train.json", tmp_path / "val", fraction=0.1, seed=0)
    train = playlist_interactions(
        read_melon(tmp_path / "val" / "train.json"), with_tags=True, with_titles=True
    )
    save_model(EASE(l2=20.0).fit(train), tmp_path / "melon")
    out = tmp_path / "results.json"
    res = CliRunner().invoke(
        cli_app,
        [
            "recommend",
            str(tmp_path / "melon"),
            "--questions",
            str(tmp_path / "val" / "questions.json"),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    results = {r["id"]: r for r in json.loads(out.read_text())}
    questions = json.loads((tmp_path / "val" / "questions.json").read_text())
    with TestClient(create_app(tmp_path / "melon")) as local:
        assert local.get("/v1/model").json()["has_tags"] is True
        for q in questions:
            body = {"tracks": q["songs"], "tags": q["tags"], "title": q["plylst_title"]}
            got = local.post("/v1/continue", json={**body, "n": 100, "n_tags": 10}).json()
            assert got["tracks"] == results[q["id"]]["songs"], q["id"]
            assert got["tags"] == results[q["id"]]["tags"], q["id"]
            assert not set(got["tags"]) & set(q["tags"])
        # song ids sent as strings are found too
        q = next(q for q in questions if q["songs"])
        as_str = local.post(
            "/v1/continue",
            json={
                "tracks": [str(s) for s in q["songs"]],
                "tags": q["tags"],
                "title": q["plylst_title"],
            },
        )
        assert as_str.json()["tracks"] == results[q["id"]]["songs"]
        # a user (training playlist) of a tag model gets tracks, and tags apart
        user = int(train.users.ids[0])
        rec = local.post("/v1/recommend", json={"user": user, "n": 20, "n_tags": 3}).json()
        assert len(rec["tracks"]) == 20 and len(rec["tags"]) == 3
        assert all(isinstance(t, int) for t in rec["tracks"])


@pytest.mark.parametrize(
    "make",
    [
        lambda: MostPopular(),
        lambda: EASE(l2=50.0, max_items=200),
        lambda: ItemKNN(neighbors=50),
        lambda: UserKNN(neighbors=30),
        lambda: WRMF(factors=16, iterations=4, retrieval="faiss-exact"),
        lambda: WRMF(factors=16, iterations=4),
    ],
    ids=["popularity", "ease", "itemknn", "userknn", "wrmf-faiss", "wrmf-dense"],
)
def test_fast_path_equals_continue_playlists_for_every_model(mpd, make) -> None:
    """The library route of the service (no pandas) against the batch route of the CLI."""
    model = make().fit(
        playlist_interactions(read_mpd(mpd["root"] / "val" / "train"), with_titles=True)
    )
    cont = Continuer(model)
    cont.warm_up()
    # WRMF folds in by a batched solve and a product: one row (BLAS gemv) and a batch (gemm)
    # round differently in the last bit of float32 (faiss too: the title columns route every
    # model through score + topk)
    dense_wrmf = isinstance(model, WRMF)
    for batch in continue_playlists(model, mpd["queries"], 50, batch_size=7):
        for pid, tracks, scores in zip(batch.pids, batch.tracks, batch.track_scores, strict=True):
            title = mpd["titles"][pid]
            title = title if isinstance(title, str) else None
            got = cont.continue_playlist(list(mpd["seeds"][pid]), title=title, n=50)
            if not dense_wrmf:
                assert got.tracks == tracks and got.scores == scores.astype(float).tolist()
            else:
                # a one-row product (BLAS gemv) and a batch (gemm) round differently in the
                # last bit of float32, so only near-ties could order differently
                np.testing.assert_allclose(got.scores, scores, rtol=1e-5, atol=1e-6)
                assert len(set(got.tracks) & set(tracks)) >= 0.95 * len(tracks)


def test_fuzzed_bodies_over_http_never_get_a_500(client) -> None:
    values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
        max_leaves=12,
    )
    fields = st.sampled_from(["tracks", "title", "tags", "n", "n_tags", "exclude", "user"])

    @settings(max_examples=60, deadline=None)
    @given(body=values | st.dictionaries(fields, values), path=st.sampled_from(PATHS))
    def run(body, path) -> None:
        raw = json.dumps(body, allow_nan=True)
        res = client.post(path, content=raw, headers={"content-type": "application/json"})
        assert res.status_code in (200, 400, 404, 422), (res.status_code, res.text)
        assert isinstance(res.json()["detail" if res.status_code != 200 else "model"], str)

    run()


# /v1/recommend -----------------------------------------------------------------------------------
def test_recommend_for_known_users(client, mpd) -> None:
    model = mpd["model"]
    pid = model.users_.ids[3]
    res = post(client, {"user": pid, "n": 25}, "/v1/recommend")
    assert res.status_code == 200, res.text
    body = RecommendResponse.model_validate(res.json())
    # the model's own list minus its title columns (never returned as tracks)
    ((_, everything),) = list(model.recommend([pid], 200).lists())
    expected = [i for i in everything if not str(i).startswith("title")][:25]
    assert body.tracks == expected and body.user == pid
    as_str = post(client, {"user": str(pid), "n": 25}, "/v1/recommend").json()
    assert as_str["tracks"] == expected
    missing = post(client, {"user": "no-such-user"}, "/v1/recommend")
    assert missing.status_code == 404 and "no-such-user" in missing.json()["detail"]


def test_recommend_on_a_listen_count_model(tmp_path) -> None:
    rng = np.random.default_rng(0)
    users = [f"u{u}" for u in rng.integers(0, 30, 600)]
    items = [f"s{i}" for i in rng.integers(0, 80, 600)]
    counts = rng.integers(1, 20, 600)
    train = Interactions.from_arrays(users, items, counts)
    save_model(EASE(l2=10.0).fit(train), tmp_path / "listens")
    model = load_model(tmp_path / "listens")
    with TestClient(create_app(tmp_path / "listens")) as local:
        for user in ("u1", "u7"):
            got = local.post("/v1/recommend", json={"user": user, "n": 10}).json()
            ((_, expected),) = list(model.recommend([user], 10).lists())
            assert got["tracks"] == expected
        assert local.post("/v1/recommend", json={"user": "u999"}).status_code == 404


# bounds and bad requests ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"n": 0}, "n"),
        ({"n": 1001}, "n"),
        ({"n": -5}, "n"),
        ({"n_tags": 101}, "n_tags"),
        ({"tracks": ["t"] * 1001}, "tracks"),
        ({"exclude": ["t"] * 10_001}, "exclude"),
        ({"tags": ["rock"] * 101}, "tags"),
        ({"title": "x" * 1001}, "title"),
        ({"tracks": ["x" * 513]}, "tracks"),
        ({"tracks": [""]}, "tracks"),
        ({"tracks": [2**64]}, "tracks"),
    ],
)
def test_every_bound_is_a_422_with_the_field(client, body, field) -> None:
    res = post(client, body)
    assert res.status_code == 422, res.text
    err = res.json()
    assert field in err["detail"] and err["errors"][0]["loc"][:2] == ["body", field]


def test_bounds_themselves_are_accepted(client, mpd) -> None:
    seeds = list(mpd["model"].items_.ids[:1000])
    res = post(client, {"tracks": seeds, "n": 1, "exclude": ["t"] * 10_000})
    assert res.status_code == 200 and len(res.json()["tracks"]) == 1
    res = post(client, {"n": 1000})
    assert res.status_code == 200 and len(res.json()["tracks"]) == 1000


def test_body_size_limit(client) -> None:
    # exactly 1 MiB of valid JSON passes; one byte more is refused, declared or streamed
    fits = b"{" + b" " * (MAX_BODY_BYTES - 2) + b"}"
    headers = {"content-type": "application/json"}
    assert client.post("/v1/continue", content=fits, headers=headers).status_code == 200
    big = fits + b" "
    res = client.post("/v1/continue", content=big, headers=headers)
    assert res.status_code == 413 and "too large" in res.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    res = client.post("/v1/continue", content=chunks(), headers=headers)
    assert res.status_code == 413 and "received" in res.json()["detail"]
    # the server is still fine afterwards
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    "raw",
    [b'{"n": 3,', b"{'n': 3}", b"", b"nul", b'{"tracks": [1, 2,]}', b"\xff\xfe{", b"[" * 100_000],
)
def test_malformed_json_is_a_400(client, raw) -> None:
    res = client.post("/v1/continue", content=raw, headers={"content-type": "application/json"})
    if raw == b"":  # no body at all: the body is required
        assert res.status_code == 422
    else:
        assert res.status_code == 400, res.text
        assert "not valid JSON" in res.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"n": "5"}, "n"),
        ({"n": 5.0}, "n"),
        ({"n": True}, "n"),
        ({"n": None}, "n"),
        ({"tracks": "spotify:track:x"}, "tracks"),
        ({"tracks": [["a"]]}, "tracks"),
        ({"tracks": [None]}, "tracks"),
        ({"tracks": [1.5]}, "tracks"),
        ({"tracks": [True]}, "tracks"),
        ({"tags": [1]}, "tags"),
        ({"title": 5}, "title"),
        ({"exclude": {"a": 1}}, "exclude"),
        ({"k": 10}, "k"),
    ],
)
def test_wrong_types_are_a_422(client, body, field) -> None:
    res = post(client, body)
    assert res.status_code == 422, res.text
    assert field in res.json()["detail"]


@pytest.mark.parametrize("body", [[], None, "tracks", 5, [{"n": 3}]])
def test_a_body_that_is_not_an_object_is_a_422(client, body) -> None:
    assert post(client, body).status_code == 422
    assert post(client, body, "/v1/recommend").status_code == 422


def test_recommend_bad_requests(client) -> None:
    for body in ({}, {"user": None}, {"user": 1.5}, {"user": "u", "n": 0}, {"user": [1]}):
        res = post(client, body, "/v1/recommend")
        assert res.status_code == 422, (body, res.text)


def test_non_json_content_type_is_a_415(client) -> None:
    res = client.post("/v1/continue", content=b'{"n": 3}', headers={"content-type": "text/plain"})
    assert res.status_code == 415 and "application/json" in res.json()["detail"]
    res = client.post("/v1/continue", data={"n": "3"})
    assert res.status_code == 415


def test_a_genuine_bug_is_a_logged_500_without_a_traceback(mpd, caplog) -> None:
    app = create_app(mpd["model_dir"])
    with TestClient(app, raise_server_exceptions=False) as local:

        def broken(*args, **kwargs):
            raise RuntimeError("secret internals")

        app.state.holder.current().continuer.continue_playlist = broken
        res = local.post("/v1/continue", json={"n": 5})
        assert res.status_code == 500
        assert res.json() == {"detail": "internal error: the server could not answer"}
        assert "secret internals" in caplog.text  # logged with its traceback
        assert local.get("/health").status_code == 200


# several workers -------------------------------------------------------------------------------
def test_workers_serve_the_same_lists(mpd) -> None:
    seeds = some_seeds(mpd, 5)
    expected, _ = continue_reference(mpd["model"], seeds, 20)
    with running_server(mpd["model_dir"], "--workers", "2") as url:
        with httpx.Client(base_url=url, timeout=30.0) as c:
            for _ in range(4):
                got = c.post("/v1/continue", json={"tracks": seeds, "n": 20}).json()
                assert got["tracks"] == expected


def test_serve_refuses_a_directory_that_is_no_model(tmp_path) -> None:
    res = CliRunner().invoke(cli_app, ["serve", str(tmp_path), "--port", "1"])
    assert res.exit_code == 1 and "not a segue model directory" in res.output
    res = CliRunner().invoke(cli_app, ["serve", str(tmp_path), "--workers", "0"])
    assert res.exit_code == 1 and "--workers" in res.output


def test_two_stage_model_is_served_with_the_lists_of_segue_recommend(mpd, tmp_path) -> None:
    from segue import MostPopular, UserKNN
    from segue.ranking.two_stage import TwoStage

    train = read_mpd(mpd["root"] / "val" / "train")
    model = TwoStage(
        {"userknn": UserKNN(), "popularity": MostPopular()}, n=200, per_category=8
    ).fit(train)
    save_model(model, tmp_path / "ts")
    expected = load_model(tmp_path / "ts").continue_playlists(mpd["queries"], 50)
    with running_server(tmp_path / "ts") as url, httpx.Client(base_url=url, timeout=30) as c:
        info = c.get("/v1/model").json()
        assert info["model"] == "TwoStage" and info["uses_title"] is True
        assert info["training"]["sources"] == ["userknn", "popularity"]
        for pid in list(expected)[:25]:
            title = mpd["titles"][pid]
            body = {"tracks": list(mpd["seeds"][pid]), "n": 50}
            if isinstance(title, str):
                body["title"] = title
            got = post(c, body).json()
            assert got["tracks"] == expected[pid], pid
            assert got["model"] == "TwoStage" and got["scores"] == sorted(got["scores"])[::-1]
        pid = next(p for p in expected if mpd["seeds"][p])
        banned = expected[pid][:3]
        got = post(c, {"tracks": list(mpd["seeds"][pid]), "n": 50, "exclude": banned}).json()
        assert not set(banned) & set(got["tracks"]) and len(got["tracks"]) == 50
        # a training playlist is answered like any model's user: its continuation, seeds excluded
        first = train.playlists["pid"].iloc[0]
        res = post(c, {"user": int(first), "n": 5}, "/v1/recommend")
        assert res.status_code == 200 and len(res.json()["tracks"]) == 5
        assert not set(res.json()["tracks"]) & set(train.track_lists()[first])
        res = post(c, {"user": -12345, "n": 5}, "/v1/recommend")
        assert res.status_code == 404
