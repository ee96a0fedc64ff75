"""A run's state changes, recorded in order: what every executor applies to its runs, whoever trains them.

A run moves ``queued -> running -> succeeded | failed | cancelled | timed_out``; ``interrupted`` marks a run
the server stopped under (:mod:`app.runs.status`). :class:`RunRecorder` applies those steps to a
:class:`app.runs.store.base.RunStore`; :func:`record_outcome` ends a run from what the worker returned.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from app.formatting import fmt_bytes
from app.runs.models import Baseline, Divergence, EarlyStopped, Progress, RunError, RunErrorKind, TrainingRun
from app.runs.status import FINAL_STATUSES, RunStatus, can_move
from app.runs.store.base import RunStore
from app.runtime.messages import Failed, TrainingReply, failure_of


def utc_now() -> datetime:
    """Now, in UTC (a run's timestamps)."""
    return datetime.now(UTC)


class RunRecorder:
    """Moves one run through its states and records every step in the store, in order.

    A step :func:`app.runs.status.can_move` does not allow is ignored, so late progress from a worker cannot
    reopen a finished run, nor a second end replace the first. A step the store refuses
    (:class:`app.errors.StoreUnavailableError`) raises, and the run in memory has moved all the same: its end can
    be written again with :meth:`record_end` until the store takes it (``end_recorded``).
    """

    #: Least seconds between two stores of a run's batch progress: ``GET`` shows where the stream is, within
    #: this, without a store write per batch event.
    PROGRESS_SAVE_EVERY_S = 1.0

    def __init__(self, store: RunStore, run: TrainingRun) -> None:
        self.store = store
        self.run = run
        self._progress_saved = 0.0  # time.monotonic() of the last store of batch progress
        self._epochs_logged = run.epochs_completed  # the run's epoch events in the store's log
        self._model_file: bytes | None = None  # a succeeded run's trained model, until the store has it
        self.end_recorded = False

    @property
    def finished(self) -> bool:
        return self.run.status in FINAL_STATUSES

    async def started(self) -> None:
        """The worker began the run: ``running``."""
        if not can_move(self.run.status, "running"):
            return
        self.run.status = "running"
        self.run.started_at = utc_now()
        await self.store.save(self.run)
        await self.store.append_event(
            self.run.id, "status", {"status": "running", **self.run.model_dump(mode="json", include={"started_at"})}
        )

    async def batch(self, data: Mapping[str, Any]) -> None:
        """A batch ended (throttled by the worker): update progress and tell followers; the run with its progress
        is stored at most every :attr:`PROGRESS_SAVE_EVERY_S` (no event is stored: a batch is not history)."""
        if self.finished:
            return
        self.run.progress = Progress(
            epoch=data["epoch"], epochs=data["epochs"], batch=data["batch"], batches=data["batches"]
        )
        now = time.monotonic()
        if now - self._progress_saved >= self.PROGRESS_SAVE_EVERY_S:
            self._progress_saved = now
            await self.store.save(self.run)
        await self.store.publish(self.run.id, "batch", dict(data))

    async def baseline(self, data: Mapping[str, Any]) -> None:
        """The worker made the data and scored its best constant answer, before fitting: keep it on the run, so
        that it can be drawn while the run goes (no event: the ``end`` event's run carries it)."""
        if self.finished:
            return
        self.run.baseline = Baseline(**data)
        await self.store.save(self.run)

    async def epoch(self, data: Mapping[str, Any]) -> None:
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
        await self._log_epochs()

    async def _log_epochs(self) -> None:
        """Append an ``epoch`` event for every completed epoch not in the log yet, from the run's history (the
        worker's logs of that epoch): those whose append the store refused come again, in order."""
        while self._epochs_logged < self.run.epochs_completed:
            epoch = self._epochs_logged + 1
            logs = {key: values[epoch - 1] for key, values in self.run.history.items() if len(values) >= epoch}
            await self.store.append_event(
                self.run.id, "epoch", {"epoch": epoch, "epochs": self.run.epochs, "logs": logs}
            )
            self._epochs_logged = epoch

    async def finish(
        self, status: RunStatus, *, result: dict[str, Any] | None = None, error: RunError | None = None
    ) -> None:
        """End the run: its final state, history and error, then the ``end`` event carrying the whole run.

        Epochs whose progress messages have not arrived yet are recorded from the result's history first,
        so the log always holds one ``epoch`` event per completed epoch before ``end``. A succeeded run's
        trained model file (the result's ``model_file``) is kept in the store.

        Raises:
            StoreUnavailableError: the store refused a write (:meth:`record_end` writes the end again).
        """
        if not can_move(self.run.status, status):
            return
        if result is not None:
            history: dict[str, list[float | None]] = result["history"]
            self.run.history = history
            self.run.epochs_completed = result["epochs_completed"]
            self.run.diverged = Divergence(**result["diverged"]) if result["diverged"] else None
            self.run.execution = result["execution"]
            self.run.steps_per_execution = result.get("steps_per_execution")
            # Results of workers of an earlier version have neither.
            self.run.baseline = Baseline(**result["baseline"]) if result.get("baseline") else None
            stopped = result.get("early_stopped")
            self.run.early_stopped = EarlyStopped(**stopped) if stopped else None
            model_file: bytes | None = result.get("model_file")
            if model_file and status == "succeeded":
                self._model_file = model_file
                self.run.model_bytes = len(model_file)
            elif result.get("model_file_bytes"):  # over LAYERWISE_MAX_MODEL_BYTES: not kept
                self.run.model_file_bytes = result["model_file_bytes"]
        self.run.status = status
        self.run.error = error
        self.run.finished_at = utc_now()
        if self.run.started_at is not None:
            self.run.duration_s = round((self.run.finished_at - self.run.started_at).total_seconds(), 4)
        await self.record_end()

    async def record_end(self) -> None:
        """Write the ended run: the epoch events not logged yet, its model file, the run, then its ``end`` event.
        Each write is whole or not at all, so calling it again after a refusal writes what is missing (the run's
        save is an upsert) and ends with one ``end`` event.

        Raises:
            StoreUnavailableError: the store refused a write; ``end_recorded`` stays False.
        """
        await self._log_epochs()
        if self._model_file is not None:  # stored before the stored run says it has one
            await self.store.save_model(self.run.id, self._model_file)
            self._model_file = None
        await self.store.save(self.run)
        await self.store.append_event(self.run.id, "end", {"run": self.run.model_dump(mode="json")})
        self.end_recorded = True


async def apply_step(recorder: RunRecorder, kind: str, data: Mapping[str, Any]) -> None:
    """Apply one progress message of a training (``started``, ``baseline``, ``batch``, ``epoch``) to its run."""
    if kind == "started":
        await recorder.started()
    elif kind == "baseline":
        await recorder.baseline(data)
    elif kind == "batch":
        await recorder.batch(data)
    elif kind == "epoch":
        await recorder.epoch(data)


async def record_outcome(recorder: RunRecorder, out: TrainingReply | Failed, limit_s: float) -> None:
    """End the run from what :func:`app.runtime.tasks.run_training` returned: ``failed`` with the worker's error, or
    ``timed_out`` / ``cancelled`` / ``succeeded`` by the training's ``stop_reason``, with its result.

    Args:
        out: the worker's reply (:mod:`app.runtime.messages`).
        limit_s: the run's time limit in seconds, quoted in a ``timed_out`` run's error.
    """
    error = failure_of(out)
    if error is not None:
        if error["kind"] == "memory":
            await recorder.finish("failed", error=allocation_error(error["msg"]))
            return
        kind: RunErrorKind = "build" if error["kind"] == "build" else "internal"
        await recorder.finish("failed", error=RunError(kind=kind, msg=error["msg"]))
        return
    result = cast(TrainingReply, out)["result"]
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


def memory_error(rss_bytes: int, cap_bytes: int, estimate_bytes: int | None) -> RunError:
    """The error of a run whose worker was stopped at ``rss_bytes`` of resident memory, over the per-worker cap
    of ``cap_bytes``; ``estimate_bytes`` is the engine's training-memory estimate of the run, if known."""
    estimated = f" (its training memory was estimated at {fmt_bytes(estimate_bytes)})" if estimate_bytes else ""
    return RunError(
        kind="memory",
        msg=f"the training worker reached {fmt_bytes(rss_bytes)} of resident memory, over the cap of "
        f"{fmt_bytes(cap_bytes)} (LAYERWISE_TRAINING_WORKER_MAX_RSS_BYTES), and was stopped{estimated}; train with "
        "a smaller batch_size, fewer units or fewer timesteps (a recurrent layer keeps its states for every "
        "timestep of every sample in the batch)",
    )


def allocation_error(what: str) -> RunError:
    """The error of a run TensorFlow could not allocate a tensor for (``what``: its ``ResourceExhaustedError``'s
    first line), though the service's estimate let it in (the estimate is no bound: :mod:`app.analysis.engine`)."""
    return RunError(
        kind="memory",
        msg=f"TensorFlow could not allocate memory for the training ({what}); train with a smaller batch_size, "
        "fewer units or shorter sequences (attention keeps a weight for every pair of timesteps)",
    )


INTERRUPTED = RunError(kind="interrupted", msg="the server stopped before the run finished; start it again")


def time_limit_error(limit_s: float) -> RunError:
    """The error of a run stopped at its time limit of ``limit_s`` seconds."""
    return RunError(
        kind="time_limit",
        msg=f"the run reached the time limit of {limit_s:g} s (LAYERWISE_TRAINING_TIME_LIMIT_S) and was stopped; "
        "train on fewer samples or epochs",
    )
