"""Training runs as resources: what the routes call to create, read, list, follow, wait for and cancel runs.

A run is queued, run on a worker by an :class:`app.runs.executors.base.Executor`, followed, cancelled, timed
out, and kept in a :class:`app.runs.store.base.RunStore`; :class:`app.runs.recorder.RunRecorder` records its
steps.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from app.analysis.limits import check_training_limits
from app.config import Settings
from app.errors import (
    ConflictError,
    Loc,
    NotFoundError,
    QueueFullError,
    SpecError,
    StoreFaultError,
    StoreUnavailableError,
)
from app.runs.executors.base import Executor
from app.runs.models import PredictResponse, Progress, TrainingRun, TrainingRunPage
from app.runs.recorder import INTERRUPTED, RunRecorder, utc_now
from app.runs.status import FINAL_STATUSES
from app.runs.store.base import RunEvent, RunStore
from app.spec.predict import PredictRequest, check_inputs, check_one_input_and_output
from app.spec.training import TrainingSpec, split_samples
from app.summaries.service import SummaryService

logger = logging.getLogger(__name__)

# A faulted store, in a sentence's words ("the run store is ..."), for a run the store may not hold whole.
_FAULT_WORDS = {"read_only": "read-only", "deleted": "deleted", "write_failed": "failing its writes"}


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
        """Validate the training (its model against ``data.task`` and the loss too), build its model for the
        summary, store it ``queued`` and start it.

        Raises:
            SpecError: (422) the request is invalid, over a limit, or Keras refused the model; nothing was
                queued.
            QueueFullError: (429) ``max_queued_runs`` runs are already waiting, or ``client`` (an
                :func:`app.api.protection.client_key`) already has ``max_active_runs_per_client`` queued or running.
            BuildsBusyError: (429) ``client`` has as many model builds waiting as allowed (an unseen model's summary
                is one).
            WorkerError, WorkerTimeoutError: (503) the summary worker died or timed out.
        """
        normalized = spec.normalized(loc)
        checked = self._summaries.check_training(normalized, loc)  # the engine and the limits: no worker
        # The data's shapes: at data.timesteps for a variable-length model (check_training has it then).
        data_figures = checked.length or checked.figures
        check_training_limits(normalized, data_figures.output_shapes, self._settings, loc)
        # The task against the engine's shapes (Keras's own), so that a model that does not fit is a 422 here. A
        # graph model on the random task gets one array per input instead (TrainingSpec.uses_task_layout), and
        # labels per output.
        if normalized.uses_task_layout:
            normalized.task_layout(data_figures.input_shape[1:], data_figures.output_shapes[0][1:], loc)
        else:  # its labels follow each output's loss
            normalized.graph_label_encodings([shape[1:] for shape in data_figures.output_shapes], loc)
        await self._check_queue()  # before the summary build: a full queue costs no work
        await self._check_client(client)
        summary = await self._summaries.summarize_training(normalized, loc, client, checked)
        assert normalized.fit.batch_size is not None
        train_samples, _ = split_samples(normalized.data.samples, normalized.fit.validation_split)
        batches = math.ceil(train_samples / normalized.fit.batch_size)
        run = TrainingRun(
            id=uuid.uuid4().hex,
            status="queued",
            created_at=utc_now(),
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
        # Every creation, so that the store never holds more than runs_max_count finished runs (a prune of the
        # SQLite store holding the default 1,000 runs took 1.7 ms, median of 50, on the 2-core dev machine).
        try:
            await self._store.prune(self._settings.runs_max_age_s, self._settings.runs_max_count)
        except StoreUnavailableError as exc:  # the run is accepted and started: its answer stands
            logger.error("pruning old runs failed, left for later: %s", exc)
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
            StoreFaultError: (503) the run is queued or running in the store, and the store is faulted
                (:meth:`app.runs.store.base.RunStore.health`): its progress or its end may be missing from what
                the store holds, so it is not answered as if it were whole. The message gives its end if it has
                ended and the end waits for the store.
        """
        run = await self._store.get(run_id)
        if run is None:
            raise NotFoundError(f"no training run has id {run_id!r}", loc=("path", "run_id"))
        if run.status not in FINAL_STATUSES:
            health = await self._store.health()
            if health != "ok":
                ended = self._executor.unrecorded(run_id)
                state = (
                    f"it ended {ended.status}, but its end is not recorded yet"
                    if ended is not None
                    else f"it is {run.status} as last recorded, and what it does now may not be"
                )
                raise StoreFaultError(
                    f"run {run_id}: {state}, because the run store is {_FAULT_WORDS.get(health, health)} (GET /readyz "
                    "says why and what fixes it); the server records it as soon as the store takes writes again: "
                    "retry then",
                    health,
                )
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

    async def model_file(self, run_id: str) -> tuple[TrainingRun, bytes]:
        """The run and its trained model file (``.keras``), as the store keeps it.

        Raises:
            NotFoundError: (404) no run has this id.
            ConflictError: (409) the run has no model file: it has not succeeded (yet), or its file was over
                ``max_model_bytes``.
        """
        run = await self.get(run_id)
        data = await self._store.get_model(run_id) if run.model_bytes else None
        if data is None:
            if run.status != "succeeded":
                why = f"it is {run.status}, and only a succeeded run keeps its model"
                fix = "wait for it to end" if run.status not in FINAL_STATUSES else "train it again"
            elif run.diverged is not None:
                why = "its loss diverged (see diverged), so its weights are not finite and were not kept"
                fix = "train it again with a smaller learning_rate"
            elif run.model_file_bytes:
                why = (
                    f"its file of {run.model_file_bytes} bytes was over the limit, LAYERWISE_MAX_MODEL_BYTES="
                    f"{self._settings.max_model_bytes}"
                )
                fix = "train a smaller model, or raise the limit"
            else:
                why = "none was kept (LAYERWISE_MAX_MODEL_BYTES=0, or a run of an earlier version)"
                fix = "train it again"
            raise ConflictError(f"run {run_id} has no trained model: {why}; {fix}", loc=("path", "run_id"))
        return run, data

    async def script(self, run_id: str) -> tuple[TrainingRun, str]:
        """The run and a runnable Keras 3 script of it (:func:`app.runtime.keras.script.training_script`),
        written in a summary worker: any run, whatever its status, since the script is made from its request.

        Raises:
            NotFoundError: (404) no run has this id.
            WorkerError, WorkerTimeoutError: (503) the worker died or timed out.
        """
        run = await self.get(run_id)
        script = await self._summaries.training_script(
            run.request, run.execution, self._settings.eager_max_steps, run_id
        )
        return run, script

    async def predict(self, run_id: str, request: PredictRequest) -> PredictResponse:
        """The trained model's outputs for a small batch, computed in a summary worker.

        Raises:
            NotFoundError, ConflictError: as :meth:`model_file`.
            SpecError: (422, ``predict_inputs``) the inputs' shape or values do not fit the model's input
                (:func:`app.spec.predict.check_inputs`), or the model is a graph of several inputs or outputs
                (:func:`app.spec.predict.check_one_input_and_output`).
            WorkerError, WorkerTimeoutError: (503) the worker died or timed out.
        """
        run, data = await self.model_file(run_id)
        training = TrainingSpec.model_validate(run.request)
        check_one_input_and_output(training.model)
        shape, dtype = check_inputs(
            request.inputs, training.model.batch_shape, training.vocab, self._settings.max_predict_values
        )
        outputs = await self._summaries.predict(data, request.inputs, dtype)
        return PredictResponse(run_id=run_id, input_shape=shape, outputs=outputs)

    async def close(self) -> None:
        """Record every unfinished run of this process ``interrupted``."""
        await self._executor.close()
