"""Logging: plain lines or JSON lines (``LAYERWISE_LOG_JSON``), each with the id of the request it serves.

The id comes from asgi-correlation-id's context variable (https://github.com/snok/asgi-correlation-id): its
middleware sets it for each HTTP request, :func:`app.runtime.tasks.with_request_id` in a worker process, the Celery
task (:mod:`app.scaleout.worker`) for a run. ``-`` marks a line outside any request. JSON lines come from
python-json-logger (https://nhairs.github.io/python-json-logger/).
"""

from __future__ import annotations

import logging.config
from typing import Any

PLAIN_FORMAT = "%(asctime)s %(levelname)s [%(correlation_id)s] %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(correlation_id)s %(message)s"
JSON_RENAMES = {
    "asctime": "time",
    "levelname": "level",
    "name": "logger",
    "process": "pid",
    "correlation_id": "request_id",
}


def log_config(level: str = "info", json_lines: bool = False) -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` dict: one stderr handler for the root logger and uvicorn's loggers.

    Args:
        level: a logging level name, any case (``info``, ``WARNING``...).
        json_lines: one JSON object per line (fields ``time``, ``level``, ``logger``, ``pid``, ``request_id``,
            ``message``) instead of plain text.
    """
    formatter: dict[str, Any] = (
        {"()": "pythonjsonlogger.json.JsonFormatter", "fmt": JSON_FIELDS, "rename_fields": JSON_RENAMES}
        if json_lines
        else {"format": PLAIN_FORMAT}
    )
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "asgi_correlation_id.CorrelationIdFilter", "default_value": "-"}},
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request_id"],
            }
        },
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            # uvicorn's own loggers log through the root handler, with the same format.
            name: {"handlers": [], "level": level, "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery")
        },
    }


def configure_logging(level: str = "info", json_lines: bool = False) -> None:
    """Apply :func:`log_config` to this process."""
    logging.config.dictConfig(log_config(level, json_lines))
