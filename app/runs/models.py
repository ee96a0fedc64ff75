"""Response models of a training run: the run, a page of runs, its progress, divergence and error, and the
payloads of its events."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from app.runs.status import RunStatus
from app.summaries.models import ModelSummary, ResponseModel

RunErrorKind = Literal["build", "worker", "memory", "time_limit", "interrupted", "broker", "internal"]


class RunError(ResponseModel):
    """Why a run failed, for a person."""

    kind: RunErrorKind = Field(
        description="build: Keras refused the model or its training; worker: the worker process died; memory: the "
        "worker went over its resident-memory cap (LAYERWISE_TRAINING_WORKER_MAX_RSS_BYTES) and was stopped; "
        "time_limit: "
        "the run was stopped at LAYERWISE_TRAINING_TIME_LIMIT_S; interrupted: the server stopped under it; broker: "
        "the Celery broker could not take it; internal: a bug, logged."
    )
    msg: str


class Divergence(ResponseModel):
    """Where the loss first became NaN or infinite (1-based epoch and batch)."""

    epoch: int
    batch: int


class Baseline(ResponseModel):
    """The loss of the best constant answer (one output, the same for every sample) on the run's data: what a
    model that ignores its input reaches. A model that learned the task ends well below it."""

    loss: float | None = Field(description="On the training part.")
    val_loss: float | None = Field(None, description="On the validation part; null without validation_split.")


class EarlyStopped(ResponseModel):
    """Keras's EarlyStopping stopped the run: at which (1-based) epoch, and its best epoch and value."""

    epoch: int = Field(description="The last epoch trained.")
    best_epoch: int = Field(description="The epoch with the best monitored value.")
    best: float | None = Field(description="That value; null if it was not finite.")


class Progress(ResponseModel):
    """How far a run has come: 1-based epoch and batch within it, and the totals."""

    epoch: int = 0
    epochs: int
    batch: int = 0
    batches: int


class TrainingRun(ResponseModel):
    """A training run: the request, its state and what it produced."""

    id: str
    status: RunStatus
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    epochs: int = Field(description="Epochs requested.")
    epochs_completed: int = Field(
        0,
        description="Epochs in the history. An epoch cut short by a cancel or the time limit is left out (its "
        "mean loss would be over part of the epoch; `progress` says how far it got); one cut by divergence is "
        "kept, with its non-finite loss as null.",
    )
    progress: Progress
    samples: int
    batch_size: int
    seed: int
    history: dict[str, list[float | None]] = Field(
        default_factory=dict,
        description="Per-epoch values as Keras's History: loss, val_loss when validating, metrics. "
        "NaN or infinity is null.",
    )
    diverged: Divergence | None = Field(
        None, description="Set when the loss became NaN or infinite; training stopped at that batch."
    )
    execution: Literal["eager", "graph"] | None = Field(
        None,
        description="How Keras ran the steps: graph (traced, Keras's default) or eager, chosen per run from its "
        "number of steps (LAYERWISE_EAGER_MAX_STEPS); the loss history is the same either way.",
    )
    steps_per_execution: int | None = Field(
        None,
        description="Training steps Keras ran in one call of its train function (compile.steps_per_execution, "
        "or the service's choice when that is null): batch events and stop requests come once per group.",
    )
    baseline: Baseline | None = Field(
        None,
        description="The loss of the best constant answer on this run's training and validation data (the "
        "task's baseline); set once the worker has made the data, before the first epoch; null before that, "
        "and for a run whose model could not be built.",
    )
    early_stopped: EarlyStopped | None = Field(
        None, description="Set when fit.early_stopping stopped the run before its last epoch."
    )
    model_bytes: int | None = Field(
        None,
        description="The size in bytes of the trained model file kept with a succeeded run: GET "
        "/v1/trainings/{id}/model answers it, POST .../predict uses it. null when none is kept (the run did not "
        "succeed, or its file was over LAYERWISE_MAX_MODEL_BYTES: model_file_bytes then says how large it was).",
    )
    model_file_bytes: int | None = Field(
        None, description="The size of the trained model file when it was too large to keep; null otherwise."
    )
    summary: ModelSummary | None = None
    duration_s: float | None = Field(None, description="Seconds from started_at to finished_at.")
    error: RunError | None = None
    # A dict, as stored (runs of earlier versions load as they were); the document types it as the TrainingSpec
    # it is (app.api.openapi).
    request: dict[str, Any] = Field(description="The normalized training request.")


class PredictResponse(ResponseModel):
    """A trained model's outputs for the batch sent."""

    run_id: str
    input_shape: list[int] = Field(description="The shape of the inputs received, samples first.")
    outputs: list[Any] = Field(
        description="model.predict of the inputs as nested arrays, shape (samples, *the model's output shape), "
        "float32 values."
    )


class TrainingRunPage(ResponseModel):
    """A page of runs, newest first."""

    items: list[TrainingRun]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null on the last.")


# The payloads of a run's server-sent events (GET /v1/trainings/{run_id}/events): each event's `data`, as JSON.


class TrainingStatusEvent(ResponseModel):
    """``status``: the run is queued, then running (with the time it started)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=False)

    status: Literal["queued", "running"]
    started_at: datetime | None = Field(None, description="With running only.")


class TrainingBatchEvent(ResponseModel):
    """``batch``: progress within an epoch (1-based), throttled, live only (no id: a late client does not get
    them)."""

    epoch: int
    epochs: int
    batch: int
    batches: int
    loss: float | None = Field(description="The mean loss of the epoch so far; null if not finite.")


class TrainingEpochEvent(ResponseModel):
    """``epoch``: one epoch ended (1-based), with Keras's logs for it."""

    epoch: int
    epochs: int
    logs: dict[str, float | None] = Field(description="loss, val_loss when validating, metrics; null if not finite.")


class TrainingEndEvent(ResponseModel):
    """``end``: the run has ended, as GET answers it; the last event of the stream."""

    run: TrainingRun
