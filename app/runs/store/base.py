"""Where training runs and their events are kept: the interface every store implements, one backend a module
(:mod:`app.runs.store.sqlite`, :mod:`app.runs.store.redis`).

The interface is what the rest of the service depends on, so a store shared by several machines (Redis)
can stand in for SQLite behind the same API. Each run has an ordered log of events (``status``, ``epoch``,
``end``) that a late client replays; ``batch`` progress events are live only (published, not stored). A store
raises :class:`app.errors.StoreUnavailableError` for its backend's errors (:func:`store_errors`), so nothing
above it knows which backend it is.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from typing import Any, Literal, ParamSpec, Protocol, TypeVar

from pydantic import BaseModel

from app.errors import StoreFault, StoreUnavailableError
from app.runs.models import TrainingRun

P = ParamSpec("P")
T = TypeVar("T")

EventKind = Literal["status", "batch", "epoch", "end"]
# What ``/readyz`` says of the run store: ``ok``, or its fault (:data:`app.errors.StoreFault`).
StoreHealth = Literal["ok", StoreFault]


class RunEvent(BaseModel):
    """One event of a run. ``seq`` orders a run's stored events from 1; live-only events have ``seq`` 0."""

    run_id: str
    seq: int
    kind: EventKind
    data: dict[str, Any]


class RunStore(Protocol):
    """Runs and their event logs. Every method is safe to call from the event loop."""

    async def open(self) -> None:
        """Prepare the store (create tables, connect)."""

    async def close(self) -> None:
        """Release the store's resources."""

    async def health(self) -> StoreHealth:
        """``ok`` when the store answers and can take writes, else its fault (for ``/readyz``, and for a run whose
        state the store may not hold). Never raises: a store that fails to answer is ``unreachable``."""

    async def save(self, run: TrainingRun) -> None:
        """Insert or replace a run."""

    async def get(self, run_id: str) -> TrainingRun | None:
        """The run with this id, or None."""

    async def page(self, limit: int, before: str | None = None) -> tuple[list[TrainingRun], str | None]:
        """Runs newest first, at most ``limit``, starting after the cursor ``before``; and the next cursor."""

    async def count_unfinished(self) -> dict[str, int]:
        """Number of runs per unfinished status (``queued``, ``running``)."""

    async def unfinished(self) -> list[TrainingRun]:
        """Every run still ``queued`` or ``running``."""

    async def ended_totals(self) -> dict[str, int]:
        """How many runs ever ended, per end status (counted at their ``end`` event; pruning keeps them)."""

    async def append_event(self, run_id: str, kind: EventKind, data: dict[str, Any]) -> RunEvent:
        """Store an event at the end of the run's log, tell followers, and return it with its ``seq``."""

    async def publish(self, run_id: str, kind: EventKind, data: dict[str, Any]) -> None:
        """Tell followers of a live-only event (not stored; a late client does not see it)."""

    def follow(self, run_id: str, after: int = 0) -> AsyncIterator[RunEvent]:
        """Stored events with ``seq > after``, then live ones as they come, until the ``end`` event. A client
        that has seen the end already (``after`` at or past it) gets the ``end`` event again, and nothing
        else: a reconnecting EventSource is told the run is over rather than left waiting."""

    async def prune(self, max_age_s: float, max_count: int) -> int:
        """Delete finished runs older than ``max_age_s`` seconds or beyond the newest ``max_count`` (their model
        files too); return how many were deleted."""

    async def save_model(self, run_id: str, data: bytes) -> None:
        """Keep the trained model file (``.keras`` bytes) of a run, for every replica and worker."""

    async def get_model(self, run_id: str) -> bytes | None:
        """The run's trained model file, or ``None`` if none is kept."""


def store_errors(
    *backend_errors: type[BaseException],
) -> Callable[[Callable[P, Coroutine[Any, Any, T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Decorate a store's coroutine method so that its backend's errors (``sqlite3.Error``, ``RedisError``)
    leave it as :class:`StoreUnavailableError` (the backend's error as its ``__cause__``, its type and message
    in the message, e.g. ``OperationalError: attempt to write a readonly database``)."""

    def decorate(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        @functools.wraps(method)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return await method(*args, **kwargs)
            except backend_errors as exc:
                raise StoreUnavailableError(f"{type(exc).__name__}: {exc}") from exc

        return guarded

    return decorate


def stream_errors(
    *backend_errors: type[BaseException],
) -> Callable[[Callable[P, AsyncGenerator[T, None]]], Callable[P, AsyncGenerator[T, None]]]:
    """:func:`store_errors` for a method that is an async generator (``follow``); closing the result closes the
    store's generator at once (its ``finally`` runs), as closing the store's own would."""

    def decorate(method: Callable[P, AsyncGenerator[T, None]]) -> Callable[P, AsyncGenerator[T, None]]:
        @functools.wraps(method)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> AsyncGenerator[T, None]:
            try:
                stream = method(*args, **kwargs)
                async with contextlib.aclosing(stream):
                    async for item in stream:
                        yield item
            except backend_errors as exc:
                raise StoreUnavailableError(f"{type(exc).__name__}: {exc}") from exc

        return guarded

    return decorate
