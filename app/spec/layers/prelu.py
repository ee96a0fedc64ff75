"""``keras.layers.PReLU``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from app.spec.layers import refusals
from app.spec.layers.base import KerasLayer, Weight
from app.spec.layers.keras_config import COMMON_FIXED, NULL, ZEROS, Expect
from app.spec.types import Shape


class PReLU(KerasLayer):
    """``keras.layers.PReLU``: a leaky ReLU whose slope ``alpha`` is learned per element. Output shape = input
    shape.

    Weight (keras/src/layers/activations/prelu.py, ``build``): ``alpha`` of shape ``input_shape[1:]``, with 1
    on each of ``shared_axes`` (Keras sets ``param_shape[i - 1] = 1``, so axis 0 means the last). Mult-adds
    per sample: alpha is used once per element, ``prod(input_shape[1:])``.
    """

    SUPPORTS_MASKING: ClassVar[bool] = True
    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = {
        **COMMON_FIXED,
        "alpha_initializer": ZEROS,
        "alpha_regularizer": NULL,
        "alpha_constraint": NULL,
    }

    type: Literal["PReLU"]
    shared_axes: list[Annotated[int, Field(ge=0, le=8)]] | None = Field(
        None, max_length=8, description="Axes (batch = 0) along which alpha is shared, e.g. [1] for the steps."
    )

    def weights(self, input_shape: Shape) -> list[Weight]:
        shape = list(input_shape[1:])
        for axis in self.shared_axes or ():
            if not -len(shape) <= axis - 1 < len(shape):
                raise refusals.axis_out_of_range(axis, len(input_shape))
            shape[axis - 1] = 1
        return [Weight("alpha", tuple(shape))]

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        refusals.check_known_weights(self, input_shape)
        return input_shape

    def mult_adds(self, input_shape: Shape) -> int:
        size = 1
        for d in input_shape[1:]:
            size *= d or 1
        return size
