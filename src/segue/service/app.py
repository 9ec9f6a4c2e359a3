"""The FastAPI application: load a saved model once, continue playlists over HTTP.

Why it looks like this:

- **The model is loaded when the app starts** (its lifespan), once per worker process, not at
  import (importing this module is cheap and has no side effects) and not per request; with
  ``load_in_background`` in a thread, so that ``/health`` answers meanwhile. Lazy model caches
  are built then too (:meth:`segue.inference.Continuer.warm_up`), so the first request is as
  fast as the others and no two threads build a cache at once.
- **Model endpoints are plain ``def``**: uvicorn runs them in its thread pool, so a slow
  request does not block the event loop, and numpy releases the GIL in its kernels. The
  probes (``/health``, ``/ready``, ``/metrics``) are ``async``: they never wait for a thread.
- **Every request is answered by** :class:`segue.inference.Continuer`, for every model (the
  two-stage one included), the same computation as ``segue recommend``; the app adds only
  validation, timing and error mapping.
- **No bad request gives a 500**: bodies are limited to 1 MiB before parsing (Content-Length
  and the bytes actually received), validation errors become 422 with the list of problems,
  unparsable JSON becomes 400, an unknown user 404; only a genuine bug reaches the catch-all
  handler, which logs the traceback and answers 500 with a short message.
- **Operable** (issue 17): ``GET /metrics`` in the Prometheus format (:mod:`.metrics`, one
  registry per app), ``/health`` (the process answers) apart from ``/ready`` (a model is
  loaded), and a model swapped without downtime on ``SIGHUP`` or ``POST /admin/reload``
  (:mod:`.holder`: loaded beside the old one, one reference swap, the old one kept when the new
  one is bad). The admin route needs the token of ``SEGUE_ADMIN_TOKEN``.

``create_app(model_dir)`` builds an app for one model directory; ``create_app_from_env`` is the
factory ``uvicorn --factory`` (and ``segue serve --workers N``) imports, reading the directory
from ``SEGUE_MODEL_DIR``; with one worker it loads the model in the background and reloads it
on ``SIGHUP``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from segue._version import __version__
from segue.exceptions import ModelFormatError, ParameterError, SegueError, UnknownIdError
from segue.service.holder import (
    ModelHolder,
    ModelNotReadyError,
    ReloadError,
    ServiceState,
    load_state,
)
from segue.service.metrics import RequestObserver, ServiceMetrics
from segue.service.schemas import (
    ContinueRequest,
    ContinueResponse,
    ErrorResponse,
    HealthResponse,
    ModelInfo,
    ReadyResponse,
    RecommendRequest,
    RecommendResponse,
    ReloadRequest,
    ReloadResponse,
)

__all__ = [
    "ADMIN_TOKEN_ENV",
    "MAX_BODY_BYTES",
    "MODEL_DIR_ENV",
    "BodyLimitMiddleware",
    "ServiceState",
    "create_app",
    "create_app_from_env",
    "load_state",
]

MODEL_DIR_ENV = "SEGUE_MODEL_DIR"
"""Environment variable naming the model directory of :func:`create_app_from_env`."""
BLAS_THREADS_ENV = "SEGUE_BLAS_THREADS"
"""Optional environment variable: BLAS threads per worker process (default: BLAS's own)."""
MAX_BODY_BYTES = 1 << 20
"""Largest request body accepted (1 MiB); larger ones get 413."""
ADMIN_TOKEN_ENV = "SEGUE_ADMIN_TOKEN"
"""Environment variable holding the bearer token of ``POST /admin/reload`` (unset: disabled)."""
WORKERS_ENV = "SEGUE_WORKERS"
"""Set by ``segue serve``: the number of worker processes (an admin reload reaches only one)."""
FIRST_LOAD_WAIT = 120.0
"""Seconds a model request waits for the first load before it gets 503."""

log = logging.getLogger("segue.service")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body is not valid JSON."},
    413: {"model": ErrorResponse, "description": "The body is larger than 1 MiB."},
    415: {"model": ErrorResponse, "description": "The body is not sent as application/json."},
    422: {"model": ErrorResponse, "description": "The body does not match the schema."},
}


def _limit_blas_threads(value: str | int | None) -> None:
    """Set the BLAS thread count of this process when asked (``SEGUE_BLAS_THREADS``)."""
    if value in (None, ""):
        return
    try:
        threads = int(value)  # type: ignore[arg-type]
    except ValueError:
        threads = 0
    if threads < 1:
        raise ParameterError(f"{BLAS_THREADS_ENV} must be a positive integer, got {value!r}")
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")  # process-wide, kept for its lifetime


