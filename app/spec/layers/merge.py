"""Keras's merge layers (keras/src/layers/merging/): ``Add``, ``Subtract``, ``Multiply``, ``Average``,
``Maximum``, ``Minimum``, ``Concatenate`` and ``Dot``. Graph models only: each is called on a list of tensors.

None has weights, so parameters are 0. Mult-adds are 0 too, as elementwise work is not counted (the engine's
convention, :mod:`app.analysis.engine`), except for ``Dot``, whose products are a matmul: one mult-add per
element of the contracted axis for each element of the output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from app.formatting import fmt_shape
from app.spec.layers.base import KerasLayer, KerasRefusal, prod
from app.spec.types import Shape


def _merged(merge: str, shapes: list[Shape]) -> Shape:
    """The shape of an elementwise merge, as ``Merge.compute_output_shape`` broadcasts it: the axes after the
    batch aligned from the last, each pair equal, 1 (taking the other) or None (giving None).

    Raises:
        KerasRefusal: two shapes that do not broadcast, or two batch sizes (``Merge.build``).
    """
    batches = {s[0] for s in shapes} - {None}
    if len(batches) > 1:
        raise KerasRefusal(
            f"{merge} cannot merge tensors with different batch sizes: {', '.join(fmt_shape(s) for s in shapes)}"
        )
    out: tuple[int | None, ...] = tuple(shapes[0][1:])
    for shape in shapes[1:]:
        a, b = (out, tuple(shape[1:])) if len(out) >= len(shape) - 1 else (tuple(shape[1:]), out)
        tail: list[int | None] = []
        for i, j in zip(a[len(a) - len(b) :], b, strict=True):
            if i is None or j is None:
                tail.append(None)
            elif i == 1 or j == 1:
                tail.append(j if i == 1 else i)
            elif i != j:
                raise KerasRefusal(
                    f"{merge} needs inputs of one shape (or shapes that broadcast: each axis equal, 1 or None), but "
                    f"it was given {' and '.join(fmt_shape(s) for s in shapes)}: make them match"
                )
            else:
                tail.append(i)
        out = (*a[: len(a) - len(b)], *tail)
    batch = next(iter(batches)) if batches else None
    return (batch, *out)


class MergeLayer(KerasLayer):
    """What the merge layers share: a call on a list of at least two tensors, masks passed on."""

    SUPPORTS_MASKING: ClassVar[bool] = True
    INPUTS: ClassVar[tuple[int, int]] = (2, 64)
    CALL_STYLE: ClassVar[str] = "list"
    NEEDS: ClassVar[str] = "a list of tensors to merge: give inputs two or more references"

    def output_shape(self, input_shape: Shape) -> Shape:
        raise KerasRefusal(f"{self.type} merges several tensors; it is a layer of graph models only")

    def call_output_shapes(self, inputs: list[Shape], arguments: Mapping[str, list[Shape]]) -> list[Shape]:
        return [_merged(self.type, inputs)]

    def call_weights(self, inputs: list[Shape]) -> list:  # type: ignore[type-arg]
        return []

    def call_mult_adds(self, inputs: list[Shape]) -> int:
        return 0


class Add(MergeLayer):
    """``keras.layers.Add``: the elementwise sum of its inputs (shapes broadcast as numpy's)."""

    type: Literal["Add"]


class Subtract(MergeLayer):
    """``keras.layers.Subtract``: ``inputs[0] - inputs[1]``; exactly two inputs (``Subtract.build``)."""

    INPUTS: ClassVar[tuple[int, int]] = (2, 2)
    type: Literal["Subtract"]


class Multiply(MergeLayer):
    """``keras.layers.Multiply``: the elementwise product of its inputs."""

    type: Literal["Multiply"]


class Average(MergeLayer):
    """``keras.layers.Average``: the elementwise mean of its inputs."""

    type: Literal["Average"]


class Maximum(MergeLayer):
    """``keras.layers.Maximum``: the elementwise maximum of its inputs."""

    type: Literal["Maximum"]


class Minimum(MergeLayer):
    """``keras.layers.Minimum``: the elementwise minimum of its inputs."""

    type: Literal["Minimum"]


class Concatenate(MergeLayer):
    """``keras.layers.Concatenate(axis)``: the inputs joined along ``axis``; every other axis must match (None
    matches anything), and the joined axis is the sum of theirs (None if one is None).

    keras/src/layers/merging/concatenate.py: ``build`` compares the shapes without the axis,
    ``compute_output_shape`` sums it.
    """

    type: Literal["Concatenate"]
    axis: int = Field(-1, ge=-8, le=8, description="The axis to join along; -1 (the features) by default.")

    def call_output_shapes(self, inputs: list[Shape], arguments: Mapping[str, list[Shape]]) -> list[Shape]:
        ranks = {len(s) for s in inputs}
        shown = " and ".join(fmt_shape(s) for s in inputs)
        if len(ranks) > 1 or not -len(inputs[0]) <= self.axis < len(inputs[0]):
            why = "of one rank" if len(ranks) > 1 else f"with an axis {self.axis}"
            raise KerasRefusal(f"Concatenate needs inputs {why}, but it was given {shown}")
        axis = self.axis % len(inputs[0])
        for d in range(len(inputs[0])):
            if d == axis:
                continue
            known = {s[d] for s in inputs} - {None}
            if len(known) > 1:
                raise KerasRefusal(
                    f"Concatenate needs inputs of one shape except on axis {self.axis}, but it was given {shown}: "
                    "make them match, or join along another axis"
                )
        out = list(inputs[0])
        for shape in inputs[1:]:
            a, b = out[axis], shape[axis]
            if a is None or b is None:
                out[axis] = None
                break
            out[axis] = a + b
        return [tuple(out)]


Axis = Annotated[int, Field(ge=-8, le=8)]


class Dot(MergeLayer):
    """``keras.layers.Dot(axes, normalize)``: the dot product of two tensors along ``axes`` (one axis of each;
    an int is the same axis of both), batch by batch. Output: the first shape without its axis, then the
    second without the batch and its axis; ``(batch, 1)`` when nothing else is left.

    keras/src/layers/merging/dot.py: ``build`` refuses axes of unequal length (None equals only None),
    ``compute_output_shape`` pops the axes. Mult-adds per sample: the contracted length for every output
    element.
    """

    INPUTS: ClassVar[tuple[int, int]] = (2, 2)
    NEEDS: ClassVar[str] = "two tensors: give inputs two references"

    type: Literal["Dot"]
    axes: Axis | Annotated[list[Axis], Field(min_length=2, max_length=2)] = Field(
        description="The axis of each input to take the product along: an int for the same axis of both, or "
        "[axis of the first, axis of the second]; not 0 (the batch).",
        examples=[[2, 2]],
    )
    normalize: bool = Field(False, description="L2-normalise both along the axes first: the cosine similarity.")

    @field_validator("axes")
    @classmethod
    def _not_batch(cls, axes: int | list[int]) -> int | list[int]:
        if 0 in (axes if isinstance(axes, list) else [axes]):
            raise ValueError("axis 0 is the batch axis, which Dot cannot take the product along: use 1, 2... or -1")
        return axes

    def _axes(self, inputs: list[Shape]) -> tuple[int, int]:
        first, second = inputs
        if isinstance(self.axes, int):
            if self.axes < 0:
                return self.axes % len(first), self.axes % len(second)
            return self.axes, self.axes
        return self.axes[0], self.axes[1]

    def call_output_shapes(self, inputs: list[Shape], arguments: Mapping[str, list[Shape]]) -> list[Shape]:
        first, second = inputs
        a, b = self._axes(inputs)
        shown = f"{fmt_shape(first)} and {fmt_shape(second)}"
        if not (-len(first) <= a < len(first) and -len(second) <= b < len(second)):
            raise KerasRefusal(f"Dot takes axes {self.axes}, which {shown} do not both have")
        if first[a] != second[b]:
            raise KerasRefusal(
                f"Dot takes the product along axis {a} of the first input and {b} of the second, whose lengths "
                f"{first[a]} and {second[b]} differ (of {shown}): choose axes of one length"
            )
        x, y = list(first), list(second)
        x.pop(a)
        y.pop(b)
        y.pop(0)
        out = x + y
        return [tuple(out) if len(out) > 1 else (*out, 1)]

    def call_mult_adds(self, inputs: list[Shape]) -> int:
        first = inputs[0]
        a, _ = self._axes(inputs)
        (out,) = self.call_output_shapes(inputs, {})
        length = first[a]
        return 0 if length is None else prod(out[1:]) * length


MERGE_LAYER_CLASSES: tuple[type[KerasLayer], ...] = (
    Concatenate,
    Add,
    Subtract,
    Multiply,
    Average,
    Maximum,
    Minimum,
    Dot,
)
