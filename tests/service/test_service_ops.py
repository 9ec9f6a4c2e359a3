"""Operating the service: /metrics, /health apart from /ready, JSON access logs, hot reload.

The "Must show" of issue 17 runs over a real ``segue serve`` process (``serve_process``):
``/metrics`` after known requests, ``HEAD /health``, ``/ready``, JSON access-log lines, and a
reload under load (SIGHUP and ``POST /admin/reload`` while two threads keep asking: no failed
request, every answer the list of the model that says it answered, a bad directory keeps the
old model and counts a failure). The in-process tests hold a load open with a gate, to show
what happens *during* one: ``/ready`` is 503 before the first model, and the old model answers
while a new one loads.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from test_service_http import Served, serve_process

import segue.service.app as service_app
from segue import EASE, MostPopular, load_model, save_model
from segue.data.readers.mpd import read_mpd
from segue.data.synthetic.mpd import generate_mpd
from segue.inference import playlist_interactions
from segue.inference.continuer import Continuer
from segue.serialization import read_manifest
from segue.service.app import create_app

TOKEN = "test-admin-token"
N = 10


# fixtures ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> dict[str, Path]:
    """An EASE and a MostPopular model of one small MPD slice, and a half-copied EASE."""
    root = tmp_path_factory.mktemp("ops")
    generate_mpd(root / "gen", n_playlists=300, n_tracks=500, seed=0)
    train = playlist_interactions(read_mpd(root / "gen"), with_titles=True)
    save_model(EASE(l2=50.0).fit(train), root / "ease")
    save_model(MostPopular().fit(train), root / "pop")
    shutil.copytree(root / "ease", root / "bad")
    arrays = root / "bad" / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:1000])  # a copy cut short
    return {"root": root, "ease": root / "ease", "pop": root / "pop", "bad": root / "bad"}


@pytest.fixture(scope="module")
def seeds(dirs) -> list[str]:
    model = load_model(dirs["ease"])
    return [str(t) for t in model.items_.ids[:3]]


@pytest.fixture(scope="module")
def expected(dirs, seeds) -> dict[str, list]:
    """The list each model gives for ``seeds``: an answer must be that of the model it names."""
    out = {}
    for key in ("ease", "pop"):
        model = load_model(dirs[key])
        out[type(model).__name__] = Continuer(model).continue_playlist(seeds, n=N).tracks
    assert out["EASE"] != out["MostPopular"]
    return out


@pytest.fixture(scope="module")
def live(dirs) -> Path:
    """The directory the server starts on (an EASE copy), rewritten by the reload test."""
    path = dirs["root"] / "live"
    shutil.copytree(dirs["ease"], path)
    return path


@pytest.fixture(scope="module")
def served(live) -> Iterator[Served]:
    env = {service_app.ADMIN_TOKEN_ENV: TOKEN}
    with serve_process(live, "--log-format", "json", env=env, quiet=False) as s:
        yield s


@pytest.fixture(scope="module")
def http(served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30.0) as c:
        yield c


def metric_values(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a /metrics page by (name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(page: dict, name: str, **labels: str) -> float:
    return page.get((name, frozenset(labels.items())), 0.0)


def scrape(client: httpx.Client | TestClient) -> dict[tuple[str, frozenset], float]:
    res = client.get("/metrics")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/plain")
    return metric_values(res.text)


def admin(client, body: dict | None = None, token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post("/admin/reload", json=body, headers=headers)


# over a real server ------------------------------------------------------------------------------
def test_health_ready_and_metrics_over_http(http, dirs, seeds) -> None:
    head = http.head("/health")
    assert head.status_code == 200 and head.content == b""
    assert http.get("/health").json() == {"status": "ok", "model": "EASE"}
    ready = http.get("/ready").json()
    assert ready["status"] == "ready" and ready["model"] == "EASE"
    assert http.head("/ready").status_code == 200

    before = scrape(http)
    ok = {"tracks": seeds, "n": 5}
    cold = {"tracks": ["no-such-track", "nor-this"], "n": 5}  # unknown ids only: cold start
    for body in (ok, ok, ok, cold):
        assert http.post("/v1/continue", json=body).status_code == 200
    assert http.post("/v1/continue", json={"n": 0}).status_code == 422
    assert http.get("/no/such/route").status_code == 404
    after = scrape(http)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    route = {"route": "/v1/continue", "method": "POST"}
    assert delta("segue_http_requests_total", **route, status="200") == 4
    assert delta("segue_http_requests_total", **route, status="422") == 1
    assert delta("segue_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert delta("segue_http_request_duration_seconds_count", **route) == 5
    assert delta("segue_http_request_duration_seconds_bucket", **route, le="+Inf") == 5
    assert 0 < delta("segue_http_request_duration_seconds_sum", **route) < 5 * 10
    assert delta("segue_cold_start_queries_total") == 1
    assert delta("segue_unknown_tracks_total") == 2
    assert value(after, "segue_http_requests_total", route="/health", method="HEAD", status="200")
    info = {
        k: v for (name, labels), _ in after.items() if name == "segue_model_info" for k, v in labels
    }
    assert info["name"] == "EASE" and info["class_path"] == "segue.models.ease:EASE"
    assert info["trained_at"] == read_manifest(dirs["ease"])["created"]
    assert value(after, "segue_model_ready") == 1
    assert value(after, "segue_model_reloads_total", trigger="admin", result="failure") == 0


def test_access_log_is_json_lines_with_the_request_id(http, served) -> None:
    res = http.post("/v1/continue", json={"n": 3}, headers={"X-Request-ID": "req-42"})
    assert res.headers["x-request-id"] == "req-42"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in served.output().splitlines() if line.startswith("{")]
        mine = [x for x in lines if x.get("request_id") == "req-42"]
        if mine:
            break
        time.sleep(0.05)
    (line,) = mine
    assert line["method"] == "POST" and line["path"] == "/v1/continue" and line["status"] == 200
    assert 0 < line["latency_ms"] < 10_000 and line["time"].endswith("+00:00")
    # every line is JSON, uvicorn's own and the model-loaded message included
    text = [line for line in served.output().splitlines() if line.strip()]
    assert all(line.startswith("{") for line in text), text[:3]
    assert json.loads(text[0])["message"].startswith("serving EASE from")
    assert any(x.get("message", "").startswith("loaded EASE") for x in lines)


def test_reload_under_load_fails_no_request(served, http, dirs, live, seeds, expected) -> None:
    answers: list[tuple[float, float, str, bool]] = []  # sent, answered, model, right list
    failures: list[str] = []
    stop = threading.Event()

    def keep_asking() -> None:
        with httpx.Client(base_url=served.url, timeout=30.0) as c:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    res = c.post("/v1/continue", json={"tracks": seeds, "n": N})
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if res.status_code != 200:
                    failures.append(f"{res.status_code} {res.text[:200]}")
                    continue
                model = res.json()["model"]
                right = res.json()["tracks"] == expected[model]
                answers.append((sent, time.monotonic(), model, right))

    def wait_until(check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 20
        while not check():
            assert time.monotonic() < deadline, what
            time.sleep(0.05)

    def ready_model() -> str:
        return http.get("/ready").json()["model"]

    before = scrape(http)
    threads = [threading.Thread(target=keep_asking) for _ in range(2)]
    reloading: list[tuple[float, float]] = []  # admin reloads: sent, answered
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        # 1. a new model written into the served directory, re-read on SIGHUP
        save_model(load_model(dirs["pop"]), live)
        served.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: ready_model() == "MostPopular", "SIGHUP did not swap the model")
        # 2. admin requests pointing at other directories, back and forth
        for key in ["ease", "pop"] * 5 + ["ease"]:
            start = time.monotonic()
            res = admin(http, {"model_dir": str(dirs[key])})
            reloading.append((start, time.monotonic()))
            assert res.status_code == 200, res.text
            assert res.json()["model_dir"] == str(dirs[key])
        assert ready_model() == "EASE"
        # 3. a bad directory: 422, the old model keeps serving
        res = admin(http, {"model_dir": str(dirs["bad"])})
        assert res.status_code == 422
        assert str(dirs["bad"]) in res.json()["detail"]
        assert "still serving EASE" in res.json()["detail"]
        assert ready_model() == "EASE"
        # 4. back to the live directory, then SIGHUP while it is broken: kept as well
        assert admin(http, {"model_dir": str(live)}).json()["model"] == "MostPopular"
        (live / "arrays.npz").write_bytes(b"not a zip")
        served.proc.send_signal(signal.SIGHUP)
        failed = (
            "segue_model_reloads_total",
            frozenset({"trigger": "sighup", "result": "failure"}.items()),
        )
        wait_until(
            lambda: scrape(http).get(failed, 0) > before.get(failed, 0), "no failure counted"
        )
        time.sleep(0.3)
        assert ready_model() == "MostPopular"
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert failures == []
    assert len(answers) > 50 and all(right for *_, right in answers)
    assert answers[0][2] == "EASE" and answers[-1][2] == "MostPopular"
    # requests were in flight while the admin reloads loaded their models
    during = [a for a in answers if any(a[0] < end and a[1] > begin for begin, end in reloading)]
    assert len(during) >= 5, (len(during), len(answers))
    after = scrape(http)
    for trigger, result, count in (
        ("sighup", "success", 1),
        ("sighup", "failure", 1),
        ("admin", "success", 12),
        ("admin", "failure", 1),
    ):
        got = value(after, "segue_model_reloads_total", trigger=trigger, result=result)
        assert (
            got - value(before, "segue_model_reloads_total", trigger=trigger, result=result)
            == count
        )
    assert "reload failed" in served.output()


# in process: what happens while a load is running -------------------------------------------------
class Gate:
    """A loader that waits for :attr:`opened` before each load after the first ``after``."""

    def __init__(self, real: Callable, after: int = 0) -> None:
        self.real = real
        self.calls = 0
        self.after = after
        self.opened = threading.Event()
        self.waiting = threading.Event()

    def __call__(self, model_dir):
        self.calls += 1
        if self.calls > self.after:
            self.waiting.set()
            assert self.opened.wait(30)
        return self.real(model_dir)


@pytest.fixture
def gate(monkeypatch) -> Callable[[int], Gate]:
    """``gate(after)``: the apps created next load through a :class:`Gate`."""

    def make(after: int = 0) -> Gate:
        g = Gate(service_app.load_state, after)
        monkeypatch.setattr(service_app, "load_state", g)
        return g

    return make


def in_thread(fn: Callable[[], httpx.Response]) -> tuple[threading.Thread, list]:
    box: list = []
    thread = threading.Thread(target=lambda: box.append(fn()))
    thread.start()
    return thread, box


def test_ready_is_503_until_the_first_model_loads(dirs, seeds, gate) -> None:
    g = gate(0)
    app = create_app(dirs["ease"], load_in_background=True)
    with TestClient(app) as local:
        assert g.waiting.wait(10)
        assert local.get("/health").json() == {"status": "ok", "model": None}
        res = local.get("/ready")
        assert res.status_code == 503 and "still loading" in res.json()["detail"]
        assert res.headers["retry-after"]
        assert local.head("/ready").status_code == 503
        assert value(scrape(local), "segue_model_ready") == 0
        # a model request waits for the load instead of failing
        thread, box = in_thread(lambda: local.post("/v1/continue", json={"tracks": seeds}))
        try:
            time.sleep(0.2)
            assert box == []
        finally:
            g.opened.set()
            thread.join(30)
        assert box[0].status_code == 200 and box[0].json()["model"] == "EASE"
        assert local.get("/ready").json()["model"] == "EASE"
        assert value(scrape(local), "segue_model_ready") == 1


def test_the_old_model_answers_while_the_new_one_loads(dirs, seeds, expected, gate) -> None:
    g = gate(1)  # the first load goes through, the reload waits at the gate
    app = create_app(dirs["ease"], admin_token=TOKEN)
    with TestClient(app) as local:
        thread, box = in_thread(lambda: admin(local, {"model_dir": str(dirs["pop"])}))
        try:
            assert g.waiting.wait(10)
            for _ in range(5):  # the reload is under way: the old model answers, at once
                start = time.perf_counter()
                res = local.post("/v1/continue", json={"tracks": seeds, "n": N})
                assert res.status_code == 200, res.text
                assert res.json()["model"] == "EASE" and res.json()["tracks"] == expected["EASE"]
                assert time.perf_counter() - start < 5
            assert local.get("/ready").json()["model"] == "EASE"
        finally:
            g.opened.set()
            thread.join(30)
        assert box[0].status_code == 200 and box[0].json()["model"] == "MostPopular"
        res = local.post("/v1/continue", json={"tracks": seeds, "n": N}).json()
        assert res["model"] == "MostPopular" and res["tracks"] == expected["MostPopular"]


def test_admin_route_is_guarded(dirs) -> None:
    with TestClient(create_app(dirs["pop"])) as local:  # no token: disabled, and says why
        res = admin(local, token="anything")
        assert res.status_code == 403 and service_app.ADMIN_TOKEN_ENV in res.json()["detail"]
    with TestClient(create_app(dirs["pop"], admin_token=TOKEN)) as local:
        for token in (None, "wrong", TOKEN + "x"):
            res = admin(local, token=token)
            assert res.status_code == 401 and res.headers["www-authenticate"] == "Bearer"
        assert admin(local, {"model_dir": 5}).status_code == 422
        assert admin(local, {"dir": "x"}).status_code == 422
        res = admin(local)  # no body: the same directory again
        assert res.status_code == 200 and res.json()["model_dir"] == str(dirs["pop"])
        metrics = scrape(local)
        assert value(metrics, "segue_model_reloads_total", trigger="admin", result="success") == 1
    with TestClient(create_app(dirs["pop"], admin_token=TOKEN, workers=2)) as local:
        res = admin(local)
        assert res.status_code == 409 and "SIGHUP" in res.json()["detail"]


def test_a_bad_first_model_is_not_ready_until_a_good_one_loads(dirs, seeds) -> None:
    app = create_app(dirs["bad"], load_in_background=True, admin_token=TOKEN)
    with TestClient(app) as local:
        deadline = time.monotonic() + 10
        while "no model is loaded" not in local.get("/ready").text:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        res = local.get("/ready")
        assert res.status_code == 503 and str(dirs["bad"]) in res.json()["detail"]
        res = local.post("/v1/continue", json={"tracks": seeds})
        assert res.status_code == 503 and str(dirs["bad"]) in res.json()["detail"]
        assert local.get("/health").status_code == 200  # alive, not ready
        assert admin(local, {"model_dir": str(dirs["ease"])}).status_code == 200
        assert local.get("/ready").json()["model"] == "EASE"
        assert local.post("/v1/continue", json={"tracks": seeds}).status_code == 200