# the body limit --------------------------------------------------------------------------------
class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, before anything parses them.

    A declared ``Content-Length`` over the limit is refused at once; otherwise the body is read
    as it arrives (chunked uploads included) and refused as soon as it passes the limit. A body
    within the limit is handed on unchanged.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], max_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI entry point."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        chunked = False
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                declared = value
            elif key == b"transfer-encoding":
                chunked = True
        if declared is not None and chunked:
            # two framings of one body: a proxy and this server could read different requests
            # out of the same bytes (request smuggling), so neither is trusted
            await self._reject(send, 400, "both Content-Length and Transfer-Encoding were sent")
            return
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await self._reject(send, 400, "invalid Content-Length header")
                return
            if length > self.max_bytes:
                await self._too_large(send, f"{length:,} bytes declared")
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect: the client is gone
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._too_large(send, f"more than {self.max_bytes:,} bytes received")
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        whole = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send, what: str) -> None:
        await self._reject(
            send,
            413,
            f"request body too large ({what}); the limit is {self.max_bytes:,} bytes",
        )

    @staticmethod
    async def _reject(send: Send, status: int, detail: str) -> None:
        response = JSONResponse(
            {"detail": detail}, status_code=status, headers={"Connection": "close"}
        )
        await send(
            {"type": "http.response.start", "status": status, "headers": response.raw_headers}
        )
        await send({"type": "http.response.body", "body": response.body})


