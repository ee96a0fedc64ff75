"""Variable-length sequences (a null axis after the batch, Keras's None) through the app with real workers: the
summary shows None where Keras does, refuses what Keras refuses, gives length-dependent figures per timestep or,
with ?timesteps=N, for that length; a training says how long its synthetic sequences are."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

TEXT = {
    "input_shape": [None],
    "layers": [
        {"type": "Embedding", "input_dim": 1000, "output_dim": 16},
        {"type": "Conv1D", "filters": 8, "kernel_size": 3, "padding": "same"},
        {"type": "LSTM", "units": 4},
        {"type": "Dense", "units": 1, "activation": "sigmoid"},
    ],
}


def fixed(length: int) -> dict[str, Any]:
    return {**TEXT, "input_shape": [length]}


def test_a_null_time_axis_is_none_in_the_summary_and_length_figures_are_per_timestep(client: TestClient) -> None:
    r = client.post("/v1/models/summary", json=TEXT)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["output_shape"] for x in body["layers"]] == [[None, None, 16], [None, None, 8], [None, 4], [None, 1]]
    assert body["total_params"] == 16_000 + 392 + 208 + 5
    # Nothing that depends on the length is given as if it were known.
    assert body["timesteps"] is None
    assert body["mult_adds"] is None and body["activation_bytes"] is None and body["training_memory"] is None
    assert all(x["mult_adds"] is None and x["activation_bytes"] is None for x in body["layers"])
    # Per timestep: what each step adds (this model is linear in the length): Conv1D 392 and LSTM 208 a step.
    assert body["mult_adds_per_timestep"] == 392 + 208
    assert body["activation_bytes_per_timestep"] == (16 + 8) * 4
    assert "(None, None, 16)" in body["text"]


@pytest.mark.parametrize("length", [1, 30])
def test_timesteps_gives_the_figures_of_that_length(client: TestClient, length: int) -> None:
    variable = client.post(f"/v1/models/summary?timesteps={length}", json=TEXT).json()
    known = client.post("/v1/models/summary", json=fixed(length)).json()
    assert variable["timesteps"] == length
    for key in ("mult_adds", "mult_adds_batch", "activation_bytes", "input_bytes", "training_memory"):
        assert variable[key] == known[key], key
    assert [x["mult_adds"] for x in variable["layers"]] == [x["mult_adds"] for x in known["layers"]]
    assert [x["output_shape"][1:] for x in variable["layers"]][:2] == [[None, 16], [None, 8]]


def test_flatten_then_dense_on_an_unknown_axis_is_keras_s_refusal_naming_the_layer(client: TestClient) -> None:
    body = {"input_shape": [None, 20], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 1}]}
    r = client.post("/v1/models/summary", json=body)
    assert r.status_code == 422, r.text
    (item,) = r.json()["detail"]
    assert item["loc"] == ["body", "layers", 1] and item["type"] == "keras_build_error"
    assert "layer 1 (dense, Dense)" in item["msg"] and "(None, None)" in item["msg"]
    assert "unknown length" in item["msg"] and "GlobalAveragePooling1D" in item["msg"]


def test_a_kernel_longer_than_timesteps_is_refused_at_the_query(client: TestClient) -> None:
    body = {"input_shape": [None, 2], "layers": [{"type": "Conv1D", "filters": 1, "kernel_size": 5}]}
    assert client.post("/v1/models/summary", json=body).status_code == 200
    r = client.post("/v1/models/summary?timesteps=3", json=body)
    assert r.status_code == 422, r.text
    (item,) = r.json()["detail"]
    assert item["loc"] == ["query", "timesteps"] and "timesteps=3" in item["msg"] and "kernel_size" in item["msg"]


def test_a_training_of_a_variable_length_model_needs_data_timesteps(client: TestClient) -> None:
    r = client.post("/v1/trainings", json={"model": TEXT, "data": {"samples": 8}})
    assert r.status_code == 422, r.text
    (item,) = r.json()["detail"]
    assert item["loc"] == ["body", "data", "timesteps"]
    assert "null" in item["msg"] and "data.timesteps" in item["msg"]
    run = client.post("/v1/trainings?wait=120", json={"model": TEXT, "data": {"samples": 8, "timesteps": 12}})
    assert run.status_code == 201, run.text
    assert run.json()["status"] == "succeeded", run.json()
    assert run.json()["summary"]["timesteps"] == 12
