"""Trainings on this process's own training pool: :class:`LocalExecutor`, the embedded default."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
import logging
from concurrent.futures import CancelledError as FutureCancelledError
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass, field
from typing import Any

from pebble import ProcessExpired, ProcessFuture

from app.config import Settings
from app.errors import StoreUnavailableError
from app.runs.models import RunError, TrainingRun
from app.runs.recorder import (
    INTERRUPTED,
    RunRecorder,
    apply_step,
    memory_error,
    record_outcome,
    time_limit_error,
    worker_died_error,
)
from app.runs.store.base import RunStore
from app.runtime import tasks
from app.runtime.messages import Message, StopMessage
from app.runtime.pool import ChannelHub, WorkerPool

logger = logging.getLogger(__name__)

# Seconds between two tries to record the end of a run the store refused (read-only, deleted, a full disk): a
# few stat calls and, once it is writable, the run's writes. The run is a 503 to its readers meanwhile.
RECORD_RETRY_S = 1.0


@dataclass(eq=False)
class _LiveRun:
    recorder: RunRecorder
    future: ProcessFuture[Any] | None = None
    pid: int | None = None
    inbox: asyncio.Queue[Message | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    # Cancelled after pebble had it but before a worker started it: stopped as soon as it starts, recorded as
    # a queued run cancelled (it never ran for the client).
    cancelled_before_start: bool = False
    # The worker has reported the last batch of the last epoch: nothing is left to cut, so a cancel does not kill
    # it (what is left, validation and the result's way back, ends the run as it finished: succeeded).
    trained: bool = False
    # The submitting request's context (its request id), in which the run is later handed to a worker.
    context: contextvars.Context = field(default_factory=contextvars.copy_context)


class LocalExecutor:
    """Runs trainings on this process's training :class:`WorkerPool`.

    Runs wait in this executor's own FIFO queue and are handed to pebble only when a worker is free, so a
    queued run that is cancelled is simply dropped: it never reaches a worker (cancelling a task pebble has
    already dispatched kills the worker that picks it up). Progress arrives over the :class:`ChannelHub` (no
    polling of workers); a run's messages and its outcome go through one inbox, handled in order by one task
    per run. Stopping a running run is cooperative first (a ``stop`` message the training's callback reads at
    its next batch) and forced after ``cancel_grace_s`` (the worker is killed and pebble replaces it).
    """

    def __init__(self, pool: WorkerPool, hub: ChannelHub, store: RunStore, settings: Settings) -> None:
        self._pool = pool
        self._hub = hub
        self._store = store
        self._settings = settings
        self._live: dict[str, _LiveRun] = {}
        self._waiting: collections.deque[_LiveRun] = collections.deque()
        self._dispatched = 0  # runs handed to pebble whose future is not done yet
        # Runs whose worker is done but whose end the store refused, by id: written again until it takes them.
        self._unrecorded: dict[str, RunRecorder] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, run: TrainingRun, spec: dict[str, Any]) -> None:
        live = _LiveRun(RunRecorder(self._store, run), spec=spec)
        self._live[run.id] = live
        self._waiting.append(live)
        live.task = asyncio.create_task(self._drive(live), name=f"run-{run.id}")
        self._tasks.add(live.task)  # until done: a run's task outlives its place in _live while its end is retried
        live.task.add_done_callback(self._tasks.discard)
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand waiting runs to pebble while a worker is free."""
        loop = asyncio.get_running_loop()
        while self._waiting and self._dispatched < self._pool.size:
            live = self._waiting.popleft()
            s = self._settings
            live.future = live.context.run(
                self._pool.submit,
                tasks.training_task,
                live.recorder.run.id,
                live.spec,
                s.training_time_limit_s,
                s.progress_interval_s,
                s.eager_max_steps,
                # The training stops itself at the time limit; past the grace period pebble kills the worker.
                timeout=s.training_time_limit_s + s.cancel_grace_s,
            )
            self._dispatched += 1
            live.future.add_done_callback(functools.partial(self._on_future_done, loop, live))

    def _on_future_done(self, loop: asyncio.AbstractEventLoop, live: _LiveRun, _: object) -> None:
        loop.call_soon_threadsafe(self._worker_done, live)  # pebble calls this from its own thread

    def _worker_done(self, live: _LiveRun) -> None:
        self._dispatched -= 1
        live.inbox.put_nowait(None)
        self._dispatch()

    def on_message(self, message: Message) -> None:
        """Route a worker's message to its run's inbox (called on the event loop by the hub)."""
        live = self._live.get(str(message.get("run_id")))
        if live is not None:
            live.inbox.put_nowait(message)

    async def _drive(self, live: _LiveRun) -> None:
        recorder = live.recorder
        try:
            while (message := await live.inbox.get()) is not None:
                if message["kind"] == "started":
                    live.pid = message["pid"]
                    if live.cancelled_before_start:
                        self._stop(live)
                if live.cancelled_before_start:
                    continue
                if message["kind"] == "batch" and (message.get("epoch"), message.get("batch")) == (
                    message.get("epochs"),
                    message.get("batches"),
                ):
                    live.trained = True
                fields = {k: v for k, v in message.items() if k not in ("kind", "run_id")}
                try:
                    await apply_step(recorder, message["kind"], fields)
                except StoreUnavailableError as exc:
                    # The training goes on: its progress is in memory, and the end writes what the log lacks.
                    logger.error("run %s: its step %r could not be recorded: %s", recorder.run.id, message["kind"], exc)
            await self._finish(live)
        except StoreUnavailableError:
            pass  # the end is recorded below, when the store takes it
        except Exception:
            logger.exception("run %s: recording failed", recorder.run.id)
            with contextlib.suppress(StoreUnavailableError):
                await recorder.finish(
                    "failed", error=RunError(kind="internal", msg="the server failed to record the run")
                )
        finally:
            self._live.pop(recorder.run.id, None)
        if recorder.finished and not recorder.end_recorded:
            await self._record_when_the_store_takes_it(recorder)

    async def _record_when_the_store_takes_it(self, recorder: RunRecorder) -> None:
        """Write a run's end again every :data:`RECORD_RETRY_S` seconds until the store takes it (it is kept in
        ``_unrecorded`` meanwhile, and :meth:`close` tries once more); logs the refusal once and the recovery."""
        run_id = recorder.run.id
        self._unrecorded[run_id] = recorder
        logger.error(
            "run %s: its end (%s) could not be recorded, the run store refused it; it is written again every %g s "
            "until the store takes it, and GET of the run answers 503 meanwhile",
            run_id,
            recorder.run.status,
            RECORD_RETRY_S,
        )
        try:
            while not recorder.end_recorded:
                await asyncio.sleep(RECORD_RETRY_S)
                with contextlib.suppress(StoreUnavailableError):
                    await recorder.record_end()
            logger.warning("run %s: its end (%s) is recorded, the run store took it again", run_id, recorder.run.status)
        finally:
            self._unrecorded.pop(run_id, None)

    async def _finish(self, live: _LiveRun) -> None:
        recorder, limit = live.recorder, self._settings.training_time_limit_s
        if live.future is None or live.cancelled_before_start:  # cancelled before any worker started it
            await recorder.finish("cancelled")
            return
        try:
            out = live.future.result()
        except FutureCancelledError:  # only a cancel cancels pebble's future (the time limit is its timeout)
            await recorder.finish("cancelled")
        except FutureTimeoutError:
            await recorder.finish("timed_out", error=time_limit_error(limit))
        except ProcessExpired as exc:
            rss = self._pool.memory_exceeded(live.pid) if live.pid is not None else None
            if rss is not None:
                memory = recorder.run.summary.training_memory if recorder.run.summary else None
                estimate = memory.total_bytes if memory else None
                error = memory_error(rss, self._pool.max_rss_bytes, estimate)
            else:
                error = worker_died_error(exc.exitcode)
            await recorder.finish("failed", error=error)
        else:
            await record_outcome(recorder, out, limit)

    async def cancel(self, run_id: str) -> bool:
        live = self._live.get(run_id)
        if live is None:
            return False
        if live.future is None:  # still in this executor's queue: drop it
            self._waiting.remove(live)
            live.inbox.put_nowait(None)
        elif live.pid is None:
            # Handed to pebble, not started yet (its worker may be one pebble is still starting): cancelling
            # pebble's future would make pebble kill the worker that picks the task up. It is stopped as soon
            # as it says it started, before it fits (see _drive and app.runtime.keras.train.train).
            live.cancelled_before_start = True
        else:
            self._stop(live)
        return True

    def _stop(self, live: _LiveRun) -> None:
        """Ask a started run's worker to stop (cancelled) at its next batch; kill it (pebble replaces it) if it
        has not within ``cancel_grace_s``, unless it has trained every batch by then: its result is on its way,
        and the finished result wins (the pebble timeout still bounds the wait)."""
        assert live.future is not None and live.pid is not None
        message: StopMessage = {"kind": "stop", "run_id": live.recorder.run.id, "reason": "cancelled"}
        if self._hub.send(live.pid, message):
            asyncio.get_running_loop().call_later(self._settings.cancel_grace_s, self._kill_unless_trained, live)
        else:
            live.future.cancel()  # type: ignore[no-untyped-call]

    def _kill_unless_trained(self, live: _LiveRun) -> None:
        assert live.future is not None
        if not live.trained:
            live.future.cancel()  # type: ignore[no-untyped-call]

    def unrecorded(self, run_id: str) -> TrainingRun | None:
        """The run as it ended, while the store refuses its end (:meth:`_record_when_the_store_takes_it`)."""
        recorder = self._unrecorded.get(run_id)
        return None if recorder is None else recorder.run

    async def training_slots(self) -> tuple[int, int]:
        return self._pool.size, sum(1 for live in self._live.values() if live.pid is not None)

    async def close(self) -> None:
        self._waiting.clear()
        # Runs whose end the store refused: their retries stopped first (one write of an end at a time), then
        # one more try each. Then the runs still going, interrupted (a finished one's finish does nothing).
        unrecorded = list(self._unrecorded.values())
        retries = [task for task in self._tasks if task.get_name() in {f"run-{r.run.id}" for r in unrecorded}]
        for task in retries:
            task.cancel()
        await asyncio.gather(*retries, return_exceptions=True)
        for recorder in unrecorded + [live.recorder for live in self._live.values()]:
            try:
                if recorder in unrecorded:
                    await recorder.record_end()
                else:  # a live run ending meanwhile writes its own end: finish() does nothing to it
                    await recorder.finish("interrupted", error=INTERRUPTED)
            except StoreUnavailableError as exc:
                # The stored run stays queued or running; the next start over this store marks it interrupted.
                logger.error(
                    "run %s: its end (%s) could not be recorded at shutdown: %s",
                    recorder.run.id,
                    recorder.run.status,
                    exc,
                )
        for task in list(self._tasks):
            task.cancel()
        self._live.clear()
