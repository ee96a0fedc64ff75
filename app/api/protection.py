"""What one request or one client may ask of the service, beyond what a model or training may be.

- Body size (``LAYERWISE_MAX_BODY_BYTES``): a 413 at once for a declared ``Content-Length`` over it, or as soon
  as a streamed body passes it. (FastAPI's own ``max_body_size`` answers a declared one in plain text, outside
  the error shape every other answer has; :class:`BodyLimitMiddleware` keeps that shape.)
- An optional API key (``LAYERWISE_API_KEY``) for everything but health, the playground's files and the
  OpenAPI document: a 401 without it.
- Per-client rate limits (``LAYERWISE_RATE_LIMIT``), counted by the ``limits`` library
  (https://limits.readthedocs.io, the engine under slowapi; slowapi's own middleware cannot see routes inside
  FastAPI's included routers and would exempt them all): a 429 with ``Retry-After``. In the Celery mode the
  counters live in the same Redis, so they hold across API replicas.
- Per-client active training runs (``LAYERWISE_MAX_ACTIVE_RUNS_PER_CLIENT``): :class:`app.runs.service.TrainingService`;
  per-client model builds waiting (``LAYERWISE_MAX_BUILDS_PER_CLIENT``): :class:`app.summaries.service.SummaryService`.
- Open event streams, in total and per client (``LAYERWISE_MAX_EVENT_STREAMS``,
  ``LAYERWISE_MAX_EVENT_STREAMS_PER_CLIENT``): :class:`StreamLimiter`, a 429 with ``Retry-After``.
- Below the app, the HTTP server's own bounds (head size, read timeouts, connections): :mod:`app.api.server`.

A client is the service's API key when it sends it (hashed: the key itself is never kept or logged), else its
address: a key the service does not know (and any key when none is configured) names no client.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.errors import ErrorItem, RateLimitedError, StoreUnavailableError, StreamsBusyError, UnauthorizedError

API_KEY_HEADER = "X-API-Key"
_api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="The service's API key.")
_bearer = HTTPBearer(auto_error=False, description="The service's API key, as a bearer token.")


class _BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive``: an HTTPException, so FastAPI lets it through its body parsing to the handler
    :func:`install_body_limit` registers, which answers as :class:`BodyLimitMiddleware` does."""


def body_too_large(msg: str) -> JSONResponse:
    """The 413 for a body over the limit, streamed or declared alike: loc ``["body"]``, type ``body_too_large``.
    ``Connection: close``, since the rest of the body is not read."""
    item = ErrorItem(("body",), msg, "body_too_large")
    return JSONResponse({"detail": [item]}, status_code=413, headers={"Connection": "close"})


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with a 413 in the shared error shape, without reading them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self, size: str) -> str:
        return (
            f"the request body is {size}, over the limit of {self.max_bytes:,} bytes (LAYERWISE_MAX_BODY_BYTES); "
            "send a smaller one"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await body_too_large(self._message(f"{int(declared):,} bytes"))(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(413, self._message(f"over {received:,} bytes and counting"))
            return message

        await self.app(scope, counting_receive, send)


async def _body_too_large_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, _BodyTooLarge)
    return body_too_large(str(exc.detail))


def presented_key(request: Request) -> str | None:
    """The API key a request carries: ``X-API-Key``, else ``Authorization: Bearer``; None without one."""
    key = request.headers.get(API_KEY_HEADER)
    if key:
        return key
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def valid_key(request: Request) -> bool:
    """True when the service has an API key (``LAYERWISE_API_KEY``) and the request carries it; compared in
    constant time."""
    settings: Settings = request.app.state.settings
    key = presented_key(request)
    return (
        settings.api_key is not None
        and key is not None
        and secrets.compare_digest(key.encode(), settings.api_key.get_secret_value().encode())
    )


def client_key(request: Request) -> str:
    """Who a request comes from, for per-client limits: ``key:<sha256 prefix>`` of the API key it sends when that
    is the service's key, else ``addr:<address>`` (uvicorn's proxy-headers support puts a trusted proxy's client
    address here).

    A credential the service does not know never names a client: without a configured key, any ``X-API-Key``
    or ``Bearer`` value would otherwise make a new client of every request, each with limits of its own.
    """
    if valid_key(request):
        key = presented_key(request) or ""
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]
    return "addr:" + (request.client.host if request.client else "unknown")


