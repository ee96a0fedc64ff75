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
from app.spec.graph import MAX_INPUTS, GraphSpec, Reference
from app.spec.messages import PER_OUTPUT_FIELDS
from app.spec.model import ModelSpec
from app.spec.tasks import TASKS, Encoding, TaskLayout, TaskName, check_metrics, task_layout
from app.spec.types import Name, StrictModel

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


def _per_output_kind(value: Any) -> str | None:
    """The tag of a per-output argument's form (compile's ``loss`` and ``loss_weights``), as Keras reads it: one
    value for every output, a list in the order of the model's outputs, or a dict keyed by output name (the tags
    are :data:`app.spec.messages.PER_OUTPUT_TAGS`, which error locs leave out)."""
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return "one" if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None


Weight = Annotated[float, Field(ge=0.0, le=1e6, allow_inf_nan=False)]
LossArg = Annotated[
    Annotated[Loss, Tag("one")]
    | Annotated[list[Loss], Tag("list"), Field(min_length=1, max_length=MAX_INPUTS)]
    | Annotated[dict[Name, Loss], Tag("dict"), Field(min_length=1, max_length=MAX_INPUTS)],
    Discriminator(
        _per_output_kind,
        custom_error_type="per_output",
        custom_error_message="compile.loss is a Keras loss name ('mse'), a list of one per output in the order of "
        "outputs, or an object of one per output name",
    ),
]
LossWeights = Annotated[
    Annotated[list[Weight], Tag("list"), Field(min_length=1, max_length=MAX_INPUTS)]
    | Annotated[dict[Name, Weight], Tag("dict"), Field(min_length=1, max_length=MAX_INPUTS)],
    Discriminator(
        _per_output_kind,
        custom_error_type="per_output",
        custom_error_message="compile.loss_weights is a list of one number per output in the order of outputs, "
        "or an object of one per output name",
    ),
]
# The metrics that improve by rising (their Keras class's _direction is "up"); the others fall.
MAXIMIZED_METRICS = frozenset({"accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy"})
# Keras's batch size in fit() when neither the request nor the model fixes one: the one place it is written.
KERAS_DEFAULT_BATCH_SIZE = 32


