"""The analytic engine against real Keras (built here, in the test process): same shapes, same counts, same
failures with the same messages, over random valid and invalid stacks of every layer type (hypothesis)."""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from app.analysis.engine import analyze
from app.errors import SpecError
from app.runtime.keras import build as keras_build
from app.spec.examples import SEED_MODELS
from app.spec.layers import LAYER_CLASSES, KerasLayer
from app.spec.messages import drop_tags
from app.spec.model import ModelSpec
from tests.summaries.test_summary import EXPECTED

Outcome = tuple[str, Any]


def _field_strategy(cls: type[KerasLayer], name: str, field: FieldInfo) -> st.SearchStrategy[Any]:
    """Values for one field, from its annotation: small sizes, every choice of a Literal or a bool."""
    if name in cls.WRAPPED_FIELDS:
        return st.one_of(*(_layer(inner) for inner in _classes(field.annotation)))
    if name == "name":
        return st.none()
    if name == "stateful":  # needs a fixed batch: mostly off, so that fewer stacks stop at normalized()
        return st.sampled_from([False, False, False, True])
    if name == "return_sequences":  # mostly on, so that more stacks build and their figures are compared
        return st.sampled_from([True, True, False])
    annotation = field.annotation
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    choices: list[st.SearchStrategy[Any]] = []
    for option in options or (annotation,):
        if option is type(None):
            choices.append(st.none())
        elif option is bool:
            choices.append(st.booleans())
        elif option is int:
            choices.append(st.integers(1, 6))
        elif option is float:
            choices.append(st.sampled_from([0.0, 0.25]))
        elif typing.get_origin(option) is typing.Literal:
            choices.append(st.sampled_from(typing.get_args(option)))
        else:
            raise AssertionError(f"no strategy for {cls.__name__}.{name}: {option!r}; teach _field_strategy")
    return st.one_of(*choices)


def _classes(annotation: Any) -> tuple[type[KerasLayer], ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _layer(cls: type[KerasLayer]) -> st.SearchStrategy[dict[str, Any]]:
    """A layer of this class as a request dict, every field drawn (defaults included)."""
    fields = {
        name: _field_strategy(cls, name, field)
        for name, field in cls.model_fields.items()
        if name not in KerasLayer.INPUT_FIELDS
    }
    type_name = typing.get_args(cls.model_fields["type"].annotation)[0]
    return st.fixed_dictionaries(fields).map(lambda d: {"type": type_name, **d})


# Where a model's input shape may be given: the top level or the first layer, with or without the batch.
SHAPE_FIELDS: list[tuple[str, ...]] = [
    ("batch_input_shape",),
    ("input_shape",),
    ("layers", "0", "batch_input_shape"),
    ("layers", "0", "input_shape"),
]


@st.composite
def model_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A Sequential spec of 1-5 layers of any registered type, on a 1- to 3-D input with an open or fixed
    batch, given in any of the shape fields. Many are invalid (an LSTM after a Flatten, a null axis after the
    batch...): both outcomes are what is compared."""
    rank = draw(st.sampled_from([1, 2, 2, 2, 3]))  # mostly (timesteps, features)
    # null, a variable axis, one time in ten: most stacks should still reach the engine and Keras
    dim = st.one_of(*[st.integers(1, 5)] * 9, st.none())
    sample = draw(st.lists(dim, min_size=rank, max_size=rank))
    batch = draw(st.one_of(st.none(), st.integers(1, 3)))
    layers = draw(st.lists(st.one_of(*(_layer(cls) for cls in LAYER_CLASSES)), min_size=1, max_size=5))
    where = draw(st.sampled_from(SHAPE_FIELDS))
    body: dict[str, Any] = {"layers": layers}
    holder = layers[0] if where[0] == "layers" else body
    holder[where[-1]] = [batch, *sample] if where[-1] == "batch_input_shape" else sample
    return body


def _null_axis_refusal(body: dict[str, Any]) -> tuple[str | int, ...] | None:
    """Where the service must refuse a body whose input has a null axis after the batch: that axis's place."""
    for where in SHAPE_FIELDS:
        holder = body["layers"][0] if where[0] == "layers" else body
        shape = holder.get(where[-1])
        if shape is None:
            continue
        offset = 0 if where[-1] == "batch_input_shape" else 1
        for i, d in enumerate(shape):
            if d is None and i + offset > 0:
                return ("body", *(int(p) if p.isdigit() else p for p in where), i)
    return None


def engine_outcome(spec: ModelSpec) -> Outcome:
    try:
        figures = analyze(spec)
    except SpecError as exc:
        (item,) = exc.items
        return "refused", (item["loc"][-1], item["msg"])
    rows = [(row.name, row.type, list(row.output_shape), row.params, row.params, 0) for row in figures.layers]
    return "built", (rows, figures.total_params)


def keras_outcome(spec: ModelSpec) -> Outcome:
    try:
        summary = keras_build.summarize(spec)
    except keras_build.BuildError as exc:
        return "refused", (exc.index, str(exc))
    rows = [
        (r["name"], r["type"], r["output_shape"], r["params"], r["trainable_params"], r["non_trainable_params"])
        for r in summary["layers"]
    ]
    return "built", (rows, summary["total_params"])


def test_every_layer_type_has_a_strategy() -> None:
    for cls in LAYER_CLASSES:
        assert _layer(cls) is not None  # _field_strategy raises for a field it cannot draw


# Bounded for CI: about 10 s on one core. Keras builds each stack in the test process.
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=model_bodies())
def test_engine_and_keras_agree(body: dict[str, Any]) -> None:
    null_axis = _null_axis_refusal(body)
    try:
        spec = ModelSpec.model_validate(body).normalized()
    except ValidationError as exc:  # a null in input_shape, which has no batch: the schema refuses it
        locs = [("body", *drop_tags(error["loc"])) for error in exc.errors()]  # as the service answers them
        assert null_axis in locs, (null_axis, locs)
        event("null axis refused by the schema")
        return
    except SpecError as exc:
        if null_axis is not None:  # variable-length inputs are not supported yet: a 422 at that axis
            assert [item["loc"] for item in exc.items if item["type"] == "variable_length_unsupported"] == [
                list(null_axis)
            ]
            event("null axis refused by normalized()")
        else:
            event("refused by normalized()")  # before either: the same for both
        return
    assert null_axis is None, "a null axis after the batch must never reach the engine or Keras"
    engine = engine_outcome(spec)
    event(f"engine: {engine[0]}")
    assert engine == keras_outcome(spec)


@pytest.mark.parametrize("example", list(EXPECTED))
def test_seed_models_give_the_notebook_figures_through_the_engine_and_keras(example: str) -> None:
    spec = ModelSpec.model_validate(SEED_MODELS[example]).normalized()
    rows, total = EXPECTED[example]
    expected = ([(name, kind, shape, params, params, 0) for name, kind, shape, params in rows], total)
    assert engine_outcome(spec) == ("built", expected)
    assert keras_outcome(spec) == ("built", expected)
