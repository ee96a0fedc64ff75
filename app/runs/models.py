"""Response models of a training run: the run, a page of runs, its progress, divergence and error."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.runs.status import RunStatus
from app.summaries.models import ModelSummary


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
    summary: ModelSummary | None = None
    duration_s: float | None = Field(None, description="Seconds from started_at to finished_at.")
    error: RunError | None = None
    request: dict[str, Any] = Field(description="The normalized training request.")


class TrainingRunPage(BaseModel):
    """A page of runs, newest first."""

    items: list[TrainingRun]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null on the last.")
