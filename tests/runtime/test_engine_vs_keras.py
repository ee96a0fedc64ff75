"""The analytic engine against real Keras (built here, in the test process): same shapes, same counts (trainable
and non-trainable), same failures with the same messages, and the same layers warned of for destroying a mask,
over random valid and invalid stacks of every layer type (hypothesis)."""

from __future__ import annotations

import os
import re
import types
import typing
import warnings
from typing import Any

import keras
import pytest
from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from app.analysis.engine import analyze
from app.analysis.warnings import mask_warnings
from app.errors import SpecError
from app.runtime.keras import build as keras_build
from app.spec.examples import SEED_MODELS
from app.spec.graph import GraphSpec
from app.spec.layers import LAYER_CLASSES, KerasLayer
from app.spec.messages import drop_tags
from app.spec.model import ModelSpec
from tests.summaries.test_summary import EXPECTED

Outcome = tuple[str, Any]


# Fields whose values need more than their annotation says: small, mostly valid, sometimes not.
_FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "input_length": st.sampled_from([None, None, None, 3]),  # Keras 2: the input shape, given again
    "alpha": st.sampled_from([None, None, 0.1]),  # Keras 2's LeakyReLU negative_slope
    "target_shape": st.lists(st.sampled_from([-1, 1, 2, 3, 4, 6]), min_size=1, max_size=3),
    "dims": st.sampled_from([[1], [2, 1], [1, 2], [2, 1, 3], [3, 1, 2], [1, 3], [2, 2]]),
    "shared_axes": st.sampled_from([None, None, [1], [1, 2], [2], [0], [3]]),
    "kernel_size": st.one_of(st.integers(1, 4), st.lists(st.integers(1, 3), min_size=1, max_size=2)),
    "pool_size": st.one_of(st.integers(1, 3), st.lists(st.integers(1, 3), min_size=1, max_size=2)),
    "strides": st.sampled_from([1, 1, 2, [1], [2, 1]]),
    "dilation_rate": st.sampled_from([1, 1, 1, 2, [1, 1]]),
    "groups": st.sampled_from([1, 1, 2]),
    "depth_multiplier": st.sampled_from([1, 2]),
    "output_padding": st.sampled_from([None, None, 0, 1]),
    "cropping": st.sampled_from([1, [1, 1], [0, 2], [2, 0], 0]),
    "trainable": st.sampled_from([True, True, False]),
    "max_value": st.sampled_from([None, 1.0]),
    "epsilon": st.just(0.001),
    "stddev": st.sampled_from([0.0, 0.1]),
    "momentum": st.sampled_from([0.99, 0.9]),
    "axes": st.sampled_from([1, 2, -1, [1, 1], [2, 2], [2, 1], [1, 2], [-1, -1]]),  # Dot: never the batch axis
    "num_heads": st.integers(1, 3),
    "key_dim": st.integers(1, 4),
    "value_dim": st.sampled_from([None, 2]),
}


# Initializers, regularizers and constraints: a name, or a built-in class with arguments.
_OBJECTS: dict[str, list[Any]] = {
    "_initializer": [None, "he_normal", {"class_name": "RandomNormal", "config": {"stddev": 0.001}}],
    "_regularizer": [None, "l2", {"class_name": "L1L2", "config": {"l1": 0.01, "l2": 0.001}}],
    "_constraint": [None, "non_neg", {"class_name": "MaxNorm", "config": {"max_value": 2.0}}],
}

# Fields whose kinds differ between classes (conv and pooling paddings, ZeroPadding1D's sizes; an axis or a list of
# them): each class draws the values its field takes.
_BY_KIND: dict[str, list[Any]] = {
    "padding": ["valid", "same", "causal", 0, 1, [0, 2]],
    "axis": [-1, -1, -1, 1, 2, -2, 3, 0, -4, [1, 2], [-1]],
}


