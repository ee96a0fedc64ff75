"""Scale-out: the Celery worker process -- its app, the training task, and what it does around it.

Run a worker with ``layerwise-worker`` (:func:`main`) and ``LAYERWISE_BROKER_URL`` set to the Redis the API
replicas use. Nothing is done at import: :func:`create_worker_app` reads the settings, makes the Celery app
(:func:`app.runs.executors.celery.make_celery`, which the API side sends with), registers the task and connects
the signal handlers. Each training is one task; the task itself records its run in the Redis run store
through a :class:`app.runs.recorder.RunRecorder`, exactly the steps the local executor records, so the API
answers the same whoever ran it.

Processes:

- The worker's main process never imports Keras: its pool children are forked from it (Celery's prefork
  pool), and TensorFlow is not fork-safe. Each child imports Keras once when it starts
  (``worker_process_init``), then serves tasks.
- In a child, the training runs on the main thread (Celery delivers its signals there) and the run store is
  driven by an asyncio loop on a thread of its own; progress goes from the Keras callback to that loop
  through one queue, so the store sees the steps in order.
- When a child dies under a run (cancel forced with ``revoke(terminate=True)``, Celery's hard time limit,
  killed, out of memory), the main process gets ``task_revoked`` or ``task_failure`` and records the run
  ``cancelled``, ``timed_out`` or ``failed`` with the cause, so no run stays ``running``.

Time limits: a training stops itself at its next batch once ``time_limit_s`` has passed (the same
cooperative stop as the local executor, keeping the epoch it was in); the task's Celery ``time_limit`` is
that plus ``LAYERWISE_CANCEL_GRACE_S``, past which Celery kills the child. Celery's soft time limit is not
used: it raises an exception at an arbitrary point inside TensorFlow, where the cooperative stop waits for
a batch boundary. Celery docs: https://docs.celeryq.dev/en/stable/userguide/workers.html#time-limits ,
signals: https://docs.celeryq.dev/en/stable/userguide/signals.html , bootsteps:
https://docs.celeryq.dev/en/stable/userguide/extending.html .
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import threading
import time
from collections.abc import Coroutine, Mapping
from typing import Any, ClassVar, TypeVar, cast

from asgi_correlation_id import correlation_id
from billiard.exceptions import WorkerLostError
from celery import Celery, bootsteps, signals
from celery.exceptions import TimeLimitExceeded
from redis.exceptions import RedisError

from app import logs
from app.config import Settings, get_settings
from app.errors import StoreUnavailableError
from app.runs.executors.celery import TRAIN_TASK, make_celery
from app.runs.models import RunError
from app.runs.recorder import RunRecorder, apply_step, record_outcome, time_limit_error
from app.runs.status import FINAL_STATUSES, RunStatus
from app.runs.store.redis import RedisRunStore
from app.runtime import tasks
from app.runtime.deadline import Deadline
from app.runtime.messages import Failed, TrainingReply

logger = logging.getLogger(__name__)

T = TypeVar("T")

# This worker process's own settings (its environment), set by create_worker_app; forked children inherit them.
_settings: Settings | None = None


def _worker_settings() -> Settings:
    assert _settings is not None, "create_worker_app() has not been called in this process"
    return _settings


class _ChildRuntime:
    """One per worker child: an asyncio loop on a thread of its own, with the Redis run store open on it."""

    def __init__(self, settings: Settings) -> None:
        assert settings.broker_url, "LAYERWISE_BROKER_URL is not set"
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="layerwise-run-store", daemon=True)
        self._thread.start()
        self.store = RedisRunStore(settings.broker_url, settings.redis_key_prefix)
        self.call(self.store.open())

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
        """Run ``coro`` on the store's loop and return its result (raises what it raises)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def train(self, run_id: str, spec: dict[str, Any], time_limit_s: float, progress_interval_s: float) -> str:
        """Run one training and record it; return the run's final status (``skipped`` if it was cancelled
        before it started)."""
        if not self.call(self.store.claim(run_id, "worker")):
            logger.info("training run %s was cancelled before it started", run_id)
            return "skipped"
        run = self.call(self.store.get(run_id))
        if run is None:
            logger.warning("training run %s is not in the run store (pruned?); skipped", run_id)
            return "skipped"
        recorder = RunRecorder(self.store, run)
        lease_s = self.settings.run_lease_s
        self.call(self.store.renew_lease(run_id, lease_s))  # before the run shows as running
        # Renewed by the store's own thread, so a long batch (no callback for a while) does not look like death.
        lease = asyncio.run_coroutine_threadsafe(self._keep_lease(run_id, lease_s), self.loop)
        inbox: asyncio.Queue[tuple[str, Mapping[str, Any]]] = asyncio.Queue()
        drive = asyncio.run_coroutine_threadsafe(self._drive(recorder, inbox, time_limit_s), self.loop)
        try:
            channel = _RedisChannel(self, run_id, inbox, time_limit_s, self.settings.stop_poll_interval_s)
            channel.emit("started", {"pid": os.getpid()})
            out = tasks.run_training(run_id, spec, channel, progress_interval_s, self.settings.eager_max_steps)
            self.loop.call_soon_threadsafe(inbox.put_nowait, ("outcome", out))
            drive.result(timeout=60)
        finally:
            lease.cancel()
        return recorder.run.status

    async def _keep_lease(self, run_id: str, lease_s: float) -> None:
        while True:
            await asyncio.sleep(lease_s / 3)
            try:
                await self.store.renew_lease(run_id, lease_s)
            except (OSError, StoreUnavailableError) as exc:  # a blip: the next renewal tries again
                logger.warning("training run %s: cannot renew its lease: %s", run_id, exc)

    @staticmethod
    async def _drive(
        recorder: RunRecorder, inbox: asyncio.Queue[tuple[str, Mapping[str, Any]]], time_limit_s: float
    ) -> None:
        while True:
            kind, data = await inbox.get()
            if kind == "outcome":  # the worker's reply (app.runtime.messages), after the last progress message
                await record_outcome(recorder, cast("TrainingReply | Failed", data), time_limit_s)
                return
            await apply_step(recorder, kind, data)


