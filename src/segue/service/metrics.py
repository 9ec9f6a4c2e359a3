"""What an operator scrapes at ``GET /metrics``: requests, latencies, the model, reloads.

Why it looks like this:

- **One** :class:`prometheus_client.CollectorRegistry` **per app**, not the library's global
  one: several apps in one process (tests, a server and its reload candidate) never collide,
  and ``/metrics`` shows exactly the app that answered.
- **Requests are counted by route template** (``/v1/continue``), never by raw path: a client
  probing random URLs adds one ``route="unmatched"`` series, not one series per URL.
- **The middleware is plain ASGI**, outside the body limit, so a 413 or a 500 is counted and
  timed like any answer; the same place writes the access log (:mod:`segue.service.logs`), so
  the status and latency in the log and in the histogram are the same numbers.
- With ``segue serve --workers N`` each worker process has its own counters; a scrape reads
  the worker that took the connection (Prometheus's multiprocess mode is not used).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from segue._extras import require

if TYPE_CHECKING:
    from segue.service.app import ServiceState

__all__ = ["LATENCY_BUCKETS", "REQUEST_ID_HEADER", "RequestObserver", "ServiceMetrics"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Histogram bounds in seconds: a continuation takes milliseconds, a cold cache a second."""
REQUEST_ID_HEADER = "x-request-id"
"""A client's request id, echoed in the response and written in the access log."""
_MAX_REQUEST_ID = 128

access_log = logging.getLogger("segue.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ServiceMetrics:
    """The service's Prometheus metrics, in a registry of their own (module docstring)."""

    def __init__(self) -> None:
        prom = require("prometheus_client", "GET /metrics")
        self._prom = prom
        self.registry = prom.CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = prom.Counter(
            "segue_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = prom.Histogram(
            "segue_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route template.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model = prom.Info(
            "segue_model",
            "The model served: name, class, model directory, when it was trained and loaded.",
            registry=r,
        )
        self.ready = prom.Gauge(
            "segue_model_ready", "1 once a model is loaded and answering, else 0.", registry=r
        )
        self.loaded_at = prom.Gauge(
            "segue_model_loaded_timestamp_seconds",
            "Unix time the model now served was loaded.",
            registry=r,
        )
        self.load_seconds = prom.Gauge(
            "segue_model_load_seconds",
            "Seconds the last successful load took (read, build, warm up, check).",
            registry=r,
        )
        self.reloads = prom.Counter(
            "segue_model_reloads",
            "Model loads after start-up by trigger (sighup, admin) and result (success, "
            "failure: the previous model kept serving).",
            ["trigger", "result"],
            registry=r,
        )
        self.cold_start = prom.Counter(
            "segue_cold_start_queries",
            "Continuations with no known seed track, tag or title word (the cold-start list).",
            registry=r,
        )
        self.unknown_tracks = prom.Counter(
            "segue_unknown_tracks",
            "Seed track ids the model does not know (reported in unknown_tracks, ignored).",
            registry=r,
        )
        self.unknown_tags = prom.Counter(
            "segue_unknown_tags", "Seed tags the model does not know.", registry=r
        )
        for trigger in ("sighup", "admin"):
            for result in ("success", "failure"):
                self.reloads.labels(trigger=trigger, result=result)  # exported as 0 from start
        self.ready.set(0)

    def model_loaded(self, state: ServiceState) -> None:
        """A model is now served: its description and load time."""
        version = state.info.get("version", {})
        self.model.info(
            {
                "name": state.name,
                "class_path": str(state.info.get("class_path", "")),
                "model_dir": str(state.model_dir),
                "trained_at": str(version.get("created") or ""),
                "saved_with_segue": str(version.get("saved_with_segue") or ""),
            }
        )
        self.loaded_at.set(state.loaded_at)
        self.load_seconds.set(state.load_seconds)
        self.ready.set(1)

    def query(self, *, cold_start: bool, unknown_tracks: int, unknown_tags: int) -> None:
        """Count what one continuation found in its seeds."""
        if cold_start:
            self.cold_start.inc()
        if unknown_tracks:
            self.unknown_tracks.inc(unknown_tracks)
        if unknown_tags:
            self.unknown_tags.inc(unknown_tags)

    def exposition(self) -> tuple[bytes, str]:
        """The registry in the Prometheus text format, and its content type."""
        return self._prom.generate_latest(self.registry), self._prom.CONTENT_TYPE_LATEST


def _request_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == REQUEST_ID_HEADER.encode():
            text = value.decode("latin-1")[:_MAX_REQUEST_ID]
            return text if text.isprintable() else None
    return None


class RequestObserver:
    """ASGI middleware: count and time every answer, write its access-log line.

    The route label is the matched route's template (``/v1/continue``), ``unmatched`` when no
    route matched; an exception that escapes the app (it becomes a 500 further out) is counted
    as 500. A request's ``X-Request-ID`` is echoed in the answer and logged.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        request_id = _request_id(scope)

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if request_id is not None:
                    headers = list(message.get("headers", ()))
                    headers.append((REQUEST_ID_HEADER.encode(), request_id.encode("latin-1")))
                    message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            status = 500
            raise
        finally:
            seconds = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(route=route, method=method, status=str(status)).inc()
            self.metrics.latency.labels(route=route, method=method).observe(seconds)
            if access_log.isEnabledFor(logging.INFO):
                _log_access(scope, method, status, seconds, request_id)


def _log_access(
    scope: Scope, method: str, status: int, seconds: float, request_id: str | None
) -> None:
    client = scope.get("client")
    address = f"{client[0]}:{client[1]}" if client else "-"
    path = scope.get("path", "")
    fields = {
        "method": method,
        "path": path,
        "status": status,
        "latency_ms": round(seconds * 1000.0, 3),
        "request_id": request_id,
        "client": address,
    }
    rid = f" id={request_id}" if request_id is not None else ""
    access_log.info(
        '%s - "%s %s HTTP/%s" %d %.1f ms%s',
        address,
        method,
        path,
        scope.get("http_version", "1.1"),
        status,
        seconds * 1000.0,
        rid,
        extra={"access": fields},
    )
