"""``keras.layers.GaussianNoise``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field

from app.spec.layers.base import KerasLayer
from app.spec.layers.keras_config import COMMON_FIXED, NULL, Expect


class GaussianNoise(KerasLayer):
    """``keras.layers.GaussianNoise(stddev)``: adds zero-mean Gaussian noise in training. Output shape = input
    shape; no weights, no mult-adds (keras/src/layers/regularization/gaussian_noise.py)."""

    SUPPORTS_MASKING: ClassVar[bool] = True
    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = {**COMMON_FIXED, "seed": NULL}

    type: Literal["GaussianNoise"]
    stddev: float = Field(ge=0.0, le=1e6, description="Standard deviation of the noise.", examples=[0.1])
