"""The analytic shape engine: every layer's output shape, parameters, Mult-Adds and activation bytes, from the
spec alone, in pure Python (no Keras), in microseconds.

It runs before any worker is involved (:class:`app.summaries.service.SummaryService`): a stack Keras would
refuse is a 422 with the message the Keras side gives (:func:`failure_message` is shared with
:mod:`app.runtime.keras.build`); :mod:`app.analysis.limits` then checks the service's size limits on these figures.
Keras stays the source of truth for what a summary returns; ``tests/runtime/test_engine_vs_keras.py`` checks with
hypothesis that the two agree on every shape, every count and on which stacks fail.

Conventions (every figure is an integer; shapes have the batch axis first):

Mult-Adds
    Multiply-accumulate operations of one forward pass, counted as torchinfo counts them
    (torchinfo/layer_info.py, ``LayerInfo.calculate_macs``): every weight -- kernel, recurrent kernel and bias
    element alike -- is one mult-add each time it is used. A Dense uses its weights once per position (each
    index of the axes between batch and features), a recurrent layer once per timestep, ``return_sequences``
    or not (LSTM: ``T·4u(i+u+1)``), a Bidirectional twice as often as its RNN, a convolution once per output
    position (kernel elements x output positions: torchinfo's ``ConvNd`` rule, also for a transposed or
    separable one), BatchNormalization's and LayerNormalization's gamma and beta and PReLU's alpha once per
    element they scale (BatchNormalization's moving statistics are not used in a training pass), a
    TimeDistributed layer's once per timestep. Elementwise work without weights (activations, gate products,
    dropout masks, pooling, padding) is not counted, nor is an Embedding's lookup. The one departure from
    torchinfo: it counts a ``Linear`` on a 3-D input once per sample (``output[0]·params``) where the matmul
    does every position; positions count here. Figures are per sample; for a batch, multiply by its size.

Bytes
    float32, 4 bytes a scalar. ``activation_bytes`` is a layer's output for one sample. The training memory
    estimate (:meth:`ModelFigures.training_memory`) adds, for a batch of ``B``: weights (all params·4), gradients
    (trainable params·4), the optimizer's per-weight slots (Adam: m and v, 2·trainable·4), activations (B·2·
    the output bytes of every layer that has weights: the output kept for the backward pass and its gradient,
    torchinfo's "Forward/backward pass size", torchinfo/model_statistics.py) and the input batch (B·input
    bytes, torchinfo's "Input size"). A recurrent layer's activations add what backpropagation through time
    keeps (:meth:`ModelFigures.training_memory`): its states of every timestep, and the weight gradients of
    the loop iterations TensorFlow runs at once. An attention layer's add two tensors of heads·Tq·Tk (its
    softmax weights, and their product with their gradient; three with dropout), which grow with the square of
    the length. TensorFlow's fixed cost of tracing a training step (~60 MiB, whatever the model) is not in it.
    ``bench/training_memory.py`` measures real trainings against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, computed_field

from app.errors import Loc, SpecError
from app.formatting import fmt_count, fmt_shape
from app.spec.graph import GraphSpec, Reference
from app.spec.layers import KerasLayer, refusals
from app.spec.layers.base import KerasRefusal, prod
from app.spec.model import ModelSpec
from app.spec.training import Optimizer
from app.spec.types import Shape

# Bytes of one float32 scalar: every figure in bytes counts float32 weights, activations and inputs.
FLOAT32_BYTES = 4

# Per-weight slot variables each optimizer keeps with Keras's default arguments (each optimizer's ``build`` in
# keras/src/optimizers/: adam.py momentums + velocities, adamw.py is Adam's, nadam.py momentums + velocities,
# adamax.py m + u, rmsprop.py velocities (momentum=0, centered=False), adagrad.py accumulators, sgd.py none at
# momentum=0). Scalars such as the iteration counter are left out.
OPTIMIZER_SLOTS: dict[str, int] = {
    "adam": 2,
    "adamw": 2,
    "nadam": 2,
    "adamax": 2,
    "rmsprop": 1,
    "adagrad": 1,
    "sgd": 0,
}


# Scalars per unit a recurrent layer keeps for each timestep of each sample, for backpropagation through time: TF's
# while loop (keras/src/backend/tensorflow/rnn.py) stacks every intermediate of the cell the gradient needs, the
# gates' inputs and outputs and the states. Measured by bench/training_memory.py (peak RSS of one graph-mode step,
# slope over timesteps and units): LSTM 8.6-10.5, GRU 9.0-9.4, SimpleRNN 1.0-1.4; rounded up by ~20 %.
BPTT_SCALARS_PER_UNIT: dict[str, int] = {"LSTM": 12, "GRU": 12, "SimpleRNN": 3}
# Loop iterations TF's while loop runs at once (``parallel_iterations=32`` in keras/src/backend/tensorflow/rnn.py):
# in the backward pass each holds its own gradient of the layer's weights before they are summed. With a small
# batch and many units these dominate: LSTM(1024) over 256 steps at batch 8 took 767 MiB, 530 of them these.
RNN_PARALLEL_ITERATIONS = 32


def bptt_step_scalars(layer: KerasLayer) -> int:
    """Scalars ``layer`` keeps per timestep of one sample for backpropagation through time:
    :data:`BPTT_SCALARS_PER_UNIT` x ``units`` for an RNN, both directions of a ``Bidirectional``, 0 otherwise."""
    if layer.type == "Bidirectional":
        return 2 * bptt_step_scalars(layer.innermost())
    return BPTT_SCALARS_PER_UNIT.get(layer.type, 0) * int(getattr(layer, "units", 0))


@dataclass(frozen=True)
class LayerFigures:
    """One layer as the engine computes it. Shapes batch first; ``mult_adds`` for one sample."""

    index: int
    name: str
    type: str
    input_shape: Shape
    output_shape: Shape
    params: int
    mult_adds: int
    timesteps: int | None = None  # the time axis it steps over (recurrent layers, TimeDistributed)
    non_trainable_params: int = 0  # BatchNormalization's moving statistics, every weight of a frozen layer
    step_scalars: int = 0  # kept per timestep of one sample for backpropagation through time (bptt_step_scalars)
    kept_scalars: int = 0  # kept inside the layer for the backward pass, one sample's (KerasLayer.call_kept_scalars)
    # Graph models: every output's shape (an RNN with return_state has several), and the references the layer
    # was called on (Keras's "Connected to"). Empty for a Sequential.
    output_shapes: tuple[Shape, ...] = ()
    connected_to: tuple[str, ...] = ()

    @property
    def trainable_params(self) -> int:
        """The parameters training updates: ``params - non_trainable_params``."""
        return self.params - self.non_trainable_params

    @property
    def activation_bytes(self) -> int:
        """Bytes of this layer's outputs for one sample, float32: all of them for a layer that returns several (an
        LSTM's output and states with ``return_state``)."""
        return _all_output_bytes(self)

    def bptt_bytes(self, batch_size: int) -> int:
        """Bytes a training step at ``batch_size`` keeps for this layer's backpropagation through time: its
        per-timestep states (``batch_size·timesteps·step_scalars·4``) and the weight gradients of the loop
        iterations run at once (``min(timesteps, 32)·params·4``); 0 for a layer that is not recurrent or whose
        length is unknown."""
        if not self.step_scalars or self.timesteps is None:
            return 0
        states = batch_size * self.timesteps * self.step_scalars
        return (states + min(self.timesteps, RNN_PARALLEL_ITERATIONS) * self.params) * FLOAT32_BYTES


