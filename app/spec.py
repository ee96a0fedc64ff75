"""Request models: the Keras Sequential model spec and the training request. No Keras here.

Field names are Keras's own argument names (``units``, ``return_sequences``, ``input_shape``,
``batch_input_shape``, ``epochs``, ``batch_size``...), layer ``type`` values are Keras class names, and every
default is Keras 3's, so the seed notebook's code translates line by line::

    LSTM(input_shape=(10, 20), units=30, return_sequences=True, name="lstm_layer")
    {"type": "LSTM", "input_shape": [10, 20], "units": 30, "return_sequences": true, "name": "lstm_layer"}

Pydantic checks each field; :meth:`ModelSpec.normalized` then checks what spans fields (exactly one input
shape, unique names, ``stateful`` needs a fixed batch) and returns the canonical form that workers build and
caches key on.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.errors import ErrorItem, Loc, SpecError

# Keras's activation names (keras.activations), the ones a sequence model plausibly uses.
Activation = Literal[
    "linear",
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "mish",
    "sigmoid",
    "hard_sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "softplus",
    "softsign",
    "exponential",
]
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

# Names as TensorFlow's name scopes accept them (Keras itself only forbids "/"): letters, digits, "_", ".", "-".
Name = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"),
    Field(
        description="Keras layer/model name: 1-64 of letters, digits, '_', '.', '-', starting with a letter "
        "or digit. Optional; Keras-style names (lstm, lstm_1, ...) are given to unnamed layers."
    ),
]
# Upper bounds here only keep numbers sane (int32); the service's resource limits are settings.
Dim = Annotated[int, Field(ge=1, le=2**31 - 1)]
Units = Annotated[int, Field(ge=1, le=2**31 - 1, description="Dimensionality of the output space.")]
Rate = Annotated[float, Field(ge=0.0, lt=1.0, description="Fraction of the units to drop, in [0, 1).")]
InputShape = Annotated[
    list[Dim],
    Field(min_length=1, max_length=8, description="Shape of one sample, without the batch dimension."),
]
BatchInputShape = Annotated[
    list[Dim | None],
    Field(
        min_length=2,
        max_length=9,
        description="Batch size first (an integer fixes it, null leaves it open), then one sample's shape.",
    ),
]


class StrictModel(BaseModel):
    """Base of every request model: unknown fields rejected, no type coercion, no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class KerasLayer(StrictModel):
    """Fields every layer type shares. Subclasses add Keras's own arguments of that layer.

    ``input_shape`` / ``batch_input_shape`` are accepted on the first layer, as Keras 2 code writes them;
    :meth:`ModelSpec.normalized` moves them to the model.
    """

    # Fields that describe the model's input rather than the layer; never passed to the Keras constructor.
    INPUT_FIELDS: ClassVar[frozenset[str]] = frozenset({"type", "input_shape", "batch_input_shape"})

    type: str
    name: Name | None = None
    input_shape: InputShape | None = Field(
        None, description="Keras 2 style, first layer only: the model's input shape (no batch dimension)."
    )
    batch_input_shape: BatchInputShape | None = Field(
        None, description="Keras 2 style, first layer only: the model's input shape with the batch first."
    )

    def keras_config(self) -> dict[str, Any]:
        """Keyword arguments for ``keras.layers.<type>(**kwargs)``: every Keras argument, defaults included."""
        return self.model_dump(exclude=set(self.INPUT_FIELDS))


class LSTM(KerasLayer):
    """``keras.layers.LSTM``. Input ``(batch, timesteps, features)``; output ``(batch, units)``, or
    ``(batch, timesteps, units)`` with ``return_sequences``."""

    type: Literal["LSTM"]
    units: Units
    activation: Activation | None = "tanh"
    recurrent_activation: Activation | None = "sigmoid"
    use_bias: bool = True
    return_sequences: bool = False
    stateful: bool = False
    dropout: Rate = 0.0
    recurrent_dropout: Rate = 0.0
    unit_forget_bias: bool = True


class Dense(KerasLayer):
    """``keras.layers.Dense``. Acts on the last axis: ``(batch, ..., d)`` -> ``(batch, ..., units)``."""

    type: Literal["Dense"]
    units: Units
    activation: Activation | None = None
    use_bias: bool = True


class Flatten(KerasLayer):
    """``keras.layers.Flatten``: ``(batch, d1, d2, ...)`` -> ``(batch, d1*d2*...)``."""

    type: Literal["Flatten"]


