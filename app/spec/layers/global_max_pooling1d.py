"""``keras.layers.GlobalMaxPooling1D``."""

from __future__ import annotations

from typing import Literal

from app.spec.layers.base_pooling import BaseGlobalPooling


class GlobalMaxPooling1D(BaseGlobalPooling):
    """``keras.layers.GlobalMaxPooling1D``: the maximum over the steps, ``(batch, steps, channels)`` ->
    ``(batch, channels)`` (keras/src/layers/pooling/global_max_pooling1d.py). It does not pass a mask on."""

    type: Literal["GlobalMaxPooling1D"]
