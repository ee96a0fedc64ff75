"""``keras.layers.Cropping1D``."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from app.spec.layers import refusals
from app.spec.layers.base import KerasLayer
from app.spec.layers.zero_padding1d import Pad, pair
from app.spec.types import Shape


class Cropping1D(KerasLayer):
    """``keras.layers.Cropping1D(cropping)``: steps cut off at both ends, ``(batch, steps, channels)`` ->
    ``(batch, steps - left - right, channels)``; refused when no step would be left
    (keras/src/layers/reshaping/cropping1d.py, ``compute_output_shape``). No weights, no mult-adds."""

    INPUT_NDIM: ClassVar[int | None] = 3
    NEEDS: ClassVar[str] = "3-D input (batch, steps, channels)"

    type: Literal["Cropping1D"]
    cropping: Pad | Annotated[list[Pad], Field(min_length=2, max_length=2)] = Field(
        [1, 1], description="Steps to cut at both ends: one int, or [left, right]."
    )

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        left, right = pair(self.cropping)
        steps = input_shape[1]
        if steps is None:
            return (input_shape[0], None, input_shape[2])
        if steps - left - right <= 0:
            raise refusals.crop_too_much((left, right), steps)
        return (input_shape[0], steps - left - right, input_shape[2])