AnyLayer = LSTM | Dense | Flatten
Layer = Annotated[AnyLayer, Field(discriminator="type")]


def keras_auto_name(class_name: str) -> str:
    """Keras's default name stem for a layer class: ``to_snake_case`` of keras/src/utils/naming.py.

    ``"LSTM" -> "lstm"``, ``"SimpleRNN" -> "simple_rnn"``, ``"TimeDistributed" -> "time_distributed"``.
    """
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


class ModelSpec(StrictModel):
    """A Keras ``Sequential`` model: an input shape and a stack of layers."""

    name: Name | None = None
    input_shape: InputShape | None = Field(
        None, description="Shape of one sample, e.g. [timesteps, features]. Give this or batch_input_shape."
    )
    batch_input_shape: BatchInputShape | None = Field(
        None,
        description="Fixed batch size first, e.g. [5, 10, 20]; needed for stateful LSTM. Give this or input_shape.",
    )
    layers: list[Layer] = Field(min_length=1, description="The layers, first to last.")

    @property
    def batch_shape(self) -> list[int | None]:
        """The input's full shape, batch first (``None`` for an open batch). Valid on a normalized spec."""
        assert self.batch_input_shape is not None, "call normalized() first"
        return list(self.batch_input_shape)

    def normalized(self, loc: Loc = ("body",)) -> ModelSpec:
        """Check what spans fields and return the canonical spec.

        The canonical spec has the input as a top-level ``batch_input_shape`` (batch ``None`` when the input
        was given as ``input_shape``), no input fields on layers, a ``name`` on the model and on every layer
        (Keras's own naming for those left out: ``lstm``, ``lstm_1``, ``dense``...). Two specs that Keras
        would build identically have equal canonical forms.

        Args:
            loc: where this spec sits in the request body, prefixed to every error's ``loc``.

        Raises:
            SpecError: (422) no input shape or more than one; an input shape on a layer other than the
                first; duplicate layer names; ``stateful=True`` without a fixed batch size.
        """
        errors: list[ErrorItem] = []
        given: list[tuple[Loc, list[int | None]]] = []
        if self.input_shape is not None:
            given.append(((*loc, "input_shape"), [None, *self.input_shape]))
        if self.batch_input_shape is not None:
            given.append(((*loc, "batch_input_shape"), list(self.batch_input_shape)))
        for i, layer in enumerate(self.layers):
            for field in ("input_shape", "batch_input_shape"):
                value = getattr(layer, field)
                if value is None:
                    continue
                where = (*loc, "layers", i, field)
                if i > 0:
                    errors.append(
                        ErrorItem(
                            where,
                            f"layer {i} ({layer.type}) has {field}, but only the first layer may carry the "
                            "model's input shape (Keras 2 style); remove it, or give it once at the top level",
                            "input_shape_not_first",
                        )
                    )
                else:
                    given.append((where, [None, *value] if field == "input_shape" else list(value)))
        if not given:
            errors.append(
                ErrorItem(
                    (*loc, "input_shape"),
                    "the model has no input shape: give input_shape (e.g. [10, 20] for 10 timesteps of 20 "
                    "features) or batch_input_shape (e.g. [5, 10, 20] for a fixed batch of 5), at the top "
                    "level or on the first layer",
                    "input_shape_missing",
                )
            )
        elif len(given) > 1:
            places = ", ".join(".".join(str(p) for p in where[len(loc) :]) for where, _ in given)
            errors.append(
                ErrorItem(
                    given[1][0],
                    f"the input shape is given {len(given)} times ({places}); give exactly one of "
                    "input_shape or batch_input_shape, once",
                    "input_shape_conflict",
                )
            )
        batch_shape = given[0][1] if given else None

        seen: dict[str, int] = {}
        for i, layer in enumerate(self.layers):
            if layer.name is None:
                continue
            if layer.name in seen:
                errors.append(
                    ErrorItem(
                        (*loc, "layers", i, "name"),
                        f"layer {i} is named {layer.name!r}, like layer {seen[layer.name]}; Keras needs unique "
                        "layer names: rename one or leave the name out",
                        "duplicate_name",
                    )
                )
            else:
                seen[layer.name] = i

        if batch_shape is not None and batch_shape[0] is None:
            for i, layer in enumerate(self.layers):
                if getattr(layer, "stateful", False):
                    errors.append(
                        ErrorItem(
                            (*loc, "layers", i, "stateful"),
                            f"layer {i} ({layer.type}) is stateful, which needs a fixed batch size; give "
                            f"batch_input_shape (e.g. {[5, *batch_shape[1:]]}) instead of input_shape",
                            "stateful_needs_batch",
                        )
                    )
        if errors:
            raise SpecError(errors)
        assert batch_shape is not None

        taken = set(seen)
        counters: dict[str, int] = {}
        layers: list[AnyLayer] = []
        for layer in self.layers:
            name = layer.name
            if name is None:
                # Keras counts per stem from 0 ("dense", "dense_1", ...); skip names the user took.
                stem = keras_auto_name(layer.type)
                while True:
                    n = counters.get(stem, 0)
                    counters[stem] = n + 1
                    name = stem if n == 0 else f"{stem}_{n}"
                    if name not in taken:
                        break
                taken.add(name)
            layers.append(layer.model_copy(update={"name": name, "input_shape": None, "batch_input_shape": None}))
        return ModelSpec.model_construct(
            name=self.name or "sequential",
            input_shape=None,
            batch_input_shape=batch_shape,
            layers=layers,
        )


