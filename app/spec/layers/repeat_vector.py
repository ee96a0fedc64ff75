"""``keras.layers.RepeatVector``."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from app.spec.layers.base import KerasLayer
from app.spec.types import Dim, Shape


class RepeatVector(KerasLayer):
    """``keras.layers.RepeatVector(n)``: ``(batch, features)`` -> ``(batch, n, features)``, the input repeated
    ``n`` times (keras/src/layers/reshaping/repeat_vector.py). No weights, no mult-adds. An encoder-decoder
    (``addition_rnn``) uses it to feed the encoder's last output to every step of the decoder."""

    INPUT_NDIM: ClassVar[int | None] = 2
    NEEDS: ClassVar[str] = "2-D input (batch, features)"

    type: Literal["RepeatVector"]
    n: Dim = Field(description="How many times to repeat the input (the new time axis).", examples=[4])

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        return (input_shape[0], self.n, input_shape[1])
