"""What LSTM, GRU and SimpleRNN share: fields, shapes, and the parameter formula ``g·u·(i + u + b)``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from app.spec.layers.base import KerasLayer, Weight
from app.spec.layers.keras_config import RECURRENT_FIXED, Expect
from app.spec.layers.keras_objects import Constraint, Initializer, Regularizer
from app.spec.types import Activation, Rate, Shape, Units


class RecurrentLayer(KerasLayer):
    """A Keras RNN layer over ``(batch, timesteps, features)``.

    Output ``(batch, units)``, or ``(batch, timesteps, units)`` with ``return_sequences``.

    Parameters (keras/src/layers/rnn/lstm.py, gru.py, simple_rnn.py, each cell's ``build``): a kernel
    ``(i, g·u)``, a recurrent kernel ``(u, g·u)`` and ``b`` bias vectors ``(g·u,)``, so ``g·u·(i + u + b)`` with
    ``g`` = :attr:`GATES` (LSTM 4, GRU 3, SimpleRNN 1) and ``b`` = :meth:`bias_vectors`.

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

    units: Units
    activation: Activation | None = "tanh"
    use_bias: bool = True
    return_sequences: bool = False
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

    def bias_vectors(self) -> int:
        """How many bias vectors of ``GATES·units`` the layer has: 1, or 0 without ``use_bias``."""
        return 1 if self.use_bias else 0

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        batch, steps, _ = input_shape
        return (batch, steps, self.units) if self.return_sequences else (batch, self.units)

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