class CompileSpec(StrictModel):
    """Arguments of ``model.compile``: a Keras loss, optimizer and metrics by name."""

    loss: Loss = "mse"
    optimizer: Optimizer = "adam"
    learning_rate: float | None = Field(
        None, gt=0, le=1e6, description="The optimizer's learning_rate; null keeps Keras's default for it."
    )
    metrics: list[Metric] = Field(default_factory=list, max_length=6)


class DataSpec(StrictModel):
    """Synthetic data, made as the seed makes it: features uniform in [0, 1), labels integers in {0, 1}."""

    samples: int = Field(100, ge=1, le=2**31 - 1, description="Number of samples to generate.")


class FitSpec(StrictModel):
    """Arguments of ``model.fit``."""

    epochs: int = Field(1, ge=1, le=2**31 - 1)
    batch_size: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="Samples per step; null means the model's fixed batch size if it has one, else 32.",
    )
    validation_split: float = Field(
        0.0, ge=0.0, lt=1.0, description="Fraction of the samples held out for val_loss, in [0, 1)."
    )
    shuffle: bool = True


class TrainingSpec(StrictModel):
    """A training run: the model, how to compile and fit it, and the seed of data and weights."""

    model: ModelSpec
    compile: CompileSpec = Field(default_factory=CompileSpec)
    data: DataSpec = Field(default_factory=DataSpec)
    fit: FitSpec = Field(default_factory=FitSpec)
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seeds the data, the weights and the shuffling.")

    def normalized(self, loc: Loc = ("body",)) -> TrainingSpec:
        """Check the training against its model and return it with the model normalized and
        ``batch_size`` resolved (the model's fixed batch if any, else Keras's default of 32).

        Raises:
            SpecError: (422) anything :meth:`ModelSpec.normalized` raises; a stateful model trained with a
                ``batch_size`` other than its fixed batch, or on a sample count (training and validation
                parts each) that is not a multiple of it, which Keras would only report from inside ``fit``.
        """
        model = self.model.normalized((*loc, "model"))
        fixed = model.batch_shape[0]
        batch_size = self.fit.batch_size or fixed or 32
        train, val = split_samples(self.data.samples, self.fit.validation_split)
        if self.fit.validation_split and (train == 0 or val == 0):
            raise SpecError.one(
                (*loc, "fit", "validation_split"),
                f"validation_split={self.fit.validation_split} splits samples={self.data.samples} into {train} "
                f"for training and {val} for validation, and Keras needs at least one of each; use more "
                "samples or a validation_split nearer 0.5",
                "validation_split_empty",
            )
        stateful = [i for i, layer in enumerate(model.layers) if getattr(layer, "stateful", False)]
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


def split_samples(samples: int, validation_split: float) -> tuple[int, int]:
    """Split ``samples`` into (training, validation) counts exactly as ``model.fit(validation_split=...)``.

    Keras 3 takes the *last* part as validation, splitting at ``floor(samples * (1 - validation_split))``
    (keras/src/trainers/data_adapters/array_slicing.py, ``train_validation_split``).
    """
    if not validation_split:
        return samples, 0
    split_at = math.floor(samples * (1.0 - validation_split))
    return split_at, samples - split_at
