"""The training request: a model, how to compile and fit it, and the synthetic data. No Keras here.

Field names are Keras's own arguments of ``model.compile`` and ``model.fit``; :meth:`TrainingSpec.normalized`
checks the training against its model (a stateful model's batch and sample counts) and resolves ``batch_size``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from app.errors import Loc, SpecError
from app.spec.graph import GraphSpec
from app.spec.model import ModelSpec
from app.spec.types import StrictModel

Loss = Literal[
    "mse",
    "mae",
    "mape",
    "msle",
    "huber",
    "log_cosh",
    "binary_crossentropy",
    "categorical_crossentropy",
]
Optimizer = Literal["adam", "adamw", "sgd", "rmsprop", "adagrad", "adamax", "nadam"]
Metric = Literal["mae", "mse", "mape", "accuracy", "binary_accuracy", "categorical_accuracy"]
# Keras's batch size in fit() when neither the request nor the model fixes one: the one place it is written.
KERAS_DEFAULT_BATCH_SIZE = 32


class CompileSpec(StrictModel):
    """Arguments of ``model.compile``: a Keras loss, optimizer and metrics by name."""

    loss: Loss = "mse"
    optimizer: Optimizer = "adam"
    learning_rate: float | None = Field(
        None, gt=0, le=1e6, description="The optimizer's learning_rate; null keeps Keras's default for it."
    )
    metrics: list[Metric] = Field(default_factory=list, max_length=6)
    run_eagerly: bool | None = Field(
        None,
        description="Keras's run_eagerly. null lets the service choose: eager for a tiny run (see "
        "LAYERWISE_EAGER_MAX_STEPS), which skips graph tracing; false is Keras's default, graph mode, whose "
        "losses an eager run can differ from in the last bits of float32.",
    )


class DataSpec(StrictModel):
    """Synthetic data, made as the seed makes it: features uniform in [0, 1) (token ids uniform in
    [0, input_dim) for a model that starts with an Embedding), labels integers in {0, 1}."""

    samples: int = Field(100, ge=1, le=2**31 - 1, description="Number of samples to generate.")
    timesteps: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="For a model whose input has a null (variable-length) axis: the length of the synthetic "
        "sequences (every null axis after the batch); required then, ignored otherwise.",
    )


class FitSpec(StrictModel):
    """Arguments of ``model.fit``."""

    epochs: int = Field(1, ge=1, le=2**31 - 1)
    batch_size: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="Samples per step; null means the model's fixed batch size if it has one, "
        f"else {KERAS_DEFAULT_BATCH_SIZE}.",
    )
    validation_split: float = Field(
        0.0, ge=0.0, lt=1.0, description="Fraction of the samples held out for val_loss, in [0, 1)."
    )
    shuffle: bool = True


def model_kind(body: Any) -> str:
    """The tag of a training's model: ``"graph"`` for a body with a top-level ``inputs``, else ``"sequential"``."""
    if isinstance(body, GraphSpec) or (isinstance(body, dict) and "inputs" in body):
        return "graph"
    return "sequential"


