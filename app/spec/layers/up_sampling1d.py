"""``keras.layers.UpSampling1D``."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from app.spec.layers.base import KerasLayer
from app.spec.types import Dim, Shape


class UpSampling1D(KerasLayer):
    """``keras.layers.UpSampling1D(size)``: every step repeated ``size`` times, ``(batch, steps, channels)`` ->
    ``(batch, size·steps, channels)`` (keras/src/layers/reshaping/up_sampling1d.py). No weights, no
    mult-adds."""

    INPUT_NDIM: ClassVar[int | None] = 3
    NEEDS: ClassVar[str] = "3-D input (batch, steps, channels)"

    type: Literal["UpSampling1D"]
    size: Dim = Field(2, description="How many times each step is repeated.")

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        steps = input_shape[1]
        return (input_shape[0], None if steps is None else self.size * steps, input_shape[2])
