"""``keras.layers.BatchNormalization``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from app.spec.layers import refusals
from app.spec.layers.base import KerasLayer, Weight, prod
from app.spec.layers.keras_config import FALSE, NORMALIZATION_FIXED, ZEROS, Expect, KerasObject, Value
from app.spec.types import Shape

Axis = Annotated[int, Field(ge=-9, le=8)]


def axis_length(input_shape: Shape, axis: int) -> int | None:
    """``input_shape[axis]`` as Keras's ``build`` reads it (Python indexing, the batch axis included).

    Raises:
        KerasRefusal: the input has no such axis (Keras: IndexError).
    """
    if not -len(input_shape) <= axis < len(input_shape):
        raise refusals.axis_out_of_range(axis, len(input_shape))
    return input_shape[axis]


class BatchNormalization(KerasLayer):
    """``keras.layers.BatchNormalization``: output shape = input shape.

    Weights (keras/src/layers/normalization/batch_normalization.py, ``build``), each of shape
    ``(input_shape[axis],)``: ``gamma`` (with ``scale``) and ``beta`` (with ``center``), trainable, and
    ``moving_mean`` and ``moving_variance``, created with ``trainable=False``: the non-trainable parameters
    Keras's summary reports. A 64-channel BatchNormalization has 256 parameters, 128 of them non-trainable.

    Mult-adds per sample: ``gamma`` and ``beta`` are each used once per element, ``positions · (gamma + beta
    sizes)`` (every axis but the batch and ``axis``); the moving statistics are not used in a training
    forward pass and are not counted.
    """

    SUPPORTS_MASKING: ClassVar[bool] = True
    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = {
        **NORMALIZATION_FIXED,
        "moving_mean_initializer": ZEROS,
        "moving_variance_initializer": KerasObject("keras.initializers", "Ones"),
        "synchronized": FALSE,
        "renorm": FALSE,
        "renorm_clipping": Value(None),
        "renorm_momentum": Value(0.99),
    }

    type: Literal["BatchNormalization"]
    axis: Axis = Field(-1, description="The features axis (batch first: -1 is the last).")
    momentum: float = Field(0.99, ge=0.0, le=1.0, description="Momentum of the moving mean and variance.")
    epsilon: float = Field(0.001, gt=0.0, le=1.0, description="Added to the variance to avoid dividing by 0.")
    center: bool = Field(True, description="Add the trainable offset beta.")
    scale: bool = Field(True, description="Multiply by the trainable scale gamma.")

    def weights(self, input_shape: Shape) -> list[Weight]:
        shape = (axis_length(input_shape, self.axis),)
        weights = [Weight("gamma", shape)] if self.scale else []
        if self.center:
            weights.append(Weight("beta", shape))
        return [*weights, Weight("moving_mean", shape, False), Weight("moving_variance", shape, False)]

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        refusals.check_known_weights(self, input_shape)
        return input_shape

    def mult_adds(self, input_shape: Shape) -> int:
        used = sum(w.size for w in self.weights(input_shape) if w.name in ("gamma", "beta"))
        axis = self.axis % len(input_shape)
        positions = prod(tuple(d for i, d in enumerate(input_shape) if i not in (0, axis)))
        return positions * used