class CompileSpec(StrictModel):
    """Arguments of ``model.compile``: a Keras loss, optimizer and metrics by name.

    ``loss`` and ``loss_weights`` take Keras's forms for a model of several outputs (a list in the order of the
    outputs, or a dict keyed by output name: the name of the layer or input each output comes from, Keras's
    ``model.output_names``); :meth:`TrainingSpec.normalized` checks them against the model, and
    :meth:`TrainingSpec.keras_compile_args` gives what ``model.compile`` takes.
    """

    loss: LossArg = Field(
        "mse",
        description="Keras's loss: one name for every output (Keras sums the outputs' losses), or for a model of "
        'several outputs one per output: a list in the order of outputs (["binary_crossentropy", "mse"]) or an '
        'object keyed by output name, the layer each output comes from ({"priority": "binary_crossentropy", '
        '"department": "categorical_crossentropy"}).',
    )
    loss_weights: LossWeights | None = Field(
        None,
        description="Keras's loss_weights: the loss is the sum of each output's loss times its weight; a list in "
        "the order of outputs or an object keyed by output name, like a per-output loss. null weighs every "
        "output 1.",
    )
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
    mode: Literal["auto", "min", "max"] = Field(
        "auto",
        description="Whether the monitored value improves by falling (min) or rising (max); auto: min for a loss, "
        "mae, mse and mape, max for an accuracy, as Keras's auto decides, for an output's own logs too "
        "(department_loss, val_priority_accuracy).",
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
                    "input, random labels per output)",
                    "task_input_shape",
                )
        names = _output_names(model)
        for field in PER_OUTPUT_FIELDS:
            _check_per_output(field, getattr(self.compile, field), names, (*loc, "compile", field))
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
            self._check_monitor(self.fit.early_stopping.monitor, names, loc)
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
        for any task but ``random``, which gives a graph one array per input and random labels per output
        (:meth:`graph_label_encodings`)."""
        return not self.model.is_graph or self.data.task != "random"

    @property
    def vocab(self) -> int | None:
        """The ``input_dim`` of the Embedding the input feeds when the model takes token ids, else ``None``: a
        Sequential's first layer; in a normalized graph, the smallest of the Embeddings its first input feeds."""
        if isinstance(self.model, GraphSpec):
            return self.model.token_vocab().get(self.model.inputs[0].name)
        first = self.model.layers[0]
        return getattr(first, "input_dim", None) if first.type == "Embedding" else None

    @property
    def model_at_data_length(self) -> ModelSpec | GraphSpec:
        """The normalized model with every null (variable-length) axis at ``data.timesteps``, as the data has it
        (the model trained keeps its open length); the model itself when it has none."""
        if not self.model.variable_axes:
            return self.model
        assert self.data.timesteps is not None, "TrainingSpec.normalized() requires it"
        return self.model.at_length(self.data.timesteps)

    @property
    def early_stopping_mode(self) -> Literal["min", "max"]:
        """``EarlyStopping``'s ``mode`` for this normalized training (``fit.early_stopping`` set): the spec's, or
        for ``auto`` the direction of what the monitor logs, as Keras's auto takes it from a metric's
        ``_direction`` (up for the accuracies). Keras 3's auto looks the name up among the compiled metrics only
        (keras/src/callbacks/monitor_callback.py), so an output's own loss or metric (``department_loss``) would
        stop the run with a ValueError: the service and the exported script pass the mode explicitly."""
        stopping = self.fit.early_stopping
        assert stopping is not None
        if stopping.mode != "auto":
            return stopping.mode
        key = stopping.monitor.removeprefix("val_")
        metric = next((m for m in self.compile.metrics if key == m or key.endswith(f"_{m}")), None)
        return "max" if metric is not None and not key.endswith("loss") and metric in MAXIMIZED_METRICS else "min"

    @property
    def output_names(self) -> list[str]:
        """Keras's ``model.output_names`` of the normalized model: the layer (or input) each output comes from, in
        the order of outputs; a Sequential's last layer. Per-output ``loss`` and ``loss_weights`` are keyed by them."""
        return _output_names(self.model)

    @property
    def output_losses(self) -> list[str]:
        """The loss of each output, in the order of outputs, from the normalized spec's ``compile.loss``."""
        return _per_output(self.compile.loss, self.output_names)

    @property
    def output_loss_weights(self) -> list[float]:
        """The weight of each output's loss in the total, in the order of outputs (1 each without loss_weights)."""
        weights = self.compile.loss_weights
        names = self.output_names
        return [1.0] * len(names) if weights is None else [float(w) for w in _per_output(weights, names)]

    def keras_compile_args(self) -> dict[str, Any]:
        """``loss``, ``loss_weights`` and ``metrics`` as this normalized training gives them to ``model.compile``
        (:func:`app.runtime.keras.train.train` and the exported script alike).

        A model of one output gets one loss, a float weight (or None) and its metrics' list. For several outputs,
        what Keras 3 refuses and Keras 2 took is translated: one loss with loss_weights becomes one loss per output
        (Keras 3: "loss_weights must match the number of losses"), and a list of metrics is given to every output,
        as Keras 2 did (Keras 3 wants one list per output: "tuple arity mismatch"), each logged as
        ``<output>_<metric>``. A dict of losses stays a dict and takes its weights as a dict; otherwise both are
        lists in the order of outputs: Keras 3 matches a dict of weights to a list of losses by sorted key, not by
        name (keras/src/trainers/compile_utils.py, ``CompileLoss.build``).
        """
        names = self.output_names
        losses = self.output_losses
        weights = None if self.compile.loss_weights is None else self.output_loss_weights
        metrics = list(self.compile.metrics) or None
        loss: Any
        weights_arg: Any
        if len(names) == 1:
            return {"loss": losses[0], "loss_weights": None if weights is None else weights[0], "metrics": metrics}
        if isinstance(self.compile.loss, dict):
            loss = dict(zip(names, losses, strict=True))
            weights_arg = None if weights is None else dict(zip(names, weights, strict=True))
        elif isinstance(self.compile.loss, str) and weights is None:
            loss, weights_arg = self.compile.loss, None
        else:
            loss, weights_arg = losses, weights
        return {"loss": loss, "loss_weights": weights_arg, "metrics": metrics and [list(metrics) for _ in names]}

    def graph_label_encodings(
        self, output_shapes: Sequence[Sequence[int | None]], loc: Loc = ("body",)
    ) -> list[Encoding]:
        """How a graph's labels on the random task are written for each output, as the random task writes a
        Sequential's (:func:`app.spec.tasks.task_layout`): class indices for sparse_categorical_crossentropy,
        one-hot rows over the last axis for categorical_crossentropy, 0/1 values for the other losses.

        Args:
            output_shapes: one sample's shape of each output, in the order of outputs, at the data's length (the
                engine's, Keras's own).

        Raises:
            SpecError: (422, ``loss_output``) a class loss on an output of one unit (the loss is then always 0),
                at that output's ``compile.loss`` entry; (``metric_labels``) a metric that cannot score an
                output's labels (:func:`app.spec.tasks.check_metrics`).
        """
        names = self.output_names
        encodings: list[Encoding] = []
        for i, (loss, shape) in enumerate(zip(self.output_losses, output_shapes, strict=True)):
            if loss not in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
                encodings.append("binary")
                continue
            if (shape[-1] if shape else 1) == 1:
                one_sample = "(" + ", ".join(str(d) for d in shape) + ")"
                raise SpecError.one(
                    _per_output_loc(self.compile.loss, names, i, (*loc, "compile", "loss")),
                    f"{loss} needs one unit per class, but output {i} ({names[i]}) is {one_sample} a sample, 1 unit: "
                    "over one unit the loss is always 0; use 'binary_crossentropy' with a sigmoid output for two "
                    "classes, or end it with Dense(n, activation='softmax') for n >= 2 classes",
                    "loss_output",
                )
            encodings.append("index" if loss == "sparse_categorical_crossentropy" else "one_hot")
        for encoding in dict.fromkeys(encodings):
            check_metrics(self.compile.metrics, encoding, loc)
        return encodings

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
        layout = task_layout(self.data.task, input_shape, output_shape, self.output_losses[0], self.vocab, loc, last)
        check_metrics(self.compile.metrics, layout.encoding, loc)
        return layout

    def _check_monitor(self, monitor: str, outputs: Sequence[str], loc: Loc) -> None:
        """Refuse an EarlyStopping ``monitor`` that the epoch's logs will not hold (Keras only warns, then
        never stops). With several outputs Keras logs each output's loss and metrics, ``<output>_loss`` and
        ``<output>_<metric>``, beside the total ``loss``."""
        metrics = list(dict.fromkeys(self.compile.metrics))
        names = ["loss", *metrics]
        if len(outputs) > 1:  # the metrics only per output (keras_compile_args)
            names = ["loss", *(f"{name}_{key}" for name in dict.fromkeys(outputs) for key in ("loss", *metrics))]
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