def _field_strategy(cls: type[KerasLayer], name: str, field: FieldInfo, graph: bool = False) -> st.SearchStrategy[Any]:
    """Values for one field: small sizes, every choice of a Literal or a bool; :data:`_FIELD_VALUES` where the
    annotation alone does not say enough (a field that is a union of kinds keeps only those of its class)."""
    if name in cls.WRAPPED_FIELDS:
        return st.one_of(*(_layer(inner, graph) for inner in _classes(field.annotation)))
    if name == "name":
        return st.none()
    if name == "stateful":  # needs a fixed batch: mostly off, so that fewer stacks stop at normalized()
        return st.sampled_from([False, False, False, True])
    if name == "return_state":  # a Sequential cannot pass states on; a graph draws it (graph_bodies)
        return st.sampled_from([False, False, True]) if graph else st.just(False)
    if name == "return_sequences":  # mostly on, so that more stacks build and their figures are compared
        return st.sampled_from([True, True, False])
    if name in _BY_KIND:
        allowed = _literal_or_kinds(field.annotation)
        return st.sampled_from([v for v in _BY_KIND[name] if _fits(v, allowed)])
    if name in _FIELD_VALUES:
        return _FIELD_VALUES[name]
    for suffix, values in _OBJECTS.items():  # they change no figure: a few of each kind keep the test honest
        if name.endswith(suffix):
            return st.sampled_from(values) if field.default is None else st.sampled_from([field.default, *values[1:]])
    annotation = field.annotation
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    choices: list[st.SearchStrategy[Any]] = []
    for option in options or (annotation,):
        base = typing.get_args(option)[0] if typing.get_origin(option) is typing.Annotated else option
        if base is type(None):
            choices.append(st.none())
        elif base is bool:
            choices.append(st.booleans())
        elif base is int:
            low = max(_bound(option, "ge", 1), 0)
            choices.append(st.integers(low, low + 5))
        elif base is float:
            choices.append(st.sampled_from([0.0, 0.25]))
        elif typing.get_origin(base) is typing.Literal:
            choices.append(st.sampled_from(typing.get_args(base)))
        else:
            raise AssertionError(f"no strategy for {cls.__name__}.{name}: {option!r}; teach _field_strategy")
    return st.one_of(*choices)


def _bound(annotation: Any, which: str, default: int) -> int:
    for meta in getattr(annotation, "__metadata__", ()):
        value = getattr(meta, which, None)
        if isinstance(value, int):
            return value
    return default


def _literal_or_kinds(annotation: Any) -> tuple[Any, ...]:
    """The Literal values of an annotation, plus ``int`` / ``list`` when it takes those."""
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    found: list[Any] = []
    for option in options or (annotation,):
        base = typing.get_args(option)[0] if typing.get_origin(option) is typing.Annotated else option
        if typing.get_origin(base) is typing.Literal:
            found.extend(typing.get_args(base))
        elif base is int or typing.get_origin(base) is list:
            found.append(typing.get_origin(base) or base)
    return tuple(found)


def _fits(value: Any, allowed: tuple[Any, ...]) -> bool:
    return value in allowed if isinstance(value, str) else type(value) in allowed


