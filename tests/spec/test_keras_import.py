"""The import of Keras configs alone (no Keras, no workers): what older Keras 3 versions wrote is accepted,
anything that could not be reproduced is refused, and the locs point into the config."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import Limits
from app.errors import SpecError
from app.spec.keras_import import parse_model
from app.spec.layers.keras_config import ORTHOGONAL, Value


def sequential(*layers: dict[str, Any]) -> dict[str, Any]:
    head = {"class_name": "InputLayer", "config": {"batch_shape": [None, 10, 20], "dtype": "float32"}}
    return {"class_name": "Sequential", "config": {"name": "m", "layers": [head, *layers]}}


def lstm(**config: Any) -> dict[str, Any]:
    return {"module": "keras.layers", "class_name": "LSTM", "config": {"name": "lstm", "units": 3, **config}}


def test_a_minimal_config_imports_with_keras_defaults() -> None:
    spec = parse_model(sequential(lstm())).normalized()
    assert spec.batch_shape == [None, 10, 20] and spec.name == "m"
    assert spec.layers[0].model_dump(exclude_none=True)["units"] == 3


def test_older_keras_3_spellings_are_accepted() -> None:
    # dtype as a string, initializer configs without the keys later versions added, gain as a JSON integer.
    glorot = {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": None}}
    orthogonal = {"class_name": "Orthogonal", "config": {"gain": 1, "seed": None}}
    spec = parse_model(sequential(lstm(dtype="float32", kernel_initializer=glorot, recurrent_initializer=orthogonal)))
    assert spec.layers[0].type == "LSTM"


def test_values_match_as_json_does() -> None:
    assert Value(False).matches(False) and not Value(False).matches(0)
    assert Value(1.0).matches(1) and not Value(None).matches("null")
    assert not ORTHOGONAL.matches({"class_name": "Orthogonal", "config": {"gain": 2.0}})
    assert not ORTHOGONAL.matches({"class_name": "Orthogonal", "registered_name": "mine>Orthogonal"})


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"class_name": "Subclassed", "config": {}}, ["body", "class_name"]),
        ({"class_name": "Functional", "config": {}}, ["body", "config", "layers"]),
        ({**sequential(lstm()), "extra": 1}, ["body", "extra"]),
        (sequential(lstm(units=0)), ["body", "config", "layers", 1, "config", "units"]),
        (sequential(lstm(return_state=True)), ["body", "config", "layers", 1, "config", "return_state"]),
        (sequential(lstm(bogus=True)), ["body", "config", "layers", 1, "config", "bogus"]),
        (sequential({"class_name": "Conv3D", "config": {}}), ["body", "config", "layers", 1, "class_name"]),
        (sequential({**lstm(), "module": "my.layers"}), ["body", "config", "layers", 1, "module"]),
        (
            {"class_name": "Sequential", "config": {"layers": [lstm()], "build_input_shape": [None, 0, 20]}},
            ["body", "config", "build_input_shape", 1],
        ),
        ({"class_name": "Sequential", "config": {"layers": [lstm()]}}, ["body", "config", "layers", 0]),
    ],
)
def test_refusals_point_into_the_config(body: dict[str, Any], loc: list[Any]) -> None:
    with pytest.raises(SpecError) as info:
        parse_model(body)
    assert loc in [item["loc"] for item in info.value.items]


# Keras 2's (tf.keras 2.15) model.to_json() of the seed's first model, as it writes it.
KERAS_2_JSON: dict[str, Any] = {
    "class_name": "Sequential",
    "config": {
        "name": "sequential",
        "layers": [
            {
                "class_name": "InputLayer",
                "config": {"batch_input_shape": [None, 10, 20], "dtype": "float32", "sparse": False, "name": "in"},
            },
            {
                "class_name": "LSTM",
                "config": {
                    "name": "lstm_layer",
                    "trainable": True,
                    "dtype": "float32",
                    "batch_input_shape": [None, 10, 20],
                    "return_sequences": True,
                    "time_major": False,
                    "units": 30,
                    "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
                },
            },
        ],
    },
    "keras_version": "2.15.0",
    "backend": "tensorflow",
}


def test_keras_2_json_is_refused_as_such_with_how_to_convert_it() -> None:
    with pytest.raises(SpecError) as info:
        parse_model(KERAS_2_JSON)
    (item,) = info.value.items
    assert item["loc"] == ["body", "keras_version"] and item["type"] == "keras_import_refused"
    assert item["msg"].startswith(
        """this is Keras 2's model.to_json() (keras_version "2.15.0", backend "tensorflow"), which the import does """
        "not read"
    )
    assert "keras.models.load_model('model.keras').to_json()" in item["msg"]
    assert "write the model as a spec" in item["msg"]
    # Either key alone is Keras 2's too; a Keras 3 config has neither.
    without_backend = {k: v for k, v in KERAS_2_JSON.items() if k != "backend"}
    with pytest.raises(SpecError) as info:
        parse_model(without_backend)
    assert info.value.items[0]["loc"] == ["body", "keras_version"]


def test_a_config_error_counts_layers_as_the_config_does() -> None:
    with pytest.raises(SpecError) as info:
        parse_model(sequential(lstm(units=2**31)), limits=Limits(max_units=100))
    (item,) = info.value.items
    assert item == {
        "loc": ["body", "config", "layers", 1, "config", "units"],
        "msg": "layer 1 (LSTM) has units=2,147,483,648, over the limit of 100 units per layer (LAYERWISE_MAX_UNITS); "
        "use fewer units",
        "type": "limit_exceeded",
    }
