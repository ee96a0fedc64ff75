"""Training results against real worker processes (POST ?wait= answers with the finished run)."""

from __future__ import annotations

import math
import time
from typing import Any

import psutil
import pytest
from fastapi.testclient import TestClient

import app.summaries.service as summaries_service
from app.spec.model import ModelSpec
from tests.conftest import sse_events


def train(client: TestClient, model: dict[str, Any], **kw: Any) -> dict[str, Any]:
    r = client.post("/v1/trainings?wait=120", json={"model": model, **kw})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v1/trainings/{r.json()['id']}"
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.parametrize("example", ["seed_example_1", "seed_example_2"])
def test_three_epochs_are_finite_and_reproducible(client: TestClient, seed: dict[str, Any], example: str) -> None:
    first = train(client, seed[example], fit={"epochs": 3}, seed=0)
    assert first["status"] == "succeeded"
    assert first["epochs_completed"] == 3
    losses = first["history"]["loss"]
    assert len(losses) == 3 and all(isinstance(v, float) and math.isfinite(v) for v in losses)
    assert first["batch_size"] == 32 and first["samples"] == 100
    assert first["summary"]["total_params"] == {"seed_example_1": 6151, "seed_example_2": 6421}[example]

    again = train(client, seed[example], fit={"epochs": 3}, seed=0)
    assert again["id"] != first["id"]
    assert again["history"] == first["history"]

    other = train(client, seed[example], fit={"epochs": 3}, seed=1)
    assert other["history"]["loss"] != losses


def test_get_returns_the_same_run(client: TestClient, seed: dict[str, Any]) -> None:
    run = train(client, seed["seed_example_1"])
    r = client.get(f"/v1/trainings/{run['id']}")
    assert r.status_code == 200
    assert r.json() == run


def test_unknown_run_is_404(client: TestClient) -> None:
    r = client.get("/v1/trainings/does-not-exist")
    assert r.status_code == 404
    assert r.json()["detail"][0]["loc"] == ["path", "run_id"]


def test_fixed_batch_is_the_default_batch_size(client: TestClient, seed: dict[str, Any]) -> None:
    run = train(client, seed["seed_example_2_batch"], data={"samples": 50})
    assert run["batch_size"] == 5
    assert run["status"] == "succeeded"
    assert len(run["history"]["loss"]) == 1


def test_validation_and_metrics_reach_the_history(client: TestClient, seed: dict[str, Any]) -> None:
    run = train(
        client,
        seed["seed_example_1"],
        compile={
            "loss": "binary_crossentropy",
            "optimizer": "rmsprop",
            "learning_rate": 0.01,
            "metrics": ["mae"],
        },
        fit={"epochs": 2, "validation_split": 0.2},
    )
    assert set(run["history"]) == {"loss", "val_loss", "mae", "val_mae"}
    assert all(len(v) == 2 for v in run["history"].values())


def test_divergence_is_a_result_with_nulls(client: TestClient, seed: dict[str, Any]) -> None:
    run = train(
        client,
        seed["seed_example_1"],
        compile={"optimizer": "sgd", "learning_rate": 1e6},
        fit={"epochs": 20},
    )
    assert run["status"] == "succeeded"
    assert run["diverged"] is not None and run["diverged"]["epoch"] >= 1
    assert run["epochs_completed"] < 20  # stopped early
    assert run["history"]["loss"][-1] is None


STATEFUL = {
    "batch_input_shape": [5, 10, 20],
    "layers": [{"type": "LSTM", "units": 30, "stateful": True}, {"type": "Dense", "units": 1}],
}


@pytest.mark.parametrize(
    ("kw", "loc"),
    [
        ({"data": {"samples": 53}}, ["body", "data", "samples"]),
        ({"data": {"samples": 50}, "fit": {"batch_size": 10}}, ["body", "fit", "batch_size"]),
    ],
)
def test_stateful_mismatch_is_422_before_running(client: TestClient, kw: dict[str, Any], loc: list[Any]) -> None:
    r = client.post("/v1/trainings", json={"model": STATEFUL, **kw})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc


def test_stateful_training_on_multiples_succeeds(client: TestClient) -> None:
    run = train(client, STATEFUL, data={"samples": 50}, fit={"epochs": 2})
    assert run["status"] == "succeeded" and len(run["history"]["loss"]) == 2


def test_model_keras_refuses_is_422_at_the_layer(client: TestClient) -> None:
    model = {"input_shape": [10, 20], "layers": [{"type": "Flatten"}, {"type": "LSTM", "units": 3}]}
    r = client.post("/v1/trainings", json={"model": model})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "model", "layers", 1]


@pytest.mark.parametrize(
    "body",
    [
        {"model": {"input_shape": [3], "layers": [{"type": "Dense", "units": 1}]}, "fit": {"epochs": 0}},
        {
            "model": {"input_shape": [3], "layers": [{"type": "Dense", "units": 1}]},
            "fit": {"validation_split": 1.0},
        },
        {
            "model": {"input_shape": [3], "layers": [{"type": "Dense", "units": 1}]},
            "compile": {"loss": "nope"},
        },
        {
            "model": {"input_shape": [3], "layers": [{"type": "Dense", "units": 1}]},
            "data": {"samples": "many"},
        },
        {"model": {"input_shape": [3], "layers": [{"type": "Dense", "units": 1}]}, "seed": -1},
    ],
)
def test_invalid_training_fields_are_422(client: TestClient, body: dict[str, Any]) -> None:
    r = client.post("/v1/trainings", json=body)
    assert r.status_code == 422, r.text


def test_small_runs_go_eager_with_the_same_history_as_graph(
    client: TestClient, seed: dict[str, Any], settings: Any
) -> None:
    body = {"model": seed["seed_example_2"], "fit": {"epochs": 2}, "seed": 3}
    eager = client.post("/v1/trainings?wait=60", json=body).json()
    assert eager["execution"] == "eager"  # 4 batches x 2 epochs
    settings.eager_max_steps = 0
    graph = client.post("/v1/trainings?wait=60", json=body).json()
    assert graph["execution"] == "graph"
    assert eager["history"] == graph["history"]


def test_runs_that_validate_stay_in_graph_mode(client: TestClient, seed: dict[str, Any]) -> None:
    body = {"model": seed["seed_example_1"], "fit": {"epochs": 1, "validation_split": 0.2}}
    assert client.post("/v1/trainings?wait=60", json=body).json()["execution"] == "graph"


def test_runs_with_dropout_stay_in_graph_mode(client: TestClient) -> None:
    # Dropout draws its masks from another random stream in eager mode: the losses would not be Keras's default's.
    first = {"type": "LSTM", "units": 4, "return_sequences": True}
    for rest in (
        [{"type": "Dropout", "rate": 0.5}, {"type": "Flatten"}],
        [{"type": "LSTM", "units": 4, "recurrent_dropout": 0.2}, {"type": "Dense", "units": 1}],
    ):
        model = {"input_shape": [10, 20], "layers": [first, *rest]}
        run = client.post("/v1/trainings?wait=60", json={"model": model}).json()
        assert run["status"] == "succeeded" and run["execution"] == "graph", run


def test_compile_run_eagerly_chooses_the_mode(client: TestClient, seed: dict[str, Any]) -> None:
    small = {"model": seed["seed_example_1"], "data": {"samples": 32}}
    graph = client.post("/v1/trainings?wait=60", json={**small, "compile": {"run_eagerly": False}}).json()
    assert graph["execution"] == "graph" and graph["request"]["compile"]["run_eagerly"] is False
    large = {"model": seed["seed_example_1"], "data": {"samples": 1000}, "compile": {"run_eagerly": True}}
    assert client.post("/v1/trainings?wait=60", json=large).json()["execution"] == "eager"
    assert client.post("/v1/trainings?wait=60", json=small).json()["execution"] == "eager"  # chosen: 1 step