class TrainingSpec(StrictModel):
    """A training run: the model, how to compile and fit it, and the seed of data and weights."""

    model: Annotated[
        Annotated[ModelSpec, Tag("sequential")] | Annotated[GraphSpec, Tag("graph")],
        Discriminator(model_kind),
    ] = Field(description="The model: a Sequential spec, or a graph model's (with a top-level inputs).")
    compile: CompileSpec = Field(default_factory=CompileSpec)
    data: DataSpec = Field(default_factory=DataSpec)
    fit: FitSpec = Field(default_factory=FitSpec)
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seeds the data, the weights and the shuffling.")

    def normalized(self, loc: Loc = ("body",)) -> TrainingSpec:
        """Check the training against its model and return it with the model normalized and
        ``batch_size`` resolved (the model's fixed batch if any, else :data:`KERAS_DEFAULT_BATCH_SIZE`).

        Raises:
            SpecError: (422) anything :meth:`ModelSpec.normalized` raises; a stateful model trained with a
                ``batch_size`` other than its fixed batch, or on a sample count (training and validation
                parts each) that is not a multiple of it, which Keras would only report from inside ``fit``.
        """
        model = self.model.normalized((*loc, "model"))
        if model.variable_axes and self.data.timesteps is None:
            shape = "[" + ", ".join("null" if d is None else str(d) for d in model.batch_shape[1:]) + "]"
            raise SpecError.one(
                (*loc, "data", "timesteps"),
                f"the model's input shape {shape} has a null (variable-length) axis, so the synthetic sequences need "
                "a length: give data.timesteps, e.g. 100",
                "timesteps_missing",
            )
        fixed = model.batch_shape[0]
        batch_size = self.fit.batch_size or fixed or KERAS_DEFAULT_BATCH_SIZE
        train, val = split_samples(self.data.samples, self.fit.validation_split)
        if self.fit.validation_split and (train == 0 or val == 0):
            raise SpecError.one(
                (*loc, "fit", "validation_split"),
                f"validation_split={self.fit.validation_split} splits samples={self.data.samples} into {train} "
                f"for training and {val} for validation, and Keras needs at least one of each; "
                f"{_split_fix(self.data.samples, self.fit.validation_split)}",
                "validation_split_empty",
            )
        stateful = [i for i, layer in enumerate(model.layers) if layer.is_stateful]
        if stateful and fixed is not None:
            where = f"layer {stateful[0]} ({model.layers[stateful[0]].name}) is stateful with a fixed batch of {fixed}"
            if batch_size != fixed:
                raise SpecError.one(
                    (*loc, "fit", "batch_size"),
                    f"{where}, so fit's batch_size must be {fixed}, not {batch_size}; set batch_size to {fixed} "
                    "or leave it out",
                    "stateful_batch_size",
                )
            parts = (
                ("training", train, (*loc, "data", "samples")),
                ("validation", val, (*loc, "fit", "validation_split")),
            )
            for part, count, where_loc in parts:
                if count % fixed:
                    raise SpecError.one(
                        where_loc,
                        f"{where}, so every batch must hold exactly {fixed} samples, but the {part} part has "
                        f"{count} (samples={self.data.samples}, validation_split={self.fit.validation_split}); "
                        f"use a sample count that splits into multiples of {fixed}, e.g. samples="
                        f"{max(fixed, self.data.samples - self.data.samples % fixed)} with validation_split=0",
                        "stateful_samples",
                    )
        return self.model_copy(update={"model": model, "fit": self.fit.model_copy(update={"batch_size": batch_size})})


def _split_fix(samples: int, validation_split: float) -> str:
    """How to make ``validation_split`` leave at least one sample on each side, true of these numbers: a split
    that works for ``samples`` (checked with :func:`split_samples`), or more samples when none does."""
    if samples < 2:
        return f"use at least 2 samples (samples={samples} cannot be split), or validation_split=0"
    # Any split in (0, 1 - 1/samples] leaves one sample or more on each side; offer the nearest with 2 decimals.
    # (0.5 always works from 2 samples on, so the list is never empty.)
    works = [k / 100 for k in range(1, 100) if min(split_samples(samples, k / 100)) >= 1]
    nearest = min(works, key=lambda v: abs(v - validation_split))
    return f"use a validation_split from {works[0]:g} to {works[-1]:g} with samples={samples} (e.g. {nearest:g})"


def split_samples(samples: int, validation_split: float) -> tuple[int, int]:
    """Split ``samples`` into (training, validation) counts exactly as ``model.fit(validation_split=...)``.

    Keras 3 takes the *last* part as validation, splitting at ``floor(samples * (1 - validation_split))``
    (keras/src/trainers/data_adapters/array_slicing.py, ``train_validation_split``).
    """
    if not validation_split:
        return samples, 0
    split_at = math.floor(samples * (1.0 - validation_split))
    return split_at, samples - split_at
