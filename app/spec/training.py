"""The training request: a model, how to compile and fit it, and the synthetic data. No Keras here.

Field names are Keras's own arguments of ``model.compile`` and ``model.fit``; :meth:`TrainingSpec.normalized`
checks the training against its model (a stateful model's batch and sample counts) and resolves ``batch_size``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from app.errors import Loc, SpecError
from app.spec.graph import GraphSpec
from app.spec.model import ModelSpec
from app.spec.tasks import TASKS, TaskLayout, TaskName, check_metrics, task_layout
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
    "sparse_categorical_crossentropy",
]
Optimizer = Literal["adam", "adamw", "sgd", "rmsprop", "adagrad", "adamax", "nadam"]
Metric = Literal[
    "mae", "mse", "mape", "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy"
]
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
    steps_per_execution: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="Keras's steps_per_execution: training steps run in one call of the compiled train function. "
        "The history is the same for any value; a group of small steps costs one call's overhead instead of one "
        "per step. Progress (batch events), stop requests and the time limit are seen once per group (a stop "
        "request a group does not see within LAYERWISE_CANCEL_GRACE_S kills the worker). null lets the service "
        "choose: steps grouped up to about 250 million Mult-Adds (forward and backward), at most 64; 1 for an "
        "eager run.",
    )


def _task_description() -> str:
    lines = [
        f"{info.name}: {info.summary} Input {info.needs_input}; output {info.needs_output}. Source: {info.source}."
        for info in TASKS.values()
    ]
    return (
        "Which synthetic data to fit (app/spec/tasks.py defines each). A model that does not fit the task is a 422 "
        "naming the shape the task needs and the model's. Labels follow the loss: class indices for "
        "sparse_categorical_crossentropy, one-hot rows for the other losses on a class output, 0/1 for one unit "
        "and two classes, real numbers for a regression task.\n\n" + "\n\n".join(lines)
    )


class DataSpec(StrictModel):
    """Synthetic data: ``task`` chooses what it is (the seed's random data by default, see
    :mod:`app.spec.tasks`), ``samples`` how much, ``timesteps`` its length for a variable-length model."""

    task: TaskName = Field("random", description=_task_description())

    samples: int = Field(100, ge=1, le=2**31 - 1, description="Number of samples to generate.")
    timesteps: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="For a model whose input has a null (variable-length) axis: the length of the synthetic "
        "sequences (every null axis after the batch); required then, ignored otherwise.",
    )


class EarlyStoppingSpec(StrictModel):
    """Arguments of ``keras.callbacks.EarlyStopping`` (Keras's defaults, but ``monitor`` must be in the logs)."""

    monitor: str = Field(
        "val_loss",
        max_length=64,
        description="A key of the epoch's logs: loss, val_loss (needs validation_split > 0), a metric or "
        "val_ + a metric.",
    )
    patience: int = Field(0, ge=0, le=2**31 - 1, description="Epochs without improvement before stopping.")
    min_delta: float = Field(0.0, ge=0.0, le=1e6, description="The least change that counts as an improvement.")
    restore_best_weights: bool = Field(
        False, description="Keep the weights of the best epoch rather than the last one's."
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
    early_stopping: EarlyStoppingSpec | None = Field(
        None, description="Keras's EarlyStopping callback; null trains every epoch."
    )


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
                parts each) that is not a multiple of it, which Keras would only report from inside ``fit``;
                an ``early_stopping.monitor`` the epoch's logs will not hold (``monitor_unknown``). The task
                against the model's shapes is :meth:`task_layout`'s, which needs the analytic engine.
        """
        model = self.model.normalized((*loc, "model"))
        if isinstance(model, GraphSpec) and self.data.task != "random":
            inputs, outputs = len(model.inputs), len(model.outputs)
            dtype = model.inputs[0].dtype
            if inputs != 1 or outputs != 1 or dtype == "bool":
                counts = f"{inputs} input{'s' * (inputs != 1)} and {outputs} output{'s' * (outputs != 1)}"
                has = f"its input is {dtype}" if inputs == outputs == 1 else f"this graph has {counts}"
                raise SpecError.one(
                    (*loc, "data", "task"),
                    f"data.task={self.data.task!r} makes data for a model of one float32 (or int32 token) input and "
                    f"one output, and {has}: leave data.task out to train on the random task's data (one array per "
                    "input, 0/1 labels per output)",
                    "task_input_shape",
                )
        if model.is_graph and self.data.task == "random" and self.compile.loss == "sparse_categorical_crossentropy":
            raise SpecError.one(
                (*loc, "compile", "loss"),
                "on the random task a graph model's labels are 0/1 values shaped like each output, which "
                "sparse_categorical_crossentropy cannot score (it takes class indices): use binary_crossentropy, "
                "categorical_crossentropy or a regression loss, or give a graph of one input and one output a "
                "data.task with classes (temporal_order, running_parity, tokens)",
                "loss_output",
            )
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
        if self.fit.early_stopping is not None:
            self._check_monitor(self.fit.early_stopping.monitor, loc)
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

    @property
    def uses_task_layout(self) -> bool:
        """Whether the data follows :meth:`task_layout` (one input, one output): a Sequential's always, a graph's
        for any task but ``random``, which gives a graph one array per input and 0/1 labels per output."""
        return not self.model.is_graph or self.data.task != "random"

    @property
    def vocab(self) -> int | None:
        """The ``input_dim`` of the Embedding the input feeds when the model takes token ids, else ``None``: a
        Sequential's first layer; in a normalized graph, the smallest of the Embeddings its first input feeds."""
        if isinstance(self.model, GraphSpec):
            return self.model.token_vocab().get(self.model.inputs[0].name)
        first = self.model.layers[0]
        return getattr(first, "input_dim", None) if first.type == "Embedding" else None

    def task_layout(
        self, input_shape: Sequence[int | None], output_shape: Sequence[int | None], loc: Loc = ("body",)
    ) -> TaskLayout:
        """The layout of this training's data (:func:`app.spec.tasks.task_layout`) for a model of these shapes
        (one sample's, without the batch, at the data's length), its metrics checked against the labels.

        Raises:
            SpecError: (422) the model does not fit ``data.task`` or its loss, or a metric cannot score the
                labels (:func:`app.spec.tasks.check_metrics`).
        """
        index = len(self.model.layers) - 1
        if isinstance(self.model, GraphSpec):  # the layer whose output the labels are for
            index = self.model.layer_index().get(self.model.outputs[0].split(":")[0], index)
        last = (*loc, "model", "layers", index)
        layout = task_layout(self.data.task, input_shape, output_shape, self.compile.loss, self.vocab, loc, last)
        check_metrics(self.compile.metrics, layout.encoding, loc)
        return layout

    def _check_monitor(self, monitor: str, loc: Loc) -> None:
        """Refuse an EarlyStopping ``monitor`` that the epoch's logs will not hold (Keras only warns, then
        never stops)."""
        names = ["loss", *dict.fromkeys(self.compile.metrics)]
        keys = names + ([f"val_{n}" for n in names] if self.fit.validation_split else [])
        if monitor in keys:
            return
        if monitor.startswith("val_") and monitor[4:] in names:
            why = "validation_split is 0, so there are no val_ logs; set fit.validation_split, e.g. 0.2, or monitor"
        else:
            why = "use one of"
        raise SpecError.one(
            (*loc, "fit", "early_stopping", "monitor"),
            f"early_stopping.monitor={monitor!r} is not in the epoch's logs: {why} " + ", ".join(repr(k) for k in keys),
            "monitor_unknown",
        )


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
