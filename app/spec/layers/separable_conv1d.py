"""``keras.layers.SeparableConv1D``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from app.spec.layers.base import Weight
from app.spec.layers.base_conv import BaseConv
from app.spec.layers.keras_config import SEPARABLE_CONV_FIXED, Expect
from app.spec.types import Shape


class SeparableConv1D(BaseConv):
    """``keras.layers.SeparableConv1D``: a depthwise convolution (each channel alone, ``depth_multiplier``
    outputs each), then a pointwise one (``1 x 1``) to ``filters``. Output shape as Conv1D's
    (keras/src/layers/convolutional/base_separable_conv.py, ``compute_output_shape``); padding ``valid`` or
    ``same`` only.

    Weights (``build``): a depthwise kernel ``(k, channels, depth_multiplier)``, a pointwise kernel
    ``(1, channels·depth_multiplier, filters)`` and a bias ``(filters,)``. Mult-adds per sample: torchinfo
    counts the two as convolutions, each weight once per output position: ``params · new_steps``.
    """

    RANK: ClassVar[int] = 1
    INPUT_MIN_NDIM: ClassVar[int] = 3
    NEEDS: ClassVar[str] = "3-D input (batch, steps, channels)"
    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = SEPARABLE_CONV_FIXED

    type: Literal["SeparableConv1D"]
    depth_multiplier: Annotated[int, Field(ge=1, le=2**31 - 1)] = Field(
        1, description="Depthwise outputs per input channel."
    )

    def weights(self, input_shape: Shape) -> list[Weight]:
        channels = input_shape[-1]
        kernel, _, _ = self._spec()
        mixed = None if channels is None else channels * self.depth_multiplier
        weights = [
            Weight("depthwise_kernel", (*kernel, channels, self.depth_multiplier)),
            Weight("pointwise_kernel", (1, mixed, self.filters)),
        ]
        return [*weights, Weight("bias", (self.filters,))] if self.use_bias else weights