def _classes(annotation: Any) -> tuple[type[KerasLayer], ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _layer(cls: type[KerasLayer], graph: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """A layer of this class as a request dict, every field drawn (defaults included); ``graph``: for a graph
    model (an RNN may return its states)."""
    fields = {
        name: _field_strategy(cls, name, field, graph)
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
    batch, given in any of the shape fields, a null (variable-length) axis one time in ten. Many are invalid (an
    LSTM after a Flatten, a Dense after a Flatten of a null axis...): both outcomes are what is compared."""
    rank = draw(st.sampled_from([1, 2, 2, 2, 3]))  # mostly (timesteps, features)
    # null, a variable axis, one time in ten: most stacks should still reach the engine and Keras
    dim = st.one_of(*[st.integers(1, 6)] * 9, st.none())
    sample = draw(st.lists(dim, min_size=rank, max_size=rank))
    batch = draw(st.one_of(st.none(), st.integers(1, 3)))
    chain = [cls for cls in LAYER_CLASSES if cls.INPUTS == (1, 1)]  # merges and attention need a graph
    layers = draw(st.lists(st.one_of(*(_layer(cls) for cls in chain)), min_size=1, max_size=5))
    where = draw(st.sampled_from(SHAPE_FIELDS))
    body: dict[str, Any] = {"layers": layers}
    holder = layers[0] if where[0] == "layers" else body
    holder[where[-1]] = [batch, *sample] if where[-1] == "batch_input_shape" else sample
    return body


def engine_outcome(spec: ModelSpec) -> Outcome:
    try:
        figures = analyze(spec)
    except SpecError as exc:
        (item,) = exc.items
        return "refused", (item["loc"][-1], item["msg"])
    destroyed = [spec.layers[w.layer].name for w in mask_warnings(spec) if w.layer is not None]
    rows = [
        (row.name, row.type, list(row.output_shape), row.params, row.trainable_params, row.non_trainable_params)
        for row in figures.layers
    ]
    return "built", (rows, (figures.total_params, figures.trainable_params, figures.non_trainable_params), destroyed)


# Keras's build-time warning that a layer drops the mask it was given (keras/src/layers/layer.py).
_MASK_WARNING = re.compile(r"Layer '([^']+)' \(of type \w+\) was passed an input with a mask attached to it")


def keras_outcome(spec: ModelSpec) -> Outcome:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            summary = keras_build.summarize(spec)
        except keras_build.BuildError as exc:
            return "refused", (exc.index, str(exc))
    destroyed = [m[1] for w in caught if (m := _MASK_WARNING.search(str(w.message)))]
    rows = [
        (r["name"], r["type"], r["output_shape"], r["params"], r["trainable_params"], r["non_trainable_params"])
        for r in summary["layers"]
    ]
    totals = (summary["total_params"], summary["trainable_params"], summary["non_trainable_params"])
    return "built", (rows, totals, destroyed)


def _layer_at(body: dict[str, Any], loc: tuple[str | int, ...]) -> dict[str, Any]:
    """The (possibly wrapped) layer dict a pydantic loc points into: ``("layers", 2, "layer", ...)``."""
    layer: dict[str, Any] = body["layers"][loc[1]]
    for part in loc[2:]:
        if part != "layer" or not isinstance(layer.get("layer"), dict):
            break
        layer = layer["layer"]
    return layer


def _keras_refuses_to_construct(layer: dict[str, Any]) -> bool:
    kwargs = {k: v for k, v in layer.items() if k not in ("type", "input_shape", "batch_input_shape", "name")}
    if isinstance(kwargs.get("layer"), dict):  # the wrapper's own arguments are all checked by the schema's types
        return _keras_refuses_to_construct(kwargs["layer"])
    kwargs.pop("input_length", None)
    if kwargs.get("alpha") is not None:
        kwargs["negative_slope"] = kwargs.pop("alpha")
    kwargs.pop("alpha", None)
    try:
        getattr(keras.layers, layer["type"])(**kwargs)
    except ValueError:
        return True
    return False


def test_every_layer_type_has_a_strategy() -> None:
    for cls in LAYER_CLASSES:
        assert _layer(cls) is not None  # _field_strategy raises for a field it cannot draw


# Bounded for CI: about 10 s on one core. Keras builds each stack in the test process.
@settings(
    max_examples=int(os.environ.get("LAYERWISE_PROPERTY_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no explain phase: it doubles the time
)
@given(body=model_bodies())
def test_engine_and_keras_agree(body: dict[str, Any]) -> None:
    try:
        spec = ModelSpec.model_validate(body).normalized()
    except ValidationError as exc:
        # Arguments Keras's constructor refuses (groups that do not divide filters, a Permute that is not a
        # permutation...) are refused by the schema: Keras must refuse to construct that layer too.
        for error in exc.errors():
            assert error["type"] == "value_error", error
            layer = _layer_at(body, drop_tags(error["loc"]))
            assert _keras_refuses_to_construct(layer), (error["msg"], layer)
        event("refused by the schema, as by Keras's constructor")
        return
    except SpecError:
        event("refused by normalized()")  # before either: the same for both
        return
    engine = engine_outcome(spec)
    event(f"engine: {engine[0]}{', variable length' if spec.variable_axes else ''}")
    keras_side = keras_outcome(spec)
    note(f"spec: {spec.model_dump(exclude_defaults=True)}\nengine: {engine}\nkeras: {keras_side}")
    assert engine == keras_side


@pytest.mark.parametrize("example", list(EXPECTED))
def test_seed_models_give_the_notebook_figures_through_the_engine_and_keras(example: str) -> None:
    spec = ModelSpec.model_validate(SEED_MODELS[example]).normalized()
    rows, total = EXPECTED[example]
    layers = [(name, kind, shape, params, params, 0) for name, kind, shape, params in rows]
    expected: tuple[Any, ...] = (layers, (total, total, 0), [])
    assert engine_outcome(spec) == ("built", expected)
    assert keras_outcome(spec) == ("built", expected)


# -- Graph models ---------------------------------------------------------------------------------------------

# Single-input layer types for graphs: those a Sequential takes. Multi-input ones: the merges and attention.
_CHAIN_CLASSES = [cls for cls in LAYER_CLASSES if cls.INPUTS == (1, 1)]
_JOIN_CLASSES = [cls for cls in LAYER_CLASSES if cls.INPUTS != (1, 1)]


@st.composite
def graph_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A graph spec: one or two inputs of rank 1-3 (mostly (timesteps, features), a null axis one time in ten),
    then 1-6 layers, each called on earlier tensors: a layer of one input on one of them, a merge or an
    attention layer on two or three, an RNN sometimes with return_state and an initial_state drawn from the
    tensors there are (the right count or not). The outputs are the layers no other uses. Many are invalid
    (shapes that do not merge, states of the wrong size...): both outcomes are compared."""
    dim = st.one_of(*[st.integers(1, 6)] * 9, st.none())
    inputs: list[dict[str, Any]] = []
    for k in range(draw(st.integers(1, 2))):
        rank = draw(st.sampled_from([1, 2, 2, 2, 3]))
        inputs.append({"name": f"in{k}", "shape": draw(st.lists(dim, min_size=rank, max_size=rank))})
    tensors: list[str] = [x["name"] for x in inputs]  # every reference there is so far
    layers: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 6))):
        joins = draw(st.sampled_from([False, False, True]))
        cls = draw(st.sampled_from(_JOIN_CLASSES if joins else _CHAIN_CLASSES))
        layer = draw(_layer(cls, graph=True))
        low, high = cls.INPUTS
        count = draw(st.integers(low, min(high, 3)))
        layer["inputs"] = draw(st.lists(st.sampled_from(tensors), min_size=count, max_size=count))
        layer["name"] = f"l{i}"
        outputs = 1
        if "return_state" in layer:
            states = layer["layer"]["return_state"] if "layer" in layer else layer["return_state"]
            inner = cls if "layer" not in layer else LAYER_CLASSES_BY_TYPE[layer["layer"]["type"]]
            if states:
                outputs = 1 + getattr(inner, "STATES", 1) * (2 if "layer" in layer else 1)
        if "initial_state" in cls.model_fields and draw(st.sampled_from([False, False, True])):
            n = draw(st.integers(1, 2))
            layer["initial_state"] = draw(st.lists(st.sampled_from(tensors), min_size=n, max_size=n))
        layers.append(layer)
        tensors += [f"l{i}"] + [f"l{i}:{k}" for k in range(1, outputs)]
    used = {
        ref.split(":")[0] for layer in layers for field in ("inputs", "initial_state") for ref in layer.get(field) or []
    }
    # An input no layer took is an output itself (Keras allows it), so that the graph is still one.
    names = [*(x["name"] for x in inputs), *(la["name"] for la in layers)]
    return {"inputs": inputs, "layers": layers, "outputs": [name for name in names if name not in used]}