# One type for the engine's figure and the summary's training_memory as it is answered (and documented).
class TrainingMemory(BaseModel):
    """Estimated memory of one training step, in bytes (float32, 4 bytes a scalar).

    torchinfo's convention (torchinfo/model_statistics.py), plus what backpropagation through time keeps for a
    recurrent layer. TensorFlow's fixed cost of tracing a training step (~60 MiB, whatever the model) is not
    counted; ``bench/training_memory.py`` measures real trainings against the estimate.
    """

    # Frozen: a figure. Every field required in the OpenAPI document (the service always sends each, as every
    # response model of app.summaries.models.ResponseModel does).
    model_config = ConfigDict(frozen=True, json_schema_serialization_defaults_required=True)

    batch_size: int = Field(description="The batch the estimate is for.")
    optimizer: str = Field(description="The optimizer whose slots are counted (adam unless a training says).")
    weights_bytes: int = Field(description="total_params * 4.")
    gradients_bytes: int = Field(description="One gradient per trainable weight: trainable_params * 4.")
    optimizer_bytes: int = Field(
        description="The optimizer's per-weight slots: Adam, AdamW, Nadam, Adamax 2, RMSprop, Adagrad 1, SGD 0 "
        "(Keras's defaults), each trainable_params * 4."
    )
    activations_bytes: int = Field(
        description="batch_size * 2 * the output bytes of every layer with weights: the output kept for the "
        "backward pass and its gradient (torchinfo's 'Forward/backward pass size'); for a recurrent layer also "
        "its states of every timestep, batch_size * timesteps * k * units * 4 (k: LSTM and GRU 12, SimpleRNN 3; "
        "twice for a Bidirectional), and the weight gradients of the 32 loop iterations TensorFlow runs at once, "
        "min(timesteps, 32) * params * 4."
    )
    input_bytes: int = Field(description="The input batch: batch_size * one sample's input bytes.")

    @computed_field(description="The sum of the above.")  # type: ignore[prop-decorator]
    @property
    def total_bytes(self) -> int:
        """The sum of the parts."""
        return (
            self.weights_bytes + self.gradients_bytes + self.optimizer_bytes + self.activations_bytes + self.input_bytes
        )

    def breakdown(self) -> str:
        """The parts in words, for messages."""
        return (
            f"weights {fmt_count(self.weights_bytes)} + gradients {fmt_count(self.gradients_bytes)} + "
            f"{self.optimizer} slots {fmt_count(self.optimizer_bytes)} + activations "
            f"{fmt_count(self.activations_bytes)} + input {fmt_count(self.input_bytes)}"
        )


