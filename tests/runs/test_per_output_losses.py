"""A loss and a weight per output (compile.loss and compile.loss_weights in Keras's list and dict forms), through
real workers: Keras's total is the weighted sum of the outputs' losses, each output's random labels follow its
loss, and the service's refusals name the entry.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

# keras-io's functional API guide's ticket classifier (guides/functional_api.py, "Models with multiple inputs and
# outputs"), smaller: a title and a body of word ids and 12 tags in, a priority (sigmoid) and one of 4
# departments (softmax) out, compiled there with a loss and a weight per output.
TICKETS: dict[str, Any] = {
    "name": "tickets",
    "inputs": [
        {"name": "title", "shape": [10], "dtype": "int32"},
        {"name": "body", "shape": [20], "dtype": "int32"},
        {"name": "tags", "shape": [12]},
    ],
    "layers": [
        {"type": "Embedding", "name": "title_embedding", "input_dim": 100, "output_dim": 8, "inputs": ["title"]},
        {"type": "Embedding", "name": "body_embedding", "input_dim": 100, "output_dim": 8, "inputs": ["body"]},
        {"type": "LSTM", "name": "title_features", "units": 8, "inputs": ["title_embedding"]},
        {"type": "LSTM", "name": "body_features", "units": 8, "inputs": ["body_embedding"]},
        {"type": "Concatenate", "name": "features", "inputs": ["title_features", "body_features", "tags"]},
        {"type": "Dense", "name": "priority", "units": 1, "activation": "sigmoid", "inputs": ["features"]},
        {"type": "Dense", "name": "department", "units": 4, "activation": "softmax", "inputs": ["features"]},
    ],
    "outputs": ["priority", "department"],
}
LOSSES = {"priority": "binary_crossentropy", "department": "categorical_crossentropy"}


def train(client: TestClient, compile_: dict[str, Any], model: dict[str, Any] = TICKETS, **fit: Any) -> dict[str, Any]:
    """A short seeded run of ``model`` on the random task (0/1 labels per output), finished: 48 samples to train
    on in 3 batches of 16 (Keras's epoch loss and its outputs' losses are means over batches weighted alike only
    when the batches are of one size), 16 to validate on."""
    body = {
        "model": model,
        "compile": compile_,
        "data": {"samples": 64},
        "fit": {"epochs": 2, "validation_split": 0.25, "batch_size": 16, **fit},
    }
    r = client.post("/v1/trainings?wait=120", json=body)
    assert r.status_code == 201, r.text
    run: dict[str, Any] = r.json()
    assert run["status"] == "succeeded", run["error"]
    return run


def refusal(client: TestClient, compile_: dict[str, Any], model: dict[str, Any] = TICKETS) -> dict[str, Any]:
    """The one error item of a training request the service refuses before queueing it."""
    r = client.post("/v1/trainings", json={"model": model, "compile": compile_})
    assert r.status_code == 422, r.text
    (item,) = r.json()["detail"]
    return dict(item)


def test_the_loss_is_the_weighted_sum_of_each_output_s_loss(client: TestClient) -> None:
    run = train(client, {"loss": LOSSES, "loss_weights": {"priority": 1.0, "department": 0.2}})
    history = run["history"]
    assert set(history) == {
        f"{part}{name}" for part in ("", "val_") for name in ("loss", "priority_loss", "department_loss")
    }
    for prefix in ("", "val_"):
        for epoch in range(2):
            total = history[f"{prefix}priority_loss"][epoch] + 0.2 * history[f"{prefix}department_loss"][epoch]
            assert history[f"{prefix}loss"][epoch] == pytest.approx(total, rel=1e-5)

    # Keras's list form, in the order of outputs, and the weights' keys in another order: the same compile.
    as_list = train(client, {"loss": list(LOSSES.values()), "loss_weights": [1.0, 0.2]})
    reordered = train(client, {"loss": LOSSES, "loss_weights": {"department": 0.2, "priority": 1.0}})
    assert as_list["history"] == history and reordered["history"] == history

    # The baseline weighs each output's best constant answer as the loss weighs the output.
    alone = [train(client, {"loss": LOSSES, "loss_weights": weights}, epochs=1) for weights in ([1, 0], [0, 1])]
    for key in ("loss", "val_loss"):
        priority, department = (one["baseline"][key] for one in alone)
        assert priority == pytest.approx(0.693, abs=0.05)  # 0/1 labels, about half of each: ln 2
        assert run["baseline"][key] == pytest.approx(priority + 0.2 * department, rel=1e-12)


def test_one_loss_with_weights_and_a_list_of_metrics_reach_every_output(client: TestClient) -> None:
    # Keras 3 refuses both (one loss for two weights; a flat list of metrics for two outputs); Keras 2 took them.
    run = train(
        client,
        {"loss": "mse", "loss_weights": [0.5, 2.0], "metrics": ["mae"]},
        early_stopping={"monitor": "val_department_mae", "patience": 5},
    )
    history = run["history"]
    assert {"priority_mae", "department_mae", "val_priority_mae", "val_department_mae"} <= set(history)
    for epoch in range(2):
        total = 0.5 * history["priority_loss"][epoch] + 2.0 * history["department_loss"][epoch]
        assert history["loss"][epoch] == pytest.approx(total, rel=1e-5)

    r = client.post(
        "/v1/trainings",
        json={
            "model": TICKETS,
            "compile": {"metrics": ["mae"]},
            "fit": {"validation_split": 0.25, "early_stopping": {"monitor": "val_dept_loss"}},
        },
    )
    assert r.status_code == 422, r.text
    (item,) = r.json()["detail"]
    assert item["loc"] == ["body", "fit", "early_stopping", "monitor"]
    assert "'val_department_loss'" in item["msg"] and "'val_priority_mae'" in item["msg"]
    assert "'val_mae'" not in item["msg"]  # Keras logs a metric per output only


def test_a_sequential_takes_its_one_loss_in_any_form(client: TestClient) -> None:
    seed = {"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": 4}, {"type": "Dense", "units": 1}]}
    plain = train(client, {"loss": "mse"}, model=seed)
    # Its output is its last layer's, named dense by Keras as by the service.
    assert train(client, {"loss": ["mse"]}, model=seed)["history"] == plain["history"]
    assert train(client, {"loss": {"dense": "mse"}}, model=seed)["history"] == plain["history"]
    # A weight scales its loss: the baseline exactly; the history as nearly as Adam's steps ignore the scale.
    half = train(client, {"loss": "mse", "loss_weights": [0.5]}, model=seed)
    assert half["baseline"]["loss"] == 0.5 * plain["baseline"]["loss"]
    assert half["history"]["loss"] == pytest.approx([0.5 * x for x in plain["history"]["loss"]], rel=1e-3)
    item = refusal(client, {"loss": {"lstm": "mse"}}, model=seed)
    assert item["loc"] == ["body", "compile", "loss", "lstm"] and "1 output (dense)" in item["msg"]


@pytest.mark.parametrize(
    ("compile_", "loc", "words"),
    [
        ({"loss": ["mse"]}, ["compile", "loss"], "has 1 entry, but the model has 2 outputs (priority, department)"),
        ({"loss": {"priority": "mse"}}, ["compile", "loss"], "no entry for output 'department'"),
        ({"loss": {**LOSSES, "urgency": "mse"}}, ["compile", "loss", "urgency"], "'urgency' is not an output"),
        ({"loss_weights": [1, 2, 3]}, ["compile", "loss_weights"], "has 3 entries, but the model has 2 outputs"),
        ({"loss_weights": [1, -1]}, ["compile", "loss_weights", 1], "greater than or equal to 0"),
        ({"loss_weights": {"priority": 1, "department": None}}, ["compile", "loss_weights", "department"], "number"),
        ({"loss": {"priority": "msee", "department": "mse"}}, ["compile", "loss", "priority"], "'mse', 'mae'"),
        ({"loss": ["mse", 3]}, ["compile", "loss", 1], "'mse', 'mae'"),
        ({"loss": True}, ["compile", "loss"], "a Keras loss name ('mse'), a list of one per output"),
        ({"loss_weights": 0.5}, ["compile", "loss_weights"], "a list of one number per output"),
        (
            {"loss": {"priority": "categorical_crossentropy", "department": "categorical_crossentropy"}},
            ["compile", "loss", "priority"],
            "output 0 (priority) is (1) a sample, 1 unit: over one unit the loss is always 0",
        ),
        (
            {"loss": ["binary_crossentropy", "sparse_categorical_crossentropy"], "metrics": ["mae"]},
            ["compile", "metrics", 0],
            "mae cannot score the class indices",
        ),
    ],
)
def test_a_per_output_argument_that_does_not_fit_the_outputs_is_a_422(
    client: TestClient, compile_: dict[str, Any], loc: list[str | int], words: str
) -> None:
    item = refusal(client, compile_)
    assert item["loc"] == ["body", *loc] and words in item["msg"], item


def test_outputs_of_one_layer_take_a_list_not_an_object(client: TestClient) -> None:
    # An LSTM's two states as the outputs: Keras names both after the layer, so only the list form tells them apart.
    states = {
        "inputs": [{"name": "series", "shape": [6, 2]}],
        "layers": [{"type": "LSTM", "name": "encoder", "units": 3, "return_state": True}],
        "outputs": ["encoder:1", "encoder:2"],
    }
    item = refusal(client, {"loss": {"encoder": "mse"}}, model=states)
    assert item["loc"] == ["body", "compile", "loss"] and "outputs 0 and 1 both come from 'encoder'" in item["msg"]
    # Each weight reaches its output in the list's order: the baseline is the state_h's mse, then the state_c's mae
    # (0/1 labels, about half of each: the best constant's mse is about 1/4, its mae about 1/2).
    first, second = (
        train(client, {"loss": ["mse", "mae"], "loss_weights": weights}, model=states)
        for weights in ([1.0, 0.0], [0.0, 1.0])
    )
    assert first["baseline"]["loss"] == pytest.approx(0.25, abs=0.03)
    assert second["baseline"]["loss"] == pytest.approx(0.5, abs=0.05)
    # Keras logs one encoder_loss for the two (its names are the layers'); the total is the service's to trust.
    assert set(first["history"]) == {"loss", "encoder_loss", "val_loss", "val_encoder_loss"}


def test_each_output_s_labels_follow_its_loss_as_a_sequential_s_do(client: TestClient) -> None:
    # One input, one output: the graph gets the Sequential's arrays, one-hot rows for categorical_crossentropy
    # (0/1 everywhere, as once, is no distribution: its loss stayed near 35 against a baseline of 7.5).
    layers = [
        {"type": "Embedding", "name": "embedding", "input_dim": 22, "output_dim": 8},
        {"type": "LSTM", "name": "lstm", "units": 8},
        {"type": "Dense", "name": "dense", "units": 22, "activation": "softmax"},
    ]
    sequential = {"input_shape": [12], "layers": layers}
    graph = {"inputs": [{"name": "ids", "shape": [12], "dtype": "int32"}], "layers": layers, "outputs": ["dense"]}
    for loss in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        as_graph, as_sequential = (train(client, {"loss": loss}, model=model) for model in (graph, sequential))
        assert as_graph["history"] == as_sequential["history"] and as_graph["baseline"] == as_sequential["baseline"]
        # 22 classes drawn uniformly: an untrained softmax's loss is about ln 22 = 3.09, and the best constant
        # answer's is the entropy of 48 samples' class frequencies, below it.
        assert as_graph["history"]["loss"][0] == pytest.approx(math.log(22), abs=0.1)
        assert 2.5 < as_graph["baseline"]["loss"] < math.log(22)

    # Two outputs: class indices for the sparse one, 0/1 for the other; the baseline is the sum of theirs.
    run = train(client, {"loss": {"priority": "binary_crossentropy", "department": "sparse_categorical_crossentropy"}})
    assert run["history"]["department_loss"][0] == pytest.approx(math.log(4), abs=0.15)
    assert 1.8 < run["baseline"]["loss"] < math.log(2) + math.log(4)
