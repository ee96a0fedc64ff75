"""``keras.layers.LeakyReLU``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field

from app.spec.layers.base import KerasLayer


class LeakyReLU(KerasLayer):
    """``keras.layers.LeakyReLU``: ``x`` for ``x >= 0``, ``negative_slope · x`` below. Output shape = input
    shape; no weights, no mult-adds (keras/src/layers/activations/leaky_relu.py). Keras 2 called the slope
    ``alpha`` (default 0.3 too): a spec may too, and it becomes ``negative_slope``."""

    SUPPORTS_MASKING: ClassVar[bool] = True
    KERAS2_RENAMES: ClassVar[Mapping[str, str]] = {"alpha": "negative_slope"}

    type: Literal["LeakyReLU"]
    negative_slope: float = Field(0.3, ge=0.0, description="Slope below 0.")
    alpha: float | None = Field(None, ge=0.0, description="Keras 2's name for negative_slope.")
