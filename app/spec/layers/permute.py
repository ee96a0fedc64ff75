"""``keras.layers.Permute``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from app.spec.layers.base import KerasLayer, ShapeError
from app.spec.types import Shape


class Permute(KerasLayer):
    """``keras.layers.Permute(dims)``: the axes after the batch reordered, ``output[i] = input[dims[i-1]]``
    (1-based, the batch staying first): ``Permute([2, 1])`` turns ``(batch, steps, features)`` into ``(batch,
    features, steps)``. Its InputSpec asks for ``len(dims) + 1`` axes (keras/src/layers/reshaping/permute.py).
    No weights, no mult-adds. It does not pass a mask on."""

    type: Literal["Permute"]
    dims: list[Annotated[int, Field(ge=1, le=8)]] = Field(
        min_length=1,
        max_length=8,
        description="A permutation of 1..n (the batch axis is 0 and stays).",
        examples=[[2, 1]],
    )

    @model_validator(mode="after")
    def _check_dims(self) -> Permute:
        if sorted(self.dims) != list(range(1, len(self.dims) + 1)):
            raise ValueError(
                f"dims {self.dims} is not a permutation of 1..{len(self.dims)}: Keras needs each axis after the "
                f"batch once, numbered from 1, e.g. {list(range(len(self.dims), 0, -1))}"
            )
        return self

    def check_input(self, input_shape: Shape) -> None:
        if len(input_shape) != len(self.dims) + 1:
            raise ShapeError(f"ndim={len(self.dims) + 1}", f"ndim={len(input_shape)}")

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        return (input_shape[0], *(input_shape[d] for d in self.dims))
