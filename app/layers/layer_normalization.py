"""``keras.layers.LayerNormalization``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field

from app.layers import refusals
from app.layers.base import KerasLayer, Shape, Weight, prod
from app.layers.batch_normalization import Axis, axis_length
from app.layers.keras_config import NORMALIZATION_FIXED, Expect


class LayerNormalization(KerasLayer):
    """``keras.layers.LayerNormalization``: each sample normalized over ``axis``; output shape = input shape.

    Weights (keras/src/layers/normalization/layer_normalization.py, ``build``): ``gamma`` (with ``scale`` or
    ``rms_scaling``) and ``beta`` (with ``center``, not with ``rms_scaling``), each ``(input_shape[axis],)``,
    trainable. Mult-adds per sample: each used once per element, ``positions · (gamma + beta sizes)``.
    """

    SUPPORTS_MASKING: ClassVar[bool] = True
    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = NORMALIZATION_FIXED

    type: Literal["LayerNormalization"]
    axis: Axis = Field(-1, description="The axis to normalize over (batch first: -1 is the last).")
    epsilon: float = Field(0.001, gt=0.0, le=1.0, description="Added to the variance to avoid dividing by 0.")
    center: bool = Field(True, description="Add the trainable offset beta.")
    scale: bool = Field(True, description="Multiply by the trainable scale gamma.")
    rms_scaling: bool = Field(False, description="Scale by the root mean square alone (no centering, no beta).")

    def weights(self, input_shape: Shape) -> list[Weight]:
        shape = (axis_length(input_shape, self.axis),)
        weights = [Weight("gamma", shape)] if self.scale or self.rms_scaling else []
        if self.center and not self.rms_scaling:
            weights.append(Weight("beta", shape))
        return weights

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        if (weight := self.unknown_weight(input_shape)) is not None:
            raise refusals.unknown_weight(weight.name, weight.shape)
        return input_shape

    def mult_adds(self, input_shape: Shape) -> int:
        axis = self.axis % len(input_shape)
        positions = prod(tuple(d for i, d in enumerate(input_shape) if i not in (0, axis)))
        return positions * self.param_count(input_shape)
