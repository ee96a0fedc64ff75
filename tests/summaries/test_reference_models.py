"""Four public sequence models, written as specs, through the app with real workers: Keras's per-layer shapes and
parameters, its totals (trainable and non-trainable) and its own summary text, and a short training of each.

The specs are the models of keras-io's ``bidirectional_lstm_imdb``, ``timeseries_classification_from_scratch``
and ``addition_rnn`` examples and of Keras's old ``imdb_cnn_lstm`` example; the Keras code each is compared
with is written here as those examples write it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import pytest
from fastapi.testclient import TestClient

from app.runtime.keras.build import summary_text

L = keras.layers

Rows = list[tuple[str, list[int | None], int, int]]  # type, output shape, params, non-trainable


def bidirectional_lstm_imdb(length: int | None) -> tuple[dict[str, Any], Callable[[], list[Any]]]:
    spec = {
        "name": "bidirectional_lstm_imdb",
        "input_shape": [length],  # null: sequences of any length
        "layers": [
            {"type": "Embedding", "input_dim": 20000, "output_dim": 128},
            {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 64, "return_sequences": True}},
            {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 64}},
            {"type": "Dense", "units": 1, "activation": "sigmoid"},
        ],
    }
    return spec, lambda: [
        keras.Input(shape=(length,), dtype="int32"),
        L.Embedding(20000, 128),
        L.Bidirectional(L.LSTM(64, return_sequences=True)),
        L.Bidirectional(L.LSTM(64)),
        L.Dense(1, activation="sigmoid"),
    ]


def timeseries_fcn() -> tuple[dict[str, Any], Callable[[], list[Any]]]:
    block = [
        {"type": "Conv1D", "filters": 64, "kernel_size": 3, "padding": "same"},
        {"type": "BatchNormalization"},
        {"type": "ReLU"},
    ]
    spec = {
        "name": "timeseries_classification_from_scratch",
        "input_shape": [500, 1],
        "layers": [
            *block * 3,
            {"type": "GlobalAveragePooling1D"},
            {"type": "Dense", "units": 2, "activation": "softmax"},
        ],
    }

    def keras_layers() -> list[Any]:
        layers: list[Any] = [keras.Input(shape=(500, 1))]
        for _ in range(3):
            layers += [L.Conv1D(64, 3, padding="same"), L.BatchNormalization(), L.ReLU()]
        return [*layers, L.GlobalAveragePooling1D(), L.Dense(2, activation="softmax")]

    return spec, keras_layers


def addition_rnn() -> tuple[dict[str, Any], Callable[[], list[Any]]]:
    spec = {
        "name": "addition_rnn",
        "input_shape": [7, 12],
        "layers": [
            {"type": "LSTM", "units": 128},
            {"type": "RepeatVector", "n": 4},
            {"type": "LSTM", "units": 128, "return_sequences": True},
            {"type": "Dense", "units": 12, "activation": "softmax"},
        ],
    }
    return spec, lambda: [
        keras.Input(shape=(7, 12)),
        L.LSTM(128),
        L.RepeatVector(4),
        L.LSTM(128, return_sequences=True),
        L.Dense(12, activation="softmax"),
    ]


def imdb_cnn_lstm() -> tuple[dict[str, Any], Callable[[], list[Any]]]:
    # Keras 2 wrote the input as Embedding(max_features, embedding_size, input_length=maxlen).
    spec = {
        "name": "imdb_cnn_lstm",
        "layers": [
            {"type": "Embedding", "input_dim": 20000, "output_dim": 128, "input_length": 100},
            {"type": "Dropout", "rate": 0.25},
            {"type": "Conv1D", "filters": 64, "kernel_size": 5, "padding": "valid", "activation": "relu", "strides": 1},
            {"type": "MaxPooling1D", "pool_size": 4},
            {"type": "LSTM", "units": 70},
            {"type": "Dense", "units": 1},
            {"type": "Activation", "activation": "sigmoid"},
        ],
    }
    return spec, lambda: [
        keras.Input(shape=(100,), dtype="int32"),
        L.Embedding(20000, 128),
        L.Dropout(0.25),
        L.Conv1D(64, 5, padding="valid", activation="relu", strides=1),
        L.MaxPooling1D(pool_size=4),
        L.LSTM(70),
        L.Dense(1),
        L.Activation("sigmoid"),
    ]


MODELS: dict[str, tuple[tuple[dict[str, Any], Callable[[], list[Any]]], Rows, tuple[int, int]]] = {
    "bidirectional_lstm_imdb": (  # as keras-io writes it: Input(shape=(None,), dtype="int32")
        bidirectional_lstm_imdb(None),
        [
            ("Embedding", [None, None, 128], 2_560_000, 0),
            ("Bidirectional", [None, None, 128], 98_816, 0),
            ("Bidirectional", [None, 128], 98_816, 0),
            ("Dense", [None, 1], 129, 0),
        ],
        (2_757_761, 0),
    ),
    "bidirectional_lstm_imdb_200": (
        bidirectional_lstm_imdb(200),
        [
            ("Embedding", [None, 200, 128], 2_560_000, 0),
            ("Bidirectional", [None, 200, 128], 98_816, 0),
            ("Bidirectional", [None, 128], 98_816, 0),
            ("Dense", [None, 1], 129, 0),
        ],
        (2_757_761, 0),
    ),
    "timeseries_classification_from_scratch": (
        timeseries_fcn(),
        [
            *[
                row
                for filters_in in (1, 64, 64)
                for row in (
                    ("Conv1D", [None, 500, 64], 3 * filters_in * 64 + 64, 0),
                    ("BatchNormalization", [None, 500, 64], 256, 128),
                    ("ReLU", [None, 500, 64], 0, 0),
                )
            ],
            ("GlobalAveragePooling1D", [None, 64], 0, 0),
            ("Dense", [None, 2], 130, 0),
        ],
        (25_858, 384),
    ),
    "addition_rnn": (
        addition_rnn(),
        [
            ("LSTM", [None, 128], 72_192, 0),
            ("RepeatVector", [None, 4, 128], 0, 0),
            ("LSTM", [None, 4, 128], 131_584, 0),
            ("Dense", [None, 4, 12], 1_548, 0),
        ],
        (205_324, 0),
    ),
    "imdb_cnn_lstm": (
        imdb_cnn_lstm(),
        [
            ("Embedding", [None, 100, 128], 2_560_000, 0),
            ("Dropout", [None, 100, 128], 0, 0),
            ("Conv1D", [None, 96, 64], 41_024, 0),
            ("MaxPooling1D", [None, 24, 64], 0, 0),
            ("LSTM", [None, 70], 37_800, 0),
            ("Dense", [None, 1], 71, 0),
            ("Activation", [None, 1], 0, 0),
        ],
        (2_638_895, 0),
    ),
}


def keras_text(name: str, make_layers: Callable[[], list[Any]]) -> str:
    """Keras's own summary of the example's code, built here (fresh names: Keras counts them per session)."""
    keras.backend.clear_session()
    return summary_text(keras.Sequential(make_layers(), name=name))


@pytest.mark.parametrize("example", list(MODELS))
def test_reference_model_gives_keras_figures_and_text(client: TestClient, example: str) -> None:
    (spec, make_layers), rows, (total, non_trainable) = MODELS[example]
    r = client.post("/v1/models/summary", json=spec)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(x["type"], x["output_shape"], x["params"], x["non_trainable_params"]) for x in body["layers"]] == rows
    assert [x["trainable_params"] for x in body["layers"]] == [params - nt for _, _, params, nt in rows]
    assert (body["total_params"], body["trainable_params"], body["non_trainable_params"]) == (
        total,
        total - non_trainable,
        non_trainable,
    )
    assert body["text"] == keras_text(spec["name"], make_layers)
    assert f"Total params: {total:,}" in body["text"]
    assert f"Non-trainable params: {non_trainable:,}" in body["text"]


@pytest.mark.parametrize("example", list(MODELS))
def test_reference_model_trains_on_synthetic_data(client: TestClient, example: str) -> None:
    (spec, _), _, (total, _) = MODELS[example]
    data = {"samples": 16, "timesteps": 50} if None in spec.get("input_shape", []) else {"samples": 16}
    r = client.post(
        "/v1/trainings?wait=120",
        json={"model": spec, "data": data, "fit": {"epochs": 1, "batch_size": 8}},
    )
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "succeeded", run
    assert run["epochs_completed"] == 1 and run["summary"]["total_params"] == total
    assert all(isinstance(v, float) for v in run["history"]["loss"])


def deepspeech2() -> dict[str, Any]:
    """keras-io's ``ctc_asr`` DeepSpeech2-style model: spectrograms of any length (193 frequency bins), two
    Conv2D blocks, five bidirectional GRUs of 512 units, 32 output characters (its vocabulary + 1)."""
    layers: list[dict[str, Any]] = [
        {"type": "Reshape", "target_shape": [-1, 193, 1]},
        {
            "type": "Conv2D",
            "filters": 32,
            "kernel_size": [11, 41],
            "strides": [2, 2],
            "padding": "same",
            "use_bias": False,
        },
        {"type": "BatchNormalization"},
        {"type": "ReLU"},
        {
            "type": "Conv2D",
            "filters": 32,
            "kernel_size": [11, 21],
            "strides": [1, 2],
            "padding": "same",
            "use_bias": False,
        },
        {"type": "BatchNormalization"},
        {"type": "ReLU"},
        {"type": "Reshape", "target_shape": [-1, 32 * 49]},
    ]
    for i in range(5):
        layers.append({"type": "Bidirectional", "layer": {"type": "GRU", "units": 512, "return_sequences": True}})
        if i < 4:
            layers.append({"type": "Dropout", "rate": 0.5})
    layers += [
        {"type": "Dense", "units": 1024},
        {"type": "ReLU"},
        {"type": "Dropout", "rate": 0.5},
        {"type": "Dense", "units": 32, "activation": "softmax"},
    ]
    return {"name": "DeepSpeech_2", "input_shape": [None, 193], "layers": layers}


def test_the_largest_public_sequence_model_fits_the_default_limits(client: TestClient) -> None:
    r = client.post("/v1/models/summary", json=deepspeech2())
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["total_params"], body["non_trainable_params"]) == (26_628_480, 128)
    assert body["layers"][-1]["output_shape"] == [None, None, 32]
    # A training keeps the lower limit.
    r = client.post("/v1/trainings", json={"model": deepspeech2(), "data": {"samples": 4, "timesteps": 50}})
    assert r.status_code == 422, r.text
    assert "LAYERWISE_MAX_TRAINING_PARAMS" in r.json()["detail"][0]["msg"]
