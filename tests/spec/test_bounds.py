"""What a request costs is bounded before its items are validated: lists and objects have a size in the
schema, the layers' validation stops after a few errors, and a refusal lists at most MAX_ERROR_ITEMS items.
Measured before these bounds: a 977 KiB body of 500,000 layers took seconds and answered 500,000 items."""

from __future__ import annotations

import time
from typing import Any

import pytest

from app.config import Settings
from app.errors import MAX_ERROR_ITEMS, ErrorItem, SpecError
from app.spec.keras_import import parse_model
from app.spec.types import SCHEMA_MAX_LAYERS

# Far above what the bounded work takes (about a millisecond), far below what the unbounded took (seconds).
QUICK_S = 0.25


def refusal(body: Any) -> tuple[list[ErrorItem], float]:
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        parse_model(body)
    return info.value.items, time.perf_counter() - start


def test_half_a_million_layers_are_refused_by_their_count_alone() -> None:
    items, took = refusal({"input_shape": [10, 20], "layers": [1] * 500_000})
    assert took < QUICK_S
    (item,) = items
    assert item["loc"] == ["body", "layers"] and item["type"] == "too_long"
    assert item["msg"] == "the model has 500,000 layers; a request holds at most 1,000; use fewer layers"


def test_the_schema_takes_as_many_layers_as_the_largest_limit() -> None:
    assert Settings.model_fields["max_layers"].metadata[-1].le == SCHEMA_MAX_LAYERS
    items, _ = refusal({"input_shape": [10, 20], "layers": [{"type": "Dense", "units": 0}] * SCHEMA_MAX_LAYERS})
    assert items[0]["loc"] == ["body", "layers", 0, "units"]  # validated item by item, not refused by count


def test_validation_stops_after_a_few_errors_and_the_answer_says_how_many_more() -> None:
    wrong = {"type": "LSTM", **dict.fromkeys(("units", "activation", "use_bias", "dropout", "stateful"), "x")}
    items, took = refusal({"input_shape": [10, 20], "layers": [wrong] * 1000})
    assert took < QUICK_S
    assert len(items) == MAX_ERROR_ITEMS + 1
    assert all(item["loc"][:3] == ["body", "layers", 0] for item in items[:5])  # the first layer's five
    # Checking stopped at the fifth layer, and the last item says so where it stopped.
    last = items[-1]
    assert last["type"] == "too_many_errors" and last["loc"] == ["body", "layers", 4]
    assert last["msg"] == (
        "layers.4 and what follows it were not checked, after the 20 errors above; fix these and send the request again"
    )


def test_an_object_with_more_keys_than_fields_is_one_error() -> None:
    layer = {"type": "Dense", "units": 1, **{f"k{i}": 0 for i in range(90_000)}}
    items, took = refusal({"input_shape": [10, 20], "layers": [layer]})
    assert took < QUICK_S
    (item,) = items
    assert item["loc"] == ["body", "layers", 0] and item["type"] == "too_many_keys"
    assert "has 90,002 keys" in item["msg"] and "'k0', 'k1', 'k2'" in item["msg"]


def test_a_few_unknown_keys_are_still_named_one_by_one() -> None:
    items, _ = refusal({"input_shape": [10, 20], "layers": [{"type": "Dense", "units": 1, "unit": 2}]})
    assert [(item["loc"], item["type"]) for item in items] == [(["body", "layers", 0, "unit"], "extra_forbidden")]


@pytest.mark.parametrize("field", ["kernel_size", "strides", "dilation_rate"])
def test_a_per_axis_list_is_bounded(field: str) -> None:
    layer = {"type": "Conv1D", "filters": 4, "kernel_size": 3, field: [1] * 500_000}
    items, took = refusal({"input_shape": [10, 20], "layers": [layer]})
    assert took < QUICK_S
    assert any(item["loc"][:4] == ["body", "layers", 0, field] and item["type"] == "too_long" for item in items)


def test_a_keras_config_of_many_layers_is_refused_by_their_count() -> None:
    items, took = refusal({"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda"}] * 40_000}})
    assert took < QUICK_S
    (item,) = items
    assert item["loc"] == ["body", "config", "layers"] and "40,000 layers" in item["msg"]


def test_a_keras_config_of_many_refused_layers_lists_twenty() -> None:
    layers = [{"class_name": "InputLayer", "config": {"batch_shape": [None, 4]}}] + [{"class_name": "Lambda"}] * 1000
    items, _ = refusal({"class_name": "Sequential", "config": {"layers": layers}})
    assert len(items) == MAX_ERROR_ITEMS + 1
    assert items[-1]["type"] == "too_many_errors" and items[-1]["loc"] == ["body"]
    assert items[-1]["msg"].startswith("and 980 more errors, not listed: an answer lists the first 20 errors")
