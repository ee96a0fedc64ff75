"""``keras.layers.Masking``."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from app.spec.layers.base import KerasLayer


class Masking(KerasLayer):
    """``keras.layers.Masking(mask_value)``: marks the steps whose every feature equals ``mask_value`` as
    padding, for the layers after it that support masking (keras/src/layers/core/masking.py). Output shape =
    input shape; no weights, no mult-adds."""

    SUPPORTS_MASKING: ClassVar[bool] = True

    type: Literal["Masking"]
    mask_value: float = Field(0.0, description="The value that marks a padded step.")
