"""The Celery mode beyond what tests/runs/test_runs.py checks on both executors: any replica answers for any run,
a worker child killed mid-run leaves the run failed with its cause, metrics from the shared store, the
request id in the worker's log lines, and the worker's own entry point."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import (
    CeleryWorker,
    celery_settings,
    sse_events,
    start_celery_worker,
    stop_celery_worker,
    wait_ready,
)
from tests.runs.test_runs import LONG, start, until_status


@pytest.fixture(scope="module")
def replica(celery_worker: CeleryWorker, celery_client: TestClient) -> Iterator[TestClient]:
    """A second API replica over the same Redis and workers as ``celery_client``."""
    with TestClient(create_app(celery_worker.settings.model_copy())) as other:
        wait_ready(other)
        yield other


def test_any_replica_answers_follows_and_cancels_any_run(
    celery_client: TestClient, replica: TestClient, seed: dict[str, Any]
) -> None:
    done = celery_client.post("/v1/trainings?wait=60", json={"model": seed["seed_example_1"], "fit": {"epochs": 2}})
    assert done.status_code == 201
    assert replica.get(f"/v1/trainings/{done.json()['id']}").json() == done.json()
    with replica.stream("GET", f"/v1/trainings/{done.json()['id']}/events") as r:
        assert [e["event"] for e in sse_events(r.iter_lines())] == ["status", "status", "epoch", "epoch", "end"]

    run = start(celery_client, seed["seed_example_1"], **LONG)
    until_status(replica, run["id"], {"running"})
    # A replica starting up leaves the others' runs alone (no "interrupted" recovery in this mode).
    with TestClient(create_app(replica.app.state.settings.model_copy())) as third:  # type: ignore[attr-defined]
        assert third.get(f"/v1/trainings/{run['id']}").json()["status"] == "running"
    cancelled = replica.delete(f"/v1/trainings/{run['id']}").json()
    assert cancelled["status"] == "cancelled" and cancelled["epochs_completed"] < 200
    assert celery_client.get(f"/v1/trainings/{run['id']}").json()["status"] == "cancelled"
    listed = [r["id"] for r in replica.get("/v1/trainings", params={"limit": 3}).json()["items"]]
    assert listed[0] == run["id"] and done.json()["id"] in listed


def test_queue_bound_holds_across_replicas(
    celery_client: TestClient, replica: TestClient, seed: dict[str, Any], celery_worker: CeleryWorker
) -> None:
    for app in (celery_client, replica):
        app.app.state.settings.max_queued_runs = 1  # type: ignore[attr-defined]
    try:
        running = start(celery_client, seed["seed_example_1"], **LONG)
        until_status(celery_client, running["id"], {"running"})
        queued = start(celery_client, seed["seed_example_1"])
        r = replica.post("/v1/trainings", json={"model": seed["seed_example_1"]})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        for run in (queued, running):
            assert replica.delete(f"/v1/trainings/{run['id']}").json()["status"] == "cancelled"
    finally:
        for app in (celery_client, replica):
            app.app.state.settings.max_queued_runs = celery_worker.settings.max_queued_runs  # type: ignore[attr-defined]


def test_a_worker_child_killed_mid_run_leaves_the_run_failed(
    celery_client: TestClient, celery_worker: CeleryWorker, seed: dict[str, Any]
) -> None:
    run = start(celery_client, seed["seed_example_1"], **LONG)
    until_status(celery_client, run["id"], {"running"})
    time.sleep(0.5)
    (child,) = celery_worker.children()
    os.kill(child, signal.SIGKILL)
    failed = until_status(celery_client, run["id"], {"failed", "succeeded", "cancelled"}, timeout_s=30)
    assert failed["status"] == "failed"
    assert failed["error"]["kind"] == "worker" and "died" in failed["error"]["msg"]
    with celery_client.stream("GET", f"/v1/trainings/{run['id']}/events") as r:
        events = list(sse_events(r.iter_lines()))
    assert events[-1]["event"] == "end" and events[-1]["data"]["run"]["status"] == "failed"
    # Celery started another child: the next training runs.
    again = celery_client.post("/v1/trainings?wait=120", json={"model": seed["seed_example_1"]})
    assert again.status_code == 201 and again.json()["status"] == "succeeded"


def test_a_worker_killed_whole_mid_run_leaves_the_run_failed(
    redis_url: str, tmp_path: Path, seed: dict[str, Any]
) -> None:
    # A worker of its own (it is killed), with a short lease; the API notices the lease has run out.
    settings = celery_settings(redis_url, run_lease_s=1.5)
    worker = start_celery_worker(settings, tmp_path / "worker.log")
    try:
        with TestClient(create_app(settings)) as client:
            wait_ready(client)
            run = start(client, seed["seed_example_1"], **LONG)
            until_status(client, run["id"], {"running"}, timeout_s=120)
            children = worker.children()
            worker.proc.kill()  # SIGKILL: no warm shutdown, no signal handler, nothing recorded by the worker
            for child in children:
                os.kill(child, signal.SIGKILL)
            began = time.monotonic()
            failed = until_status(client, run["id"], {"failed", "succeeded"}, timeout_s=30)
            assert failed["status"] == "failed" and "stopped answering" in failed["error"]["msg"]
            assert time.monotonic() - began < 3 * settings.run_lease_s
    finally:
        stop_celery_worker(worker)


def test_metrics_count_the_shared_runs_and_the_workers(
    celery_client: TestClient, replica: TestClient, seed: dict[str, Any]
) -> None:
    celery_client.post("/v1/trainings?wait=60", json={"model": seed["seed_example_1"]})
    texts = [app.get("/metrics").text for app in (celery_client, replica)]
    for text in texts:
        assert 'layerwise_workers{pool="training"} 1.0' in text
        assert 'layerwise_workers{pool="summary"} 1.0' in text
        assert "layerwise_trainings_queued 0.0" in text
    ended = [_sample(text, 'layerwise_trainings_ended_total{status="succeeded"}') for text in texts]
    assert ended[0] == ended[1] >= 1


def _sample(text: str, name: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[-1])


def test_the_request_id_reaches_the_worker_log_lines(
    celery_client: TestClient, celery_worker: CeleryWorker, seed: dict[str, Any]
) -> None:
    r = celery_client.post(
        "/v1/trainings?wait=60", json={"model": seed["seed_example_1"]}, headers={"X-Request-ID": "celery-req-42"}
    )
    assert r.status_code == 201 and r.headers["x-request-id"] == "celery-req-42"
    run_id = r.json()["id"]
    lines = [json.loads(line) for line in celery_worker.log.read_text().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == "celery-req-42"]
    assert any(run_id in line["message"] and "started" in line["message"] for line in mine), lines[-5:]
    assert any(run_id in line["message"] and "ended" in line["message"] for line in mine)


def test_the_worker_refuses_to_start_without_a_broker() -> None:
    env = {k: v for k, v in os.environ.items() if k != "LAYERWISE_BROKER_URL"}
    proc = subprocess.run(
        [sys.executable, "-c", "from app.scaleout.worker import main; main()"], env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0 and "LAYERWISE_BROKER_URL" in proc.stderr


def test_the_api_process_imports_neither_keras_nor_tensorflow() -> None:
    # Keras lives in worker processes only (TensorFlow is not fork-safe and costs the API ~0.5 GB). The test
    # process itself has imported Keras for other tests, so look at the API's modules in a fresh interpreter.
    code = (
        "import sys; from app.config import Settings; from app.main import create_app; "
        "import app.runs.executors.celery, app.runs.store.redis, app.api.trainings, app.api.models; "
        "create_app(Settings(broker_url='redis://127.0.0.1:1/0')); "
        "sys.exit(sorted({'keras', 'tensorflow', 'app.scaleout.worker'} & set(sys.modules)) or 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_a_run_s_trained_model_is_shared_by_every_replica(
    celery_client: TestClient, replica: TestClient, seed: dict[str, Any]
) -> None:
    # Trained on a Celery worker, kept in Redis: the other replica answers the file and predicts with it.
    done = celery_client.post("/v1/trainings?wait=60", json={"model": seed["seed_example_1"]}).json()
    assert done["status"] == "succeeded" and done["model_bytes"] > 0
    r = replica.get(f"/v1/trainings/{done['id']}/model")
    assert r.status_code == 200 and len(r.content) == done["model_bytes"] and r.content[:2] == b"PK"  # a zip
    answer = replica.post(f"/v1/trainings/{done['id']}/predict", json={"inputs": [[[0.5] * 20] * 10] * 2})
    assert answer.status_code == 200, answer.text
    outputs = answer.json()["outputs"]
    assert len(outputs) == 2 and len(outputs[0]) == 1 and outputs[0] == outputs[1]


def run_pid(worker: CeleryWorker, run_id: str) -> int:
    """The pid of the child that trained ``run_id``, from its log line "training run <id> started in worker <pid>"."""
    for line in worker.log.read_text().splitlines():
        if (
            line.startswith("{")
            and f"training run {run_id} started in worker" in (entry := json.loads(line))["message"]
        ):
            return int(entry["message"].rsplit(" ", 1)[1])
    raise AssertionError(f"no start of run {run_id} in the worker's log")


def test_a_worker_child_is_recycled_after_its_trainings(redis_url: str, seed: dict[str, Any], tmp_path: Path) -> None:
    """LAYERWISE_TRAINING_WORKER_MAX_TASKS holds for Celery's children as for the embedded pool (Celery's own
    max-tasks-per-child): each training leaves traced graphs behind, so a child is replaced after its share."""
    settings = celery_settings(redis_url, training_worker_max_tasks=1)
    worker = start_celery_worker(settings, tmp_path / "worker.log")
    try:
        with TestClient(create_app(settings.model_copy())) as api:
            wait_ready(api)
            pids = []
            for _ in range(2):
                run = api.post("/v1/trainings?wait=120", json={"model": seed["seed_example_1"]}).json()
                assert run["status"] == "succeeded", run
                pids.append(run_pid(worker, run["id"]))
            assert pids[0] != pids[1]  # one training each, as LAYERWISE_TRAINING_WORKER_MAX_TASKS=1 says
    finally:
        stop_celery_worker(worker)
