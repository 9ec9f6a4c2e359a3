"""Log lines of ``segue serve``: plain text for people, JSON lines for log pipelines.

Why: a log shipper (Loki, Elasticsearch, CloudWatch) reads one JSON object per line without a
parsing rule per format. ``segue serve --log-format json`` therefore writes *every* line as
JSON (uvicorn's own messages, segue's, and the access log of
:class:`segue.service.metrics.RequestObserver`, one object per request with ``time``,
``method``, ``path``, ``status``, ``latency_ms`` and ``request_id``). The default stays the
plain text uvicorn prints. :func:`log_config` builds the ``logging.config.dictConfig`` that
uvicorn applies in every worker process.
"""

from __future__ import annotations

import copy
import json
import logging
from datetime import datetime, timezone
from typing import Any

__all__ = ["LOG_FORMATS", "JsonFormatter", "json_line", "log_config"]

LOG_FORMATS = ("plain", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (+ the access fields)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        when = datetime.fromtimestamp(record.created, tz=timezone.utc)
        line: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            line.update(access)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def json_line(logger: str, message: str, level: int = logging.INFO) -> str:
    """One JSON log line written before logging is set up (``segue serve``'s first words)."""
    record = logging.LogRecord(logger, level, "", 0, message, None, None)
    return JsonFormatter().format(record)


def log_config(
    base: dict[str, Any], *, log_format: str, level: int, access_log: bool
) -> dict[str, Any]:
    """The logging config: uvicorn's ``base`` with segue's loggers, in ``log_format``.

    Parameters
    ----------
    base
        ``uvicorn.config.LOGGING_CONFIG`` (copied, not changed).
    log_format
        ``"plain"`` (uvicorn's text) or ``"json"`` (every line a JSON object).
    level
        Level of segue's own messages (model loaded, reloads, internal errors).
    access_log
        Whether to write one line per request (``segue.access``).
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    config = copy.deepcopy(base)
    if log_format == "json":
        config["formatters"]["default"] = {"()": "segue.service.logs.JsonFormatter"}
        config["formatters"]["access"] = {"()": "segue.service.logs.JsonFormatter"}
        config["formatters"]["segue_access"] = {"()": "segue.service.logs.JsonFormatter"}
    else:  # uvicorn's plain prefix; the access line is already written as the message
        config["formatters"]["segue_access"] = {
            "()": "uvicorn.logging.DefaultFormatter",
            "fmt": "%(levelprefix)s %(message)s",
            "use_colors": False,
        }
    config["handlers"]["segue_access"] = {
        "formatter": "segue_access",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stdout",
    }
    config["loggers"]["segue"] = {"handlers": ["default"], "level": level, "propagate": False}
    config["loggers"]["segue.access"] = {
        "handlers": ["segue_access"],
        "level": logging.INFO if access_log else logging.WARNING,
        "propagate": False,
    }
    return config
