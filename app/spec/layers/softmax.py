"""``keras.layers.Softmax``."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from app.spec.layers.base import KerasLayer
from app.spec.layers.batch_normalization import Axis


class Softmax(KerasLayer):
    """``keras.layers.Softmax``: a softmax over ``axis``; output shape = input shape; no weights, no mult-adds
    (keras/src/layers/activations/softmax.py)."""

    SUPPORTS_MASKING: ClassVar[bool] = True

    type: Literal["Softmax"]
    axis: Axis = Field(-1, description="The axis the softmax normalizes over.")
