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
    or not (LSTM: ``T·4u(i+u+1)``), a Bidirectional twice as often as its RNN. Elementwise work (activations,
    gate products, dropout masks) is not counted. The one departure from torchinfo: it counts a ``Linear`` on
    a 3-D input once per sample (``output[0]·params``) where the matmul does every position; positions count
    here. Figures are per sample; for a batch, multiply by its size.

Bytes
    float32, 4 bytes a scalar. ``activation_bytes`` is a layer's output for one sample. The training memory
    estimate (:meth:`ModelFigures.training_memory`) adds, for a batch of ``B``: weights (params·4), gradients
    (trainable params·4), the optimizer's per-weight slots (Adam: m and v, 2·trainable·4), activations (B·2·
    the output bytes of every layer that has weights: the output kept for the backward pass and its gradient,
    torchinfo's "Forward/backward pass size", torchinfo/model_statistics.py) and the input batch (B·input
    bytes, torchinfo's "Input size"). It is a lower bound: TensorFlow's workspace and the per-timestep states
    a recurrent layer keeps for backpropagation through time are not in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.errors import Loc, SpecError
from app.formatting import fmt_count, fmt_shape
from app.spec.layers import KerasLayer, ShapeError
from app.spec.layers.base import prod
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

    @property
    def activation_bytes(self) -> int:
        """Bytes of this layer's output for one sample, float32."""
        return prod(self.output_shape[1:]) * FLOAT32_BYTES


@dataclass(frozen=True)
class TrainingMemory:
    """Estimated memory of a training step at ``batch_size``, in bytes (see the module's conventions)."""

    batch_size: int
    optimizer: str
    weights_bytes: int
    gradients_bytes: int
    optimizer_bytes: int
    activations_bytes: int
    input_bytes: int

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

    @property
    def total_params(self) -> int:
        """Parameters of all layers (all trainable: no supported layer has non-trainable weights)."""
        return sum(layer.params for layer in self.layers)

    @property
    def mult_adds(self) -> int:
        """Mult-adds of one sample's forward pass."""
        return sum(layer.mult_adds for layer in self.layers)

    @property
    def activation_bytes(self) -> int:
        """Bytes of every layer's output for one sample."""
        return sum(layer.activation_bytes for layer in self.layers)

    @property
    def input_bytes(self) -> int:
        """Bytes of one input sample."""
        return prod(self.input_shape[1:]) * FLOAT32_BYTES

    def training_memory(self, batch_size: int, optimizer: Optimizer = "adam") -> TrainingMemory:
        """Estimated bytes of a training step at ``batch_size`` with ``optimizer`` (module docstring)."""
        params = self.total_params
        kept = sum(layer.activation_bytes for layer in self.layers if layer.params > 0)
        return TrainingMemory(
            batch_size=batch_size,
            optimizer=optimizer,
            weights_bytes=params * FLOAT32_BYTES,
            gradients_bytes=params * FLOAT32_BYTES,
            optimizer_bytes=OPTIMIZER_SLOTS[optimizer] * params * FLOAT32_BYTES,
            activations_bytes=batch_size * 2 * kept,
            input_bytes=batch_size * self.input_bytes,
        )


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


def analyze(spec: ModelSpec, loc: Loc = ("body",)) -> ModelFigures:
    """Compute every layer's figures for a normalized spec, as Keras would build it.

    Raises:
        SpecError: (422, ``keras_build_error``) the first layer Keras would refuse, with ``loc``
            ``(*loc, "layers", index)`` and the message the Keras side gives (:func:`failure_message`).
    """
    shapes: list[Shape] = [tuple(spec.batch_shape)]
    rows: list[LayerFigures] = []
    for i, layer in enumerate(spec.layers):
        shape = shapes[-1]
        try:
            out = layer.output_shape(shape)
        except ShapeError as exc:
            what = f"Keras expected {exc.expected}, found {exc.found}"
            message = failure_message(spec, i, shapes, what)
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
                mult_adds=layer.mult_adds(shape),
                timesteps=shape[1] if layer.STEPS_OVER_TIME else None,
            )
        )
        shapes.append(out)
    return ModelFigures(name=spec.name or "sequential", input_shape=shapes[0], layers=tuple(rows))
