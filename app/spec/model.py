"""The model spec: a Keras Sequential model as a request, in Keras's words. No Keras here.

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

from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, ValidationError, ValidatorFunctionWrapHandler, WrapValidator, field_validator
from pydantic_core import PydanticCustomError

from app.errors import MAX_ERROR_ITEMS, NOT_CHECKED, ErrorItem, Loc, SpecError
from app.spec.layers import KerasLayer, Layer
from app.spec.layers.base import next_auto_name
from app.spec.types import SCHEMA_MAX_LAYERS, BatchInputShape, InputShape, Name, StrictModel


@dataclass
class _Budget:
    """The errors the layers of the model being validated have had so far, and whether checking has stopped."""

    errors: int = 0
    stopped: bool = False


_LAYER_ERRORS: ContextVar[_Budget | None] = ContextVar("layer_errors", default=None)


def _within_budget(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Validate one layer while the model's layers have had fewer than :data:`MAX_ERROR_ITEMS` errors.

    Past that, the first layer not validated gets one :data:`~app.errors.NOT_CHECKED` error and the rest are passed over
    unvalidated: the model is refused anyway, and 1,000 layers of 30 wrong fields each would otherwise cost
    31,000 errors (a tenth of a second, before any answer is written)."""
    budget = _LAYER_ERRORS.get()
    if budget is None:
        return handler(value)
    if budget.errors >= MAX_ERROR_ITEMS:
        if budget.stopped:
            return value
        budget.stopped = True
        raise PydanticCustomError(
            NOT_CHECKED,
            "this layer and the ones after it were not checked: the layers before it have {count} errors already; "
            "fix those and send the request again",
            {"count": budget.errors},
        )
    try:
        return handler(value)
    except ValidationError as exc:
        budget.errors += exc.error_count()
        raise


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
    layers: list[Annotated[Layer, WrapValidator(_within_budget)]] = Field(
        min_length=1,
        max_length=SCHEMA_MAX_LAYERS,
        description=f"The layers, first to last (at most {SCHEMA_MAX_LAYERS:,} in a request; the service's limit, "
        "LAYERWISE_MAX_LAYERS, may be lower).",
    )

    @field_validator("layers", mode="wrap")
    @classmethod
    def _budget_layers(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # One error budget for the layers of this model (a training's model has its own).
        token = _LAYER_ERRORS.set(_Budget())
        try:
            return handler(value)
        finally:
            _LAYER_ERRORS.reset(token)

    @property
    def is_graph(self) -> bool:
        """False: this is a Sequential (a :class:`app.spec.graph.GraphSpec` says True)."""
        return False

    @property
    def batch_shape(self) -> list[int | None]:
        """The input's full shape, batch first (``None`` for an open batch). Valid on a normalized spec."""
        assert self.batch_input_shape is not None, "call normalized() first"
        return list(self.batch_input_shape)

    @property
    def variable_axes(self) -> list[int]:
        """The input's axes after the batch whose length is left open (null), e.g. ``[1]`` for
        ``input_shape: [null, 20]``. Valid on a normalized spec."""
        return [i for i, d in enumerate(self.batch_shape) if i > 0 and d is None]

    def at_length(self, timesteps: int) -> ModelSpec:
        """This normalized spec with every null axis after the batch set to ``timesteps``: what the
        length-dependent figures of a variable-length model are computed on."""
        shape = [timesteps if i > 0 and d is None else d for i, d in enumerate(self.batch_shape)]
        return self.model_copy(update={"batch_input_shape": shape})

    @property
    def input_dtype(self) -> str:
        """The input's dtype: ``"int32"`` when the first layer is an Embedding (token ids, as keras-io writes
        ``Input(shape=(None,), dtype="int32")``), else ``"float32"``."""
        return "int32" if self.layers[0].type == "Embedding" else "float32"

    @property
    def input_layer_name(self) -> str:
        """The name of the model's ``InputLayer``: Keras's first auto name, ``input_layer``, unless a layer
        took it (Keras would then refuse the duplicate; this takes the next free one)."""
        taken = {layer.name for layer in self.layers}
        name, n = "input_layer", 0
        while name in taken:
            n += 1
            name = f"input_layer_{n}"
        return name

    def normalized(self, loc: Loc = ("body",)) -> ModelSpec:
        """Check what spans fields and return the canonical spec.

        The canonical spec has the input as a top-level ``batch_input_shape`` (batch ``None`` when the input
        was given as ``input_shape``), no input fields on layers, a ``name`` on the model and on every layer
        (Keras's own naming for those left out: ``lstm``, ``lstm_1``, ``dense``...; a wrapped layer is named
        before its wrapper, as Keras constructs it first). Two specs that Keras would build identically have
        equal canonical forms.

        Args:
            loc: where this spec sits in the request body, prefixed to every error's ``loc``.

        Raises:
            SpecError: (422) no input shape or more than one; an input shape on a layer other than the
                first, or inside a wrapper; duplicate layer names; ``stateful=True`` (also inside a
                Bidirectional) without a fixed batch size.
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
            for inner_loc, inner in list(layer.walk((*loc, "layers", i)))[1:]:
                for field in ("input_shape", "batch_input_shape"):
                    if getattr(inner, field) is not None:
                        errors.append(
                            ErrorItem(
                                (*inner_loc, field),
                                f"the {inner.type} inside layer {i} ({layer.type}) has {field}; give the model's "
                                f"input shape on the {layer.type} (if it is the first layer) or at the top level",
                                "input_shape_not_first",
                            )
                        )
        errors += _keras2_arguments(self.layers, loc, given)
        errors += _graph_only(self.layers, loc)
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
            example = [5, *batch_shape[1:]]
            if given[0][0][-1] == "batch_input_shape":
                fix = (
                    f"batch_input_shape starts with null (an open batch): make its first number the batch size, "
                    f"e.g. {example}"
                )
            else:
                fix = f"give batch_input_shape (e.g. {example}) instead of input_shape"
            for i, layer in enumerate(self.layers):
                nested = list(layer.walk((*loc, "layers", i)))
                stateful = [where for where, x in nested if getattr(x, "stateful", False)]
                if stateful:
                    errors.append(
                        ErrorItem(
                            (*stateful[0], "stateful"),
                            f"layer {i} ({layer.type}) is stateful, which needs a fixed batch size; {fix}",
                            "stateful_needs_batch",
                        )
                    )
        if errors:
            raise SpecError(errors)
        assert batch_shape is not None

        # Keras names a wrapped layer before its wrapper (it is constructed first: Bidirectional(LSTM(...))).
        taken = set(seen) | {x.name for layer in self.layers for _, x in list(layer.walk())[1:] if x.name}
        counters: dict[str, int] = {}

        def named(layer: KerasLayer) -> KerasLayer:
            layer = layer.keras2_renamed()
            update: dict[str, object] = {"input_shape": None, "batch_input_shape": None}
            if "input_length" in type(layer).model_fields:
                update["input_length"] = None
            update.update(layer.wrapped_updated(named))
            # Keras counts per stem from 0 ("dense", "dense_1", ...); names the user took are skipped.
            update["name"] = layer.name or next_auto_name(layer.type, counters, taken)
            return layer.model_copy(update=update)

        layers = [named(layer) for layer in self.layers]
        return ModelSpec.model_construct(
            name=self.name or "sequential",
            input_shape=None,
            batch_input_shape=batch_shape,
            layers=layers,
        )


def _keras2_arguments(
    layers: Sequence[KerasLayer], loc: Loc, given: list[tuple[Loc, list[int | None]]]
) -> list[ErrorItem]:
    """Check Keras 2 argument names against their Keras 3 forms; an Embedding's ``input_length`` on the first
    layer is added to ``given`` as the input shape ``[None, input_length]`` (unless the same length is given
    there already).

    Returns:
        Errors: ``input_length`` on a later layer, or a Keras 2 name given with its Keras 3 one.
    """
    errors: list[ErrorItem] = []
    for i, top in enumerate(layers):
        for where, layer in top.walk((*loc, "layers", i)):
            for old, new in layer.KERAS2_RENAMES.items():
                if getattr(layer, old) is not None and new in layer.model_fields_set:
                    errors.append(
                        ErrorItem(
                            (*where, old),
                            f"layer {i} ({layer.type}) has both {old} (Keras 2's name) and {new} (Keras 3's); "
                            f"give only {new}",
                            "keras2_conflict",
                        )
                    )
            length = getattr(layer, "input_length", None)
            if length is None:
                continue
            if i > 0 or where != (*loc, "layers", i):
                errors.append(
                    ErrorItem(
                        (*where, "input_length"),
                        f"layer {i} ({layer.type}) has input_length, which Keras 2 takes on the first layer only "
                        "(it is the model's input shape); remove it",
                        "input_shape_not_first",
                    )
                )
            elif not any(shape[1:] == [length] for _, shape in given):
                given.append(((*where, "input_length"), [None, length]))
    return errors


def _graph_only(layers: Sequence[KerasLayer], loc: Loc) -> list[ErrorItem]:
    """Errors for what only a graph model can say: a merge or an attention layer (several inputs), call
    arguments (``inputs``, ``initial_state``, ``mask``), an RNN's ``return_state`` (several outputs)."""
    errors: list[ErrorItem] = []
    fix = (
        "give the model a top-level inputs list (a graph model: "
        '{"inputs": [{"name": "x", "shape": [...]}], "layers": [...], "outputs": [...]})'
    )
    for i, top in enumerate(layers):
        for where, layer in top.walk((*loc, "layers", i)):
            if layer.INPUTS != (1, 1):
                errors.append(
                    ErrorItem(
                        (*where, "type"),
                        f"layer {i} ({layer.type}) takes several inputs, which a Sequential cannot give: {fix}",
                        "graph_only",
                    )
                )
                continue
            for field in ("inputs", *layer.CALL_ARGUMENTS, "return_state"):
                if getattr(layer, field, None) not in (None, False):
                    errors.append(
                        ErrorItem(
                            (*where, field),
                            f"layer {i} ({layer.type}) has {field}, which only a graph model's layer can have: "
                            f"remove it, or {fix}",
                            "graph_only",
                        )
                    )
    return errors
