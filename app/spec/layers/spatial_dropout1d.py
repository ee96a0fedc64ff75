"""``keras.layers.SpatialDropout1D``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from app.spec.layers.base import KerasLayer
from app.spec.layers.keras_config import COMMON_FIXED, NULL, Expect
from app.spec.types import Rate


class SpatialDropout1D(KerasLayer):
    """``keras.layers.SpatialDropout1D(rate)``: drops whole channels (the same ones at every step) in training.
    Input 3-D ``(batch, steps, channels)``; output shape = input shape; no weights, no mult-adds
    (keras/src/layers/regularization/spatial_dropout.py). Its constructor takes no ``trainable`` (it has
    nothing to freeze), and its config has no ``trainable`` key."""

    INPUT_NDIM: ClassVar[int | None] = 3
    NEEDS: ClassVar[str] = "3-D input (batch, steps, channels)"
    SUPPORTS_MASKING: ClassVar[bool] = True
    TRAINABLE_ARGUMENT: ClassVar[bool] = False
    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = {**COMMON_FIXED, "seed": NULL}

    type: Literal["SpatialDropout1D"]
    rate: Rate
