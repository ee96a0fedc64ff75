"""The trained model a run keeps: downloaded and loaded by plain Keras, it predicts what /predict answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from fastapi.testclient import TestClient

import app.runtime.keras  # noqa: F401  (chooses Keras's backend before keras is imported)

ADDING: dict[str, Any] = {
    "model": {
        "name": "adder",
        "input_shape": [6, 2],
        "layers": [{"type": "LSTM", "units": 8}, {"type": "Dense", "units": 1}],
    },
    "data": {"task": "adding", "samples": 64},
    "fit": {"epochs": 1},
}


@pytest.fixture(scope="module")
def run(client: TestClient) -> dict[str, Any]:
    r = client.post("/v1/trainings?wait=120", json=ADDING)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == "succeeded" and body["model_bytes"] > 0
    return body


def test_the_downloaded_model_predicts_what_predict_answers(
    client: TestClient, run: dict[str, Any], tmp_path: Path
) -> None:
    r = client.get(f"/v1/trainings/{run['id']}/model")
    assert r.status_code == 200
    assert r.headers["content-disposition"] == f'attachment; filename="adder-{run["id"]}.keras"'
    assert len(r.content) == run["model_bytes"]
    path = tmp_path / "model.keras"
    path.write_bytes(r.content)
    model = keras.saving.load_model(path)
    inputs = np.random.default_rng(1).random((3, 6, 2)).astype(np.float32)
    expected = model.predict(inputs, verbose=0)

    answer = client.post(f"/v1/trainings/{run['id']}/predict", json={"inputs": inputs.tolist()})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["input_shape"] == [3, 6, 2]
    np.testing.assert_allclose(np.array(body["outputs"], dtype=np.float32), expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    ("inputs", "says"),
    [
        ([[[0.0, 1.0]] * 5], "axis 1 has length 5"),
        ([[[0.0, 1.0, 2.0]] * 6], "axis 2 has length 3"),
        ([[[0.0, 1.0]] * 6, [[0.0, 1.0]] * 5], "ragged"),
        ([[["a", 1.0]] * 6], "must be numbers"),
        ([[[True, 1.0]] * 6], "must be numbers"),
        ([[0.0] * 6], "nested levels"),
        ([[[1e300, 1.0]] * 6], "float32"),
    ],
)
def test_inputs_that_do_not_fit_are_a_422_naming_them(
    client: TestClient, run: dict[str, Any], inputs: list[Any], says: str
) -> None:
    r = client.post(f"/v1/trainings/{run['id']}/predict", json={"inputs": inputs})
    assert r.status_code == 422, r.text
    (item,) = r.json()["detail"]
    assert item["loc"] == ["body", "inputs"] and item["type"] == "predict_inputs" and says in item["msg"], item


def test_too_many_values_are_a_422(client: TestClient, run: dict[str, Any], settings: Any) -> None:
    settings.max_predict_values = 20
    r = client.post(f"/v1/trainings/{run['id']}/predict", json={"inputs": [[[0.5, 1.0]] * 6] * 2})
    assert r.status_code == 422 and "LAYERWISE_MAX_PREDICT_VALUES" in r.json()["detail"][0]["msg"]


def test_a_run_without_a_model_is_a_409_and_an_unknown_one_a_404(client: TestClient) -> None:
    failed = client.post(
        "/v1/trainings?wait=60",
        json={**ADDING, "compile": {"optimizer": "sgd", "learning_rate": 1e6}, "data": {"task": "random"}},
    ).json()
    # A diverged run succeeds (its non-finite loss is the result) but keeps no model.
    assert failed["model_bytes"] is None
    r = client.get(f"/v1/trainings/{failed['id']}/model")
    assert r.status_code == 409, r.text
    assert r.json()["detail"][0]["loc"] == ["path", "run_id"] and "diverged" in r.json()["detail"][0]["msg"]
    assert client.get("/v1/trainings/nope/model").status_code == 404
    assert client.post("/v1/trainings/nope/predict", json={"inputs": [[[0.0, 0.0]] * 6]}).status_code == 404


@pytest.mark.parametrize(
    ("inputs", "outputs", "says"),
    [
        (["a", "b"], ["d"], "a graph of 2 input(s) (a, b) and 1 output(s) (d)"),
        (["a"], ["d", "e"], "a graph of 1 input(s) (a) and 2 output(s) (d, e)"),
    ],
)
def test_a_graph_of_several_inputs_or_outputs_is_a_422_not_a_500(
    client: TestClient, inputs: list[str], outputs: list[str], says: str
) -> None:
    # model.predict of such a graph takes a dict and answers a list: the worker once failed on it with a 500.
    graph = {
        "inputs": [{"name": name, "shape": [4]} for name in inputs],
        "layers": [
            {"type": "Concatenate", "name": "c", "inputs": inputs}
            if len(inputs) > 1
            else {"type": "Dense", "name": "c", "units": 4, "inputs": inputs},
            {"type": "Dense", "name": "d", "units": 2, "inputs": ["c"]},
            *([{"type": "Dense", "name": "e", "units": 3, "inputs": ["c"]}] if "e" in outputs else []),
        ],
        "outputs": outputs,
    }
    trained = client.post("/v1/trainings?wait=120", json={"model": graph, "data": {"samples": 8}, "fit": {"epochs": 1}})
    assert trained.status_code == 201 and trained.json()["status"] == "succeeded", trained.text
    r = client.post(f"/v1/trainings/{trained.json()['id']}/predict", json={"inputs": [[0.1, 0.2, 0.3, 0.4]]})
    assert r.status_code == 422, r.text
    (item,) = r.json()["detail"]
    assert item["loc"] == ["body", "inputs"] and item["type"] == "predict_inputs" and says in item["msg"], item