def test_the_run_summary_carries_training_warnings(client: TestClient, seed: dict[str, Any]) -> None:
    # A fixed batch of 5 trained with batch_size 32: Keras 3 accepts it, but the model's batch says otherwise.
    run = train(client, seed["seed_example_1_batch"], data={"samples": 64}, fit={"batch_size": 32})
    assert run["status"] == "succeeded"
    warning = next(w for w in run["summary"]["warnings"] if w["type"] == "fixed_batch_size")
    assert warning["loc"] == ["body", "fit", "batch_size"] and warning["layer"] is None
    assert "fixes the batch at 5, but the batch size is 32" in warning["msg"]
    assert run["summary"]["batch_size"] == 32


def test_a_training_over_the_limits_is_422_before_queueing(client: TestClient) -> None:
    model = {"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": 200000}]}
    r = client.post("/v1/trainings", json={"model": model})
    assert r.status_code == 422
    assert r.json()["detail"][0]["type"] == "limit_exceeded"
    assert (
        client.get("/v1/trainings", params={"limit": 1}).json()["items"][0]["request"]["model"]["layers"][0]["units"]
        != 200000
    )


@pytest.mark.parametrize(
    ("kw", "loc", "needle"),
    [
        ({"data": {"samples": 10**9}}, ["body", "data", "samples"], "LAYERWISE_MAX_SAMPLES"),
        ({"fit": {"epochs": 10**6}}, ["body", "fit", "epochs"], "LAYERWISE_MAX_EPOCHS"),
        ({"data": {"samples": 100_000}, "fit": {"epochs": 1000}}, ["body", "fit", "epochs"], "100,000 x 1,000"),
    ],
)
def test_absurd_trainings_are_refused_before_queueing(
    client: TestClient, seed: dict[str, Any], kw: dict[str, Any], loc: list[Any], needle: str
) -> None:
    runs = client.get("/v1/trainings", params={"limit": 5}).json()["items"]
    r = client.post("/v1/trainings", json={"model": seed["seed_example_1"], **kw})
    assert r.status_code == 422, r.text
    items = r.json()["detail"]
    assert any(item["loc"] == loc and needle in item["msg"] for item in items), items
    assert all(item["type"] == "limit_exceeded" for item in items)
    assert client.get("/v1/trainings", params={"limit": 5}).json()["items"] == runs  # nothing queued


def test_data_too_large_for_memory_is_refused(client: TestClient) -> None:
    # 500,000 samples of 4096 x 1 features: 8 GB of float32 features before any training.
    model = {"input_shape": [4096, 1], "layers": [{"type": "Flatten"}, {"type": "Dense", "units": 1}]}
    r = client.post("/v1/trainings", json={"model": model, "data": {"samples": 500_000}})
    assert r.status_code == 422
    (item,) = r.json()["detail"]
    assert item["loc"] == ["body", "data", "samples"] and "LAYERWISE_MAX_DATA_BYTES" in item["msg"]
    assert "4,097 float32 values" in item["msg"]


def test_location_keeps_the_root_path_of_a_proxied_deployment(client: TestClient, seed: dict[str, Any]) -> None:
    # The same running app seen through a proxy's prefix (no `with`: its lifespan already runs). It
    # shares the session client's event loop: the store's asyncio locks belong to that loop, and a
    # request on a loop of its own raced the store's other writers.
    proxied = TestClient(client.app, root_path="/layerwise")
    proxied.portal = client.portal
    r = proxied.post("/v1/trainings?wait=60", json={"model": seed["seed_example_1"]})
    assert r.status_code == 201
    assert r.headers["location"] == f"/layerwise/v1/trainings/{r.json()['id']}"


def test_a_run_store_that_stops_taking_writes_is_a_503_not_a_500(client: TestClient, seed: dict[str, Any]) -> None:
    store = client.app.state.store  # type: ignore[attr-defined]
    portal = client.portal
    assert portal is not None  # the session client runs its lifespan
    portal.call(store.db.execute, "PRAGMA query_only=ON")  # as a disk gone read-only would
    try:
        r = client.post("/v1/trainings", json={"model": seed["seed_example_1"]})
        assert r.status_code == 503
        (item,) = r.json()["detail"]
        assert item["type"] == "store_unavailable" and "readonly" in item["msg"]
        assert r.headers["retry-after"] == "5"
        assert client.get("/v1/trainings", params={"limit": 1}).status_code == 200  # reads still answer
    finally:
        portal.call(store.db.execute, "PRAGMA query_only=OFF")
    assert client.post("/v1/trainings?wait=60", json={"model": seed["seed_example_1"]}).status_code == 201


