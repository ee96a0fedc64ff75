"""POST /v1/models/export (Keras JSON, Keras 3 Python) and the import of Keras's to_json() config, against real
worker processes, with models built here by Keras itself as the reference."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import keras
import pytest
from fastapi.testclient import TestClient

from app.runtime.keras import build as keras_build
from app.spec.examples import SEED_MODELS

L = keras.layers

FAMILY = {
    "name": "family",
    "input_shape": [10, 20],
    "layers": [
        {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 8, "return_sequences": True}},
        {"type": "GRU", "units": 6, "return_sequences": True, "reset_after": False, "name": "gru_layer"},
        {"type": "Dropout", "rate": 0.25},
        {"type": "SimpleRNN", "units": 5, "return_sequences": True, "activation": "relu"},
        {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 3, "use_bias": False}},
        {"type": "Bidirectional", "layer": {"type": "GRU", "units": 2}, "merge_mode": "ave"},
        {"type": "Dense", "units": 1, "activation": "sigmoid"},
    ],
}


def keras_family() -> keras.Sequential:
    """FAMILY written by hand in Keras, as a user would."""
    return keras.Sequential(
        [
            keras.Input(batch_shape=(None, 10, 20), name="input_layer"),
            L.Bidirectional(L.LSTM(8, return_sequences=True, name="lstm"), name="bidirectional"),
            L.GRU(6, return_sequences=True, reset_after=False, name="gru_layer"),
            L.Dropout(0.25, name="dropout"),
            L.SimpleRNN(5, return_sequences=True, activation="relu", name="simple_rnn"),
            L.TimeDistributed(L.Dense(3, use_bias=False, name="dense"), name="time_distributed"),
            L.Bidirectional(L.GRU(2, name="gru"), merge_mode="ave", name="bidirectional_1"),
            L.Dense(1, activation="sigmoid", name="dense_1"),
        ],
        name="family",
    )


def keras_part(summary: dict[str, Any]) -> dict[str, Any]:
    """What Keras says of a model (the service's summary less what the engine adds)."""
    keys = ("name", "total_params", "trainable_params", "non_trainable_params", "text")
    row_keys = ("index", "name", "type", "output_shape", "params", "trainable_params", "non_trainable_params")
    return {
        **{k: summary[k] for k in keys},
        "layers": [{k: row[k] for k in row_keys} for row in summary["layers"]],
    }


def export(client: TestClient, body: dict[str, Any], format: str) -> Any:
    r = client.post("/v1/models/export", json=body, params={"format": format})
    assert r.status_code == 200, r.text
    return r


@pytest.mark.parametrize("example", [*SEED_MODELS, "family"])
def test_python_snippet_builds_the_same_model(client: TestClient, example: str) -> None:
    body = FAMILY if example == "family" else SEED_MODELS[example]
    r = export(client, body, "python")
    assert r.headers["content-type"].startswith("text/x-python")
    namespace: dict[str, Any] = {}
    exec(compile(r.text, f"<{example}.py>", "exec"), namespace)
    built = keras_build.describe(namespace["model"])
    service = client.post("/v1/models/summary", json=body).json()
    assert keras_part(built) == keras_part(service)


def test_python_snippet_of_seed_1_reads_as_keras_code(client: TestClient) -> None:
    assert export(client, SEED_MODELS["seed_example_1"], "python").text == (
        '"""seed_example_1: a Keras 3 Sequential model, exported by layerwise."""\n'
        "\n"
        "import keras\n"
        "\n"
        "model = keras.Sequential(\n"
        "    [\n"
        "        keras.Input(batch_shape=(None, 10, 20)),\n"
        '        keras.layers.LSTM(units=30, name="lstm_layer"),\n'
        '        keras.layers.Dense(units=1, name="dense_layer"),\n'
        "    ],\n"
        '    name="seed_example_1",\n'
        ")\n"
        "model.summary()\n"
    )


def test_keras_json_is_what_keras_writes(client: TestClient) -> None:
    exported = export(client, FAMILY, "keras_json").json()
    assert exported == json.loads(keras_family().to_json())
    loaded = keras.models.model_from_json(json.dumps(exported))
    assert loaded.count_params() == keras_family().count_params()


def test_keras_to_json_round_trips(client: TestClient) -> None:
    model = keras_family()
    config = json.loads(model.to_json())
    r = client.post("/v1/models/summary", json=config)
    assert r.status_code == 200, r.text
    assert keras_part(r.json()) == keras_part(keras_build.describe(model))
    assert export(client, config, "keras_json").json() == config


def test_a_keras_config_exports_as_the_spec_that_describes_it(client: TestClient) -> None:
    model = keras.Sequential(
        [keras.Input(batch_shape=(5, 10, 20)), L.LSTM(30, return_sequences=True, name="lstm_layer"), L.Flatten()],
        name="from_keras",
    )
    spec = export(client, json.loads(model.to_json()), "spec").json()
    assert spec == {
        "name": "from_keras",
        "batch_input_shape": [5, 10, 20],
        "layers": [
            {"type": "LSTM", "name": "lstm_layer", "units": 30, "return_sequences": True},
            {"type": "Flatten", "name": model.layers[1].name},
        ],
    }
    # The spec is a request body that builds the same model.
    assert keras_part(client.post("/v1/models/summary", json=spec).json()) == keras_part(keras_build.describe(model))


def test_seed_model_written_in_keras_imports_with_its_figures(client: TestClient) -> None:
    model = keras.Sequential(
        [keras.Input(shape=(10, 20)), L.LSTM(30, return_sequences=True, name="lstm_layer"), L.Flatten(), L.Dense(1)],
        name="seed_example_2",
    )
    body = client.post("/v1/models/summary", json=json.loads(model.to_json())).json()
    assert [(x["output_shape"], x["params"], x["mult_adds"]) for x in body["layers"]] == [
        ([None, 10, 30], 6120, 61_200),
        ([None, 300], 0, 0),
        ([None, 1], 301, 301),
    ]


def refused(client: TestClient, config: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/models/summary", json=config)
    assert r.status_code == 422, r.text
    (item,) = r.json()["detail"]
    assert set(item) == {"loc", "msg", "type"}
    out: dict[str, Any] = item
    return out


def with_layer(layer: keras.layers.Layer) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(keras.Sequential([keras.Input(shape=(4, 3)), layer]).to_json())
    return config


def test_lambda_is_refused_and_never_run(client: TestClient) -> None:
    item = refused(client, with_layer(L.Lambda(lambda x: x * 2)))
    assert item["loc"] == ["body", "config", "layers", 1, "class_name"]
    assert item["type"] == "keras_import_refused"
    assert "'Lambda' is not supported" in item["msg"] and "never deserialises" in item["msg"]


def test_custom_object_is_refused(client: TestClient) -> None:
    config = with_layer(L.Dense(2))
    config["config"]["layers"][1]["registered_name"] = "my_package>MyDense"
    item = refused(client, config)
    assert item["loc"] == ["body", "config", "layers", 1, "registered_name"]
    assert "my_package>MyDense" in item["msg"]


@pytest.mark.parametrize(
    ("layer", "key", "needle"),
    [
        (L.Dense(2, lora_rank=2), "lora_rank", "only null is"),
        (L.BatchNormalization(renorm=True), "renorm", "only false is"),
        (L.LSTM(2, go_backwards=True), "go_backwards", "only false is"),
        (L.LSTM(2, unroll=True), "unroll", "only false is"),
        (L.Dropout(0.5, seed=3), "seed", "only null is"),
    ],
)
def test_arguments_the_service_cannot_reproduce_are_refused(
    client: TestClient, layer: keras.layers.Layer, key: str, needle: str
) -> None:
    item = refused(client, with_layer(layer))
    assert item["loc"] == ["body", "config", "layers", 1, "config", key]
    assert needle in item["msg"]


def test_a_subclassed_model_is_refused(client: TestClient) -> None:
    inputs = keras.Input(shape=(4, 3))
    config = json.loads(keras.Model(inputs, L.Dense(2)(inputs)).to_json())
    item = refused(client, {**config, "class_name": "MyModel"})
    assert item["loc"] == ["body", "class_name"] and "only Sequential and Functional" in item["msg"]


def test_spec_errors_in_a_keras_config_point_into_it(client: TestClient) -> None:
    config = with_layer(L.Bidirectional(L.GRU(3)))
    for copy in ("layer", "backward_layer"):  # Keras writes the forward and the backward copy
        config["config"]["layers"][1]["config"][copy]["config"]["units"] = 0
    item = refused(client, config)
    assert item["loc"] == ["body", "config", "layers", 1, "config", "layer", "config", "units"]
    assert item["type"] == "greater_than_equal"


def test_a_custom_backward_layer_is_refused(client: TestClient) -> None:
    layer = L.Bidirectional(L.LSTM(3), backward_layer=L.LSTM(3, go_backwards=True, activation="relu"))
    item = refused(client, with_layer(layer))
    assert item["loc"] == ["body", "config", "layers", 1, "config", "backward_layer"]


def test_export_refuses_what_keras_would_refuse(client: TestClient) -> None:
    body = {"input_shape": [10, 20], "layers": [{"type": "Flatten"}, {"type": "LSTM", "units": 3}]}
    for format in ("python", "keras_json"):
        r = client.post("/v1/models/export", json=body, params={"format": format})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "layers", 1]


def test_python_export_is_not_held_to_the_size_limits(client: TestClient) -> None:
    body = {"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": 20_000}]}
    assert 'keras.layers.LSTM(units=20000, name="lstm")' in export(client, body, "python").text
    r = client.post("/v1/models/export", json=body, params={"format": "keras_json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "limit_exceeded"


def test_import_never_imports_keras() -> None:
    # The server process translates configs by whitelist; it must not even load Keras's deserialisation.
    config = json.dumps(with_layer(L.Lambda(lambda x: x)))
    code = (
        "import json, sys\n"
        "from app.errors import SpecError\n"
        "from app.spec.keras_import import parse_model\n"
        f"try:\n    parse_model(json.loads({config!r}))\nexcept SpecError:\n    pass\n"
        "assert not [m for m in sys.modules if m == 'keras' or m.startswith(('keras.', 'tensorflow'))]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# Every layer type added for real sequence models, most arguments off their defaults, in three models that build.
ZOO: dict[str, dict[str, Any]] = {
    "conv_zoo": {
        "name": "conv_zoo",
        "input_shape": [24, 6],
        "layers": [
            {
                "type": "Conv1D",
                "filters": 8,
                "kernel_size": 3,
                "padding": "causal",
                "dilation_rate": 2,
                "groups": 2,
                "activation": "relu",
                "use_bias": False,
            },
            {"type": "BatchNormalization", "momentum": 0.9, "center": False},
            {"type": "LeakyReLU", "negative_slope": 0.1},
            {"type": "SeparableConv1D", "filters": 6, "kernel_size": 3, "depth_multiplier": 2, "padding": "same"},
            {"type": "PReLU", "shared_axes": [1]},
            {"type": "Conv1DTranspose", "filters": 4, "kernel_size": 3, "strides": 2, "output_padding": 1},
            {"type": "MaxPooling1D", "pool_size": 2},
            {"type": "AveragePooling1D", "pool_size": 3, "strides": 1, "padding": "same"},
            {"type": "ZeroPadding1D", "padding": [1, 2]},
            {"type": "Cropping1D", "cropping": 1},
            {"type": "UpSampling1D", "size": 3},
            {"type": "SpatialDropout1D", "rate": 0.1},
            {"type": "GaussianNoise", "stddev": 0.1},
            {"type": "LayerNormalization", "epsilon": 0.01},
            {"type": "Softmax"},
            {"type": "GlobalMaxPooling1D", "keepdims": True},
            {"type": "Reshape", "target_shape": [-1]},
            {"type": "RepeatVector", "n": 3},
            {"type": "Permute", "dims": [2, 1]},
            {"type": "Activation", "activation": "tanh"},
            {"type": "ReLU", "max_value": 6.0},
        ],
    },
    "text_zoo": {
        "name": "text_zoo",
        "input_shape": [12],
        "layers": [
            {"type": "Embedding", "input_dim": 100, "output_dim": 8, "mask_zero": True, "trainable": False},
            {"type": "LSTM", "units": 5, "return_sequences": True},
            {"type": "TimeDistributed", "layer": {"type": "BatchNormalization"}},
            {"type": "Masking", "mask_value": 0.5},
            {"type": "GlobalAveragePooling1D"},
            {"type": "Dense", "units": 2, "trainable": False},
        ],
    },
    "image_zoo": {
        "name": "image_zoo",
        "input_shape": [12, 10, 1],
        "layers": [
            {"type": "Conv2D", "filters": 4, "kernel_size": [3, 2], "strides": [2, 1], "padding": "same"},
            {"type": "MaxPooling2D", "pool_size": [2, 1]},
            {"type": "TimeDistributed", "layer": {"type": "Conv1D", "filters": 3, "kernel_size": 2}},
            {"type": "Reshape", "target_shape": [3, -1]},
            {"type": "Bidirectional", "layer": {"type": "GRU", "units": 4}, "trainable": False},
            {"type": "Dense", "units": 1},
        ],
    },
}


@pytest.mark.parametrize("example", list(ZOO))
def test_every_new_layer_exports_to_python_and_keras_json_and_imports_back(client: TestClient, example: str) -> None:
    body = ZOO[example]
    service = client.post("/v1/models/summary", json=body)
    assert service.status_code == 200, service.text
    expected = keras_part(service.json())
    assert expected["non_trainable_params"] > 0 or example == "conv_zoo"

    namespace: dict[str, Any] = {}
    keras.backend.clear_session()  # the script's unnamed keras.Input gets Keras's first name, as in a fresh process
    exec(compile(export(client, body, "python").text, f"<{example}.py>", "exec"), namespace)
    assert keras_part(keras_build.describe(namespace["model"])) == expected

    config = export(client, body, "keras_json").json()
    written = json.loads(namespace["model"].to_json())
    for ours, keras_own in zip(config["config"]["layers"], written["config"]["layers"], strict=True):
        assert json.dumps(ours, sort_keys=True) == json.dumps(keras_own, sort_keys=True)
    assert config == written
    imported = client.post("/v1/models/summary", json=config)
    assert imported.status_code == 200, imported.text
    assert keras_part(imported.json()) == expected
    assert export(client, config, "keras_json").json() == config
    # The spec an import gives is a request body that describes the same model.
    spec = export(client, config, "spec").json()
    assert keras_part(client.post("/v1/models/summary", json=spec).json()) == expected


KERAS_OBJECTS = {
    "name": "keras_objects",
    "input_shape": [6, 3],
    "layers": [
        {
            "type": "LSTM",
            "units": 4,
            "return_sequences": True,
            "kernel_initializer": {"class_name": "RandomNormal", "config": {"stddev": 0.001}},
            "recurrent_initializer": {"class_name": "Identity", "config": {"gain": 1.0}},
            "bias_initializer": "ones",
            "kernel_regularizer": {"class_name": "L1L2", "config": {"l1": 0.01, "l2": 0.001}},
            "recurrent_constraint": {"class_name": "MaxNorm", "config": {"max_value": 3.0}},
        },
        {"type": "Conv1D", "filters": 2, "kernel_size": 2, "kernel_regularizer": "l2", "bias_constraint": "non_neg"},
        {"type": "Flatten"},
        {"type": "Dense", "units": 1, "kernel_initializer": "he_normal", "activity_regularizer": "l1"},
    ],
}


def test_initializers_regularizers_and_constraints_export_import_and_train(client: TestClient) -> None:
    expected = keras_part(client.post("/v1/models/summary", json=KERAS_OBJECTS).json())
    script = export(client, KERAS_OBJECTS, "python").text
    assert "keras.initializers.RandomNormal(stddev=0.001)" in script and 'kernel_regularizer="l2"' in script
    namespace: dict[str, Any] = {}
    keras.backend.clear_session()
    exec(compile(script, "<keras_objects.py>", "exec"), namespace)
    model = namespace["model"]
    assert keras_part(keras_build.describe(model)) == expected
    lstm = model.layers[0].cell
    assert type(lstm.kernel_initializer).__name__ == "RandomNormal" and lstm.kernel_initializer.stddev == 0.001
    assert type(lstm.recurrent_constraint).__name__ == "MaxNorm"
    config = export(client, KERAS_OBJECTS, "keras_json").json()
    assert config == json.loads(model.to_json())
    spec = export(client, config, "spec").json()  # imported, and read back as the spec gives them
    assert spec["layers"][0]["recurrent_initializer"]["class_name"] == "Identity"
    assert spec["layers"][0]["kernel_initializer"] == {
        "class_name": "RandomNormal",
        "config": {"mean": 0.0, "stddev": 0.001},
    }
    assert keras_part(client.post("/v1/models/summary", json=spec).json()) == expected
    run = client.post("/v1/trainings?wait=120", json={"model": KERAS_OBJECTS, "data": {"samples": 8}}).json()
    assert run["status"] == "succeeded", run


@pytest.mark.parametrize(
    "value",
    [
        {"class_name": "MyInit", "config": {}},
        {"class_name": "RandomNormal", "config": {"stddev": 0.1, "dtype": "float64"}},
        "my_package.initializer",
    ],
)
def test_an_initializer_not_built_in_is_refused(client: TestClient, value: Any) -> None:
    body = {"input_shape": [3], "layers": [{"type": "Dense", "units": 1, "kernel_initializer": value}]}
    r = client.post("/v1/models/summary", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][:4] == ["body", "layers", 0, "kernel_initializer"]


def test_a_custom_initializer_in_keras_json_is_refused(client: TestClient) -> None:
    config = with_layer(L.Dense(2))
    config["config"]["layers"][1]["config"]["kernel_initializer"] = {
        "module": "my_package",
        "class_name": "GlorotUniform",
        "config": {},
        "registered_name": "my_package>GlorotUniform",
    }
    item = refused(client, config)
    assert item["loc"] == ["body", "config", "layers", 1, "config", "kernel_initializer"]
    assert "never deserialised" in item["msg"]
