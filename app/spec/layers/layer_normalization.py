"""``keras.layers.LayerNormalization``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from app.errors import Loc
from app.spec.layers import refusals
from app.spec.layers.base import KerasLayer, TranslateLayer, Weight, prod
from app.spec.layers.batch_normalization import Axis, axis_length
from app.spec.layers.keras_config import NORMALIZATION_FIXED, Expect
from app.spec.types import Shape


class LayerNormalization(KerasLayer):
    """``keras.layers.LayerNormalization``: each sample normalized over ``axis``; output shape = input shape.

    Weights (keras/src/layers/normalization/layer_normalization.py, ``build``): ``gamma`` (with ``scale`` or
    ``rms_scaling``) and ``beta`` (with ``center``, not with ``rms_scaling``), each ``(input_shape[axis],)``
    (for a list of axes, ``tuple(input_shape[a] for a in sorted(axis))``),
    trainable. Mult-adds per sample: each used once per element, ``positions · (gamma + beta sizes)``.
    """

    SUPPORTS_MASKING: ClassVar[bool] = True
    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = NORMALIZATION_FIXED

    type: Literal["LayerNormalization"]
    axis: Axis | Annotated[list[Axis], Field(min_length=1, max_length=8)] = Field(
        -1, description="The axis, or axes, to normalize over (batch first: -1 is the last)."
    )
    epsilon: float = Field(0.001, gt=0.0, le=1.0, description="Added to the variance to avoid dividing by 0.")
    center: bool = Field(True, description="Add the trainable offset beta.")
    scale: bool = Field(True, description="Multiply by the trainable scale gamma.")
    rms_scaling: bool = Field(False, description="Scale by the root mean square alone (no centering, no beta).")

    def _axes(self) -> list[int]:
        return sorted(self.axis) if isinstance(self.axis, list) else [self.axis]

    def weights(self, input_shape: Shape) -> list[Weight]:
        shape = tuple(axis_length(input_shape, axis) for axis in self._axes())
        weights = [Weight("gamma", shape)] if self.scale or self.rms_scaling else []
        if self.center and not self.rms_scaling:
            weights.append(Weight("beta", shape))
        return weights

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        refusals.check_known_weights(self, input_shape)
        return input_shape

    def mult_adds(self, input_shape: Shape) -> int:
        axes = {0, *(axis % len(input_shape) for axis in self._axes())}
        positions = prod(tuple(d for i, d in enumerate(input_shape) if i not in axes))
        return positions * self.param_count(input_shape)

    @classmethod
    def from_keras_config(cls, config: Mapping[str, Any], loc: Loc, translate: TranslateLayer) -> dict[str, Any]:
        """As :meth:`KerasLayer.from_keras_config`; Keras writes the axis as a list once built (``[-1]``),
        which is the spec's int when it has one entry."""
        axis = config.get("axis")
        if isinstance(axis, list) and len(axis) == 1:
            config = {**config, "axis": axis[0]}
        return super().from_keras_config(config, loc, translate)
