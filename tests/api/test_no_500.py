"""No request gets a bare 500: variable-length input shapes are answered as Keras's rules say, a summary or a
422 at the layer Keras refuses (through a real server on loopback, as a user meets them), and a bug anywhere is
the service's JSON error body with the request id, logged with its traceback and counted in /metrics."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.hostile_requests import OK_MODEL, Hostile, null_requests
from tests.serving import running_server

NULL_AXIS_CASES = null_requests()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """``python -m app`` on a free loopback port, runs in memory, no rate limit."""
    with running_server({"LAYERWISE_RUNS_DB": ":memory:", "LAYERWISE_RATE_LIMIT": ""}) as base:
        yield base


def test_every_place_a_shape_is_given_and_every_layer_type_is_covered() -> None:
    names = " / ".join(case.name for case in NULL_AXIS_CASES)
    for kind in ("LSTM", "GRU", "SimpleRNN", "Bidirectional", "TimeDistributed", "Dense", "Flatten", "Dropout"):
        assert f"before {kind}" in names and f"on {kind} itself" in names
    for where in ("export as keras_json", "export as python", "export as spec", "training", "Keras JSON"):
        assert where in names


@pytest.mark.parametrize("case", NULL_AXIS_CASES, ids=[case.name for case in NULL_AXIS_CASES])
def test_a_null_axis_after_the_batch_is_answered_as_keras_says_over_real_http(server: str, case: Hostile) -> None:
    r = httpx.request(case.method, server + case.path, timeout=60, **case.request_kwargs())

    assert r.status_code == case.status, r.text[:500]
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    if case.status == 200:
        if case.path.endswith("summary"):
            assert None in r.json()["layers"][0]["output_shape"][1:] or r.json()["layers"][0]["output_shape"]
        return
    assert r.headers["content-type"].startswith("application/json")
    (item,) = r.json()["detail"]
    assert tuple(item["loc"]) == case.loc and case.needle in item["msg"]


def test_a_bug_is_a_json_500_with_the_request_id_logged_and_counted(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def bug(*_: Any, **__: Any) -> None:
        raise RuntimeError("a bug in the summary path")

    def failures() -> float:
        text = client.get("/metrics").text
        pattern = r'http_requests_total\{handler="/v1/models/summary",method="POST",status="500"\} ([0-9.e+]+)'
        found = re.search(pattern, text)
        return float(found.group(1)) if found else 0.0

    before = failures()
    monkeypatch.setattr(client.app.state.summaries, "summarize", bug)  # type: ignore[attr-defined]
    with caplog.at_level(logging.ERROR, logger="app.api.error_handlers"):
        r = client.post("/v1/models/summary", json=OK_MODEL, headers={"X-Request-ID": "bug-hunt-1"})

    assert r.status_code == 500
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["x-request-id"] == "bug-hunt-1"
    (item,) = r.json()["detail"]
    assert item["type"] == "internal_error" and item["loc"] == []
    assert "RuntimeError" in item["msg"] and "bug-hunt-1" in item["msg"]
    assert "a bug in the summary path" not in item["msg"]  # what went wrong inside is for the log, not the client
    (record,) = [rec for rec in caplog.records if "bug-hunt-1" in rec.getMessage()]
    assert record.exc_info is not None and "a bug in the summary path" in str(record.exc_info[1])
    assert failures() == before + 1
