"""What every layer type shares: strict pydantic fields in Keras's words, and the analytic interface.

A layer type is one class (one module in this package) that carries everything the service knows about it:

- its fields: Keras's constructor arguments, with Keras 3's defaults;
- its analytic behaviour, pure Python: :meth:`KerasLayer.output_shape`, :meth:`KerasLayer.param_count` and
  :meth:`KerasLayer.mult_adds`, which :mod:`app.analysis.engine` walks before any worker is involved;
- what export and import need: :meth:`KerasLayer.keras_config` (the kwargs of ``keras.layers.<type>``),
  :meth:`KerasLayer.python_expr` (Keras 3 code) and :meth:`KerasLayer.from_keras_config` (the reverse of
  Keras's ``get_config()``, by whitelist).

Shapes are tuples with the batch axis first, ``None`` for an open batch, as Keras writes them.
"""

from __future__ import annotations

import json
import math
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from pydantic import Field

from app.errors import Loc
from app.spec.layers.common import KerasImportError, python_literal
from app.spec.layers.keras_config import COMMON_FIXED, Expect
from app.spec.types import BatchInputShape, InputShape, Name, Refs, Shape, StrictModel


class KerasRefusal(ValueError):
    """Keras would refuse this input; ``what`` is the clause :func:`app.engine.failure_message` puts after the
    shape, in the words the Keras side gives for the same refusal (:mod:`app.spec.layers.refusals` has both)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class ShapeError(KerasRefusal):
    """A layer cannot take an input of this rank, in the words Keras's ``InputSpec`` check uses.

    ``expected`` is e.g. ``"ndim=3"`` or ``"min_ndim=3"``, ``found`` e.g. ``"ndim=2"``
    (keras/src/layers/input_spec.py, ``assert_input_compatibility``).
    """

    def __init__(self, expected: str, found: str) -> None:
        super().__init__(f"Keras expected {expected}, found {found}")
        self.expected = expected
        self.found = found


@dataclass(frozen=True)
class Weight:
    """One variable a layer's ``build`` creates: its name (the last part of Keras's variable path), its shape
    (``None`` where it depends on an axis of unknown length, which Keras refuses) and whether it is trainable
    (``add_weight(trainable=...)``; a layer with ``trainable=False`` makes all of its weights non-trainable)."""

    name: str
    shape: Shape
    trainable: bool = True

    @property
    def size(self) -> int:
        """Scalars in the weight (its shape must be known)."""
        return math.prod(d for d in self.shape if d is not None)


# Translates one nested Keras layer object ({"class_name", "config", ...}) found at ``loc`` into spec fields.
TranslateLayer = Callable[[Any, Loc, tuple[str, ...]], dict[str, Any]]


def prod(dims: Shape) -> int:
    """Product of known dimensions (the analytic engine only calls it on dimensions after the batch)."""
    return math.prod(d for d in dims if d is not None)


def keras_auto_name(class_name: str) -> str:
    """Keras's default name stem for a layer class: ``to_snake_case`` of keras/src/utils/naming.py.

    ``"LSTM" -> "lstm"``, ``"SimpleRNN" -> "simple_rnn"``, ``"TimeDistributed" -> "time_distributed"``.
    """
    name = re.sub(r"\W+", "", class_name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def next_auto_name(class_name: str, counters: dict[str, int], taken: set[str]) -> str:
    """The next name Keras gives a layer of ``class_name`` left unnamed: its stem counted from 0 per model
    (``dense``, ``dense_1``...), skipping the names in ``taken``; the name is added to ``taken`` and ``counters``
    moves on (both are the caller's, one pair per model)."""
    stem = keras_auto_name(class_name)
    while True:
        n = counters.get(stem, 0)
        counters[stem] = n + 1
        name = stem if n == 0 else f"{stem}_{n}"
        if name not in taken:
            taken.add(name)
            return name


def layer_type_names(annotation: Any) -> tuple[str, ...]:
    """The ``type`` values a field annotated with a layer class or a union of them accepts."""
    args = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    classes = args or (annotation,)
    return tuple(typing.get_args(cls.model_fields["type"].annotation)[0] for cls in classes)


class KerasLayer(StrictModel):
    """Fields every layer type shares, and the interface each layer type implements.

    ``input_shape`` / ``batch_input_shape`` are accepted on the first layer, as Keras 2 code writes them;
    :meth:`app.spec.ModelSpec.normalized` moves them to the model.

    Subclasses set the class variables below and override the analytic methods; every default here is the
    one of a layer without weights that keeps its input's shape (Dropout).
    """

    # Fields that describe the model's input or, in a graph model, what the layer is called on, rather than the
    # layer; never passed to the Keras constructor.
    INPUT_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"type", "input_shape", "batch_input_shape", "inputs", "initial_state", "mask"}
    )
    # The call arguments a graph model's layer may take besides its inputs (an RNN: initial_state and mask).
    CALL_ARGUMENTS: ClassVar[tuple[str, ...]] = ()
    # Call keywords that are values, not tensors (attention's use_causal_mask): fields, but not the constructor's.
    CALL_OPTIONS: ClassVar[tuple[str, ...]] = ()
    # How many inputs the layer's call takes: (at least, at most); a merge takes a list of two or more.
    INPUTS: ClassVar[tuple[int, int]] = (1, 1)
    # How Keras's call takes them: "one" tensor, a "list" (merges, Attention: layer([a, b])), or "positional"
    # arguments (MultiHeadAttention: layer(query, value, key)).
    CALL_STYLE: ClassVar[str] = "one"
    # Whether Keras builds a call it will fail to run, so the Keras side checks it with call_output_shapes (an
    # RNN's initial_state of the wrong shape, an attention's query and key of different features).
    CHECKED_ON_CALL: ClassVar[bool] = False
    # Fields that hold another layer (wrappers: Bidirectional, TimeDistributed).
    WRAPPED_FIELDS: ClassVar[tuple[str, ...]] = ()
    # The input rank Keras's InputSpec asks for, batch axis included: exactly INPUT_NDIM, or at least
    # INPUT_MIN_NDIM.
    INPUT_NDIM: ClassVar[int | None] = None
    INPUT_MIN_NDIM: ClassVar[int] = 1
    # How an error message says what input the layer needs, e.g. "3-D input (batch, timesteps, features)".
    NEEDS: ClassVar[str] = ""
    # Whether the layer steps over the time axis (axis 1), so the max_timesteps limit applies to it.
    STEPS_OVER_TIME: ClassVar[bool] = False
    # Keras config keys (of get_config()) this service does not model, with the only value import accepts.
    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = COMMON_FIXED
    # Keras 2 argument names this layer accepts, and the Keras 3 field each becomes in normalized().
    KERAS2_RENAMES: ClassVar[Mapping[str, str]] = {}
    # Whether the Keras constructor takes trainable= (SpatialDropout1D's does not: it is then set afterwards).
    TRAINABLE_ARGUMENT: ClassVar[bool] = True
    # Whether the layer passes a mask on (Keras's supports_masking); one that does not destroys the mask of an
    # Embedding(mask_zero=True) or a Masking before it, which Keras only warns about on stderr.
    SUPPORTS_MASKING: ClassVar[bool] = False

    type: str
    name: Name | None = None
    input_shape: InputShape | None = Field(
        None, description="Keras 2 style, first layer only: the model's input shape (no batch dimension)."
    )
    batch_input_shape: BatchInputShape | None = Field(
        None, description="Keras 2 style, first layer only: the model's input shape with the batch first."
    )
    trainable: bool = Field(
        True,
        description="Keras's trainable: false freezes the layer, so its weights are counted as non-trainable "
        "(and training leaves them as they are).",
    )
    inputs: Refs | None = Field(
        None,
        description='Graph models only: the tensors the layer is called on, as references ("encoder_inputs", '
        '"encoder:1"). One for most layers; a list of two or more for a merge; query, value[, key] for attention.',
    )

    # -- Keras and export -------------------------------------------------------------------------------------

    def keras_config(self) -> dict[str, Any]:
        """Keyword arguments for ``keras.layers.<type>(**kwargs)``: every Keras argument, defaults included.

        A wrapped layer stays a :class:`KerasLayer` value (``{"layer": LSTM(...)}``): the builder instantiates
        it first.
        """
        skip = set(self.INPUT_FIELDS) | set(self.WRAPPED_FIELDS) | set(self.KERAS2_RENAMES) | set(self.CALL_OPTIONS)
        config = self.model_dump(exclude=skip)
        for field in self.WRAPPED_FIELDS:
            config[field] = getattr(self, field)
        return config

    def supports_masking(self) -> bool:
        """Keras's ``supports_masking`` for this layer: :attr:`SUPPORTS_MASKING`, unless its arguments decide."""
        return self.SUPPORTS_MASKING

    def walk(self, loc: Loc = ()) -> Iterator[tuple[Loc, KerasLayer]]:
        """This layer, then every layer it wraps, depth first, each with its ``loc`` (a wrapper's inner layer at
        ``(*loc, "layer")``): the one walk over wrappers, for every question asked of a layer and what it holds."""
        yield loc, self
        for field in self.WRAPPED_FIELDS:
            yield from getattr(self, field).walk((*loc, field))

    def innermost(self) -> KerasLayer:
        """The layer that computes a wrapper's output (a Bidirectional's or TimeDistributed's inner layer, down
        to the last); the layer itself when it wraps none."""
        return list(self.walk())[-1][1]

    def wrapped_updated(self, fn: Callable[[KerasLayer], KerasLayer]) -> dict[str, KerasLayer]:
        """``{field: fn(inner)}`` for each layer this one wraps, for ``model_copy(update=...)``; the inner layer
        frozen first when this one is: Keras's ``trainable`` setter freezes the layers a wrapper holds, a
        constructor argument alone would not (``Bidirectional(GRU(4), trainable=False)`` counts its weights
        trainable), so the canonical form, its Keras build and its exported code say it on the inner layer."""
        update: dict[str, KerasLayer] = {}
        for field in self.WRAPPED_FIELDS:
            inner: KerasLayer = getattr(self, field)
            if not self.trainable:
                inner = inner.model_copy(update={"trainable": False})
            update[field] = fn(inner)
        return update

    @property
    def is_stateful(self) -> bool:
        """True when this layer, or a layer it wraps, is a stateful RNN (which needs a fixed batch size)."""
        return any(getattr(layer, "stateful", False) for _, layer in self.walk())

    def python_expr(self) -> str:
        """Keras 3 code that builds this layer: ``keras.layers.LSTM(units=30, name="lstm_layer")``.

        Arguments equal to Keras's default are left out, except the required ones and ``name``.
        """
        config = self.keras_config()
        name = config.pop("name")
        args: list[str] = []
        for key, value in config.items():
            field = type(self).model_fields[key]
            if not field.is_required() and value == field.default:
                continue
            if key == "trainable" and not self.TRAINABLE_ARGUMENT:
                continue  # has no weights to freeze, and its constructor does not take the argument
            if isinstance(value, KerasLayer):
                expr = value.python_expr()
            elif isinstance(value, dict) and "class_name" in value:  # a built-in initializer, regularizer...
                from app.spec.layers import keras_objects

                expr = keras_objects.python_expr(keras_objects.module_of(key) or "", value)
            else:
                expr = python_literal(value)
            args.append(f"{key}={expr}")
        args.append(f"name={python_literal(name)}")
        return f"keras.layers.{self.type}({', '.join(args)})"

    @classmethod
    def from_keras_config(cls, config: Mapping[str, Any], loc: Loc, translate: TranslateLayer) -> dict[str, Any]:
        """Spec fields from the ``config`` of Keras's ``get_config()`` for this class, by whitelist.

        A key that is a field of this class is taken as is (pydantic then checks it); a key in
        :attr:`KERAS_FIXED` must have the one value accepted there (Keras's default); any other key is refused.
        Nothing is deserialised: values are plain JSON.

        Raises:
            KerasImportError: a key that is neither, or a fixed key with another value; ``loc`` points at it.
        """
        fields = set(cls.model_fields) - cls.INPUT_FIELDS - set(cls.CALL_OPTIONS)
        spec: dict[str, Any] = {"type": typing.get_args(cls.model_fields["type"].annotation)[0]}
        for key, value in config.items():
            where = (*loc, key)
            if key in cls.WRAPPED_FIELDS:
                spec[key] = translate(value, where, layer_type_names(cls.model_fields[key].annotation))
            elif key in fields:
                spec[key] = cls._keras_object(key, value, where)
            elif key in cls.KERAS_FIXED:
                expect = cls.KERAS_FIXED[key]
                if not expect.matches(value):
                    raise KerasImportError(
                        where,
                        f"{spec['type']} {key}={json.dumps(value)[:200]} is not supported: only {expect} is, "
                        "because this service could not reproduce anything else; remove the key or set it so",
                    )
            else:
                known = ", ".join(sorted(fields - {"type"}) + sorted(cls.KERAS_FIXED))
                raise KerasImportError(
                    where, f"{spec['type']} has no argument {key!r} that this service supports (known: {known})"
                )
        return spec

    @classmethod
    def _keras_object(cls, key: str, value: Any, loc: Loc) -> Any:
        """A config value as the spec takes it: an initializer, regularizer or constraint from Keras's
        serialized form (its default as the field's default), anything else as it is."""
        from app.spec.layers import keras_objects
        from app.spec.layers.keras_config import DEFAULT_OBJECTS

        module = keras_objects.module_of(key)
        if module is None:
            return value
        default = cls.model_fields[key].default
        if isinstance(default, str) and default in DEFAULT_OBJECTS and DEFAULT_OBJECTS[default].matches(value):
            return default
        return keras_objects.from_keras(module, value, loc)

    # -- Graph models ----------------------------------------------------------------------------------------

    def output_count(self) -> int:
        """How many tensors the layer's call returns (an RNN with ``return_state``: its output and its states)."""
        return 1

    def call_refs(self) -> list[tuple[str, list[str]]]:
        """The references of a graph layer's call, by argument: ``[("inputs", [...]), ("initial_state", [...]),
        ("mask", [...])]``, the arguments given only, in Keras's "Connected to" order."""
        found: list[tuple[str, list[str]]] = [("inputs", list(self.inputs or []))]
        for field in self.CALL_ARGUMENTS:
            value = getattr(self, field)
            if value is not None:
                found.append((field, [value] if isinstance(value, str) else list(value)))
        return found

    def call_options(self) -> dict[str, Any]:
        """The call keywords of :attr:`CALL_OPTIONS` that differ from their defaults, e.g. ``{"use_causal_mask":
        True}``."""
        return {
            name: getattr(self, name)
            for name in self.CALL_OPTIONS
            if getattr(self, name) != type(self).model_fields[name].default
        }

    def call_output_shapes(self, inputs: list[Shape], arguments: Mapping[str, list[Shape]]) -> list[Shape]:
        """The shapes of what the layer's call returns, for the shapes of its ``inputs`` and of its other call
        ``arguments`` (:attr:`CALL_ARGUMENTS`), as Keras's ``compute_output_spec``.

        Raises:
            KerasRefusal: Keras would refuse the call (an input of the wrong rank, a merge of shapes that do not
                match).
        """
        return [self.output_shape(inputs[0])]

    def call_weights(self, inputs: list[Shape]) -> list[Weight]:
        """:meth:`counted_weights` for a call on several inputs (a layer of one input: that input's)."""
        return self.counted_weights(inputs[0])

    def call_mult_adds(self, inputs: list[Shape]) -> int:
        """:meth:`mult_adds` for a call on several inputs (a layer of one input: that input's)."""
        return self.mult_adds(inputs[0])

    def call_kept_scalars(self, inputs: list[Shape]) -> int:
        """Values per sample a call makes inside the layer, beyond its output, that a training step keeps for
        its backward pass (attention's weights over every query-key pair); 0 for most layers. The inputs'
        shapes are known (no ``None`` after the batch)."""
        return 0

    # -- Analytic shape engine --------------------------------------------------------------------------------

    def check_input(self, input_shape: Shape) -> None:
        """Check the input's rank as Keras's ``InputSpec`` does.

        Raises:
            ShapeError: the rank is not ``INPUT_NDIM`` / is below ``INPUT_MIN_NDIM``.
        """
        ndim = len(input_shape)
        if self.INPUT_NDIM is not None and ndim != self.INPUT_NDIM:
            raise ShapeError(f"ndim={self.INPUT_NDIM}", f"ndim={ndim}")
        if ndim < self.INPUT_MIN_NDIM:
            raise ShapeError(f"min_ndim={self.INPUT_MIN_NDIM}", f"ndim={ndim}")

    def output_shape(self, input_shape: Shape) -> Shape:
        """The layer's output shape for ``input_shape`` (batch first), as Keras's ``compute_output_shape``.

        Raises:
            ShapeError: Keras would refuse this input.
        """
        self.check_input(input_shape)
        return input_shape

    def weights(self, input_shape: Shape) -> list[Weight]:
        """The variables Keras's ``build`` creates for ``input_shape``, in its order, with their own trainable
        flags (the layer's ``trainable`` is applied by :meth:`counted_weights`). None for a layer without
        weights."""
        return []

    def counted_weights(self, input_shape: Shape) -> list[Weight]:
        """:meth:`weights` as Keras counts them: all non-trainable when the layer has ``trainable=False``
        (keras/src/layers/layer.py, ``Layer.trainable_weights`` is empty for a frozen layer)."""
        weights = self.weights(input_shape)
        return weights if self.trainable else [replace(w, trainable=False) for w in weights]

    def unknown_weight(self, input_shape: Shape) -> Weight | None:
        """The first weight whose shape depends on an axis of unknown length (Keras refuses it), or None."""
        return next((w for w in self.counted_weights(input_shape) if None in w.shape), None)

    def param_count(self, input_shape: Shape) -> int:
        """Scalars the layer creates for ``input_shape``, as Keras's ``count_params()``: the sum of its
        weights' sizes."""
        return sum(w.size for w in self.counted_weights(input_shape))

    def non_trainable_count(self, input_shape: Shape) -> int:
        """The part of :meth:`param_count` that is not trainable, as Keras's ``non_trainable_weights``:
        BatchNormalization's moving mean and variance, and every weight of a frozen layer."""
        return sum(w.size for w in self.counted_weights(input_shape) if not w.trainable)

    def mult_adds(self, input_shape: Shape) -> int:
        """Multiply-accumulates for one sample, in torchinfo's convention (see :mod:`app.analysis.engine`)."""
        return 0

    def keras2_renamed(self) -> KerasLayer:
        """This layer with its Keras 2 argument names (:attr:`KERAS2_RENAMES`) moved to Keras 3's, for
        :meth:`app.spec.ModelSpec.normalized`. ``input_length`` (Embedding) is the model's input instead."""
        update: dict[str, Any] = {}
        for old, new in self.KERAS2_RENAMES.items():
            value = getattr(self, old)
            if value is not None:
                update[old] = None
                update[new] = value
        return self.model_copy(update=update) if update else self

    def drops_time_axis(self, index: int, consumer: str) -> str | None:
        """How to keep the time axis this layer (at ``index``) removed, for the error of a later ``consumer``
        type that needs it; ``None`` when the layer has nothing to say. Only asked when the layer's output has
        a lower rank than its input."""
        return None