LAYER_CLASSES_BY_TYPE = {typing.get_args(cls.model_fields["type"].annotation)[0]: cls for cls in LAYER_CLASSES}


def graph_engine_outcome(spec: GraphSpec) -> Outcome:
    try:
        figures = analyze(spec)
    except SpecError as exc:
        (item,) = exc.items
        return "refused", item["loc"][-1]
    rows = {
        row.name: (
            row.type,
            list(row.output_shape),
            [list(s) for s in row.output_shapes] if len(row.output_shapes) > 1 else None,
            list(row.connected_to),
            row.params,
            row.trainable_params,
            row.non_trainable_params,
        )
        for row in figures.layers
    }
    return "built", (rows, (figures.total_params, figures.trainable_params, figures.non_trainable_params))


def graph_keras_outcome(spec: GraphSpec) -> Outcome:
    try:
        summary = keras_build.summarize(spec)
    except keras_build.BuildError as exc:
        return "refused", exc.index
    rows = {
        r["name"]: (
            r["type"],
            r["output_shape"],
            r["output_shapes"],
            r["connected_to"],
            r["params"],
            r["trainable_params"],
            r["non_trainable_params"],
        )
        for r in summary["layers"]
        if r["type"] != "InputLayer"
    }
    return "built", (rows, (summary["total_params"], summary["trainable_params"], summary["non_trainable_params"]))


@settings(
    max_examples=int(os.environ.get("LAYERWISE_PROPERTY_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
)
@given(body=graph_bodies())
def test_engine_and_keras_agree_on_graphs(body: dict[str, Any]) -> None:
    """Same rows (shapes, every output's shape, connections, counts) and totals, or the same layer refused. The
    refusal's words are the engine's (it answers first); Keras's, for what the engine would let through, are
    its own."""
    try:
        spec = GraphSpec.model_validate(body).normalized()
    except ValidationError as exc:
        for error in exc.errors():
            assert error["type"] == "value_error", error
        event("refused by the schema")
        return
    except SpecError:
        event("refused by normalized()")
        return
    engine = graph_engine_outcome(spec)
    event(f"engine: {engine[0]}")
    keras_side = graph_keras_outcome(spec)
    note(f"spec: {spec.model_dump(exclude_defaults=True)}\nengine: {engine}\nkeras: {keras_side}")
    assert engine == keras_side
