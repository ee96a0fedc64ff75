"""What the pooling layers share (keras/src/layers/pooling/base_pooling.py, base_global_pooling.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from app.errors import Loc
from app.spec.layers import refusals
from app.spec.layers.base import KerasLayer, TranslateLayer
from app.spec.layers.base_conv import Size, Sizes, as_tuple, keras_tuple_config
from app.spec.layers.keras_config import COMMON_FIXED, POOLING_FIXED, Expect
from app.spec.types import Shape


def pool_length(length: int | None, pool: int, stride: int, padding: str) -> int | None:
    """One axis of a pooling layer's output (keras/src/ops/operation_utils.py, ``compute_pooling_output_shape``):
    ``floor((L - p) / s) + 1`` with ``padding="valid"`` (refused when not positive), ``floor((L - 1) / s) + 1``
    with ``"same"``; ``None`` stays ``None``."""
    if length is None:
        return None
    if padding == "valid":
        return (length - pool) // stride + 1
    return (length - 1) // stride + 1


class BasePooling(KerasLayer):
    """Max or average pooling over ``RANK`` spatial axes, channels last: ``(batch, *spatial, channels)`` ->
    ``(batch, *pooled, channels)``; ``strides`` defaults to ``pool_size``. No weights; no mult-adds (no
    weight is used: torchinfo counts none for pooling)."""

    RANK: ClassVar[int] = 1
    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = POOLING_FIXED
    SUPPORTS_MASKING: ClassVar[bool] = False

    pool_size: Size | Sizes = Field(2, description="Window size: one int, or one per spatial axis.")
    strides: Size | Sizes | None = Field(None, description="Step of the window; null: pool_size.")
    padding: Literal["valid", "same"] = "valid"

    @model_validator(mode="after")
    def _check_sizes(self) -> BasePooling:
        for field in ("pool_size", "strides"):
            value = getattr(self, field)
            if isinstance(value, list) and len(value) != self.RANK:
                raise ValueError(
                    f"{field} has {len(value)} values, but {self.type} pools {self.RANK} spatial axis"
                    f"{'' if self.RANK == 1 else 'es'}: give one int, or {self.RANK} values"
                )
        return self

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        pool = as_tuple(self.pool_size, self.RANK)
        strides = pool if self.strides is None else as_tuple(self.strides, self.RANK)
        spatial = [
            pool_length(length, p, s, self.padding)
            for length, p, s in zip(input_shape[1:-1], pool, strides, strict=True)
        ]
        if any(length is not None and length <= 0 for length in spatial):
            raise refusals.pool_too_short(pool, strides)
        return (input_shape[0], *spatial, input_shape[-1])

    @classmethod
    def from_keras_config(cls, config: Mapping[str, Any], loc: Loc, translate: TranslateLayer) -> dict[str, Any]:
        """As :meth:`KerasLayer.from_keras_config`, with Keras's size lists read as the int they repeat, and
        ``strides`` left out when it is ``pool_size`` (Keras writes the default it derived)."""
        config = keras_tuple_config(config, ("pool_size", "strides"))
        if config.get("strides") == config.get("pool_size", 2):
            config = {k: v for k, v in config.items() if k != "strides"}
        return super().from_keras_config(config, loc, translate)


class BaseGlobalPooling(KerasLayer):
    """Max or average over every step: ``(batch, steps, channels)`` -> ``(batch, channels)``, or ``(batch, 1,
    channels)`` with ``keepdims`` (keras/src/layers/pooling/base_global_pooling.py, ``compute_output_shape``).
    With ``data_format="channels_first"`` the input is read as ``(batch, channels, steps)``, so the last axis is
    pooled: ``(batch, steps, channels)`` -> ``(batch, steps)`` (keras-io's time-series transformer pools its
    features so). No weights, no mult-adds."""

    INPUT_NDIM: ClassVar[int | None] = 3
    NEEDS: ClassVar[str] = "3-D input (batch, steps, channels)"
    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = COMMON_FIXED
    SUPPORTS_MASKING: ClassVar[bool] = False

    keepdims: bool = Field(False, description="Keep the pooled axis, with length 1.")
    data_format: Literal["channels_last", "channels_first"] = Field(
        "channels_last",
        description="channels_last: pool over the steps (axis 1); channels_first: over the last axis.",
    )

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        if self.data_format == "channels_first":
            return (input_shape[0], input_shape[1], 1) if self.keepdims else (input_shape[0], input_shape[1])
        if self.keepdims:
            return (input_shape[0], 1, input_shape[-1])
        return (input_shape[0], input_shape[-1])

    def drops_time_axis(self, index: int, consumer: str) -> str | None:
        return f"; {self.type} (layer {index}) pools the time axis away: set keepdims=true on it, or drop it"
