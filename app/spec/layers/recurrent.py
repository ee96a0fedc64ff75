"""What LSTM, GRU and SimpleRNN share: fields, shapes, and the parameter formula ``g·u·(i + u + b)``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from app.formatting import fmt_shape
from app.spec.layers.base import KerasLayer, KerasRefusal, Weight
from app.spec.layers.keras_config import RECURRENT_FIXED, Expect
from app.spec.layers.keras_objects import Constraint, Initializer, Regularizer
from app.spec.types import Activation, Rate, Ref, Refs, Shape, Units


class RecurrentLayer(KerasLayer):
    """A Keras RNN layer over ``(batch, timesteps, features)``.

    Output ``(batch, units)``, or ``(batch, timesteps, units)`` with ``return_sequences``.

    Parameters (keras/src/layers/rnn/lstm.py, gru.py, simple_rnn.py, each cell's ``build``): a kernel
    ``(i, g·u)``, a recurrent kernel ``(u, g·u)`` and ``b`` bias vectors ``(g·u,)``, so ``g·u·(i + u + b)`` with
    ``g`` = :attr:`GATES` (LSTM 4, GRU 3, SimpleRNN 1) and ``b`` = :meth:`bias_vectors`.

    With ``return_state`` (graph models) the call also returns the final states, each ``(batch, units)``:
    :attr:`STATES` of them (LSTM ``state_h`` and ``state_c``; GRU and SimpleRNN one), after the output.

    Mult-adds per sample: every weight is used once per timestep, also without ``return_sequences`` (the
    recurrence runs over all steps), so ``T·params`` -- torchinfo counts ``prod(output[:2])·params`` for
    PyTorch's RNNs, i.e. batch·timesteps·params (torchinfo/layer_info.py, ``LayerInfo.calculate_macs``).
    """

    INPUT_NDIM: ClassVar[int | None] = 3
    SUPPORTS_MASKING: ClassVar[bool] = True
    NEEDS: ClassVar[str] = "3-D input (batch, timesteps, features)"
    STEPS_OVER_TIME: ClassVar[bool] = True
    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = RECURRENT_FIXED
    GATES: ClassVar[int] = 1
    # The states the cell carries from step to step (keras/src/layers/rnn/lstm.py: [h, c]).
    STATES: ClassVar[int] = 1
    CALL_ARGUMENTS: ClassVar[tuple[str, ...]] = ("initial_state", "mask")
    CHECKED_ON_CALL: ClassVar[bool] = True

    units: Units
    activation: Activation | None = "tanh"
    use_bias: bool = True
    return_sequences: bool = False
    return_state: bool = Field(
        False,
        description="Graph models only: also return the final states, as outputs 1, 2... of the layer (LSTM: "
        "state_h, state_c).",
    )
    stateful: bool = False
    dropout: Rate = 0.0
    recurrent_dropout: Rate = 0.0
    kernel_initializer: Initializer = "glorot_uniform"
    recurrent_initializer: Initializer = "orthogonal"
    bias_initializer: Initializer = "zeros"
    kernel_regularizer: Regularizer = None
    recurrent_regularizer: Regularizer = None
    bias_regularizer: Regularizer = None
    activity_regularizer: Regularizer = None
    kernel_constraint: Constraint = None
    recurrent_constraint: Constraint = None
    bias_constraint: Constraint = None
    initial_state: Refs | None = Field(
        None,
        description="Graph models only: the tensors the first step starts from, as references (LSTM: state_h, "
        'state_c, e.g. ["encoder:1", "encoder:2"]; GRU, SimpleRNN: one), each (batch, units).',
    )
    mask: Ref | None = Field(
        None,
        description="Graph models only: a (batch, timesteps) boolean tensor, true at the steps to use (e.g. a "
        "bool input); without it, the mask of an Embedding(mask_zero) or Masking before the layer flows in.",
    )

    def bias_vectors(self) -> int:
        """How many bias vectors of ``GATES·units`` the layer has: 1, or 0 without ``use_bias``."""
        return 1 if self.use_bias else 0

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        batch, steps, _ = input_shape
        return (batch, steps, self.units) if self.return_sequences else (batch, self.units)

    def output_count(self) -> int:
        return 1 + self.STATES if self.return_state else 1

    def call_output_shapes(self, inputs: list[Shape], arguments: Mapping[str, list[Shape]]) -> list[Shape]:
        out = self.output_shape(inputs[0])
        batch = inputs[0][0]
        check_states(self, arguments.get("initial_state"), batch, self.STATES)
        check_mask(inputs[0], arguments.get("mask"))
        return [out, *[(batch, self.units)] * self.STATES] if self.return_state else [out]

    def weights(self, input_shape: Shape) -> list[Weight]:
        width = self.GATES * self.units
        weights = [Weight("kernel", (input_shape[-1], width)), Weight("recurrent_kernel", (self.units, width))]
        vectors = self.bias_vectors()
        if vectors:
            weights.append(Weight("bias", (width,) if vectors == 1 else (vectors, width)))
        return weights

    def mult_adds(self, input_shape: Shape) -> int:
        steps = input_shape[1]
        assert steps is not None
        return steps * self.param_count(input_shape)

    def drops_time_axis(self, index: int, consumer: str) -> str | None:
        return f", but layer {index} ({self.name}) returns only its last output: set return_sequences=true on it"


def check_mask(input_shape: Shape, mask: list[Shape] | None) -> None:
    """Refuse a ``mask`` that is not ``(batch, timesteps)`` for this input: not 2-D, or of another number of
    timesteps. Keras builds a mask of another length and fails only when it runs ("Cannot unstack 6 tensors into
    a TensorArray of static size 5"), so the check is made here, on both sides, as for the states.

    Raises:
        KerasRefusal: naming the shape the mask needs and the one it has.
    """
    if mask is None:
        return
    (shape,) = mask
    if len(shape) != 2:
        raise KerasRefusal(f"the mask must be 2-D (batch, timesteps), but it has shape {fmt_shape(shape)}")
    steps = input_shape[1] if len(input_shape) > 1 else None
    if steps is not None and shape[1] is not None and shape[1] != steps:
        raise KerasRefusal(
            f"the mask must be (batch, timesteps) with the input's {steps} timesteps, but it has shape "
            f"{fmt_shape(shape)}: give it the input's length"
        )


def check_states(layer: RecurrentLayer, states: list[Shape] | None, batch: int | None, count: int) -> None:
    """Refuse an ``initial_state`` Keras would not run with: not ``count`` tensors, or one not ``(batch, units)``.

    Keras builds such a call and fails only when it runs (the cell adds the states to its kernels' products), so
    the check is made here and by the Keras side before it builds.

    Raises:
        KerasRefusal: saying how many states of which shape the layer needs.
    """
    if states is None:
        return
    needed = f"{count} state{'s' if count > 1 else ''} of shape (batch, {layer.units})"
    if len(states) != count:
        raise KerasRefusal(f"{layer.type} takes {needed} as initial_state, but it was given {len(states)}")
    for shape in states:
        if len(shape) != 2 or shape[1] != layer.units:
            raise KerasRefusal(f"{layer.type} takes {needed} as initial_state, but one has shape {fmt_shape(shape)}")
