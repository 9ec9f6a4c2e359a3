"""Clients that hold connections, smuggle bodies or probe with HEAD (issue 13, item 11).

Each test runs ``segue serve`` in a child process (``running_server``) with short deadlines and
talks raw HTTP/1.1 over loopback sockets; every loop is bounded in count and time.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from test_service_http import running_server

from segue import MostPopular, save_model
from segue.data.interactions import Interactions
from segue.data.synthetic.listens import generate_listens


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    frame = generate_listens(200, 300, seed=0)
    data = Interactions.from_frame(frame, weight="count")
    return save_model(MostPopular().fit(data), tmp_path_factory.mktemp("m") / "pop")


def connect(url: str) -> socket.socket:
    parsed = urlparse(url)
    sock = socket.create_connection((parsed.hostname, parsed.port), timeout=10)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``sock`` (reads drained), or None if it stayed open."""
    start = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - start < seconds:
        try:
            if sock.recv(65536) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - start
    return None


def test_slow_clients_are_dropped_and_others_served(model_dir) -> None:
    args = ("--header-timeout", "1", "--body-timeout", "1")
    with running_server(model_dir, *args) as url:
        silent = connect(url)
        half_line = connect(url)
        half_line.sendall(b"POST /v1/continue HTTP/1.1\r\nHost: x\r\n")
        half_body = connect(url)
        half_body.sendall(
            b"POST /v1/continue HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"tracks": ['
        )
        # the server still answers others while the three hold their connections
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        for sock in (silent, half_line, half_body):
            took = closed_within(sock, 6.0)
            assert took is not None, "a slow client kept its connection"
            sock.close()


def test_head_health_and_smuggling(model_dir) -> None:
    with running_server(model_dir) as url:
        head = httpx.head(f"{url}/health", timeout=5)
        assert head.status_code == 200 and head.content == b""
        sock = connect(url)
        body = b'{"tracks": []}'
        sock.sendall(
            b"POST /v1/continue HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            + hex(len(body))[2:].encode()
            + b"\r\n"
            + body
            + b"\r\n0\r\n\r\n"
        )
        sock.settimeout(5)
        answer = sock.recv(65536)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 400"), answer[:200]


def test_connection_limit_gives_503(model_dir) -> None:
    with running_server(model_dir, "--max-connections", "2") as url:
        held = [connect(url) for _ in range(2)]
        try:
            time.sleep(0.3)
            got = httpx.get(f"{url}/health", timeout=5)
            assert got.status_code == 503
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the server did not recover once the connections were closed")