class _RedisChannel:
    """A run's :class:`app.runtime.keras.train.RunChannel` in a Celery child: progress into the store's queue, stop
    requests from the run's Redis stop flag (read at most every ``poll_s`` seconds) and the deadline."""

    def __init__(
        self,
        runtime: _ChildRuntime,
        run_id: str,
        inbox: asyncio.Queue[tuple[str, Mapping[str, Any]]],
        time_limit_s: float,
        poll_s: float,
    ) -> None:
        self.runtime = runtime
        self.run_id = run_id
        self.inbox = inbox
        self.deadline = Deadline(time_limit_s)
        self.poll_s = poll_s
        self.reason: str | None = None
        self._next_poll = 0.0

    def emit(self, event: str, data: dict[str, Any]) -> None:
        self.runtime.loop.call_soon_threadsafe(self.inbox.put_nowait, (event, data))

    def stop_requested(self) -> str | None:
        now = time.monotonic()
        if self.reason is None and now >= self._next_poll:
            self._next_poll = now + self.poll_s
            try:
                self.reason = self.runtime.call(self.runtime.store.stop_reason(self.run_id), timeout_s=5.0)
            except (OSError, StoreUnavailableError, TimeoutError) as exc:  # a blip: the next poll tries again
                logger.warning("training run %s: cannot read its stop flag: %s", self.run_id, exc)
        self.reason = self.deadline.stop_reason(self.reason)
        return self.reason


_runtime: _ChildRuntime | None = None


def _child_runtime() -> _ChildRuntime:
    global _runtime
    if _runtime is None:
        _runtime = _ChildRuntime(_worker_settings())
    return _runtime


def train(
    run_id: str,
    spec: dict[str, Any],
    time_limit_s: float,
    progress_interval_s: float,
    request_id: str | None = None,
) -> str:
    """Celery task: train ``spec`` (``TrainingSpec.normalized().model_dump()``) as run ``run_id``, stored
    ``queued`` by the API, recording every step in the Redis run store; return the run's final status.

    Args:
        time_limit_s: seconds after which the training stops itself at its next batch (``timed_out``).
        progress_interval_s: least seconds between two ``batch`` events.
        request_id: the id of the HTTP request that created the run, for this worker's log lines.
    """
    token = correlation_id.set(request_id)
    try:
        return _child_runtime().train(run_id, spec, time_limit_s, progress_interval_s)
    finally:
        correlation_id.reset(token)


# What the worker's main process does.


async def _record_end(run_id: str, status: RunStatus, error: RunError | None) -> None:
    settings = _worker_settings()
    store = RedisRunStore(settings.broker_url or "", settings.redis_key_prefix)
    await store.open()
    try:
        run = await store.get(run_id)
        if run is not None and run.status not in FINAL_STATUSES:
            logger.warning("training run %s: its worker process is gone; recording it %s", run_id, status)
            await RunRecorder(store, run).finish(status, error=error)
    finally:
        await store.close()


def _end_run(kwargs: dict[str, Any] | None, status: RunStatus, error: RunError | None = None) -> None:
    run_id = (kwargs or {}).get("run_id")
    if not run_id:
        return
    token = correlation_id.set((kwargs or {}).get("request_id"))
    try:
        asyncio.run(_record_end(str(run_id), status, error))
    except Exception:
        logger.exception("training run %s: could not record its end (%s)", run_id, status)
    finally:
        correlation_id.reset(token)


def _on_revoked(sender: Any = None, request: Any = None, terminated: bool = False, **_: Any) -> None:
    """A cancel that did not stop the run within the grace period killed its child: record ``cancelled``."""
    if terminated and getattr(sender, "name", None) == TRAIN_TASK:
        _end_run(getattr(request, "kwargs", None), "cancelled")


