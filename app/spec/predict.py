"""The body of ``POST /v1/trainings/{id}/predict`` and the check of its inputs against the trained model. Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from app.errors import Loc, SpecError
from app.spec.graph import GraphSpec
from app.spec.model import ModelSpec
from app.spec.types import StrictModel


class PredictRequest(StrictModel):
    """A small batch of inputs for a trained model."""

    inputs: list[Any] = Field(
        min_length=1,
        description="The batch as nested arrays, shape (samples, *the model's input shape): numbers, or token ids "
        "(integers in [0, input_dim)) for a model that starts with an Embedding. A null (variable-length) axis "
        "takes any length, the same for every sample.",
        examples=[[[[0.5, 0.0], [0.25, 1.0], [0.75, 1.0]]]],
    )


def _fmt(shape: Sequence[int | None]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def check_one_input_and_output(model: ModelSpec | GraphSpec, loc: Loc = ("body",)) -> None:
    """Refuse a graph model of several inputs or outputs: ``inputs`` is one array, for one input, and the
    answer one output's (``model.predict`` of such a graph takes a dict and answers a list, which the worker
    once met as a 500).

    Raises:
        SpecError: (422, ``predict_inputs``) at ``(*loc, "inputs")``, naming the inputs and outputs and what
            to do instead.
    """
    if not isinstance(model, GraphSpec) or (len(model.inputs) == 1 and len(model.outputs) == 1):
        return
    names = ", ".join(x.name for x in model.inputs)
    raise SpecError.one(
        (*loc, "inputs"),
        f"this run's model is a graph of {len(model.inputs)} input(s) ({names}) and {len(model.outputs)} output(s) "
        f"({', '.join(model.outputs)}), but predict takes one array for a model of one input and answers its one "
        "output: download the trained model (GET /v1/trainings/{id}/model) and call model.predict with a dict of "
        "its inputs in Keras",
        "predict_inputs",
    )


def check_inputs(
    inputs: list[Any], batch_shape: list[int | None], vocab: int | None, max_values: int, loc: Loc = ("body",)
) -> tuple[list[int], str]:
    """Check a predict batch's shape and numbers against the model's input, level by level.

    Args:
        inputs: the batch (nested lists).
        batch_shape: the model's ``batch_input_shape``; ``None`` axes take any length (the same across the batch).
        vocab: the first Embedding's ``input_dim`` (token ids), else ``None`` (numbers).
        max_values: the most numbers the batch may hold (``LAYERWISE_MAX_PREDICT_VALUES``).

    Returns:
        The batch's shape and the dtype to give it to Keras in (``"float32"`` or ``"int32"``).

    Raises:
        SpecError: (422, ``predict_inputs``) at ``(*loc, "inputs")``: a ragged or wrongly shaped batch (the
            message names the shape expected and the one received), a value that is not a number (a bool,
            a string, a non-integer or out-of-range token id), more than ``max_values`` numbers.
    """
    where = (*loc, "inputs")
    expected = [None if batch_shape[0] is None else batch_shape[0], *batch_shape[1:]]

    def refuse(msg: str) -> SpecError:
        return SpecError.one(where, msg, "predict_inputs")

    level: list[Any] = [inputs]
    shape: list[int] = []
    for depth, want in enumerate(expected):
        if any(not isinstance(node, list) for node in level):
            raise refuse(
                f"inputs must have shape {_fmt(expected)} (samples first), but they have {depth} nested levels "
                f"where {len(expected)} are needed"
            )
        lengths = {len(node) for node in level}
        if len(lengths) != 1:
            raise refuse(
                f"inputs are ragged at level {depth}: lengths {sorted(lengths)[:5]}; every sample must "
                f"have the shape {_fmt(expected[1:])}"
            )
        (length,) = lengths
        if want is not None and length != want:
            got = [*shape, length]
            raise refuse(
                f"inputs must have shape {_fmt(expected)}, but axis {depth} has length {length} "
                f"(received {_fmt(got)}...)"
            )
        if length == 0:
            raise refuse(f"inputs axis {depth} is empty; every axis needs at least one entry")
        shape.append(length)
        count = len(level) * length
        if count > max_values:
            raise refuse(
                f"inputs hold more than {max_values} values (LAYERWISE_MAX_PREDICT_VALUES); send fewer "
                "samples per request"
            )
        level = [item for node in level for item in node]
    limit = 2**31 if vocab is not None else 3.4e38  # int32 ids; float32's largest finite value
    for value in level:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise refuse(f"inputs must be numbers, but one is {value!r}")
        if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > limit:
            raise refuse(f"inputs must be finite numbers within float32's range, but one is {value!r}")
        if vocab is not None and (not float(value).is_integer() or not 0 <= value < vocab):
            raise refuse(
                f"the model starts with an Embedding, so inputs must be token ids, integers in [0, {vocab}), "
                f"but one is {value!r}"
            )
    return shape, "int32" if vocab is not None else "float32"
