"""``segue serve``: the HTTP service for a saved model, run by uvicorn.

Why through an environment variable: with ``--workers N`` uvicorn starts N processes that
import the app by name, so the model directory cannot be passed as an object; it travels in
``SEGUE_MODEL_DIR`` to :func:`segue.service.app.create_app_from_env`, and each worker loads the
model once, in its lifespan.

Operations: the model directory is reloaded without downtime on SIGHUP (or ``POST
/admin/reload`` with the token of ``SEGUE_ADMIN_TOKEN``), ``/metrics`` is scraped by
Prometheus, and ``--log-format json`` writes every log line, the access log included, as JSON.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from segue.cli._common import handle_errors, out, status
from segue.exceptions import ParameterError

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the main app."""

    @app.command("serve")
    @handle_errors
    def serve_cmd(
        model_dir: Annotated[Path, typer.Argument(help="Directory written by segue train.")],
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port (0: any free port).")] = 8000,
        workers: Annotated[
            int, typer.Option(help="Worker processes, each with its own copy of the model.")
        ] = 1,
        blas_threads: Annotated[
            int | None,
            typer.Option(help="BLAS threads per worker (default: BLAS's own setting)."),
        ] = None,
        access_log: Annotated[
            bool, typer.Option("--access-log/--no-access-log", help="Log every request.")
        ] = True,
        log_level: Annotated[
            str, typer.Option(help=f"uvicorn log level: {', '.join(LOG_LEVELS)}.")
        ] = "info",
        header_timeout: Annotated[
            float, typer.Option(help="Seconds a client has to send a request's headers.")
        ] = 10.0,
        body_timeout: Annotated[
            float, typer.Option(help="Seconds a client has to send a request's body.")
        ] = 30.0,
        max_connections: Annotated[
            int, typer.Option(help="Connections served at once per worker; more get 503.")
        ] = 256,
        log_format: Annotated[
            str, typer.Option(help="Log lines as 'plain' text or 'json' (one object a line).")
        ] = "plain",
    ) -> None:
        """Serve a model over HTTP: POST /v1/continue, POST /v1/recommend, GET /v1/model.

        The model is loaded once per worker at start-up, and again, without downtime, on
        SIGHUP or POST /admin/reload (enabled by setting SEGUE_ADMIN_TOKEN). GET /health: the
        process answers; GET /ready: a model is loaded; GET /metrics: Prometheus metrics.
        OpenAPI schema at /openapi.json, interactive documentation at /docs.
        """
        from segue._extras import require

        require("fastapi", "segue serve")
        uvicorn = require("uvicorn", "segue serve")
        uvicorn_config = require("uvicorn.config", "segue serve")

        from segue.serialization import load
        from segue.service.app import (
            ADMIN_TOKEN_ENV,
            BLAS_THREADS_ENV,
            FIRST_LOAD_WAIT,
            MODEL_DIR_ENV,
            WORKERS_ENV,
        )
        from segue.service.logs import LOG_FORMATS, json_line, log_config
        from segue.service.protocol import (
            BODY_TIMEOUT_ENV,
            HEADER_TIMEOUT_ENV,
            GuardedH11Protocol,
        )

        if workers < 1:
            raise ParameterError(f"--workers must be at least 1, got {workers}")
        if not 0 <= port <= 65535:
            raise ParameterError(f"--port must be between 0 and 65535, got {port}")
        if blas_threads is not None and blas_threads < 1:
            raise ParameterError(f"--blas-threads must be at least 1, got {blas_threads}")
        for name, value in (("--header-timeout", header_timeout), ("--body-timeout", body_timeout)):
            if not value > 0:
                raise ParameterError(f"{name} must be a positive number of seconds, got {value}")
        if max_connections < 1:
            raise ParameterError(f"--max-connections must be at least 1, got {max_connections}")
        if log_level not in LOG_LEVELS:
            raise ParameterError(f"--log-level must be one of {', '.join(LOG_LEVELS)}")
        if log_format not in LOG_FORMATS:
            raise ParameterError(f"--log-format must be one of {', '.join(LOG_FORMATS)}")
        # a wrong or tampered directory fails here, in one line, before uvicorn starts (each
        # worker then loads its own copy in the app's lifespan)
        if log_format == "json":  # every line JSON: no spinner, the first words as a log line
            model = type(load(model_dir)).__name__
        else:
            with status(f"checking {model_dir}"):
                model = type(load(model_dir)).__name__
        os.environ[MODEL_DIR_ENV] = str(model_dir.resolve())
        os.environ[HEADER_TIMEOUT_ENV] = str(header_timeout)
        os.environ[BODY_TIMEOUT_ENV] = str(body_timeout)
        os.environ[WORKERS_ENV] = str(workers)
        if blas_threads is not None:
            os.environ[BLAS_THREADS_ENV] = str(blas_threads)
        admin = "on" if os.environ.get(ADMIN_TOKEN_ENV) else f"off, {ADMIN_TOKEN_ENV} unset"
        started = (
            f"serving {model} from {model_dir} on http://{host}:{port} "
            f"({workers} worker{'s' if workers > 1 else ''}; `kill -HUP {os.getpid()}` reloads "
            f"the model; POST /admin/reload {admin})"
        )
        if log_format == "json":
            print(json_line("segue.cli", started), file=sys.stderr, flush=True)
        else:
            out.print(started, highlight=False)
        # segue's own log lines (model loaded, reloads, internal errors) and the access log
        # (written by the app, with latency and request id) in the chosen format
        config = log_config(
            uvicorn_config.LOGGING_CONFIG,
            log_format=log_format,
            level=uvicorn_config.LOG_LEVELS[log_level],
            access_log=access_log,
        )
        uvicorn.run(
            "segue.service.app:create_app_from_env",
            log_config=config,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=False,  # uvicorn's own; the app writes segue.access
            http=GuardedH11Protocol,
            limit_concurrency=max_connections,
            # with several workers, SIGHUP starts replacements that load the model before they
            # count as started; give them as long as a request waits for a first load
            timeout_worker_healthcheck=int(FIRST_LOAD_WAIT),
        )
