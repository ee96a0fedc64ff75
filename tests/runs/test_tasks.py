"""Trainings that learn: each task's seeded default run with a small suitable model, through real workers.

Each run is deterministic by its seed, so its final val_loss is asserted as a value, and against the task's
baseline (the best constant answer's loss on the same validation data): a model that learned ends below a
third of it; on the seed's random data it cannot.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.spec.training import Loss

LSTM_DENSE: dict[str, Any] = {"layers": [{"type": "LSTM", "units": 32}, {"type": "Dense", "units": 1}]}

# task -> (the training request, its final val_loss at seed 0). Small: a few thousand samples, a few epochs.
RUNS: dict[str, tuple[dict[str, Any], float]] = {
    "adding": (
        {
            "model": {"input_shape": [20, 2], **LSTM_DENSE},
            "compile": {"loss": "mse", "learning_rate": 0.01},
            "data": {"task": "adding", "samples": 2000},
            "fit": {"epochs": 8, "validation_split": 0.2},
        },
        0.0025862273760139942,
    ),
    "sine": (
        {
            "model": {"input_shape": [20, 1], **LSTM_DENSE},
            "compile": {"loss": "mse", "learning_rate": 0.01},
            "data": {"task": "sine", "samples": 500},
            "fit": {"epochs": 4, "validation_split": 0.2},
        },
        0.016751404851675034,
    ),
    "temporal_order": (
        {
            "model": {
                "input_shape": [20, 8],
                "layers": [{"type": "LSTM", "units": 32}, {"type": "Dense", "units": 4, "activation": "softmax"}],
            },
            "compile": {"loss": "sparse_categorical_crossentropy", "learning_rate": 0.01, "metrics": ["accuracy"]},
            "data": {"task": "temporal_order", "samples": 1000},
            "fit": {"epochs": 4, "validation_split": 0.2},
        },
        0.0036741183139383793,
    ),
    "running_parity": (
        {
            "model": {
                "input_shape": [10, 1],
                "layers": [
                    {"type": "GRU", "units": 16, "return_sequences": True},
                    {"type": "Dense", "units": 1, "activation": "sigmoid"},
                ],
            },
            "compile": {"loss": "binary_crossentropy", "learning_rate": 0.01},
            "data": {"task": "running_parity", "samples": 1000},
            "fit": {"epochs": 8, "validation_split": 0.2},
        },
        0.006881318520754576,
    ),
    "tokens": (
        {
            "model": {
                "input_shape": [20],
                "layers": [
                    {"type": "Embedding", "input_dim": 20, "output_dim": 8},
                    {"type": "GlobalMaxPooling1D"},
                    {"type": "Dense", "units": 3, "activation": "softmax"},
                ],
            },
            "compile": {"loss": "sparse_categorical_crossentropy", "learning_rate": 0.01},
            "data": {"task": "tokens", "samples": 500},
            "fit": {"epochs": 5, "validation_split": 0.2},
        },
        0.02320057898759842,
    ),
    "random": (
        {
            "model": {"input_shape": [10, 20], **LSTM_DENSE},
            "compile": {"loss": "mse", "learning_rate": 0.01},
            "data": {"samples": 500},
            "fit": {"epochs": 4, "validation_split": 0.2},
        },
        0.2433490753173828,
    ),
}


def train(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/trainings?wait=120", json=body)
    assert r.status_code == 201, r.text
    run: dict[str, Any] = r.json()
    assert run["status"] == "succeeded", run["error"]
    return run


@pytest.mark.parametrize("task", list(RUNS))
def test_each_task_s_seeded_run_beats_its_baseline(client: TestClient, task: str) -> None:
    body, expected = RUNS[task]
    run = train(client, {**body, "seed": 0})
    final = run["history"]["val_loss"][-1]
    baseline = run["baseline"]["val_loss"]
    assert final == pytest.approx(expected, rel=1e-4)
    if task == "random":
        # Nothing to learn: about the constant's loss (a little under it on 100 samples, by chance), far from a third.
        assert final > 0.9 * baseline
    else:
        assert final < baseline / 3


def test_the_baseline_is_in_the_run_and_the_document(client: TestClient, seed: dict[str, Any]) -> None:
    run = train(client, {"model": seed["seed_example_1"], "fit": {"epochs": 1}})
    # mse of the best constant (the labels' mean) on the seed's 100 random labels at seed 0: 49 ones.
    assert run["baseline"] == {"loss": pytest.approx(0.49 * 0.51), "val_loss": None}
    assert client.get(f"/v1/trainings/{run['id']}").json()["baseline"] == run["baseline"]
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert "baseline" in schema["TrainingRun"]["properties"] and "Baseline" in schema


@pytest.mark.parametrize(
    "loss",
    [
        "mse",
        "mae",
        "mape",
        "msle",
        "huber",
        "log_cosh",
        "binary_crossentropy",
        "categorical_crossentropy",
        "sparse_categorical_crossentropy",
    ],
)
@pytest.mark.parametrize("units", [1, 3])
def test_every_loss_on_every_output_trains_or_is_a_422(client: TestClient, loss: Loss, units: int) -> None:
    activation = "sigmoid" if units == 1 else "softmax"
    body = {
        "model": {
            "input_shape": [4, 3],
            "layers": [{"type": "LSTM", "units": 4}, {"type": "Dense", "units": units, "activation": activation}],
        },
        "compile": {"loss": loss},
        "data": {"samples": 16},
    }
    r = client.post("/v1/trainings?wait=60", json=body)
    if units == 1 and loss.endswith("categorical_crossentropy"):
        assert r.status_code == 422, r.text
        (item,) = r.json()["detail"]
        assert item["loc"] == ["body", "compile", "loss"] and item["type"] == "loss_output"
        assert "binary_crossentropy" in item["msg"]
        return
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "succeeded" and run["baseline"]["loss"] is not None
    assert run["history"]["loss"][0] is not None


def test_a_model_that_does_not_fit_the_task_is_a_422_before_any_worker(client: TestClient) -> None:
    body = {"model": {"input_shape": [10, 20], **LSTM_DENSE}, "data": {"task": "adding"}}
    r = client.post("/v1/trainings", json=body)
    assert r.status_code == 422
    (item,) = r.json()["detail"]
    assert item["loc"] == ["body", "data", "task"] and item["type"] == "task_input_shape"
    assert "(T, 2)" in item["msg"] and "(10, 20)" in item["msg"]


def test_early_stopping_stops_the_run(client: TestClient) -> None:
    body, _ = RUNS["random"]
    run = train(
        client,
        {
            **body,
            "fit": {"epochs": 10, "validation_split": 0.2, "early_stopping": {"patience": 1, "min_delta": 0.5}},
        },
    )
    # Nothing improves by 0.5: the first epoch is the best, the second spends the patience.
    assert run["early_stopped"] == {"epoch": 2, "best_epoch": 1, "best": run["history"]["val_loss"][0]}
    assert run["epochs_completed"] == 2 and len(run["history"]["loss"]) == 2


def test_a_metric_that_cannot_score_sparse_labels_is_a_422_not_a_failed_run(client: TestClient) -> None:
    body, _ = RUNS["temporal_order"]
    r = client.post("/v1/trainings", json={**body, "compile": {**body["compile"], "metrics": ["accuracy", "mae"]}})
    assert r.status_code == 422, r.text
    (item,) = r.json()["detail"]
    assert item["loc"] == ["body", "compile", "metrics", 1] and item["type"] == "metric_labels"


def test_the_random_task_is_the_seed_s_run_to_the_last_bit(client: TestClient) -> None:
    # The README's first training, with data.task left out and given: the seed notebook's data, unchanged.
    model = {
        "input_shape": [10, 20],
        "layers": [
            {"type": "LSTM", "units": 30, "name": "lstm_layer"},
            {"type": "Dense", "units": 1, "name": "dense_layer"},
        ],
    }
    body = {"model": model, "compile": {"loss": "mse"}, "data": {"samples": 100}, "fit": {"epochs": 3}, "seed": 0}
    expected = [0.5818935632705688, 0.2962857186794281, 0.2619799077510834]
    assert train(client, body)["history"]["loss"] == expected
    run = train(client, {**body, "data": {"samples": 100, "task": "random"}})
    assert run["history"]["loss"] == expected
    assert run["baseline"] == {"loss": pytest.approx(0.2499), "val_loss": None}  # 49 ones of 100: 0.49 * 0.51


# A functional model of one input and one output learns a task as a Sequential does: keras-io's style of
# a residual block (the input projected, an LSTM over it, the two added) on the adding problem, and token ids
# into an Embedding the input feeds (its input_dim bounds the ids).
RESIDUAL_ADDER: dict[str, Any] = {
    "name": "residual_adder",
    "inputs": [{"name": "series", "shape": [20, 2]}],
    "layers": [
        {"type": "Dense", "name": "project", "units": 16},
        {"type": "LSTM", "name": "lstm", "units": 16, "return_sequences": True, "inputs": ["project"]},
        {"type": "Add", "name": "residual", "inputs": ["project", "lstm"]},
        {"type": "LSTM", "name": "summary", "units": 16},
        {"type": "Dense", "name": "sum", "units": 1},
    ],
    "outputs": ["sum"],
}
TOKEN_GRAPH: dict[str, Any] = {
    "inputs": [{"name": "ids", "shape": [20], "dtype": "int32"}],
    "layers": [
        {"type": "Embedding", "name": "embed", "input_dim": 20, "output_dim": 8},
        {"type": "GlobalMaxPooling1D", "name": "pool"},
        {"type": "Dense", "name": "marker", "units": 3, "activation": "softmax"},
    ],
    "outputs": ["marker"],
}


def test_a_graph_model_of_one_input_and_one_output_learns_a_task(client: TestClient) -> None:
    run = train(
        client,
        {
            "model": RESIDUAL_ADDER,
            "compile": {"loss": "mse", "learning_rate": 0.01},
            "data": {"task": "adding", "samples": 1000},
            "fit": {"epochs": 6, "validation_split": 0.2},
        },
    )
    # The task's own data: a Sequential of the same input shape gets the same arrays, so the same baseline.
    sequential = train(
        client,
        {
            "model": {"input_shape": [20, 2], **LSTM_DENSE},
            "data": {"task": "adding", "samples": 1000},
            "fit": {"epochs": 1, "validation_split": 0.2},
        },
    )
    assert run["baseline"] == sequential["baseline"]
    assert run["baseline"]["val_loss"] == pytest.approx(0.1966, abs=1e-4)  # the variance of the sums (about 1/6)
    assert run["history"]["val_loss"][-1] < run["baseline"]["val_loss"] / 3

    tokens = train(
        client,
        {
            "model": TOKEN_GRAPH,
            "compile": {"loss": "sparse_categorical_crossentropy", "learning_rate": 0.01},
            "data": {"task": "tokens", "samples": 500},
            "fit": {"epochs": 5, "validation_split": 0.2},
        },
    )
    # The same model and data as the tokens row of RUNS, written as a graph: the same run, to the last bit.
    assert tokens["history"]["val_loss"][-1] == pytest.approx(RUNS["tokens"][1], rel=1e-6)


def test_a_task_needs_one_input_and_one_output(client: TestClient) -> None:
    two = {
        "inputs": [{"name": "a", "shape": [20, 2]}, {"name": "b", "shape": [20, 2]}],
        "layers": [
            {"type": "Add", "inputs": ["a", "b"]},
            {"type": "LSTM", "units": 4},
            {"type": "Dense", "units": 1},
        ],
        "outputs": ["dense"],
    }
    r = client.post("/v1/trainings", json={"model": two, "data": {"task": "adding"}})
    assert r.status_code == 422
    (item,) = r.json()["detail"]
    assert item["loc"] == ["body", "data", "task"] and item["type"] == "task_input_shape"
    assert "this graph has 2 inputs and 1 output" in item["msg"] and "leave data.task out" in item["msg"]
    # A graph that does not fit the task is named at its output layer, as a Sequential at its last.
    wrong = {**RESIDUAL_ADDER, "layers": [*RESIDUAL_ADDER["layers"][:-1], {"type": "Dense", "name": "sum", "units": 3}]}
    r = client.post("/v1/trainings", json={"model": wrong, "data": {"task": "adding"}})
    assert r.status_code == 422, r.text
    (item,) = r.json()["detail"]
    assert item["loc"][:4] == ["body", "model", "layers", 4] and item["type"] == "task_output_shape", item