@dataclass(frozen=True)
class ModelFigures:
    """The whole model as the engine computes it; per-sample figures unless a batch is given."""

    name: str
    input_shape: Shape
    layers: tuple[LayerFigures, ...]
    # A graph model's inputs, by name (the first is input_shape), and its outputs' shapes; empty for a Sequential.
    inputs: tuple[tuple[str, Shape], ...] = ()
    outputs: tuple[Shape, ...] = ()

    @property
    def output_shapes(self) -> tuple[Shape, ...]:
        """The shape of every output of the model (a Sequential's: its last layer's)."""
        return self.outputs or (self.layers[-1].output_shape,)

    @property
    def total_params(self) -> int:
        """Parameters of all layers, trainable or not (Keras's "Total params")."""
        return sum(layer.params for layer in self.layers)

    @property
    def trainable_params(self) -> int:
        """Parameters training updates (Keras's "Trainable params")."""
        return sum(layer.trainable_params for layer in self.layers)

    @property
    def non_trainable_params(self) -> int:
        """Parameters training leaves alone (Keras's "Non-trainable params"): BatchNormalization's moving mean
        and variance, and the weights of layers with ``trainable: false``."""
        return sum(layer.non_trainable_params for layer in self.layers)

    @property
    def mult_adds(self) -> int:
        """Mult-adds of one sample's forward pass."""
        return sum(layer.mult_adds for layer in self.layers)

    @property
    def activation_bytes(self) -> int:
        """Bytes of every layer's output for one sample."""
        return sum(layer.activation_bytes for layer in self.layers)

    @property
    def activation_bytes_kept(self) -> int:
        """Bytes training keeps for one sample: every output of every layer with weights, and what a layer keeps
        inside (attention's weights of every query-key pair: :meth:`KerasLayer.call_kept_scalars`)."""
        outputs = sum(layer.activation_bytes for layer in self.layers if layer.params > 0)
        return outputs + sum(layer.kept_scalars for layer in self.layers) * FLOAT32_BYTES

    @property
    def input_bytes(self) -> int:
        """Bytes of one input sample (of every input of a graph model), 4 bytes a value."""
        shapes = [shape for _, shape in self.inputs] or [self.input_shape]
        return sum(prod(shape[1:]) for shape in shapes) * FLOAT32_BYTES

    def training_memory(self, batch_size: int, optimizer: Optimizer = "adam") -> TrainingMemory:
        """Estimated bytes of a training step at ``batch_size`` with ``optimizer`` (module docstring); the
        activations include every recurrent layer's :meth:`LayerFigures.bptt_bytes`."""
        trainable = self.trainable_params
        kept = self.activation_bytes_kept
        bptt = sum(layer.bptt_bytes(batch_size) for layer in self.layers)
        return TrainingMemory(
            batch_size=batch_size,
            optimizer=optimizer,
            weights_bytes=self.total_params * FLOAT32_BYTES,
            gradients_bytes=trainable * FLOAT32_BYTES,
            optimizer_bytes=OPTIMIZER_SLOTS[optimizer] * trainable * FLOAT32_BYTES,
            activations_bytes=batch_size * 2 * kept + bptt,
            input_bytes=batch_size * self.input_bytes,
        )


