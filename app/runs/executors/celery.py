"""The API side of scale-out: :class:`CeleryExecutor` sends trainings to Celery workers and cancels them;
:func:`make_celery` and :data:`TRAIN_TASK`, which the worker process (:mod:`app.scaleout.worker`) builds on.

Everything about a run is in the Redis run store, so any API replica can answer for, follow and cancel any
run, and nothing is lost when a replica stops: its runs go on on the workers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgi_correlation_id import correlation_id
from celery import Celery

from app.config import Settings
from app.errors import StoreUnavailableError, WorkerError
from app.runs.models import RunError, TrainingRun
from app.runs.recorder import RunRecorder
from app.runs.status import FINAL_STATUSES
from app.runs.store.redis import RedisRunStore

logger = logging.getLogger(__name__)

# The Celery task that trains one run: sent here, registered by the worker (app.scaleout.worker).
TRAIN_TASK = "layerwise.train"


def make_celery(settings: Settings) -> Celery:
    """A Celery app for ``settings.broker_url``: JSON messages, no result backend (runs are in the run
    store), and a worker holds only the trainings it is running: with late acknowledgement and a prefetch of
    one, a busy worker takes no further message, so a queued training goes to the next idle worker instead of
    waiting behind a busy one (Celery docs, "Prefetch limits"). A message delivered again (its worker died)
    finds its run claimed and is skipped: a run is never trained twice; the worker's death is recorded."""
    app = Celery("layerwise", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_default_queue=settings.celery_queue,
        task_acks_late=True,
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=1,
        # A child imports TensorFlow before it says it is up; Celery's default of 4 s is too short for that.
        worker_proc_alive_timeout=180.0,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )
    return app


class CeleryExecutor:
    """:class:`app.runs.executors.base.Executor` over Celery (broker: ``settings.broker_url``) and a
    :class:`RedisRunStore`.

    Cancel has the local executor's semantics: a queued run is ended at once and never starts (whoever
    claims the run first, this cancel or a worker, wins); a running one is asked to stop through its Redis
    stop flag, which its worker reads at the next batch, and after ``cancel_grace_s`` seconds its Celery task
    is revoked with ``terminate=True`` (SIGKILL), and the worker's main process records it ``cancelled``.
    """

    def __init__(self, store: RedisRunStore, settings: Settings) -> None:
        """Create it on the event loop: it starts a task that ends runs whose worker is gone."""
        self._store = store
        self._settings = settings
        self._celery = make_celery(settings)
        self._pending: set[asyncio.Task[None]] = set()
        self._reaper = asyncio.get_running_loop().create_task(self._reap_lost_runs(), name="reap-lost-runs")

    async def submit(self, run: TrainingRun, spec: dict[str, Any]) -> None:
        """Queue the run's task (its Celery task id is the run id).

        Raises:
            WorkerError: (503) the broker cannot be reached; the run is recorded ``failed``.
        """
        s = self._settings
        try:
            await asyncio.to_thread(
                self._celery.send_task,
                TRAIN_TASK,
                kwargs={
                    "run_id": run.id,
                    "spec": spec,
                    "time_limit_s": s.training_time_limit_s,
                    "progress_interval_s": s.progress_interval_s,
                    "request_id": correlation_id.get(),
                },
                task_id=run.id,
                queue=s.celery_queue,
                time_limit=s.training_time_limit_s + s.cancel_grace_s,
            )
        except Exception as exc:
            logger.exception("run %s: cannot queue its Celery task", run.id)
            msg = f"the training could not be queued: the broker did not take it ({type(exc).__name__}: {exc})"
            await RunRecorder(self._store, run).finish("failed", error=RunError(kind="broker", msg=msg))
            raise WorkerError(msg) from None

    async def cancel(self, run_id: str) -> bool:
        run = await self._store.get(run_id)
        if run is None or run.status in FINAL_STATUSES:
            return False
        if await self._store.claim(run_id, "cancel"):
            # No worker has taken it, and none will: end it here, and tell the workers to drop its message.
            await RunRecorder(self._store, run).finish("cancelled")
            await asyncio.to_thread(self._celery.control.revoke, run_id)
            return True
        await self._store.request_stop(run_id, "cancelled")
        task = asyncio.create_task(self._terminate_after_grace(run_id), name=f"terminate-{run_id}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return True

    async def _terminate_after_grace(self, run_id: str) -> None:
        await asyncio.sleep(self._settings.cancel_grace_s)
        run = await self._store.get(run_id)
        if run is not None and run.status not in FINAL_STATUSES:
            logger.warning(
                "run %s did not stop within %g s of its cancel; terminating its worker process",
                run_id,
                self._settings.cancel_grace_s,
            )
            await asyncio.to_thread(self._celery.control.revoke, run_id, terminate=True, signal="SIGKILL")

    async def _reap_lost_runs(self) -> None:
        """Every third of ``run_lease_s``: end ``failed`` each running run whose worker stopped renewing its
        lease (killed whole, machine gone, cut off from Redis). Every replica looks; one ends each run."""
        lease_s = self._settings.run_lease_s
        while True:
            await asyncio.sleep(lease_s / 3)
            try:
                for run_id in await self._store.lost_runs():
                    run = await self._store.get(run_id)
                    if run is None or run.status != "running" or not await self._store.claim_lost(run_id):
                        continue
                    logger.warning("run %s: its worker has not renewed its lease for %g s; ending it", run_id, lease_s)
                    msg = (
                        f"the Celery worker running the training stopped answering (no sign of life for {lease_s:g} "
                        "s, LAYERWISE_RUN_LEASE_S: killed, or cut off from Redis); start the run again"
                    )
                    await RunRecorder(self._store, run).finish("failed", error=RunError(kind="worker", msg=msg))
            except (OSError, StoreUnavailableError) as exc:
                logger.warning("cannot look for lost runs: %s", exc)

    def unrecorded(self, run_id: str) -> TrainingRun | None:
        """Always None: a Celery worker records its runs in Redis itself, and a lost one is reaped by its lease."""
        return None

    async def training_slots(self) -> tuple[int, int]:
        """(children of every Celery worker that announced itself, runs ``running`` in the store)."""
        slots = await self._store.worker_slots()
        counts = await self._store.count_unfinished()
        return sum(slots.values()), counts.get("running", 0)

    async def close(self) -> None:
        """Stop waiting on cancels; runs go on on the workers (another replica answers for them)."""
        self._reaper.cancel()
        for task in list(self._pending):
            task.cancel()
        self._celery.close()
