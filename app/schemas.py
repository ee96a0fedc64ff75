"""Response models: the model summary, a training run, the error body."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Shape = list[int | None]


class LayerSummary(BaseModel):
    """One row of Keras's summary table."""

    index: int = Field(description="0-based position in the model's layers.")
    name: str
    type: str = Field(description="Keras class name, e.g. LSTM.")
    output_shape: Shape = Field(description="Keras's output shape; null for an open batch, as Keras prints None.")
    params: int = Field(description="Parameters of this layer (scalars), as Keras's 'Param #'.")
    trainable_params: int
    non_trainable_params: int


class ModelSummary(BaseModel):
    """What ``model.summary()`` says, as data, plus the table itself."""

    name: str
    layers: list[LayerSummary]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    weights_bytes: int = Field(description="Bytes the weights take as float32: total_params * 4.")
    keras_version: str
    text: str = Field(description="Keras's own summary table, as model.summary() prints it.")


RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "timed_out", "interrupted"]


class RunError(BaseModel):
    """Why a run failed, for a person."""

    kind: str = Field(description="build, worker, internal...")
    msg: str


class Divergence(BaseModel):
    """Where the loss first became NaN or infinite (1-based epoch and batch)."""

    epoch: int
    batch: int


class Progress(BaseModel):
    """How far a run has come: 1-based epoch and batch within it, and the totals."""

    epoch: int = 0
    epochs: int
    batch: int = 0
    batches: int


class TrainingRun(BaseModel):
    """A training run: the request, its state and what it produced."""

    id: str
    status: RunStatus
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    epochs: int = Field(description="Epochs requested.")
    epochs_completed: int = Field(
        0,
        description="Epochs in the history; a stop (cancel, time limit, divergence) mid-epoch records that "
        "epoch too, over the batches it ran, as Keras's History does.",
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
    summary: ModelSummary | None = None
    duration_s: float | None = Field(None, description="Seconds from started_at to finished_at.")
    error: RunError | None = None
    request: dict[str, Any] = Field(description="The normalized training request.")


class TrainingRunPage(BaseModel):
    """A page of runs, newest first."""

    items: list[TrainingRun]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null on the last.")


class ErrorItemModel(BaseModel):
    """One problem with the request."""

    loc: list[str | int] = Field(description="Where in the request: e.g. ['body', 'layers', 2].")
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer has this body."""

    detail: list[ErrorItemModel]