def _all_output_bytes(layer: LayerFigures) -> int:
    shapes = layer.output_shapes or (layer.output_shape,)
    return sum(prod(shape[1:]) for shape in shapes) * FLOAT32_BYTES


def failure_message(spec: ModelSpec, index: int, shapes: Sequence[Shape], what: str) -> str:
    """The message for a layer Keras refuses, shared by the engine and :mod:`app.runtime.keras.build`.

    Args:
        spec: the normalized spec.
        index: the refused layer.
        shapes: the input shape of every layer up to ``index`` (``shapes[index]`` is what it received).
        what: what Keras said, e.g. ``"Keras expected ndim=3, found ndim=2"``.

    Returns:
        The layer by index, name and type, the shape it received, what Keras expected, and how to fix the
        spec, e.g. ``layer 1 (lstm_1, LSTM) cannot take the output of layer 0 (lstm), of shape (None, 30):
        Keras expected ndim=3, found ndim=2. LSTM needs 3-D input (batch, timesteps, features), but layer 0
        (lstm) returns only its last output: set return_sequences=true on it``.
    """
    layer = spec.layers[index]
    source = f"the output of layer {index - 1} ({spec.layers[index - 1].name})" if index else "the model's input"
    message = f"layer {index} ({layer.name}, {layer.type}) cannot take {source}, of shape {fmt_shape(shapes[index])}: "
    return message + f"{what}.{_hint(spec.layers, index, shapes)}"


def _hint(layers: Sequence[KerasLayer], index: int, shapes: Sequence[Shape]) -> str:
    """How to fix the most common stacking mistake: a layer that needs a time axis after one that dropped it."""
    layer = layers[index]
    if not layer.NEEDS:
        return ""
    hint = f" {layer.type} needs {layer.NEEDS}"
    needed = layer.INPUT_NDIM or layer.INPUT_MIN_NDIM
    if len(shapes[index]) >= needed:
        return hint
    # Walk back past layers that keep their input's rank (Dense, Dropout...) to the one that lowered it.
    for j in range(index - 1, -1, -1):
        rank_in, rank_out = len(shapes[j]), len(shapes[j + 1])
        if rank_out < rank_in:
            return hint + (layers[j].drops_time_axis(j, layer.type) or "")
        if rank_out > rank_in:
            break
    return hint


