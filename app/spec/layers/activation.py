"""``keras.layers.Activation``."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from app.spec.layers.base import KerasLayer
from app.spec.types import Activation as ActivationName


class Activation(KerasLayer):
    """``keras.layers.Activation``: a Keras activation applied elementwise; output shape = input shape; no
    weights, no mult-adds (elementwise work is not counted) (keras/src/layers/activations/activation.py)."""

    SUPPORTS_MASKING: ClassVar[bool] = True

    type: Literal["Activation"]
    activation: ActivationName = Field(description="A Keras activation by name.", examples=["relu"])
