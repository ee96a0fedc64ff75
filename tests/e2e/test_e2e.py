"""End to end: the real server started as a user starts it (uvicorn in a subprocess), over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving import running_server


@pytest.fixture(scope="module")
def server_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the module's server writes its log (JSON lines)."""
    return tmp_path_factory.mktemp("e2e") / "server.log"


@pytest.fixture(scope="module")
def server(server_log: Path) -> Iterator[str]:
    env = {"LAYERWISE_LOG_LEVEL": "info", "LAYERWISE_LOG_JSON": "true"}
    with open(server_log, "wb") as log, running_server(env, stderr=log) as base:
        yield base


def test_health_summary_and_training_over_http(server: str, seed: dict[str, Any]) -> None:
    with httpx.Client(base_url=server, timeout=120) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        r = http.post("/v1/models/summary", json=seed["seed_example_2"])
        assert r.status_code == 200
        assert [x["params"] for x in r.json()["layers"]] == [6120, 0, 301]

        r = http.post("/v1/models/summary", json=seed["seed_example_1_batch"], headers={"Accept": "text/plain"})
        assert "(5, 30)" in r.text and "Total params: 6,151" in r.text

        r = http.post("/v1/trainings?wait=60", json={"model": seed["seed_example_1"], "fit": {"epochs": 2}})
        assert r.status_code == 201
        run = r.json()
        assert len(run["history"]["loss"]) == 2
        assert http.get(r.headers["location"]).json()["id"] == run["id"]

        r = http.post(
            "/v1/models/summary",
            json={"input_shape": [10, 20], "layers": [{"type": "Flatten"}, {"type": "LSTM", "units": 3}]},
        )
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "layers", 1]


def test_request_ids_in_headers_and_in_every_log_line_of_the_request(server: str, server_log: Path) -> None:
    with httpx.Client(base_url=server, timeout=120) as http:
        r = http.post(
            "/v1/trainings?wait=60",
            json={"model": {"input_shape": [4, 3], "layers": [{"type": "Dense", "units": 1}]}},
            headers={"X-Request-ID": "e2e-train-1"},
        )
        assert r.status_code == 201 and r.headers["x-request-id"] == "e2e-train-1"
        run_id = r.json()["id"]
        generated = http.get("/healthz").headers["x-request-id"]
        assert len(generated) == 32  # made up when the client sends none
        assert http.get("/healthz", headers={"X-Request-ID": "<script>"}).headers["x-request-id"] != "<script>"
    # Every line of ours is JSON; TensorFlow's C++ runtime writes a few plain start-up lines of its own.
    lines = [json.loads(line) for line in server_log.read_text().splitlines() if line.startswith("{")]
    assert {"time", "level", "logger", "pid", "request_id", "message"} <= set(lines[0])
    mine = [line for line in lines if line["request_id"] == "e2e-train-1"]
    server_pid = next(line["pid"] for line in lines if line["logger"] == "uvicorn.error")
    worker_lines = [line for line in mine if line["logger"] == "app.runtime.tasks" and line["pid"] != server_pid]
    assert any(run_id in line["message"] and "started" in line["message"] for line in worker_lines), mine
    assert any(line["logger"] == "uvicorn.access" and "/v1/trainings" in line["message"] for line in mine)


def _metric(text: str, name: str) -> float:
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")))


def test_metrics_in_prometheus_format(server: str) -> None:
    with httpx.Client(base_url=server, timeout=120) as http:
        before = http.get("/metrics").text
        for _ in range(2):  # a miss, then a hit
            http.post("/v1/models/summary", json={"input_shape": [4, 3], "layers": [{"type": "Dense", "units": 7}]})
        r = http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name in (
        'layerwise_http_requests_total{handler="/v1/models/summary",method="POST",status="200"}',
        'layerwise_http_request_duration_seconds_count{handler="/v1/models/summary",method="POST"}',
        'layerwise_workers{pool="summary"} 1.0',
        'layerwise_workers{pool="training"} 1.0',
        'layerwise_workers_ready{pool="training"} 1.0',
        'layerwise_workers_busy{pool="training"} 0.0',
        "layerwise_trainings_queued 0.0",
        "layerwise_trainings_running 0.0",
        'layerwise_trainings_ended_total{status="succeeded"}',
    ):
        assert name in text, name
    for name in ("layerwise_summary_cache_hits_total", "layerwise_summary_cache_misses_total"):
        assert _metric(text, name) == _metric(before, name) + 1, name
    assert _metric(text, "layerwise_summary_cache_entries") >= 1


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_head_on_the_probes_is_get_without_the_body(server: str, path: str) -> None:
    """As `curl -I` (and a load balancer's probe) sees it: GET's status and headers, no body."""
    with httpx.Client(base_url=server, timeout=60) as http:
        get, head = http.get(path), http.head(path)
    assert head.status_code == get.status_code == 200
    for header in ("content-type", "content-length"):
        assert head.headers[header] == get.headers[header], header
    assert int(get.headers["content-length"]) == len(get.content) > 0
    assert head.content == b""


def test_head_where_only_get_works_is_405_without_head_in_allow(server: str) -> None:
    with httpx.Client(base_url=server, timeout=60) as http:
        r = http.head("/metrics")
        assert r.status_code == 405 and r.headers["allow"] == "GET"
        r = http.request("PUT", "/v1/trainings/x")
        assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET"
        assert r.json()["detail"][0]["msg"] == "PUT is not allowed here; this path answers DELETE, GET"