def test_the_running_event_gives_started_at_as_the_run_does(client: TestClient, seed: dict[str, Any]) -> None:
    run = train(client, seed["seed_example_1"])
    with client.stream("GET", f"/v1/trainings/{run['id']}/events") as r:
        events = list(sse_events(r.iter_lines()))
    (running,) = [e["data"] for e in events if e["event"] == "status" and e["data"]["status"] == "running"]
    assert run["started_at"].endswith("Z")
    assert running["started_at"] == run["started_at"]


def test_a_training_over_the_worker_memory_cap_fails_as_memory_and_says_what_to_shrink(client: TestClient) -> None:
    """An LSTM(1024) over 256 timesteps at batch 8 takes ~750 MB more than a warm worker (bench/training_memory.py);
    a cap 250 MB above the worker's size stops it."""
    pool = client.app.state.pools[1]  # type: ignore[attr-defined]
    (pid,) = pool.ready_pids
    saved = pool.max_rss_bytes
    pool.max_rss_bytes = psutil.Process(pid).memory_info().rss + 250 * 2**20
    try:
        model = {"input_shape": [256, 32], "layers": [{"type": "LSTM", "units": 1024}, {"type": "Dense", "units": 1}]}
        run = train(client, model, compile={"run_eagerly": False}, data={"samples": 64}, fit={"batch_size": 8})
    finally:
        pool.max_rss_bytes = saved
    assert run["status"] == "failed", run
    assert run["error"]["kind"] == "memory"
    msg = run["error"]["msg"]
    assert "over the cap of" in msg and "LAYERWISE_TRAINING_WORKER_MAX_RSS_BYTES" in msg
    assert all(word in msg for word in ("batch_size", "units", "timesteps")), msg
    deadline = time.monotonic() + 120
    while pool.ready_workers < pool.size:  # replaced, for the tests after this one
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_training_request_is_normalized_and_analysed_once(
    client: TestClient, seed: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its way in was three normalizations and three runs of the engine (issue 13); each is done once now."""
    calls = {"normalized": 0, "analyze": 0}
    normalize, analyze = ModelSpec.normalized, summaries_service.analyze  # type: ignore[attr-defined]

    def counted_normalize(self: ModelSpec, *args: Any, **kw: Any) -> ModelSpec:
        calls["normalized"] += 1
        return normalize(self, *args, **kw)

    def counted_analyze(*args: Any, **kw: Any) -> Any:
        calls["analyze"] += 1
        return analyze(*args, **kw)

    monkeypatch.setattr(ModelSpec, "normalized", counted_normalize)
    monkeypatch.setattr(summaries_service, "analyze", counted_analyze)
    r = client.post("/v1/trainings", json={"model": seed["seed_example_2"], "fit": {"epochs": 1}})
    assert r.status_code == 202, r.text
    assert calls == {"normalized": 1, "analyze": 1}


def test_a_tensor_tensorflow_cannot_allocate_fails_the_run_as_memory(client: TestClient) -> None:
    # An outer product by broadcasting: Multiply of (200,000, 1) and (1, 200,000) is 160 GB a sample, which no
    # estimate counts (Multiply has no weights to keep it for) and the allocator refuses at once.
    outer = {
        "inputs": [{"name": "a", "shape": [200_000, 1]}, {"name": "b", "shape": [1, 200_000]}],
        "layers": [
            {"type": "Multiply", "name": "outer", "inputs": ["a", "b"]},
            {"type": "GlobalAveragePooling1D", "name": "pool"},
            {"type": "Dense", "name": "out", "units": 1},
        ],
        "outputs": ["out"],
    }
    r = client.post("/v1/trainings?wait=120", json={"model": outer, "data": {"samples": 1}})
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "failed" and run["error"]["kind"] == "memory", run["error"]
    assert "OOM when allocating tensor with shape[1,200000,200000]" in run["error"]["msg"]
    assert "train with a smaller batch_size" in run["error"]["msg"]
