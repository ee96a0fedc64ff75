"""``keras.layers.ReLU``."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from app.spec.layers.base import KerasLayer


class ReLU(KerasLayer):
    """``keras.layers.ReLU``: ``max_value`` if ``x >= max_value``, ``x`` if ``threshold <= x``, else
    ``negative_slope · (x - threshold)``. Output shape = input shape; no weights, no mult-adds
    (keras/src/layers/activations/relu.py; its constructor refuses negative arguments)."""

    SUPPORTS_MASKING: ClassVar[bool] = True

    type: Literal["ReLU"]
    max_value: float | None = Field(None, ge=0.0, description="Upper bound of the output; null: none.")
    negative_slope: float = Field(0.0, ge=0.0, description="Slope below the threshold.")
    threshold: float = Field(0.0, ge=0.0, description="Where the activation starts.")
