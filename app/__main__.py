"""``python -m app`` / ``layerwise``: serve the app with uvicorn on the configured host and port."""

from __future__ import annotations

import sys

import uvicorn

from app.api.server import ServerLimits, protocol_class
from app.config import get_settings
from app.errors import StoreUnavailableError
from app.logs import log_config
from app.runs.store.sqlite import check_sqlite_store


def main() -> None:
    """Run uvicorn with ``LAYERWISE_HOST``, ``LAYERWISE_PORT``, ``LAYERWISE_LOG_LEVEL``, ``LAYERWISE_LOG_JSON``,
    ``LAYERWISE_FORWARDED_ALLOW_IPS`` and the server's own bounds (``LAYERWISE_MAX_HEADER_BYTES``, the header and
    body timeouts, ``LAYERWISE_KEEP_ALIVE_TIMEOUT_S``, ``LAYERWISE_MAX_CONNECTIONS``: :mod:`app.api.server`).

    The embedded run store is checked first, so a read-only or full disk is one clear line and exit status 2,
    not a traceback from inside the server's start-up.
    """
    settings = get_settings()
    if not settings.broker_url and settings.runs_db != ":memory:":
        try:
            check_sqlite_store(settings.runs_db)
        except StoreUnavailableError as exc:
            print(f"layerwise: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level, settings.log_json),
        # uvicorn trusts X-Forwarded-For from 127.0.0.1 by default: any local process could then pass for
        # many clients. Only the proxies the operator names are trusted.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        # h11, not httptools: h11 bounds a request's head; the protocol adds the read timeouts and the bound on
        # connections (app/api/server.py).
        http=protocol_class(
            ServerLimits(
                header_timeout_s=settings.header_timeout_s,
                body_timeout_s=settings.body_timeout_s,
                max_connections=settings.max_connections,
                max_connections_per_client=settings.max_connections_per_client,
                max_header_bytes=settings.max_header_bytes,
            )
        ),
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_keep_alive=settings.keep_alive_timeout_s,
    )


if __name__ == "__main__":
    main()
