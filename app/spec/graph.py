"""The graph spec: a Keras functional ``Model`` as a request, in Keras's words. No Keras here.

A body with a top-level ``inputs`` is a graph; without it, a Sequential (:mod:`app.spec.model`)::

    encoder_inputs = keras.Input(shape=(None, 71), name="encoder_inputs")
    _, h, c = keras.layers.LSTM(256, return_state=True, name="encoder")(encoder_inputs)
    {"inputs": [{"name": "encoder_inputs", "shape": [null, 71]}],
     "layers": [{"type": "LSTM", "name": "encoder", "units": 256, "return_state": true,
                 "inputs": ["encoder_inputs"]}], "outputs": ["encoder:1"]}

References name a tensor: ``"x"`` is the only (or first) output of the input or layer ``x``, ``"x:k"`` its
output ``k`` as Keras returns them. A layer comes after everything it uses; a layer without ``inputs`` is called
on the layer before it (the first layer, on the only input), so a chain reads as a Sequential does.
:meth:`GraphSpec.normalized` checks the graph and returns the canonical form that workers build and caches key on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from app.errors import ErrorItem, Loc, SpecError
from app.spec.layers import Embedding, KerasLayer, Layer
from app.spec.layers.base import next_auto_name
from app.spec.types import SCHEMA_MAX_LAYERS, Dim, InputShape, Name, Ref, Shape, StrictModel

# A model has a few inputs and outputs; the bound keeps a hostile body cheap.
MAX_INPUTS = 64


class GraphInput(StrictModel):
    """One ``keras.Input``: its name, one sample's shape, and optionally a fixed batch and a dtype."""

    name: Name = Field(description="The input's name, which layers refer to (Keras's Input(name=...)).")
    shape: InputShape
    batch_size: Dim | None = Field(None, description="A fixed batch size (needed by a stateful RNN); open if null.")
    dtype: Literal["float32", "int32", "bool"] = Field(
        "float32",
        description="float32 for features, int32 for token ids (an Embedding's input), bool for a mask input.",
    )

    @property
    def batch_shape(self) -> Shape:
        """The input's full shape, batch first."""
        return (self.batch_size, *self.shape)


@dataclass(frozen=True)
class Reference:
    """A parsed reference: output ``index`` of the input or layer ``name``."""

    name: str
    index: int

    @classmethod
    def parse(cls, ref: str) -> Reference:
        """``"x"`` -> ``Reference("x", 0)``, ``"x:2"`` -> ``Reference("x", 2)`` (the schema checked the pattern)."""
        name, _, index = ref.partition(":")
        return cls(name, int(index) if index else 0)


