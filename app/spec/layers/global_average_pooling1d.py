"""``keras.layers.GlobalAveragePooling1D``."""

from __future__ import annotations

from typing import ClassVar, Literal

from app.spec.layers.base_pooling import BaseGlobalPooling


class GlobalAveragePooling1D(BaseGlobalPooling):
    """``keras.layers.GlobalAveragePooling1D``: the mean over the steps, ``(batch, steps, channels)`` ->
    ``(batch, channels)``; masked steps are left out of the mean (keras/src/layers/pooling/
    global_average_pooling1d.py, which supports masking)."""

    SUPPORTS_MASKING: ClassVar[bool] = True

    type: Literal["GlobalAveragePooling1D"]