def _output_names(model: ModelSpec | GraphSpec) -> list[str]:
    """Keras's ``output_names`` of a normalized model (:attr:`TrainingSpec.output_names`)."""
    if isinstance(model, GraphSpec):
        return [Reference.parse(ref).name for ref in model.outputs]
    return [str(model.layers[-1].name)]


def _per_output(value: Any, names: Sequence[str]) -> list[Any]:
    """A per-output argument (checked by :func:`_check_per_output`) as one value per output, in their order."""
    if isinstance(value, dict):
        return [value[name] for name in names]
    if isinstance(value, list):
        return list(value)
    return [value] * len(names)


def _per_output_loc(value: Any, names: Sequence[str], i: int, loc: Loc) -> Loc:
    """Where output ``i``'s entry of a per-output argument at ``loc`` is: its index or key, or ``loc`` itself."""
    if isinstance(value, dict):
        return (*loc, names[i])
    return (*loc, i) if isinstance(value, list) else loc


def _check_per_output(field: str, value: Any, names: Sequence[str], loc: Loc) -> None:
    """Refuse a per-output ``compile.loss`` or ``compile.loss_weights`` that does not match the model's outputs
    (``names``: :func:`_output_names`), as Keras would only from inside ``fit``.

    Raises:
        SpecError: (422, ``per_output``) a list whose length is not the number of outputs; a dict that lacks an
            output, has a key that is not one, or is keyed by a layer that gives two outputs (a dict cannot tell
            them apart, Keras's names being the layers').
    """
    if not isinstance(value, (list, dict)):
        return
    count = len(names)
    outputs = f"{count} output{'s' * (count != 1)} ({', '.join(names)})"
    one = ", or one loss name for all of them" if field == "loss" else ""
    if isinstance(value, list):
        if len(value) != count:
            raise SpecError.one(
                loc,
                f"compile.{field} has {len(value)} entr{'ies' if len(value) != 1 else 'y'}, but the model has "
                f"{outputs}: give one per output, in the order of outputs{one}",
                "per_output",
            )
        return
    repeated = [name for name in dict.fromkeys(names) if names.count(name) > 1]
    if repeated:
        same = [str(i) for i, name in enumerate(names) if name == repeated[0]]
        raise SpecError.one(
            loc,
            f"outputs {' and '.join(same)} {'both' if len(same) == 2 else 'all'} come from {repeated[0]!r}, and an "
            f"object keyed by output name cannot tell them apart: give compile.{field} as a list, one per output in "
            f"the order of outputs{one}",
            "per_output",
        )
    for key in value:
        if key not in names:
            raise SpecError.one(
                (*loc, key),
                f"{key!r} is not an output of the model: the keys of compile.{field} are the names of the layers "
                f"(or inputs) its outputs come from, and the model has {outputs}",
                "per_output",
            )
    missing = [name for name in names if name not in value]
    if missing:
        raise SpecError.one(
            loc,
            f"compile.{field} has no entry for output {missing[0]!r}: give one for each of the model's {outputs}",
            "per_output",
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
