"""Training runs: create, run on the training pool, follow progress, keep the result."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from app import worker
from app.errors import LayerwiseError, Loc, NotFoundError, SpecError, WorkerError
from app.pool import Message, WorkerPool
from app.schemas import Divergence, RunError, RunStatus, TrainingRun
from app.spec import TrainingSpec
from app.summaries import SummaryService, raise_for_failure

logger = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


class TrainingService:
    """Runs trainings on the training pool and keeps every run (in memory)."""

    def __init__(self, pool: WorkerPool, summaries: SummaryService, time_limit_s: float) -> None:
        self._pool = pool
        self._summaries = summaries
        self._time_limit_s = time_limit_s
        self._runs: dict[str, TrainingRun] = {}

    async def run(self, spec: TrainingSpec, loc: Loc = ("body",)) -> TrainingRun:
        """Validate, train to the end and return the finished run.

        The model is built for its summary first, so a model Keras refuses is a 422 before any training.

        Raises:
            SpecError: (422) the spec is invalid or Keras refused the model.
            WorkerError, WorkerTimeoutError: (503) the summary worker died or timed out.
        """
        normalized = spec.normalized(loc)
        summary = await self._summaries.summarize(normalized.model, (*loc, "model"))
        assert normalized.fit.batch_size is not None
        run = TrainingRun(
            id=uuid.uuid4().hex,
            status="queued",
            created_at=_now(),
            epochs=normalized.fit.epochs,
            samples=normalized.data.samples,
            batch_size=normalized.fit.batch_size,
            seed=normalized.seed,
            summary=summary,
            request=normalized.model_dump(mode="json", exclude_none=True),
        )
        self._runs[run.id] = run
        started = time.monotonic()
        # The worker stops itself at the time limit; pebble kills it if it has not a few seconds later.
        future = self._pool.submit(
            worker.training_task,
            run.id,
            normalized.model_dump(),
            self._time_limit_s,
            timeout=self._time_limit_s + 5.0,
        )
        try:
            out = await self._pool.result(future, self._time_limit_s + 5.0)
            raise_for_failure(out, (*loc, "model"))
            self._finish(run, out["result"])
        except SpecError:
            raise
        except LayerwiseError as exc:
            status: RunStatus = "timed_out" if exc.error_type == "worker_timeout" else "failed"
            run.status = status
            run.error = RunError(kind="worker" if isinstance(exc, WorkerError) else exc.error_type, msg=str(exc))
            run.finished_at = _now()
        run.duration_s = round(time.monotonic() - started, 4)
        return run

    def _finish(self, run: TrainingRun, result: dict[str, Any]) -> None:
        run.history = result["history"]
        run.epochs_completed = result["epochs_completed"]
        run.diverged = Divergence(**result["diverged"]) if result["diverged"] else None
        reason = result["stop_reason"]
        run.status = "cancelled" if reason == "cancelled" else "timed_out" if reason == "timed_out" else "succeeded"
        run.finished_at = _now()

    def get(self, run_id: str) -> TrainingRun:
        """Return a run by id.

        Raises:
            NotFoundError: (404) no run has this id.
        """
        run = self._runs.get(run_id)
        if run is None:
            raise NotFoundError(f"no training run has id {run_id!r}", loc=("path", "run_id"))
        return run

    def on_message(self, message: Message) -> None:
        """Apply a worker's progress message to its run."""
        run = self._runs.get(str(message.get("run_id")))
        if run is None:
            return
        if message["kind"] == "started":
            run.status = "running"
            run.started_at = _now()
