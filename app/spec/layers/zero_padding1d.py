"""``keras.layers.ZeroPadding1D``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from app.errors import Loc
from app.spec.layers.base import KerasLayer, TranslateLayer
from app.spec.layers.keras_config import COMMON_FIXED, Expect, Value
from app.spec.types import Shape

Pad = Annotated[int, Field(ge=0, le=2**31 - 1)]


def pair(value: int | list[int]) -> tuple[int, int]:
    """An int or a ``[left, right]`` list as ``(left, right)`` (Keras's ``standardize_tuple(value, 2)``)."""
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def one_int_if_even(config: Mapping[str, Any], key: str) -> dict[str, Any]:
    """Keras writes ``padding: 1`` as ``[1, 1]``; read an even pair back as the int."""
    out = dict(config)
    value = out.get(key)
    if isinstance(value, list) and len(value) == 2 and value[0] == value[1] and isinstance(value[0], int):
        out[key] = value[0]
    return out


class ZeroPadding1D(KerasLayer):
    """``keras.layers.ZeroPadding1D(padding)``: zeros added before and after the steps, ``(batch, steps,
    channels)`` -> ``(batch, left + steps + right, channels)`` (keras/src/layers/reshaping/zero_padding1d.py).
    No weights, no mult-adds."""

    INPUT_NDIM: ClassVar[int | None] = 3
    NEEDS: ClassVar[str] = "3-D input (batch, steps, channels)"
    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = {**COMMON_FIXED, "data_format": Value("channels_last")}

    type: Literal["ZeroPadding1D"]
    padding: Pad | Annotated[list[Pad], Field(min_length=2, max_length=2)] = Field(
        1, description="Zeros at both ends: one int, or [left, right]."
    )

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        left, right = pair(self.padding)
        steps = input_shape[1]
        return (input_shape[0], None if steps is None else steps + left + right, input_shape[2])

    @classmethod
    def from_keras_config(cls, config: Mapping[str, Any], loc: Loc, translate: TranslateLayer) -> dict[str, Any]:
        return super().from_keras_config(one_int_if_even(config, "padding"), loc, translate)
