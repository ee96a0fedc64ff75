"""``keras.layers.MaxPooling2D``."""

from __future__ import annotations

from typing import ClassVar, Literal

from app.spec.layers.base_pooling import BasePooling


class MaxPooling2D(BasePooling):
    """``keras.layers.MaxPooling2D``, channels last: ``(batch, rows, cols, channels)`` -> ``(batch, pooled_rows,
    pooled_cols, channels)``, each axis as MaxPooling1D's steps (keras/src/layers/pooling/max_pooling2d.py).
    ``pool_size`` defaults to 2 on both axes. No weights, no mult-adds."""

    RANK: ClassVar[int] = 2
    INPUT_NDIM: ClassVar[int | None] = 4
    NEEDS: ClassVar[str] = "4-D input (batch, rows, cols, channels)"

    type: Literal["MaxPooling2D"]
