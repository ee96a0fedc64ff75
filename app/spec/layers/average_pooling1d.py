"""``keras.layers.AveragePooling1D``."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from app.spec.layers.base_conv import Size, Sizes
from app.spec.layers.base_pooling import BasePooling


class AveragePooling1D(BasePooling):
    """``keras.layers.AveragePooling1D``: shapes as MaxPooling1D's (keras/src/layers/pooling/average_pooling1d.py;
    unlike MaxPooling1D, Keras 3 gives ``pool_size`` no default). No weights, no mult-adds."""

    RANK: ClassVar[int] = 1
    INPUT_NDIM: ClassVar[int | None] = 3
    NEEDS: ClassVar[str] = "3-D input (batch, steps, channels)"

    type: Literal["AveragePooling1D"]
    pool_size: Size | Sizes = Field(description="Window size.", examples=[2])
