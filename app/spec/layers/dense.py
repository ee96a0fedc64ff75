"""``keras.layers.Dense``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from app.spec.layers.base import KerasLayer, Weight, prod
from app.spec.layers.keras_config import DENSE_FIXED, Expect
from app.spec.layers.keras_objects import Constraint, Initializer, Regularizer
from app.spec.types import Activation, Shape, Units


class Dense(KerasLayer):
    """``keras.layers.Dense``. Acts on the last axis: ``(batch, ..., d)`` -> ``(batch, ..., units)``.

    Parameters ``d·units + units``, ``d·units`` without bias (keras/src/layers/core/dense.py, ``Dense.build``).

    Mult-adds per sample: the kernel and the bias are used once per position, i.e. per index of the axes
    between the batch and the last one, so ``positions·params`` (``params`` for 2-D input). torchinfo counts
    a ``Linear`` as ``output[0]·params`` (torchinfo/layer_info.py, ``LayerInfo.calculate_macs``), which is
    this for 2-D input but leaves out the positions of a 3-D one; the matmul does them all, so they count here.
    """

    INPUT_MIN_NDIM: ClassVar[int] = 2
    SUPPORTS_MASKING: ClassVar[bool] = True
    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = DENSE_FIXED

    type: Literal["Dense"]
    units: Units
    activation: Activation | None = None
    use_bias: bool = True
    kernel_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"
    kernel_regularizer: Regularizer = None
    bias_regularizer: Regularizer = None
    activity_regularizer: Regularizer = None
    kernel_constraint: Constraint = None
    bias_constraint: Constraint = None

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        return (*input_shape[:-1], self.units)

    def weights(self, input_shape: Shape) -> list[Weight]:
        kernel = Weight("kernel", (input_shape[-1], self.units))
        return [kernel, Weight("bias", (self.units,))] if self.use_bias else [kernel]

    def mult_adds(self, input_shape: Shape) -> int:
        return prod(input_shape[1:-1]) * self.param_count(input_shape)