def analyze(spec: ModelSpec | GraphSpec, loc: Loc = ("body",)) -> ModelFigures:
    """Compute every layer's figures for a normalized spec, as Keras would build it.

    Raises:
        SpecError: (422, ``keras_build_error``) the first layer Keras would refuse, with ``loc``
            ``(*loc, "layers", index)`` and the message the Keras side gives (:func:`failure_message`).
    """
    if isinstance(spec, GraphSpec):
        return analyze_graph(spec, loc)
    shapes: list[Shape] = [tuple(spec.batch_shape)]
    rows: list[LayerFigures] = []
    for i, layer in enumerate(spec.layers):
        shape = shapes[-1]
        try:
            out = layer.output_shape(shape)
            refusals.check_known_weights(layer, shape)  # Dense, LSTM... on an unknown last axis
        except KerasRefusal as exc:
            message = failure_message(spec, i, shapes, exc.what)
            raise SpecError.one((*loc, "layers", i), message, "keras_build_error") from None
        assert layer.name is not None, "analyze() needs a normalized spec"
        rows.append(
            LayerFigures(
                index=i,
                name=layer.name,
                type=layer.type,
                input_shape=shape,
                output_shape=out,
                params=layer.param_count(shape),
                # An axis of unknown length leaves the layer's work unknown: length_figures() gives it.
                mult_adds=0 if None in shape[1:] else layer.mult_adds(shape),
                timesteps=shape[1] if layer.STEPS_OVER_TIME else None,
                non_trainable_params=layer.non_trainable_count(shape),
                step_scalars=bptt_step_scalars(layer),
            )
        )
        shapes.append(out)
    return ModelFigures(name=spec.name or "sequential", input_shape=shapes[0], layers=tuple(rows))


def graph_failure_message(spec: GraphSpec, index: int, shapes: Sequence[tuple[str, Shape]], what: str) -> str:
    """The message for a graph layer Keras refuses, shared by the engine and :mod:`app.runtime.keras.build`.

    Args:
        spec: the normalized graph.
        index: the refused layer.
        shapes: what it was called on: each reference with its shape.
        what: what Keras said.

    Returns:
        The layer by index, name and type, each reference it takes with its shape, and what Keras expected, e.g.
        ``layer 2 (add, Add) cannot take x (None, 10, 4) and dense (None, 10, 8): Add needs inputs of one shape
        ...``.
    """
    layer = spec.layers[index]
    given = " and ".join(f"{ref} {fmt_shape(shape)}" for ref, shape in shapes)
    hint = f" {layer.type} needs {layer.NEEDS}." if layer.NEEDS and layer.INPUTS == (1, 1) else ""
    return f"layer {index} ({layer.name}, {layer.type}) cannot take {given}: {what}.{hint}"


