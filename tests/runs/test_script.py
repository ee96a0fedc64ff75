"""A run's script (GET /v1/trainings/{id}/script), executed by plain Python in a fresh process, prints the run's
own history: the same data, weights, shuffling and kernels, to the last bit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.runtime.tasks import script_task
from app.spec.training import TrainingSpec

RUNS: dict[str, dict[str, Any]] = {
    # graph mode (it validates), a metric, a learning rate
    "adding": {
        "model": {
            "name": "adder",
            "input_shape": [12, 2],
            "layers": [{"type": "LSTM", "units": 8}, {"type": "Dense", "units": 1}],
        },
        "compile": {"loss": "mse", "learning_rate": 0.01, "metrics": ["mae"]},
        "data": {"task": "adding", "samples": 200},
        "fit": {"epochs": 3, "validation_split": 0.2},
    },
    # eager (a short run without validation), sparse labels, another optimizer
    "temporal_order": {
        "model": {
            "input_shape": [10, 8],
            "layers": [{"type": "GRU", "units": 8}, {"type": "Dense", "units": 4, "activation": "softmax"}],
        },
        "compile": {"loss": "sparse_categorical_crossentropy", "optimizer": "rmsprop", "metrics": ["accuracy"]},
        "data": {"task": "temporal_order", "samples": 64},
        "fit": {"epochs": 2, "batch_size": 16},
    },
    # token ids into an Embedding, one-hot labels
    "tokens": {
        "model": {
            "input_shape": [12],
            "layers": [
                {"type": "Embedding", "input_dim": 20, "output_dim": 4},
                {"type": "GlobalAveragePooling1D"},
                {"type": "Dense", "units": 3, "activation": "softmax"},
            ],
        },
        "compile": {"loss": "categorical_crossentropy"},
        "data": {"task": "tokens", "samples": 96},
        "fit": {"epochs": 2},
        "seed": 3,
    },
    # the seed's random data, dropout (graph mode), EarlyStopping, no shuffling
    "random": {
        "model": {
            "input_shape": [6, 3],
            "layers": [{"type": "LSTM", "units": 4, "dropout": 0.2}, {"type": "Dense", "units": 1}],
        },
        "data": {"samples": 80},
        "fit": {"epochs": 3, "shuffle": False, "early_stopping": {"monitor": "loss", "patience": 1}},
        "seed": 7,
    },
    # a graph model of one input and one output on a task, its labels one-hot
    "graph_task": {
        "model": {
            "inputs": [{"name": "bits", "shape": [8, 1]}],
            "layers": [
                {"type": "GRU", "name": "gru", "units": 4, "return_sequences": True},
                {"type": "Dense", "name": "parity", "units": 2, "activation": "softmax"},
            ],
            "outputs": ["parity"],
        },
        "compile": {"loss": "categorical_crossentropy"},
        "data": {"task": "running_parity", "samples": 64},
        "fit": {"epochs": 2},
    },
    # a graph model: two inputs, one array each
    "graph": {
        "model": {
            "inputs": [{"name": "a", "shape": [5, 3]}, {"name": "b", "shape": [5, 3]}],
            "layers": [
                {"type": "Concatenate", "inputs": ["a", "b"]},
                {"type": "LSTM", "units": 3},
                {"type": "Dense", "units": 1, "activation": "sigmoid"},
            ],
            "outputs": ["dense"],
        },
        "compile": {"loss": "binary_crossentropy"},
        "fit": {"epochs": 2, "validation_split": 0.25},
    },
    # two outputs: a loss and a weight for each by output name, a metric on both, stopping on one output's log
    "outputs": {
        "model": {
            "inputs": [{"name": "series", "shape": [6, 2]}],
            "layers": [
                {"type": "GRU", "name": "features", "units": 4},
                {"type": "Dense", "name": "flag", "units": 1, "activation": "sigmoid", "inputs": ["features"]},
                {"type": "Dense", "name": "level", "units": 2, "inputs": ["features"]},
            ],
            "outputs": ["flag", "level"],
        },
        "compile": {
            "loss": {"flag": "binary_crossentropy", "level": "mse"},
            "loss_weights": {"level": 0.5, "flag": 1.0},
            "metrics": ["mae"],
        },
        "data": {"samples": 64},
        "fit": {"epochs": 3, "validation_split": 0.25, "early_stopping": {"monitor": "val_level_mae", "patience": 2}},
    },
}


def run_script(source: str, folder: Path) -> dict[str, list[float]]:
    """Execute a script as a user would (``python train.py``) and read the history it prints last."""
    path = folder / "train.py"
    path.write_text(source)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-4000:]
    history: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return history


@pytest.mark.parametrize("case", list(RUNS))
def test_the_script_prints_the_run_s_history(client: TestClient, case: str, tmp_path: Path) -> None:
    r = client.post("/v1/trainings?wait=120", json=RUNS[case])
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "succeeded", run["error"]

    r = client.get(f"/v1/trainings/{run['id']}/script")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/x-python; charset=utf-8"
    assert r.headers["content-disposition"].endswith(f'-{run["id"]}.py"')
    assert f"run_eagerly={run['execution'] == 'eager'}" in r.text

    assert run_script(r.text, tmp_path) == run["history"]


def test_an_early_stopped_run_s_script_stops_where_it_did(client: TestClient, tmp_path: Path) -> None:
    body = {
        **RUNS["random"],
        # Nothing improves by 0.5: the first epoch is the best, the second spends the patience.
        "fit": {"epochs": 6, "early_stopping": {"monitor": "loss", "patience": 1, "min_delta": 0.5}},
    }
    run = client.post("/v1/trainings?wait=120", json=body).json()
    assert run["status"] == "succeeded" and run["early_stopped"] is not None, run
    script = client.get(f"/v1/trainings/{run['id']}/script").text
    history = run_script(script, tmp_path)
    assert len(history["loss"]) == run["epochs_completed"] == 2
    assert history == run["history"]


def test_a_run_not_started_gets_the_mode_it_will_run_in() -> None:
    """A queued run has no ``execution`` yet: the worker chooses it as the training will."""
    spec = TrainingSpec.model_validate(RUNS["temporal_order"]).normalized().model_dump()
    for eager_max_steps, written in ((1000, "run_eagerly=True"), (0, "run_eagerly=False")):  # 8 steps: eager; never
        reply = script_task(spec, None, eager_max_steps, "r")
        assert reply["ok"] is True and written in reply["script"], reply


def test_an_unknown_run_has_no_script(client: TestClient) -> None:
    r = client.get("/v1/trainings/0123456789abcdef0123456789abcdef/script")
    assert r.status_code == 404 and r.json()["detail"][0]["loc"] == ["path", "run_id"], r.text
