"""Training runs as resources: queued, run on a worker, followed, cancelled, timed out, kept in a RunStore.

A run moves ``queued -> running -> succeeded | failed | cancelled | timed_out``; ``interrupted`` marks a run
the server stopped under. :class:`RunRecorder` applies those steps to the store, :class:`LocalExecutor`
runs trainings on this process's training pool, :class:`TrainingService` is what the routes call.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import logging
import math
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import CancelledError as FutureCancelledError
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pebble import ProcessExpired, ProcessFuture

from app import worker
from app.config import Settings
from app.errors import ErrorItem, LayerwiseError, Loc, NotFoundError, SpecError
from app.pool import ChannelHub, Message, WorkerPool
from app.schemas import Divergence, Progress, RunError, RunStatus, TrainingRun, TrainingRunPage
from app.spec import TrainingSpec, split_samples
from app.store import FINAL_STATUSES, RunEvent, RunStore
from app.summaries import SummaryService

logger = logging.getLogger(__name__)


class QueueFullError(LayerwiseError):
    """Too many runs are waiting for a training worker (429, with ``Retry-After`` in seconds)."""

    status_code = 429
    error_type = "queue_full"


class ConflictError(LayerwiseError):
    """The run is in a state that does not allow the request, e.g. cancelling a finished run (409)."""

    status_code = 409
    error_type = "conflict"


def _now() -> datetime:
    return datetime.now(UTC)


class RunRecorder:
    """Moves one run through its states and records every step in the store, in order.

    Steps after the run has finished are ignored, so late progress from a worker cannot reopen it.
    """

    def __init__(self, store: RunStore, run: TrainingRun) -> None:
        self.store = store
        self.run = run

    @property
    def finished(self) -> bool:
        return self.run.status in FINAL_STATUSES

    async def started(self) -> None:
        """The worker began the run: ``running``."""
        if self.run.status != "queued":
            return
        self.run.status = "running"
        self.run.started_at = _now()
        await self.store.save(self.run)
        await self.store.append_event(
            self.run.id, "status", {"status": "running", **self.run.model_dump(mode="json", include={"started_at"})}
        )

    async def batch(self, data: dict[str, Any]) -> None:
        """A batch ended (throttled by the worker): update progress, tell followers, store nothing."""
        if self.finished:
            return
        self.run.progress = Progress(
            epoch=data["epoch"], epochs=data["epochs"], batch=data["batch"], batches=data["batches"]
        )
        await self.store.publish(self.run.id, "batch", data)

    async def epoch(self, data: dict[str, Any]) -> None:
        """An epoch ended: append its logs to the history and store an ``epoch`` event."""
        if self.finished or data["epoch"] <= self.run.epochs_completed:
            return
        for key, value in data["logs"].items():
            self.run.history.setdefault(key, []).append(value)
        self.run.epochs_completed = data["epoch"]
        self.run.progress = self.run.progress.model_copy(
            update={"epoch": data["epoch"], "batch": self.run.progress.batches}
        )
        await self.store.save(self.run)
        await self.store.append_event(self.run.id, "epoch", data)

    async def finish(
        self, status: RunStatus, *, result: dict[str, Any] | None = None, error: RunError | None = None
    ) -> None:
        """End the run: its final state, history and error, then the ``end`` event carrying the whole run.

        Epochs whose progress messages have not arrived yet are recorded from the result's history first,
        so the log always holds one ``epoch`` event per completed epoch before ``end``.
        """
        if self.finished:
            return
        if result is not None:
            history: dict[str, list[float | None]] = result["history"]
            for epoch in range(self.run.epochs_completed + 1, result["epochs_completed"] + 1):
                logs = {key: values[epoch - 1] for key, values in history.items()}
                await self.epoch({"epoch": epoch, "epochs": self.run.epochs, "logs": logs})
            self.run.history = history
            self.run.epochs_completed = result["epochs_completed"]
            self.run.diverged = Divergence(**result["diverged"]) if result["diverged"] else None
            self.run.execution = result["execution"]
        self.run.status = status
        self.run.error = error
        self.run.finished_at = _now()
        if self.run.started_at is not None:
            self.run.duration_s = round((self.run.finished_at - self.run.started_at).total_seconds(), 4)
        await self.store.save(self.run)
        await self.store.append_event(self.run.id, "end", {"run": self.run.model_dump(mode="json")})


async def apply_step(recorder: RunRecorder, kind: str, data: dict[str, Any]) -> None:
    """Apply one progress message of a training (``started``, ``batch``, ``epoch``) to its run."""
    if kind == "started":
        await recorder.started()
    elif kind == "batch":
        await recorder.batch(data)
    elif kind == "epoch":
        await recorder.epoch(data)


async def record_outcome(recorder: RunRecorder, out: dict[str, Any], limit_s: float) -> None:
    """End the run from what :func:`app.worker.run_training` returned: ``failed`` with the worker's error, or
    ``timed_out`` / ``cancelled`` / ``succeeded`` by the training's ``stop_reason``, with its result.

    Args:
        out: ``{"ok": True, "result": ...}`` or ``{"ok": False, "error": {"kind", "msg", ...}}``.
        limit_s: the run's time limit in seconds, quoted in a ``timed_out`` run's error.
    """
    if not out["ok"]:
        error = out["error"]
        await recorder.finish("failed", error=RunError(kind=error["kind"], msg=error["msg"]))
        return
    result = out["result"]
    reason = result["stop_reason"]
    if reason == "timed_out":
        await recorder.finish("timed_out", result=result, error=time_limit_error(limit_s))
    elif reason == "cancelled":
        await recorder.finish("cancelled", result=result)
    else:
        await recorder.finish("succeeded", result=result)


def worker_died_error(exitcode: int | str | None) -> RunError:
    """The error of a run whose worker process died under it (killed, out of memory...)."""
    return RunError(
        kind="worker",
        msg=f"the training worker process died during the run (exit code {exitcode}, e.g. killed or out of "
        "memory); it has been replaced, so the run can be started again",
    )


INTERRUPTED = RunError(kind="interrupted", msg="the server stopped before the run finished; start it again")


class Executor(Protocol):
    """Where trainings run: this process's worker pool (:class:`LocalExecutor`), or Celery workers
    (:class:`app.celery_executor.CeleryExecutor`)."""

    async def submit(self, run: TrainingRun, spec: dict[str, Any]) -> None:
        """Start the (already stored, ``queued``) run in the background."""

    async def cancel(self, run_id: str) -> bool:
        """Ask the run to stop; False if this executor does not hold it."""

    async def training_slots(self) -> tuple[int, int]:
        """(trainings that can run at once, trainings running now) on the workers this executor uses."""

    async def close(self) -> None:
        """Stop; runs this process was running are recorded ``interrupted``."""


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

    async def submit(self, run: TrainingRun, spec: dict[str, Any]) -> None:
        live = _LiveRun(RunRecorder(self._store, run), spec=spec)
        self._live[run.id] = live
        self._waiting.append(live)
        live.task = asyncio.create_task(self._drive(live), name=f"run-{run.id}")
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand waiting runs to pebble while a worker is free."""
        loop = asyncio.get_running_loop()
        while self._waiting and self._dispatched < self._pool.size:
            live = self._waiting.popleft()
            s = self._settings
            live.future = live.context.run(
                self._pool.submit,
                worker.training_task,
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
                kind = message["kind"]
                if kind == "started":
                    live.pid = message["pid"]
                    if live.cancelled_before_start:
                        self._stop(live)
                if live.cancelled_before_start:
                    continue
                await apply_step(recorder, kind, {k: v for k, v in message.items() if k not in ("kind", "run_id")})
            await self._finish(live)
        except Exception:
            logger.exception("run %s: recording failed", recorder.run.id)
            await recorder.finish("failed", error=RunError(kind="internal", msg="the server failed to record the run"))
        finally:
            self._live.pop(recorder.run.id, None)

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
            await recorder.finish("failed", error=worker_died_error(exc.exitcode))
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
            # as it says it started, before it fits (see _drive and keras_build.train).
            live.cancelled_before_start = True
        else:
            self._stop(live)
        return True

    def _stop(self, live: _LiveRun) -> None:
        """Ask a started run's worker to stop (cancelled) at its next batch; kill it (pebble replaces it) if it
        has not within ``cancel_grace_s``."""
        assert live.future is not None and live.pid is not None
        message = {"kind": "stop", "run_id": live.recorder.run.id, "reason": "cancelled"}
        if self._hub.send(live.pid, message):
            asyncio.get_running_loop().call_later(self._settings.cancel_grace_s, live.future.cancel)
        else:
            live.future.cancel()  # type: ignore[no-untyped-call]

    async def training_slots(self) -> tuple[int, int]:
        return self._pool.size, sum(1 for live in self._live.values() if live.pid is not None)

    async def close(self) -> None:
        self._waiting.clear()
        for live in list(self._live.values()):
            await live.recorder.finish("interrupted", error=INTERRUPTED)
            if live.task is not None:
                live.task.cancel()
        self._live.clear()


def check_training_limits(
    training: TrainingSpec, output_shape: Sequence[int | None], settings: Settings, loc: Loc
) -> None:
    """The limits on what a training does: samples, epochs, their product (the work), and the bytes of the
    synthetic data its worker allocates (features and labels, float32).

    Args:
        training: a normalized training request.
        output_shape: the model's output shape (batch first), which the labels take.

    Raises:
        SpecError: (422, ``limit_exceeded``) one item per limit passed, giving the figure, the limit and its
            setting.
    """
    samples, epochs = training.data.samples, training.fit.epochs
    errors: list[ErrorItem] = []

    def over(where: Loc, what: str, limit: int, setting: str, fix: str) -> None:
        errors.append(ErrorItem(where, f"{what}, over the limit of {limit:,} ({setting}); {fix}", "limit_exceeded"))

    if samples > settings.max_samples:
        where = (*loc, "data", "samples")
        over(where, f"samples={samples:,}", settings.max_samples, "LAYERWISE_MAX_SAMPLES", "use fewer")
    if epochs > settings.max_epochs:
        over((*loc, "fit", "epochs"), f"epochs={epochs:,}", settings.max_epochs, "LAYERWISE_MAX_EPOCHS", "use fewer")
    if samples * epochs > settings.max_sample_epochs:
        over(
            (*loc, "fit", "epochs"),
            f"samples x epochs = {samples:,} x {epochs:,} = {samples * epochs:,} sample-epochs",
            settings.max_sample_epochs,
            "LAYERWISE_MAX_SAMPLE_EPOCHS",
            "train on fewer samples or for fewer epochs",
        )
    steps = training.data.timesteps or 1  # the length of a variable-length model's null axes
    values = math.prod(d or steps for d in training.model.batch_shape[1:]) + math.prod(
        d or steps for d in output_shape[1:]
    )
    data_bytes = samples * values * 4
    if data_bytes > settings.max_data_bytes:
        over(
            (*loc, "data", "samples"),
            f"{samples:,} samples of {values:,} float32 values each (features and labels) take {data_bytes:,} bytes",
            settings.max_data_bytes,
            "LAYERWISE_MAX_DATA_BYTES",
            "use fewer samples or a smaller input shape",
        )
    if errors:
        raise SpecError(errors)


def time_limit_error(limit_s: float) -> RunError:
    """The error of a run stopped at its time limit of ``limit_s`` seconds."""
    return RunError(
        kind="time_limit",
        msg=f"the run reached the time limit of {limit_s:g} s (LAYERWISE_TRAINING_TIME_LIMIT_S) and was stopped; "
        "train on fewer samples or epochs",
    )


@dataclass(frozen=True)
class TrainingFigures:
    """Trainings at one moment: ``queued`` and ``running`` runs (in the store, so every replica's), runs
    ``ended`` so far per end status, worker ``slots`` (trainings that can run at once) and ``busy`` slots."""

    queued: int
    running: int
    ended: dict[str, int]
    slots: int
    busy: int


class TrainingService:
    """What the training routes call: validate and create runs, read, list, follow, wait for and cancel them."""

    def __init__(self, store: RunStore, executor: Executor, summaries: SummaryService, settings: Settings) -> None:
        self._store = store
        self._executor = executor
        self._summaries = summaries
        self._settings = settings
        self._created = 0
        self._create_lock = asyncio.Lock()
        self._active: dict[str, set[str]] = {}  # client -> ids of its runs not yet seen finished

    async def recover(self) -> int:
        """Mark runs left ``queued`` or ``running`` by a previous server process ``interrupted``; return how many.

        Only for stores this process owns alone (the embedded SQLite store).
        """
        runs = await self._store.unfinished()
        for run in runs:
            await RunRecorder(self._store, run).finish("interrupted", error=INTERRUPTED)
        await self._store.prune(self._settings.runs_max_age_s, self._settings.runs_max_count)
        return len(runs)

    async def create(self, spec: TrainingSpec, loc: Loc = ("body",), client: str | None = None) -> TrainingRun:
        """Validate the training, build its model for the summary, store it ``queued`` and start it.

        Raises:
            SpecError: (422) the request is invalid, over a limit, or Keras refused the model; nothing was
                queued.
            QueueFullError: (429) ``max_queued_runs`` runs are already waiting, or ``client`` (an
                :func:`app.protection.client_key`) already has ``max_active_runs_per_client`` queued or running.
            WorkerError, WorkerTimeoutError: (503) the summary worker died or timed out.
        """
        normalized = spec.normalized(loc)
        checked = self._summaries.check_training(normalized, loc)  # the engine and the limits: no worker
        # The data's shapes: at data.timesteps for a variable-length model (check_training has it then).
        data_figures = checked.length or checked.figures
        check_training_limits(normalized, data_figures.layers[-1].output_shape, self._settings, loc)
        await self._check_queue()  # before the summary build: a full queue costs no work
        await self._check_client(client)
        summary = await self._summaries.summarize_training(normalized, loc)
        assert normalized.fit.batch_size is not None
        train_samples, _ = split_samples(normalized.data.samples, normalized.fit.validation_split)
        batches = math.ceil(train_samples / normalized.fit.batch_size)
        run = TrainingRun(
            id=uuid.uuid4().hex,
            status="queued",
            created_at=_now(),
            epochs=normalized.fit.epochs,
            progress=Progress(epochs=normalized.fit.epochs, batches=batches),
            samples=normalized.data.samples,
            batch_size=normalized.fit.batch_size,
            seed=normalized.seed,
            summary=summary,
            request=normalized.model_dump(mode="json", exclude_none=True),
        )
        async with self._create_lock:  # the bounds hold against concurrent requests
            await self._check_queue()
            await self._check_client(client)
            await self._store.save(run)
            if client is not None:
                self._active.setdefault(client, set()).add(run.id)
        await self._store.append_event(run.id, "status", {"status": "queued"})
        await self._executor.submit(run, normalized.model_dump())
        self._created += 1
        if self._created % 50 == 0:
            await self._store.prune(self._settings.runs_max_age_s, self._settings.runs_max_count)
        return run

    async def _check_queue(self) -> None:
        """Raise :class:`QueueFullError` when ``max_queued_runs`` runs are waiting."""
        queued = (await self._store.count_unfinished()).get("queued", 0)
        if queued >= self._settings.max_queued_runs:
            retry_after = await self._retry_after(queued)
            raise QueueFullError(
                f"{queued} training runs are already waiting for a worker (the limit, LAYERWISE_MAX_QUEUED_RUNS, "
                f"is {self._settings.max_queued_runs}); retry in about {retry_after} s",
                headers={"Retry-After": str(retry_after)},
            )

    async def _check_client(self, client: str | None) -> None:
        """Raise :class:`QueueFullError` when ``client`` has ``max_active_runs_per_client`` runs queued or running
        (counted by this process: the runs it created, their states read back from the store)."""
        if client is None:
            return
        active = self._active.get(client, set())
        for run_id in list(active):
            run = await self._store.get(run_id)
            if run is None or run.status in FINAL_STATUSES:
                active.discard(run_id)
        if not active:
            self._active.pop(client, None)
        limit = self._settings.max_active_runs_per_client
        if len(active) >= limit:
            retry_after = await self._retry_after(len(active))
            raise QueueFullError(
                f"this client already has {len(active)} training runs queued or running (the limit, "
                f"LAYERWISE_MAX_ACTIVE_RUNS_PER_CLIENT, is {limit}); wait for one to end, or cancel one",
                headers={"Retry-After": str(retry_after)},
            )

    async def _retry_after(self, queued: int) -> int:
        """Seconds until a queue slot is likely free: recent runs' mean duration times the queue's depth per
        worker, at least 1."""
        recent, _ = await self._store.page(20)
        durations = [r.duration_s for r in recent if r.duration_s is not None]
        mean = sum(durations) / len(durations) if durations else self._settings.training_time_limit_s / 4
        slots, _ = await self._executor.training_slots()
        return max(1, math.ceil(mean * max(1, queued) / max(1, slots)))

    async def figures(self) -> TrainingFigures:
        """What the metrics report of trainings: queued and running now, ended so far, worker slots."""
        counts = await self._store.count_unfinished()
        slots, busy = await self._executor.training_slots()
        return TrainingFigures(
            queued=counts.get("queued", 0),
            running=counts.get("running", 0),
            ended=await self._store.ended_totals(),
            slots=slots,
            busy=busy,
        )

    async def get(self, run_id: str) -> TrainingRun:
        """The run with this id.

        Raises:
            NotFoundError: (404) no run has this id.
        """
        run = await self._store.get(run_id)
        if run is None:
            raise NotFoundError(f"no training run has id {run_id!r}", loc=("path", "run_id"))
        return run

    async def page(self, limit: int, cursor: str | None) -> TrainingRunPage:
        """A page of runs, newest first."""
        runs, next_cursor = await self._store.page(limit, cursor)
        return TrainingRunPage(items=runs, next_cursor=next_cursor)

    async def events(self, run_id: str, after: int = 0) -> AsyncIterator[RunEvent]:
        """The run's stored events after ``after``, then live ones, ending with ``end``.

        Raises:
            NotFoundError: (404) no run has this id (raised before the first event).
        """
        await self.get(run_id)
        return self._store.follow(run_id, after)

    async def wait(self, run_id: str, timeout_s: float) -> TrainingRun:
        """The run once it has finished, or as it is after ``timeout_s`` seconds.

        Raises:
            NotFoundError: (404) no run has this id.
        """
        run = await self.get(run_id)
        if run.status in FINAL_STATUSES or timeout_s <= 0:
            return run
        try:
            async with asyncio.timeout(timeout_s):
                async for event in self._store.follow(run_id):
                    if event.kind == "end":
                        return TrainingRun.model_validate(event.data["run"])
        except TimeoutError:
            pass
        return await self.get(run_id)

    def check_wait(self, wait_s: float | None) -> float:
        """Validate ``?wait=``; return it in seconds (0 for none).

        Raises:
            SpecError: (422) more than ``max_wait_s``.
        """
        if wait_s is None:
            return 0.0
        if wait_s > self._settings.max_wait_s:
            raise SpecError.one(
                ("query", "wait"),
                f"wait={wait_s:g} is longer than the longest wait, {self._settings.max_wait_s:g} s "
                "(LAYERWISE_MAX_WAIT_S); wait less and poll GET /v1/trainings/{id} or follow its events",
                "less_than_equal",
            )
        return wait_s

    async def cancel(self, run_id: str) -> TrainingRun:
        """Cancel a run: a queued one never starts, a running one stops at its next batch (killed after
        ``cancel_grace_s``). Returns the run once it has ended (or as it is after a few seconds).

        Raises:
            NotFoundError: (404) no run has this id.
            ConflictError: (409) the run has already finished.
        """
        run = await self.get(run_id)
        if run.status in FINAL_STATUSES:
            raise ConflictError(
                f"run {run_id} has already finished ({run.status}); only queued or running runs can be cancelled",
                loc=("path", "run_id"),
            )
        if not await self._executor.cancel(run_id):  # the local executor holds only its own process's runs
            raise ConflictError(f"run {run_id} is not held by this server and cannot be cancelled here")
        return await self.wait(run_id, self._settings.cancel_grace_s + 5.0)

    async def close(self) -> None:
        """Record every unfinished run of this process ``interrupted``."""
        await self._executor.close()
