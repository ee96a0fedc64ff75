"""The HTTP server's own bounds, below the app: how large a request head may be, how long a client may take to
send its request, and how many connections the server holds at once.

uvicorn and h11 give most of it, and are used for it: h11's ``max_incomplete_event_size`` bounds the bytes of a
request head (``LAYERWISE_MAX_HEADER_BYTES``), uvicorn's ``timeout_keep_alive`` closes an idle connection between
requests (``LAYERWISE_KEEP_ALIVE_TIMEOUT_S``). What they do not give is :class:`GuardedH11Protocol`'s, a small
subclass of uvicorn's h11 protocol:

- a head over the bound is answered ``431`` in the service's error body, whether it arrives in pieces or whole
  in one read (h11 bounds only a head still incomplete, and uvicorn answers its error as a plain ``400``);
- a request must arrive in time: its head within ``LAYERWISE_HEADER_TIMEOUT_S`` of its first byte (of the
  connection, for the first request: a connection that sends nothing is one), its body within
  ``LAYERWISE_BODY_TIMEOUT_S`` of its head; else ``408`` and the connection closed. Neither has a timeout in
  uvicorn, so 1,020 half-open connections under a 1,024 descriptor limit kept ``/healthz`` from everyone;
- beyond ``LAYERWISE_MAX_CONNECTIONS`` open connections, or ``LAYERWISE_MAX_CONNECTIONS_PER_CLIENT`` from one
  address, a new one is answered ``503`` at once and closed, which gives its descriptor back (uvicorn's
  ``limit_concurrency`` keeps such a connection open until it sends a request, and then answers in plain text;
  it has no bound per client, so one address could hold them all: ``make attack`` saw it).

httptools, uvicorn's faster parser, has no bound on a head (four 256 MB heads took the server to 1.1 GB), so
the server runs h11. The answers here are written on the socket as bytes: the app never sees these requests.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.errors import ErrorItem

logger = logging.getLogger(__name__)

_REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}


@dataclass(frozen=True)
class ServerLimits:
    """The bounds of :class:`GuardedH11Protocol`: seconds for a request's head and body, open connections (in all,
    and from one client address), and bytes of a head (the same as h11's ``max_incomplete_event_size``, for the
    431's message)."""

    header_timeout_s: float
    body_timeout_s: float
    max_connections: int
    max_header_bytes: int
    max_connections_per_client: int = 0  # 0: no bound


def raw_error(status: int, item: ErrorItem, retry_after_s: int | None = None) -> bytes:
    """A whole HTTP/1.1 answer with the shared error body, ``Connection: close``, as bytes for the socket."""
    body = json.dumps({"detail": [item]}).encode()
    headers = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
    ]
    if retry_after_s is not None:
        headers.append(f"retry-after: {retry_after_s}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the read timeouts, the 431 and the connection bound of :data:`LIMITS`
    (set by :func:`protocol_class`)."""

    LIMITS: ClassVar[ServerLimits]

    _timer: asyncio.TimerHandle | None = None
    _reading: str = "head"  # what the timer waits for: "head" or "body"

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.LIMITS.max_connections:
            item = ErrorItem(
                (),
                f"the server has {self.LIMITS.max_connections:,} connections open, the most it holds "
                "(LAYERWISE_MAX_CONNECTIONS); retry in a few seconds",
                "too_many_connections",
            )
            self._refuse(503, item, retry_after_s=5)
            return
        per_client = self.LIMITS.max_connections_per_client
        if per_client and self.client is not None and self._held_by_this_client() > per_client:
            item = ErrorItem(
                (),
                f"this client ({self.client[0]}) has {per_client:,} connections open, the most one address may "
                "hold (LAYERWISE_MAX_CONNECTIONS_PER_CLIENT); reuse one (keep-alive), or close some and retry",
                "too_many_connections",
            )
            self._refuse(503, item, retry_after_s=5)
            return
        self._arm("head")

    def _held_by_this_client(self) -> int:
        """Connections open from this one's address, itself included (a walk of the server's connections: at
        most ``max_connections`` of them, 36 us at 512 on the dev machine)."""
        assert self.client is not None
        host = self.client[0]
        return sum(1 for other in self.connections if (getattr(other, "client", None) or ("",))[0] == host)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:  # reading a request's head
            if self._timer is None:
                self._arm("head")  # the next request on a kept-alive connection begins
            if self._head_too_large(data):
                item = ErrorItem(
                    ("header",),
                    f"the request's head (its request line and headers) is over {self.LIMITS.max_header_bytes:,} "
                    "bytes (LAYERWISE_MAX_HEADER_BYTES); send fewer or shorter headers",
                    "header_too_large",
                )
                self._refuse(431, item)
                return
        super().data_received(data)

    def _head_too_large(self, data: bytes) -> bool:
        """Whether the head being read, with ``data``, ends past ``max_header_bytes`` (or not within it). h11's own
        bound holds only for a head still incomplete: one that arrives whole in a read (up to 256 KiB) passes it."""
        limit = self.LIMITS.max_header_bytes
        buffered = self.conn.trailing_data[0]
        if len(buffered) + len(data) <= limit:
            return False
        end = (buffered + data[: limit + 4]).find(b"\r\n\r\n")
        return end == -1 or end + 4 > limit

    def handle_events(self) -> None:
        super().handle_events()
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            if self._reading == "head":
                self._arm("body")
        elif state is not h11.IDLE:  # the request is in (or the connection is done with)
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, reading: str) -> None:
        self._disarm()
        self._reading = reading
        seconds = self.LIMITS.header_timeout_s if reading == "head" else self.LIMITS.body_timeout_s
        self._timer = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._reading == "head":
            setting, seconds, what = "LAYERWISE_HEADER_TIMEOUT_S", self.LIMITS.header_timeout_s, "its head"
        else:
            setting, seconds, what = "LAYERWISE_BODY_TIMEOUT_S", self.LIMITS.body_timeout_s, "its body"
        answered = self._reading == "body" and self.cycle is not None and self.cycle.response_started
        if self._reading == "body" and self.cycle is not None:
            self.cycle.disconnected = True  # the app, waiting for the body, is told the client went away
        if answered:
            self.transport.close()
            return
        item = ErrorItem(
            (),
            f"the request did not arrive in time: {what} took over {seconds:g} s ({setting}); send the request "
            "whole, at once",
            "request_timeout",
        )
        self._refuse(408, item)

    def _refuse(self, status: int, item: ErrorItem, retry_after_s: int | None = None) -> None:
        self._disarm()
        logger.warning("%s %s: %s", status, self.client[0] if self.client else "?", item["msg"])
        self.transport.write(raw_error(status, item, retry_after_s))
        self.transport.close()


def protocol_class(limits: ServerLimits) -> type[GuardedH11Protocol]:
    """:class:`GuardedH11Protocol` with ``limits``: uvicorn's ``http`` argument (it makes one per connection)."""

    class Protocol(GuardedH11Protocol):
        LIMITS = limits

    return Protocol