class GraphSpec(StrictModel):
    """A Keras functional ``Model``: named inputs, layers called on references, and the outputs."""

    name: Name | None = None
    inputs: list[GraphInput] = Field(
        min_length=1, max_length=MAX_INPUTS, description="The model's inputs (keras.Input), each named."
    )
    layers: list[Layer] = Field(
        min_length=1,
        max_length=SCHEMA_MAX_LAYERS,
        description="The layers, each after everything it uses; a layer without inputs is called on the layer "
        "before it (the first layer, on the only input).",
    )
    outputs: list[Ref] = Field(
        min_length=1, max_length=MAX_INPUTS, description='The model\'s outputs, as references ("decoder_dense").'
    )

    # -- What a ModelSpec offers, for the engine, the limits and the builders -----------------------------------

    @property
    def is_graph(self) -> bool:
        """True: this is a functional model (a ModelSpec says False)."""
        return True

    @property
    def batch_shape(self) -> list[int | None]:
        """The first input's full shape, batch first."""
        return list(self.inputs[0].batch_shape)

    @property
    def variable_axes(self) -> list[tuple[str, int]]:
        """Every input's axes after the batch whose length is left open (null), as ``(input, axis)``."""
        return [(x.name, i) for x in self.inputs for i, d in enumerate(x.batch_shape) if i > 0 and d is None]

    def at_length(self, timesteps: int) -> GraphSpec:
        """This normalized spec with every null axis after the batch of every input set to ``timesteps``."""
        inputs = [x.model_copy(update={"shape": [timesteps if d is None else d for d in x.shape]}) for x in self.inputs]
        return self.model_copy(update={"inputs": inputs})

    def token_vocab(self) -> dict[str, int]:
        """Input name -> the smallest ``input_dim`` of the Embeddings it feeds directly (its token ids must be
        below it), for the inputs that feed one (valid on a normalized spec)."""
        vocab: dict[str, int] = {}
        for layer in self.layers:
            if isinstance(layer, Embedding) and layer.inputs:
                source = Reference.parse(layer.inputs[0]).name
                dim = layer.input_dim
                vocab[source] = min(dim, vocab.get(source, dim))
        return vocab

    def layer_index(self) -> dict[str, int]:
        """Layer name -> position in :attr:`layers` (valid on a normalized spec)."""
        return {layer.name: i for i, layer in enumerate(self.layers) if layer.name is not None}

    # -- Checking -----------------------------------------------------------------------------------------------

    def normalized(self, loc: Loc = ("body",)) -> GraphSpec:
        """Check the graph and return the canonical spec.

        The canonical spec has a ``name`` on the model (``functional``, Keras's) and on every layer (Keras's
        auto names, as :meth:`app.spec.model.ModelSpec.normalized` gives them), every layer's ``inputs``
        written out, and references in one form: ``"x"`` for a layer of one output, ``"x:k"`` for one of several.

        Raises:
            SpecError: (422) with the layer and the reference: two inputs or layers of one name, an unknown
                name, an output index a layer does not have, a cycle or a layer used before it is defined, an
                input or a layer no output depends on, a layer given the wrong number of inputs, input shapes on
                a layer (they belong on ``inputs``), a stateful RNN without a fixed batch.
        """
        errors: list[ErrorItem] = []
        owner: dict[str, str] = {}
        for i, x in enumerate(self.inputs):
            if x.name in owner:
                errors.append(ErrorItem((*loc, "inputs", i, "name"), _twice(x.name, owner[x.name]), "duplicate_name"))
            owner.setdefault(x.name, f"input {i}")
        for i, layer in enumerate(self.layers):
            for field in ("input_shape", "batch_input_shape"):
                if getattr(layer, field) is not None:
                    errors.append(
                        ErrorItem(
                            (*loc, "layers", i, field),
                            f"layer {i} ({layer.type}) has {field}, but a graph model's shapes are its inputs': "
                            "remove it, and give the shape in inputs",
                            "input_shape_not_first",
                        )
                    )
            if layer.name is not None:
                if layer.name in owner:
                    errors.append(
                        ErrorItem((*loc, "layers", i, "name"), _twice(layer.name, owner[layer.name]), "duplicate_name")
                    )
                owner.setdefault(layer.name, f"layer {i}")
        if errors:
            raise SpecError(errors)

        # Names first, so that references to unnamed layers' auto names are not possible (Keras's too).
        taken = set(owner)
        counters: dict[str, int] = {}

        def auto(layer: KerasLayer) -> KerasLayer:
            layer = layer.keras2_renamed()
            update: dict[str, object] = {}
            update.update(layer.wrapped_updated(auto))
            if layer.name is None:
                update["name"] = next_auto_name(layer.type, counters, taken)
            return layer.model_copy(update=update) if update else layer

        layers = [auto(layer) for layer in self.layers]
        inputs = {x.name: x for x in self.inputs}
        names = [str(layer.name) for layer in layers]
        position = {name: i for i, name in enumerate(names)}
        outputs_of = {name: 1 for name in inputs} | {names[i]: layer.output_count() for i, layer in enumerate(layers)}
        uses: dict[int, set[str]] = {}  # layer -> the names it uses

        def canonical(ref: str, where: Loc, i: int | None) -> str | None:
            parsed = Reference.parse(ref)
            who = "the outputs" if i is None else f"layer {i} ({layers[i].name})"
            if parsed.name not in outputs_of:
                known = ", ".join(sorted(outputs_of)[:20])
                errors.append(
                    ErrorItem(
                        where,
                        f"{who} uses {ref!r}, but there is no input or layer named {parsed.name!r} (known: {known})",
                        "unknown_reference",
                    )
                )
                return None
            count = outputs_of[parsed.name]
            if parsed.index >= count:
                has = "one output" if count == 1 else f"{count} outputs ({parsed.name}:0 to {parsed.name}:{count - 1})"
                hint = " (an RNN returns its states with return_state=true)" if count == 1 else ""
                errors.append(
                    ErrorItem(where, f"{who} uses {ref!r}, but {parsed.name} has {has}{hint}", "unknown_reference")
                )
                return None
            j = position.get(parsed.name)
            if i is not None and j is not None and j >= i:
                if j == i or _depends(layers, position, j, names[i]):
                    msg = f"{who} uses {ref!r}, which depends on {layers[i].name} itself: a graph cannot have a cycle"
                    errors.append(ErrorItem(where, msg, "graph_cycle"))
                else:
                    errors.append(
                        ErrorItem(
                            where,
                            f"{who} uses {ref!r}, which is defined after it (layer {j}): a layer comes after "
                            f"everything it uses; move layer {j} before layer {i}",
                            "reference_order",
                        )
                    )
                return None
            return parsed.name if count == 1 else f"{parsed.name}:{parsed.index}"

        called: list[KerasLayer] = []
        for i, layer in enumerate(layers):
            where = (*loc, "layers", i)
            update: dict[str, object] = {}
            if layer.inputs is None:
                if i > 0:
                    previous = layers[i - 1]
                    refs = [names[i - 1] if previous.output_count() == 1 else f"{names[i - 1]}:0"]
                elif len(self.inputs) == 1:
                    refs = [self.inputs[0].name]
                else:
                    errors.append(
                        ErrorItem(
                            (*where, "inputs"),
                            f"layer 0 ({layer.name}) has no inputs, and the model has {len(self.inputs)}: say which "
                            "it is called on, e.g. inputs: [" + repr(self.inputs[0].name).replace("'", '"') + "]",
                            "missing_inputs",
                        )
                    )
                    refs = []
                update["inputs"] = refs
            else:
                low, high = layer.INPUTS
                if not low <= len(layer.inputs) <= high:
                    count = str(low) if low == high else f"{low} to {high}" if high < 64 else f"{low} or more"
                    errors.append(
                        ErrorItem(
                            (*where, "inputs"),
                            f"layer {i} ({layer.name}, {layer.type}) takes {count} input"
                            f"{'' if count == '1' else 's'}, but it was given {len(layer.inputs)}"
                            + (f": {layer.NEEDS}" if layer.NEEDS and low > 1 else ""),
                            "wrong_input_count",
                        )
                    )
                refs = []
                for k, ref in enumerate(layer.inputs):
                    c = canonical(ref, (*where, "inputs", k), i)
                    if c is not None:
                        refs.append(c)
                update["inputs"] = refs
            uses[i] = {Reference.parse(r).name for r in refs}
            for field in layer.CALL_ARGUMENTS:
                value = getattr(layer, field)
                if value is None:
                    continue
                values = [value] if isinstance(value, str) else list(value)
                done = []
                for k, ref in enumerate(values):
                    at = (*where, field) if isinstance(value, str) else (*where, field, k)
                    c = canonical(ref, at, i)
                    if c is not None:
                        done.append(c)
                        uses[i].add(Reference.parse(c).name)
                update[field] = done[0] if isinstance(value, str) and done else done
            called.append(layer.model_copy(update=update))
        outputs = []
        for k, ref in enumerate(self.outputs):
            c = canonical(ref, (*loc, "outputs", k), None)
            if c is not None:
                outputs.append(c)
        if errors:
            raise SpecError(errors)

        # What the outputs depend on, walking back from them: anything else Keras would leave out of the model.
        needed: set[str] = set()
        stack = [Reference.parse(r).name for r in outputs]
        while stack:
            name = stack.pop()
            if name in needed:
                continue
            needed.add(name)
            if name in position:
                stack.extend(uses[position[name]])
        for i, x in enumerate(self.inputs):
            if x.name not in needed:
                errors.append(
                    ErrorItem(
                        (*loc, "inputs", i),
                        f"input {i} ({x.name}) is not used by any output: remove it, or call a layer on it",
                        "unused_input",
                    )
                )
        for i, layer in enumerate(called):
            if layer.name not in needed:
                errors.append(
                    ErrorItem(
                        (*loc, "layers", i),
                        f"layer {i} ({layer.name}, {layer.type}) is not used by any output, so Keras would leave it "
                        "out of the model: remove it, or add it to outputs",
                        "unused_layer",
                    )
                )
        open_batch = [x.name for x in self.inputs if x.batch_size is None]
        for i, layer in enumerate(called):
            if layer.is_stateful and open_batch:
                errors.append(
                    ErrorItem(
                        (*loc, "layers", i, "stateful"),
                        f"layer {i} ({layer.name}, {layer.type}) is stateful, which needs a fixed batch size: give "
                        f"input {open_batch[0]} a batch_size",
                        "stateful_needs_batch",
                    )
                )
        if errors:
            raise SpecError(errors)
        return GraphSpec.model_construct(
            name=self.name or "functional", inputs=list(self.inputs), layers=called, outputs=outputs
        )


def _twice(name: str, first: str) -> str:
    return f"the name {name!r} is taken by {first}; Keras needs unique names: rename one"


def _depends(layers: list[KerasLayer], position: dict[str, int], start: int, target: str) -> bool:
    """True when layer ``start`` uses ``target``, directly or through the layers it uses (a cycle)."""
    seen: set[int] = set()
    stack = [start]
    while stack:
        j = stack.pop()
        if j in seen:
            continue
        seen.add(j)
        for _, refs in layers[j].call_refs():
            for ref in refs:
                name = Reference.parse(ref).name
                if name == target:
                    return True
                if name in position:
                    stack.append(position[name])
    return False


def is_graph_body(body: object) -> bool:
    """True when a request body describes a graph model: an object with a top-level ``inputs``."""
    return isinstance(body, dict) and "inputs" in body