def analyze_graph(spec: GraphSpec, loc: Loc = ("body",)) -> ModelFigures:
    """Compute every layer's figures for a normalized graph spec, as Keras would build its functional model.

    Each layer's call is computed from the shapes of the references it takes (:meth:`KerasLayer.
    call_output_shapes`); rows are in the spec's order, which Keras's table keeps (inputs first).

    Raises:
        SpecError: (422, ``keras_build_error``) the first layer Keras would refuse, at ``(*loc, "layers",
            index)``, with :func:`graph_failure_message`.
    """
    tensors: dict[str, list[Shape]] = {x.name: [x.batch_shape] for x in spec.inputs}

    def shape_of(ref: str) -> Shape:
        parsed = Reference.parse(ref)
        return tensors[parsed.name][parsed.index]

    rows: list[LayerFigures] = []
    for i, layer in enumerate(spec.layers):
        assert layer.name is not None, "analyze_graph() needs a normalized spec"
        calls = layer.call_refs()
        refs = calls[0][1]
        shapes = [shape_of(ref) for ref in refs]
        arguments = {field: [shape_of(ref) for ref in given] for field, given in calls[1:]}
        try:
            outs = layer.call_output_shapes(shapes, arguments)
            if layer.INPUTS == (1, 1):
                refusals.check_known_weights(layer, shapes[0])
            elif (weight := next((w for w in layer.call_weights(shapes) if None in w.shape), None)) is not None:
                raise refusals.unknown_weight(weight.name, weight.shape)
        except KerasRefusal as exc:
            shown = [(ref, shape_of(ref)) for _, given in calls for ref in given]
            message = graph_failure_message(spec, i, shown, exc.what)
            raise SpecError.one((*loc, "layers", i), message, "keras_build_error") from None
        weights = layer.call_weights(shapes)
        known = all(None not in shape[1:] for shape in shapes)
        rows.append(
            LayerFigures(
                index=i,
                name=layer.name,
                type=layer.type,
                input_shape=shapes[0],
                output_shape=outs[0],
                params=sum(w.size for w in weights),
                mult_adds=layer.call_mult_adds(shapes) if known else 0,
                timesteps=shapes[0][1] if layer.STEPS_OVER_TIME else None,
                non_trainable_params=sum(w.size for w in weights if not w.trainable),
                step_scalars=bptt_step_scalars(layer),
                kept_scalars=layer.call_kept_scalars(shapes) if known else 0,
                output_shapes=tuple(outs),
                connected_to=tuple(ref for _, given in calls for ref in given),
            )
        )
        tensors[layer.name] = outs
    inputs = tuple((x.name, x.batch_shape) for x in spec.inputs)
    outputs = tuple(shape_of(ref) for ref in spec.outputs)
    return ModelFigures(
        name=spec.name or "functional", input_shape=inputs[0][1], layers=tuple(rows), inputs=inputs, outputs=outputs
    )


# The two lengths the per-timestep figures of a variable-length model are measured between (powers of two, so
# that strided convolutions and pooling divide them).
PER_TIMESTEP_LENGTHS = (1024, 2048)


def length_figures(spec: ModelSpec | GraphSpec, timesteps: int, where: Loc, loc: Loc = ("body",)) -> ModelFigures:
    """The figures of a variable-length model (:attr:`ModelSpec.variable_axes`) with every null axis after the
    batch at ``timesteps``: what its Mult-Adds, activation bytes and training memory are for that length. Its
    shapes and parameters are those of :func:`analyze` on the spec itself (Keras's, with None).

    Raises:
        SpecError: (422, ``keras_build_error``) at ``where`` (e.g. ``("query", "timesteps")``): a layer refuses
            that length (a kernel longer than it with ``padding="valid"``...), saying which.
    """
    try:
        return analyze(spec.at_length(timesteps), loc)
    except SpecError as exc:
        item = exc.items[0]
        raise SpecError.one(
            where,
            f"at timesteps={timesteps:,}, {item['msg']}; use a longer length, or change the layer",
            "keras_build_error",
        ) from None


def per_timestep(spec: ModelSpec | GraphSpec) -> tuple[float, float] | None:
    """What each step of the variable-length axes adds to one sample's Mult-Adds and activation bytes:
    ``(f(2048) - f(1024)) / 1024`` over :data:`PER_TIMESTEP_LENGTHS`. Exact for a model whose cost is linear
    in the length (recurrent layers, Dense per timestep, convolutions with padding "same"); an average for
    strided or "valid" ones. ``None`` when the model refuses those lengths."""
    low, high = PER_TIMESTEP_LENGTHS
    try:
        short, long = analyze(spec.at_length(low)), analyze(spec.at_length(high))
    except SpecError:
        return None
    steps = high - low
    return (long.mult_adds - short.mult_adds) / steps, (long.activation_bytes - short.activation_bytes) / steps
