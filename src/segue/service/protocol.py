"""uvicorn's HTTP/1.1 protocol with deadlines for slow clients.

Why: uvicorn closes an idle keep-alive connection after ``timeout_keep_alive``, but only once a
first response was sent; a client that connects and sends nothing, half a request line, or
half a body holds its connection (and, for a body, a worker thread) for as long as it likes.
:class:`GuardedH11Protocol` closes a connection whose request headers are not complete
``header_timeout`` seconds after it opened (or after its last response), and one whose body is
not complete ``body_timeout`` seconds after its headers. ``segue serve`` passes it to uvicorn
(``http=``), with ``limit_concurrency`` bounding the connections served at once. The deadlines
come from ``SEGUE_HEADER_TIMEOUT`` and ``SEGUE_BODY_TIMEOUT`` (seconds), so that every worker
process of ``--workers N`` reads the same ones.
"""

from __future__ import annotations

import asyncio
import os

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["BODY_TIMEOUT_ENV", "HEADER_TIMEOUT_ENV", "GuardedH11Protocol"]

HEADER_TIMEOUT_ENV = "SEGUE_HEADER_TIMEOUT"
BODY_TIMEOUT_ENV = "SEGUE_BODY_TIMEOUT"
_CHECK_EVERY = 0.25  # seconds between checks of one connection's progress


def _seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


class GuardedH11Protocol(H11Protocol):
    """:class:`H11Protocol` that drops clients too slow to send a request (module docstring)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the deadline of the first request's headers."""
        super().connection_made(transport)
        self.header_timeout = _seconds(HEADER_TIMEOUT_ENV, 10.0)
        self.body_timeout = _seconds(BODY_TIMEOUT_ENV, 30.0)
        self._waiting_since = self.loop.time()
        self._body_since: float | None = None
        self._guard = self.loop.call_later(_CHECK_EVERY, self._check)

    def on_response_complete(self) -> None:
        """A response went out: the next request's headers have their own deadline."""
        self._waiting_since = self.loop.time()
        self._body_since = None
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop checking a closed connection."""
        guard = getattr(self, "_guard", None)
        if guard is not None:
            guard.cancel()
        super().connection_lost(exc)

    def _check(self) -> None:
        if self.transport.is_closing():
            return
        now = self.loop.time()
        state = self.conn.their_state
        waiting = self.cycle is None or self.cycle.response_complete
        if state is h11.IDLE and waiting:  # no request in progress: its headers are late
            if now - self._waiting_since > self.header_timeout:
                self.transport.close()
                return
        elif state is h11.SEND_BODY:
            if self._body_since is None:
                self._body_since = now
            elif now - self._body_since > self.body_timeout:
                self.transport.close()
                return
        self._guard = self.loop.call_later(_CHECK_EVERY, self._check)