# errors ----------------------------------------------------------------------------------------
def _location(loc: Any) -> list[str | int]:
    return [part if isinstance(part, int) else str(part) for part in loc]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = [e for e in exc.errors() if tuple(e.get("loc", ())) == ("body",)]
    if raw and isinstance(raw[0].get("input"), bytes | bytearray):
        # FastAPI hands on the raw bytes when the Content-Type is not JSON
        got = request.headers.get("content-type")
        detail = (
            "the request body must be JSON sent with Content-Type: application/json "
            f"(got {'no Content-Type' if got is None else repr(got)})"
        )
        return JSONResponse({"detail": detail}, status_code=415)
    errors = [
        {
            "loc": _location(err.get("loc", ())),
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    bad_json = [e for e in exc.errors() if e.get("type") == "json_invalid"]
    if bad_json:
        reason = (bad_json[0].get("ctx") or {}).get("error", "JSON decode error")
        position = bad_json[0].get("loc", ("body", "?"))[-1]
        detail = f"the request body is not valid JSON: {reason} at character {position}"
        return JSONResponse({"detail": detail, "errors": errors}, status_code=400)
    shown = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return JSONResponse(
        {"detail": f"invalid request: {shown}{more}", "errors": errors}, status_code=422
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
        # FastAPI's words for a body json.loads cannot read for a reason other than syntax
        cause = exc.__cause__
        reason = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
        detail = f"the request body is not valid JSON{reason}"
        return JSONResponse({"detail": detail[:500]}, status_code=400)
    return await http_exception_handler(request, exc)


async def _unknown_id(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def _bad_parameter(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


async def _not_ready(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    what = type(exc).__name__ if isinstance(exc, SegueError) else "internal error"
    return JSONResponse({"detail": f"{what}: the server could not answer"}, status_code=500)


def _json(answer: BaseModel) -> Response:
    """The answer serialised by pydantic-core in one step (FastAPI would validate it again)."""
    return Response(answer.model_dump_json(), media_type="application/json")


# operations ------------------------------------------------------------------------------------
def _check_admin(request: Request, token: str | None) -> None:
    """Let the request through only with ``Authorization: Bearer <token>`` (constant time)."""
    if not token:
        raise HTTPException(
            403,
            f"admin routes are disabled: start segue serve with {ADMIN_TOKEN_ENV} set to a "
            "secret token to enable them",
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise HTTPException(
            401,
            f"admin routes need the header 'Authorization: Bearer <the {ADMIN_TOKEN_ENV} token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


def _reload_on_sighup(
    loop: asyncio.AbstractEventLoop, holder: ModelHolder
) -> Callable[[], None] | None:
    """Reload the model in a worker thread on SIGHUP; the returned function undoes it."""
    hup = getattr(signal, "SIGHUP", None)
    if hup is None:  # Windows
        return None

    def on_hup() -> None:
        log.info("SIGHUP: reloading the model from %s", holder.model_dir)
        loop.run_in_executor(None, holder.load_logged, "sighup")

    try:
        loop.add_signal_handler(hup, on_hup)
    except (ValueError, RuntimeError, NotImplementedError) as exc:  # not the main thread
        log.warning("no model reload on SIGHUP in this process: %s", exc)
        return None
    return lambda: loop.remove_signal_handler(hup)


# the app ---------------------------------------------------------------------------------------
def create_app(
    model_dir: str | os.PathLike[str],
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    blas_threads: int | str | None = None,
    admin_token: str | None = None,
    load_in_background: bool = False,
    reload_on_sighup: bool = False,
    workers: int = 1,
) -> FastAPI:
    """The service for the saved model in ``model_dir`` (loaded when the app starts).

    Parameters
    ----------
    model_dir
        A directory written by ``segue train`` / :func:`segue.save_model`.
    max_body_bytes
        Largest request body accepted; larger ones get 413.
    blas_threads
        BLAS threads for this process (None: leave BLAS's default).
    admin_token
        Bearer token of ``POST /admin/reload``; None or empty disables the admin routes.
    load_in_background
        Start answering at once (``/health`` 200, ``/ready`` 503) and load the model in a
        thread; model requests wait for it. False: the app starts once the model is loaded,
        and a bad directory fails the start.
    reload_on_sighup
        Reload the model directory on SIGHUP (in the process's main thread only).
    workers
        Worker processes serving together; with more than one, ``/admin/reload`` is refused
        (it would reach one of them) and SIGHUP to the supervisor replaces them all.
    """
    metrics = ServiceMetrics()
    holder = ModelHolder(model_dir, metrics, loader=load_state)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _limit_blas_threads(blas_threads)
        if load_in_background:
            threading.Thread(
                target=holder.load_logged, args=("start",), name="segue-load", daemon=True
            ).start()
        else:
            holder.load(trigger="start")
        undo = _reload_on_sighup(asyncio.get_running_loop(), holder) if reload_on_sighup else None
        yield
        if undo is not None:
            undo()

    app = FastAPI(
        title="segue",
        version=__version__,
        summary="Playlist continuation and recommendations from a saved segue model.",
        lifespan=lifespan,
    )
    app.state.holder = holder
    app.state.metrics = metrics
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(RequestObserver, metrics=metrics)  # outermost: counts 413s too
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(UnknownIdError, _unknown_id)
    app.add_exception_handler(ParameterError, _bad_parameter)
    app.add_exception_handler(ModelNotReadyError, _not_ready)
    app.add_exception_handler(Exception, _internal_error)

    def state(_: Request) -> ServiceState:
        """The model of this request, taken once (a reload swaps it for later requests)."""
        return holder.wait(FIRST_LOAD_WAIT)

    # GET and HEAD registered apart: one operation id each in the OpenAPI schema
    @app.get("/health", response_model=HealthResponse, tags=["service"])
    @app.head("/health", response_model=HealthResponse, tags=["service"])
    async def health() -> HealthResponse:
        """The process is alive and answers (whether or not a model is loaded yet: /ready)."""
        svc = holder.current()
        return HealthResponse(status="ok", model=svc.name if svc else None)

    not_ready = {503: {"model": ErrorResponse, "description": "No model is loaded yet."}}

    @app.get("/ready", response_model=ReadyResponse, responses=not_ready, tags=["service"])
    @app.head("/ready", response_model=ReadyResponse, responses=not_ready, tags=["service"])
    async def ready() -> Response:
        """A model is loaded and answers requests; 503 (with the reason) before."""
        svc = holder.current()
        if svc is None:
            raise ModelNotReadyError(holder.not_ready_reason())
        answer = ReadyResponse(
            status="ready",
            model=svc.name,
            model_dir=str(svc.model_dir),
            loaded_at=svc.loaded_at,
        )
        return _json(answer)

    @app.get("/metrics", tags=["service"], response_class=Response)
    async def prometheus_metrics() -> Response:
        """Requests, latencies, the model served and its reloads, in the Prometheus format."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.post(
        "/admin/reload",
        response_model=ReloadResponse,
        responses={
            401: {"model": ErrorResponse, "description": "No or a wrong bearer token."},
            403: {"model": ErrorResponse, "description": "Admin routes are disabled."},
            409: {"model": ErrorResponse, "description": "Several workers: use SIGHUP."},
            422: {"model": ErrorResponse, "description": "The new model is bad; old kept."},
        },
        tags=["admin"],
    )
    def admin_reload(request: Request, body: ReloadRequest | None = None) -> Response:
        """Load a model directory (the same one again, or ``model_dir``) and serve it.

        The new model is loaded and checked beside the one serving, which keeps answering;
        then one reference swap makes it the model of every later request. A directory that
        cannot be loaded leaves the old model serving and answers 422 with the reason.
        """
        _check_admin(request, admin_token)
        if workers > 1:
            raise HTTPException(
                409,
                f"this server runs {workers} worker processes and a request reaches one; "
                "send SIGHUP to the segue serve process instead (it replaces every worker)",
            )
        start = time.perf_counter()
        previous = holder.current()
        try:
            svc = holder.load(body.model_dir if body else None, trigger="admin")
        except ReloadError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        answer = ReloadResponse(
            status="reloaded",
            model=svc.name,
            model_dir=str(svc.model_dir),
            previous_model=previous.name if previous else None,
            previous_model_dir=str(previous.model_dir) if previous else None,
            took_ms=(time.perf_counter() - start) * 1000.0,
        )
        return _json(answer)

    @app.get("/v1/model", response_model=ModelInfo, tags=["service"])
    def model_info(request: Request) -> ModelInfo:
        """The model served: class, parameters, training data summary and versions."""
        return ModelInfo(**state(request).info)

    @app.post(
        "/v1/continue", response_model=ContinueResponse, responses=_ERRORS, tags=["playlists"]
    )
    def continue_playlist(body: ContinueRequest, request: Request) -> Response:
        """Continue a partial playlist: the next ``n`` tracks, best first.

        The same lists as ``segue recommend --challenge`` (and ``--questions`` for tags) for
        the same seeds. Seed tracks and ``exclude`` never come back; unknown seed ids are
        listed in ``unknown_tracks`` and ignored; ``title`` counts when the model was trained
        with titles (``segue train --titles``, the default for playlists); with no known track,
        tag or title word the answer is the cold-start list (tracks by the number of playlists
        holding them).
        """
        start = time.perf_counter()
        svc = state(request)
        result = svc.continuer.continue_playlist(
            body.tracks,
            title=body.title,
            tags=body.tags,
            n=body.n,
            n_tags=body.n_tags,
            exclude=body.exclude,
        )
        answer = ContinueResponse(
            tracks=result.tracks,
            scores=result.scores,
            tags=result.tags,
            unknown_tracks=result.unknown_tracks,
            unknown_tags=result.unknown_tags,
            cold_start=result.cold_start,
            model=svc.name,
            took_ms=(time.perf_counter() - start) * 1000.0,
        )
        metrics.query(
            cold_start=result.cold_start,
            unknown_tracks=len(result.unknown_tracks),
            unknown_tags=len(result.unknown_tags),
        )
        return _json(answer)

    @app.post(
        "/v1/recommend",
        response_model=RecommendResponse,
        responses={**_ERRORS, 404: {"model": ErrorResponse, "description": "Unknown user."}},
        tags=["users"],
    )
    def recommend(body: RecommendRequest, request: Request) -> Response:
        """Top ``n`` items for a user of the training data, already-heard items excluded.

        Users are the rows the model was trained on: listeners for a listen-count model,
        playlist ids (pids) for a playlist model. An unknown user gets 404.
        """
        start = time.perf_counter()
        svc = state(request)
        result = svc.continuer.recommend_user(body.user, body.n, n_tags=body.n_tags)
        answer = RecommendResponse(
            user=body.user,
            tracks=result.items,
            scores=result.scores,
            tags=result.tags,
            model=svc.name,
            took_ms=(time.perf_counter() - start) * 1000.0,
        )
        return _json(answer)

    return app


def create_app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` (``segue serve``): settings from the environment.

    The model directory comes from ``SEGUE_MODEL_DIR``, the admin token from
    ``SEGUE_ADMIN_TOKEN``. One worker loads its model in the background (``/ready`` is 503
    until then) and reloads it on SIGHUP. With several, each worker loads its model before it
    takes connections: uvicorn's supervisor answers SIGHUP by starting a replacement worker,
    waiting for it to finish starting, then retiring the old one, so a replacement whose model
    does not load never serves and the old workers stay.
    """
    model_dir = os.environ.get(MODEL_DIR_ENV)
    if not model_dir:
        raise ModelFormatError(f"set {MODEL_DIR_ENV} to the model directory to serve")
    workers = int(os.environ.get(WORKERS_ENV) or 1)
    return create_app(
        model_dir,
        blas_threads=os.environ.get(BLAS_THREADS_ENV) or None,
        admin_token=os.environ.get(ADMIN_TOKEN_ENV) or None,
        load_in_background=workers == 1,
        reload_on_sighup=workers == 1,  # several: the supervisor gets SIGHUP, not the workers
        workers=workers,
    )
