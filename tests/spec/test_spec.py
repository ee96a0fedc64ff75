"""The request models alone (no workers): what they accept, normalize and refuse, and where."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from app.errors import SpecError
from app.spec.layers import keras_auto_name
from app.spec.model import ModelSpec
from app.spec.training import TrainingSpec, split_samples


def spec(**kw: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": 30}]}
    body.update(kw)
    return body


def locs(exc: SpecError) -> list[list[str | int]]:
    return [item["loc"] for item in exc.items]


def test_keras_2_first_layer_input_shape_moves_to_the_model() -> None:
    m = ModelSpec.model_validate(
        {
            "layers": [
                {"type": "LSTM", "batch_input_shape": [5, 10, 20], "units": 30},
                {"type": "Dense", "units": 1},
            ]
        }
    ).normalized()
    assert m.batch_input_shape == [5, 10, 20]
    assert m.layers[0].batch_input_shape is None
    assert [layer.name for layer in m.layers] == ["lstm", "dense"]
    assert m.name == "sequential"


def test_equivalent_specs_normalize_equal() -> None:
    a = ModelSpec.model_validate(spec()).normalized()
    b = ModelSpec.model_validate(
        {"batch_input_shape": [None, 10, 20], "layers": [{"type": "LSTM", "units": 30, "activation": "tanh"}]}
    ).normalized()
    assert a.model_dump() == b.model_dump()


def test_auto_names_follow_keras_and_skip_names_taken() -> None:
    m = ModelSpec.model_validate(
        spec(
            layers=[
                {"type": "Dense", "units": 2},
                {"type": "Dense", "units": 2, "name": "dense_1"},
                {"type": "Dense", "units": 2},
                {"type": "LSTM", "units": 2},
            ]
        )
    ).normalized()
    assert [layer.name for layer in m.layers] == ["dense", "dense_1", "dense_2", "lstm"]
    assert keras_auto_name("SimpleRNN") == "simple_rnn"
    assert keras_auto_name("TimeDistributed") == "time_distributed"


@pytest.mark.parametrize(
    ("body", "loc", "needle"),
    [
        ({"layers": [{"type": "LSTM", "units": 3}]}, ["body", "input_shape"], "no input shape"),
        (spec(batch_input_shape=[5, 10, 20]), ["body", "batch_input_shape"], "given 2 times"),
        (
            spec(layers=[{"type": "LSTM", "units": 3, "input_shape": [10, 20]}]),
            ["body", "layers", 0, "input_shape"],
            "given 2 times",
        ),
        (
            spec(layers=[{"type": "LSTM", "units": 3}, {"type": "Dense", "units": 1, "input_shape": [3]}]),
            ["body", "layers", 1, "input_shape"],
            "only the first layer",
        ),
        (
            spec(layers=[{"type": "LSTM", "units": 3, "name": "a"}, {"type": "Dense", "units": 1, "name": "a"}]),
            ["body", "layers", 1, "name"],
            "like layer 0",
        ),
        (
            spec(layers=[{"type": "LSTM", "units": 3, "stateful": True}]),
            ["body", "layers", 0, "stateful"],
            "batch_input_shape (e.g. [5, 10, 20])",
        ),
    ],
)
def test_cross_field_errors_point_at_the_field(body: dict[str, Any], loc: list[Any], needle: str) -> None:
    with pytest.raises(SpecError) as info:
        ModelSpec.model_validate(body).normalized()
    assert loc in locs(info.value)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        spec(layers=[{"type": "LSTM", "units": 0}]),
        spec(layers=[{"type": "LSTM", "units": -3}]),
        spec(layers=[{"type": "LSTM", "units": 2.5}]),
        spec(layers=[{"type": "LSTM", "units": "30"}]),
        spec(layers=[{"type": "LSTM", "units": 3, "bogus": 1}]),
        spec(layers=[{"type": "Conv2D", "filters": 3}]),
        spec(layers=[{"units": 3}]),
        spec(layers=[]),
        spec(layers=[{"type": "LSTM", "units": 3, "dropout": 1.0}]),
        spec(layers=[{"type": "LSTM", "units": 3, "activation": "nope"}]),
        spec(layers=[{"type": "LSTM", "units": 3, "name": "a/b"}]),
        spec(input_shape=[0, 20]),
        spec(input_shape=[]),
        spec(unknown_top_level=True),
    ],
)
def test_field_errors_are_pydantic_validation_errors(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ModelSpec.model_validate(body)


def test_unknown_layer_type_names_the_known_ones() -> None:
    with pytest.raises(ValidationError) as info:
        ModelSpec.model_validate(spec(layers=[{"type": "Conv3D"}]))
    message = str(info.value)
    assert "Conv3D" in message and "'LSTM'" in message and "'Dense'" in message and "'Flatten'" in message


def test_split_samples_matches_keras_floor() -> None:
    assert split_samples(100, 0.0) == (100, 0)
    assert split_samples(100, 0.2) == (80, 20)
    assert split_samples(10, 0.25) == (7, 3)  # floor(7.5)


def training(model: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"model": model, **kw}


STATEFUL = {
    "batch_input_shape": [5, 10, 20],
    "layers": [{"type": "LSTM", "units": 30, "stateful": True}, {"type": "Dense", "units": 1}],
}


def test_batch_size_defaults_to_fixed_batch_then_32() -> None:
    t = TrainingSpec.model_validate(training(STATEFUL, data={"samples": 50})).normalized()
    assert t.fit.batch_size == 5
    t = TrainingSpec.model_validate(training(spec())).normalized()
    assert t.fit.batch_size == 32


@pytest.mark.parametrize(
    ("kw", "loc", "needle"),
    [
        ({"data": {"samples": 53}}, ["body", "data", "samples"], "has 53"),
        (
            {"data": {"samples": 50}, "fit": {"batch_size": 10}},
            ["body", "fit", "batch_size"],
            "must be 5, not 10",
        ),
        (
            {"data": {"samples": 53}, "fit": {"validation_split": 0.05}},
            ["body", "fit", "validation_split"],
            "validation part has 3",
        ),
        (
            {"data": {"samples": 52}, "fit": {"validation_split": 0.1}},
            ["body", "data", "samples"],
            "training part has 46",
        ),
    ],
)
def test_stateful_training_checks_batches_before_running(kw: dict[str, Any], loc: list[Any], needle: str) -> None:
    with pytest.raises(SpecError) as info:
        TrainingSpec.model_validate(training(STATEFUL, **kw)).normalized()
    assert locs(info.value) == [loc]
    assert needle in str(info.value)


def test_validation_split_that_leaves_nothing_is_refused() -> None:
    with pytest.raises(SpecError) as info:
        TrainingSpec.model_validate(training(spec(), data={"samples": 1}, fit={"validation_split": 0.5})).normalized()
    assert locs(info.value) == [["body", "fit", "validation_split"]]
    # One sample cannot be split whatever the split: the fix is more samples, not another split.
    assert "use at least 2 samples" in str(info.value) and "nearer" not in str(info.value)


@pytest.mark.parametrize(("samples", "split"), [(2, 0.9), (3, 0.9), (10, 0.95), (100, 0.999), (7, 1e-17)])
def test_the_fix_a_refused_validation_split_offers_works_for_that_request(samples: int, split: float) -> None:
    with pytest.raises(SpecError) as info:
        TrainingSpec.model_validate(
            training(spec(), data={"samples": samples}, fit={"validation_split": split})
        ).normalized()
    offered = re.search(
        r"use a validation_split from ([0-9.]+) to ([0-9.]+) with samples=(\d+) \(e\.g\. ([0-9.]+)\)", str(info.value)
    )
    assert offered is not None, str(info.value)
    low, high, n, example = float(offered[1]), float(offered[2]), int(offered[3]), float(offered[4])
    assert n == samples and low <= example <= high
    for value in (low, high, example):  # each split offered leaves a sample or more on each side
        TrainingSpec.model_validate(
            training(spec(), data={"samples": samples}, fit={"validation_split": value})
        ).normalized()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_numbers_are_refused(value: float) -> None:
    with pytest.raises(ValidationError):
        TrainingSpec.model_validate(training(spec(), compile={"learning_rate": value}))


def test_wrapped_layers_are_named_before_their_wrapper_as_keras_constructs_them() -> None:
    m = ModelSpec.model_validate(
        spec(
            layers=[
                {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 2, "return_sequences": True}},
                {"type": "LSTM", "units": 2, "return_sequences": True},
                {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 1, "name": "head"}},
            ]
        )
    ).normalized()
    names = [(layer.name, layer.innermost().name if layer.WRAPPED_FIELDS else None) for layer in m.layers]
    assert names == [("bidirectional", "lstm"), ("lstm_1", None), ("time_distributed", "head")]


def test_stateful_inside_a_wrapper_needs_a_fixed_batch() -> None:
    body = spec(layers=[{"type": "Bidirectional", "layer": {"type": "GRU", "units": 2, "stateful": True}}])
    with pytest.raises(SpecError) as info:
        ModelSpec.model_validate(body).normalized()
    assert locs(info.value) == [["body", "layers", 0, "layer", "stateful"]]


def test_input_shape_inside_a_wrapper_is_refused() -> None:
    body = {"layers": [{"type": "Bidirectional", "layer": {"type": "LSTM", "units": 2, "input_shape": [10, 20]}}]}
    with pytest.raises(SpecError) as info:
        ModelSpec.model_validate(body).normalized()
    assert ["body", "layers", 0, "layer", "input_shape"] in locs(info.value)


def test_input_layer_name_steps_aside_for_a_layer_that_took_it() -> None:
    assert ModelSpec.model_validate(spec()).normalized().input_layer_name == "input_layer"
    named = spec(layers=[{"type": "LSTM", "units": 2, "name": "input_layer"}])
    assert ModelSpec.model_validate(named).normalized().input_layer_name == "input_layer_1"


def test_wrappers_accept_only_their_layer_types() -> None:
    with pytest.raises(ValidationError):
        ModelSpec.model_validate(spec(layers=[{"type": "Bidirectional", "layer": {"type": "Dense", "units": 2}}]))
    with pytest.raises(ValidationError):
        ModelSpec.model_validate(
            spec(layers=[{"type": "TimeDistributed", "layer": {"type": "Bidirectional", "layer": {"type": "LSTM"}}}])
        )