async def require_api_key(
    request: Request,
    _header: Annotated[str | None, Security(_api_key_header)] = None,
    _bearer_token: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> None:
    """Route dependency: pass when no API key is configured or the request carries it.

    The ``Security`` parameters only document the two ways in the OpenAPI schema; :func:`presented_key` reads them.

    Raises:
        UnauthorizedError: (401) a key is configured and the request carries none or another.
    """
    settings: Settings = request.app.state.settings
    if settings.api_key is None:
        return
    key = presented_key(request)
    if not valid_key(request):
        raise UnauthorizedError(
            "this service wants an API key: send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`"
            if key is None
            else "the API key sent is not this service's",
            loc=("header", API_KEY_HEADER),
            headers={"WWW-Authenticate": 'Bearer realm="layerwise"'},
        )


class RateLimiter:
    """Per-client, per-endpoint request limits: a moving window for each limit of ``spec`` (e.g.
    ``"20/second;600/minute"``), in memory, or in Redis (``redis_url``) to share them between replicas."""

    def __init__(self, spec: str, redis_url: str | None = None) -> None:
        self.spec = spec
        self.limits: list[RateLimitItem] = parse_many(spec) if spec else []
        store = (
            RedisStorage(
                redis_url.replace("redis://", "async+redis://", 1), implementation="redispy", wrap_exceptions=True
            )
            if redis_url
            else MemoryStorage()
        )
        self._limiter = MovingWindowRateLimiter(store)

    async def check(self, client: str, endpoint: str) -> None:
        """Count one request of ``client`` to ``endpoint``.

        Raises:
            RateLimitedError: (429) a limit is reached; ``Retry-After`` is the seconds until its window has room.
            StoreUnavailableError: (503) the Redis that keeps the counts (Celery mode) failed; the limits library
                wraps its error (``wrap_exceptions``), so this layer knows no Redis error type.
        """
        try:
            await self._check(client, endpoint)
        except StorageError as exc:
            cause = exc.storage_error
            raise StoreUnavailableError(f"{type(cause).__name__}: {cause}") from cause

    async def _check(self, client: str, endpoint: str) -> None:
        for item in self.limits:
            if not await self._limiter.hit(item, client, endpoint):
                reset_at, _ = await self._limiter.get_window_stats(item, client, endpoint)
                retry_after = max(1, math.ceil(reset_at - time.time()))
                raise RateLimitedError(
                    f"too many requests from this client to {endpoint}: the limit is {item} "
                    f"(LAYERWISE_RATE_LIMIT={self.spec!r}); retry in {retry_after} s",
                    headers={"Retry-After": str(retry_after)},
                )


async def rate_limit(request: Request) -> None:
    """Route dependency: count the request against its client's limits for this route (its path template).

    Raises:
        RateLimitedError: (429) the client is over a limit.
    """
    limiter: RateLimiter = request.app.state.rate_limiter
    if limiter.limits:
        route = request.scope.get("route")
        await limiter.check(client_key(request), f"{request.method} {getattr(route, 'path', request.url.path)}")


class StreamLimiter:
    """Open event streams: at most ``total`` at once, and ``per_client`` of one client (in this process)."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total = total
        self.per_client = per_client
        self._open: dict[str, int] = {}

    def open_streams(self, client: str | None = None) -> int:
        """The streams open now: ``client``'s, or everyone's."""
        return self._open.get(client, 0) if client is not None else sum(self._open.values())

    def acquire(self, client: str) -> Callable[[], None]:
        """Count one more stream of ``client``; return the function that ends it (calling it again does nothing).

        Raises:
            StreamsBusyError: (429) ``client`` has ``per_client`` streams open, or all clients ``total``.
        """
        if self._open.get(client, 0) >= self.per_client:
            raise StreamsBusyError(
                f"this client has {self.per_client} event streams open, the most it may have "
                f"(LAYERWISE_MAX_EVENT_STREAMS_PER_CLIENT); close one, or read the run with GET /v1/trainings/{{id}}"
            )
        if self.open_streams() >= self.total:
            raise StreamsBusyError(
                f"the service has {self.total} event streams open, the most it holds (LAYERWISE_MAX_EVENT_STREAMS); "
                "retry after Retry-After seconds, or read the run with GET /v1/trainings/{id}"
            )
        self._open[client] = self._open.get(client, 0) + 1
        done = False

        def release() -> None:
            nonlocal done
            if done:
                return
            done = True
            left = self._open[client] - 1
            if left:
                self._open[client] = left
            else:
                del self._open[client]

        return release


def install_stream_limits(app: FastAPI, settings: Settings) -> None:
    """Bound the open event streams (``app.state.streams``: a :class:`StreamLimiter`)."""
    app.state.streams = StreamLimiter(settings.max_event_streams, settings.max_event_streams_per_client)


def install_body_limit(app: FastAPI, settings: Settings) -> None:
    """Refuse request bodies over ``settings.max_body_bytes`` (413), whether their length is declared or not."""
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_exception_handler(_BodyTooLarge, _body_too_large_error)


def install_rate_limits(app: FastAPI, settings: Settings) -> None:
    """Limit each client to ``settings.rate_limit`` requests per endpoint (none if it is empty); the routes to
    limit depend on :func:`rate_limit`."""
    app.state.rate_limiter = RateLimiter(settings.rate_limit, settings.broker_url)