def _on_failure(sender: Any = None, exception: BaseException | None = None, kwargs: Any = None, **_: Any) -> None:
    """The child died (killed, out of memory) or ran past Celery's hard time limit: end the run with why."""
    if getattr(sender, "name", None) != TRAIN_TASK:
        return
    if isinstance(exception, TimeLimitExceeded):
        _end_run(kwargs, "timed_out", time_limit_error(float((kwargs or {}).get("time_limit_s", 0))))
    elif isinstance(exception, WorkerLostError):
        _end_run(
            kwargs,
            "failed",
            RunError(
                kind="worker",
                msg=f"the Celery worker process running the training died ({exception}), e.g. killed or out of "
                "memory; Celery has replaced it, so the run can be started again",
            ),
        )
    else:
        _end_run(kwargs, "failed", RunError(kind="internal", msg=f"{type(exception).__name__}: {exception}"))


def _setup_logging(**_: Any) -> None:
    """Log as the API does (plain or JSON lines, with request ids) instead of Celery's own format."""
    settings = _worker_settings()
    logs.configure_logging(settings.log_level, settings.log_json)


def _warm_child(**_: Any) -> None:
    """A new child imports Keras and opens the run store before it takes its first task."""
    tasks.warm_up()
    _child_runtime()


class _Announce(bootsteps.StartStopStep):  # type: ignore[misc]
    """Announces this worker's size (its pool's children) in Redis every ``worker_heartbeat_s`` seconds,
    so that any API replica can report the training slots of all workers (``/metrics``, ``Retry-After``)."""

    requires: ClassVar[set[str]] = {"celery.worker.components:Timer"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.tref: Any = None

    def _announce(self, parent: Any) -> None:
        settings = _worker_settings()

        async def announce() -> None:
            store = RedisRunStore(settings.broker_url or "", settings.redis_key_prefix)
            await store.open()
            try:
                await store.announce_worker(parent.hostname, parent.concurrency, 3 * settings.worker_heartbeat_s)
            finally:
                await store.close()

        try:
            asyncio.run(announce())
        except (OSError, RedisError, StoreUnavailableError) as exc:
            logger.warning("cannot announce this worker in Redis: %s", exc)

    def start(self, parent: Any) -> None:
        self._announce(parent)
        self.tref = parent.timer.call_repeatedly(
            _worker_settings().worker_heartbeat_s, self._announce, (parent,), priority=10
        )

    def stop(self, parent: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None


def create_worker_app(settings: Settings | None = None) -> Celery:
    """The worker's Celery app, for ``settings`` (else the environment's): the training task registered, this
    worker's size announced by a bootstep, and the signal handlers that record a run whose child died, log as
    the API does and warm each child up. Call once per worker process (:func:`main` does)."""
    global _settings
    _settings = settings or get_settings()
    celery_app = make_celery(_settings)
    celery_app.task(name=TRAIN_TASK)(train)
    celery_app.steps["worker"].add(_Announce)
    signals.task_revoked.connect(_on_revoked)
    signals.task_failure.connect(_on_failure)
    signals.setup_logging.connect(_setup_logging)
    signals.worker_process_init.connect(_warm_child)
    return celery_app


def main() -> None:
    """``layerwise-worker``: a Celery worker for trainings, sized and configured from the environment
    (``LAYERWISE_BROKER_URL``, ``LAYERWISE_TRAINING_WORKERS`` children, ``LAYERWISE_CELERY_QUEUE``,
    ``LAYERWISE_LOG_LEVEL``, ``LAYERWISE_LOG_JSON``).

    Raises:
        SystemExit: ``LAYERWISE_BROKER_URL`` is not set.
    """
    settings = get_settings()
    if not settings.broker_url:
        raise SystemExit("layerwise-worker needs LAYERWISE_BROKER_URL, e.g. redis://127.0.0.1:6379/0")
    # The embedded pool's recycling and memory cap, in Celery's own words: a child is replaced after
    # LAYERWISE_TRAINING_WORKER_MAX_TASKS trainings (each leaves ~9 MB of traced graphs behind), and after a
    # training that left it over LAYERWISE_TRAINING_WORKER_MAX_RSS_BYTES (Celery checks between tasks, in KiB; it
    # does not stop a task mid-run as the embedded pool's watcher does). Celery docs, "Workers": max tasks per
    # child, max memory per child.
    recycling = [f"--max-tasks-per-child={settings.training_worker_max_tasks}"] * bool(
        settings.training_worker_max_tasks
    ) + [f"--max-memory-per-child={settings.training_worker_max_rss_bytes // 1024}"] * bool(
        settings.training_worker_max_rss_bytes
    )
    create_worker_app(settings).worker_main(
        [
            "worker",
            "--pool=prefork",
            f"--concurrency={settings.training_workers}",
            *recycling,
            f"--queues={settings.celery_queue}",
            f"--loglevel={settings.log_level.upper()}",
            # Workers need names of their own: in containers every worker is pid 1, and on the host network
            # every container has the host's name, so a random part tells them apart.
            f"--hostname=layerwise-{secrets.token_hex(4)}@%h",
            "--without-gossip",
        ]
    )
