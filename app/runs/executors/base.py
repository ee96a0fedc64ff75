"""Where trainings run: the interface every executor implements, one implementation a module
(:mod:`app.runs.executors.local`, :mod:`app.runs.executors.celery`)."""

from __future__ import annotations

from typing import Any, Protocol

from app.runs.models import TrainingRun


class Executor(Protocol):
    """Where trainings run: this process's worker pool (:class:`LocalExecutor`), or Celery workers
    (:class:`app.runs.executors.celery.CeleryExecutor`)."""

    async def submit(self, run: TrainingRun, spec: dict[str, Any]) -> None:
        """Start the (already stored, ``queued``) run in the background."""

    async def cancel(self, run_id: str) -> bool:
        """Ask the run to stop; False if this executor does not hold it."""

    async def training_slots(self) -> tuple[int, int]:
        """(trainings that can run at once, trainings running now) on the workers this executor uses."""

    def unrecorded(self, run_id: str) -> TrainingRun | None:
        """The run as it ended, if it has and the run store refused to record its end (it is retried); else
        None."""

    async def close(self) -> None:
        """Stop; runs this process was running are recorded ``interrupted``."""
