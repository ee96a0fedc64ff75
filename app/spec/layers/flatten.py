"""``keras.layers.Flatten``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from app.spec.layers.base import KerasLayer, prod
from app.spec.layers.keras_config import COMMON_FIXED, Expect, Value
from app.spec.types import Shape


class Flatten(KerasLayer):
    """``keras.layers.Flatten``: ``(batch, d1, d2, ...)`` -> ``(batch, d1*d2*...)``, ``(batch, None)`` when an
    axis has an unknown length (a Dense after it then cannot be built). No weights, no mult-adds.

    keras/src/layers/reshaping/flatten.py, ``Flatten.compute_output_shape``.
    """

    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = {**COMMON_FIXED, "data_format": Value("channels_last")}

    type: Literal["Flatten"]

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        return (input_shape[0], None if None in input_shape[1:] else prod(input_shape[1:]))

    def drops_time_axis(self, index: int, consumer: str) -> str | None:
        return f"; Flatten (layer {index}) removed the time axis: drop it, or put it after the {consumer}"
