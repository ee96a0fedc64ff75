"""``keras.layers.Dropout``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from app.spec.layers.base import KerasLayer
from app.spec.layers.keras_config import COMMON_FIXED, NULL, Expect
from app.spec.types import Rate


class Dropout(KerasLayer):
    """``keras.layers.Dropout``: zeroes a fraction ``rate`` of its input in training. Output shape = input
    shape; no weights, no mult-adds (keras/src/layers/regularization/dropout.py)."""

    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = {**COMMON_FIXED, "noise_shape": NULL, "seed": NULL}
    SUPPORTS_MASKING: ClassVar[bool] = True

    type: Literal["Dropout"]
    rate: Rate
