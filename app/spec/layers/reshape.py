"""``keras.layers.Reshape``."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field, model_validator

from app.spec.layers import refusals
from app.spec.layers.base import KerasLayer
from app.spec.types import Shape

TargetDim = Annotated[int, Field(ge=-1, le=2**31 - 1)]


class Reshape(KerasLayer):
    """``keras.layers.Reshape(target_shape)``: ``(batch, *any)`` -> ``(batch, *target_shape)``, one ``-1`` in
    the target computed from the input's size (keras/src/ops/operation_utils.py,
    ``compute_reshape_output_shape``): a target whose sizes do not multiply to the input's is refused; with an
    unknown (None) input axis, ``-1`` stays None. No weights, no mult-adds."""

    type: Literal["Reshape"]
    target_shape: list[TargetDim] = Field(
        min_length=1,
        max_length=8,
        description="The shape of one sample after the layer (no batch); one entry may be -1, computed.",
        examples=[[-1]],
    )

    @model_validator(mode="after")
    def _check_target(self) -> Reshape:
        if self.target_shape.count(-1) > 1:
            raise ValueError(
                f"target_shape {self.target_shape} has more than one -1; Keras computes at most one: give the "
                "other sizes"
            )
        if 0 in self.target_shape:
            raise ValueError(f"target_shape {self.target_shape} has a 0: give positive sizes, or -1 for one")
        return self

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        sample = input_shape[1:]
        target = tuple(self.target_shape)
        if None in sample:
            return (input_shape[0], *(None if d == -1 else d for d in target))
        size = math.prod(d for d in sample if d is not None)
        known = math.prod(d for d in target if d != -1)
        if -1 not in target:
            if size != known:
                raise refusals.reshape_size(sample, target)
            return (input_shape[0], *target)
        if size % known:
            raise refusals.reshape_size(sample, target)
        return (input_shape[0], *(size // known if d == -1 else d for d in target))
