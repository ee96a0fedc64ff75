"""``keras.layers.MaxPooling1D``."""

from __future__ import annotations

from typing import ClassVar, Literal

from app.spec.layers.base_pooling import BasePooling


class MaxPooling1D(BasePooling):
    """``keras.layers.MaxPooling1D``: ``(batch, steps, channels)`` -> ``(batch, pooled, channels)``, ``pooled =
    floor((steps - pool_size) / strides) + 1`` with ``padding="valid"`` (pooling to zero steps is refused),
    ``floor((steps - 1) / strides) + 1`` with ``"same"`` (keras/src/layers/pooling/max_pooling1d.py,
    keras/src/ops/operation_utils.py ``compute_pooling_output_shape``). No weights, no mult-adds."""

    RANK: ClassVar[int] = 1
    INPUT_NDIM: ClassVar[int | None] = 3
    NEEDS: ClassVar[str] = "3-D input (batch, steps, channels)"

    type: Literal["MaxPooling1D"]
