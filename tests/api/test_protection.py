"""The service's own protection, on an app with it all on: API key, body size, rate limits, active runs per
client. (The other test modules' apps turn the per-client limits off: the whole suite is one client.)"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from app.api.protection import RateLimiter, client_key
from app.config import Settings
from app.errors import RateLimitedError
from app.main import create_app
from tests.conftest import TEST_SETTINGS, wait_ready

KEY = "s3cret-key"
AUTH = {"X-API-Key": KEY}


@pytest.fixture(scope="module")
def guarded() -> Iterator[TestClient]:
    settings = Settings(
        **{
            **TEST_SETTINGS,
            "api_key": KEY,
            "rate_limit": "40/minute",
            "max_body_bytes": 64 * 1024,
            "max_active_runs_per_client": 1,
        }
    )
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        yield client


def detail(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    (item,) = r.json()["detail"]
    assert set(item) == {"loc", "msg", "type"}
    out: dict[str, Any] = item
    return out


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/models/summary"), ("POST", "/v1/trainings"), ("GET", "/v1/trainings"), ("GET", "/metrics")],
)
def test_without_the_key_is_401(guarded: TestClient, method: str, path: str) -> None:
    item = detail(guarded.request(method, path, json={}), 401)
    assert item["loc"] == ["header", "X-API-Key"] and "X-API-Key: <key>" in item["msg"]
    r = guarded.request(method, path, json={}, headers={"X-API-Key": "wrong"})
    assert detail(r, 401)["msg"] == "the API key sent is not this service's"
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_with_the_key_in_either_header_it_answers(guarded: TestClient, seed: dict[str, Any]) -> None:
    assert guarded.post("/v1/models/summary", json=seed["seed_example_1"], headers=AUTH).status_code == 200
    bearer = {"Authorization": f"Bearer {KEY}"}
    r = guarded.post("/v1/models/summary", json=seed["seed_example_2"], headers=bearer)
    assert r.json()["total_params"] == 6421


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/", "/openapi.json", "/docs"])
def test_health_the_page_and_the_schema_need_no_key(guarded: TestClient, path: str) -> None:
    assert guarded.get(path).status_code == 200


def test_the_schema_documents_both_ways_to_send_the_key(guarded: TestClient) -> None:
    schemes = guarded.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The service's API key.",
    }
    assert schemes["HTTPBearer"]["scheme"] == "bearer"


def test_a_body_over_the_limit_is_413_and_the_next_request_is_fine(guarded: TestClient, seed: dict[str, Any]) -> None:
    padding = "x" * (100 * 1024)
    r = guarded.post(
        "/v1/models/summary",
        content=b'{"name": "' + padding.encode() + b'"}',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    item = detail(r, 413)
    assert item["type"] == "body_too_large" and item["loc"] == ["body"] and "65,536 bytes" in item["msg"]
    assert r.headers["connection"] == "close"
    assert guarded.post("/v1/models/summary", json=seed["seed_example_1"], headers=AUTH).status_code == 200


def test_a_streamed_body_over_the_limit_is_413_too(guarded: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(20):
            yield b"x" * 8192
        yield b'"}'

    r = guarded.post("/v1/models/summary", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert "content-length" not in r.request.headers  # chunked: the limit is found while reading
    item = detail(r, 413)
    # The same error as for a declared length: only the size differs.
    assert item["type"] == "body_too_large" and item["loc"] == ["body"]
    assert re.fullmatch(
        r"the request body is over [\d,]+ bytes and counting, over the limit of 65,536 bytes "
        r"\(LAYERWISE_MAX_BODY_BYTES\); send a smaller one",
        item["msg"],
    ), item["msg"]
    assert r.headers["connection"] == "close"


def test_a_client_over_its_rate_limit_gets_429_with_retry_after(guarded: TestClient) -> None:
    answers = [guarded.get("/v1/trainings", params={"limit": 1}, headers=AUTH) for _ in range(41)]
    assert [r.status_code for r in answers[:40]] == [200] * 40
    last = answers[40]
    item = detail(last, 429)
    assert item["type"] == "rate_limited" and "LAYERWISE_RATE_LIMIT" in item["msg"]
    assert 1 <= int(last.headers["retry-after"]) <= 60
    # The limit is per endpoint: another route of the same client still answers; health is exempt.
    assert guarded.get("/v1/trainings/nope", headers=AUTH).status_code == 404
    assert all(guarded.get("/healthz").status_code == 200 for _ in range(50))


def test_a_client_with_as_many_runs_as_allowed_gets_429(guarded: TestClient, seed: dict[str, Any]) -> None:
    long = {"model": seed["seed_example_1"], "data": {"samples": 10000}, "fit": {"epochs": 200}}
    first = guarded.post("/v1/trainings", json=long, headers=AUTH)
    assert first.status_code == 202
    second = guarded.post("/v1/trainings", json=long, headers=AUTH)
    item = detail(second, 429)
    assert "LAYERWISE_MAX_ACTIVE_RUNS_PER_CLIENT, is 1" in item["msg"]
    assert int(second.headers["retry-after"]) >= 1
    # Once the client's run has ended, it may start another.
    assert guarded.delete(f"/v1/trainings/{first.json()['id']}", headers=AUTH).json()["status"] == "cancelled"
    for _ in range(2):  # each ends before the next: one active run at a time
        r = guarded.post("/v1/trainings?wait=60", json={"model": seed["seed_example_1"]}, headers=AUTH)
        assert r.status_code == 201, r.text


def test_rate_limits_in_redis_hold_across_replicas(redis_url: str) -> None:
    """Two API replicas (two limiters) over one Redis share each client's count."""

    async def scenario() -> None:
        replicas = [RateLimiter("3/minute", redis_url) for _ in range(2)]
        client = f"addr:test-{uuid.uuid4().hex}"
        for i in range(3):
            await replicas[i % 2].check(client, "GET /v1/trainings")
        with pytest.raises(RateLimitedError) as info:
            await replicas[1].check(client, "GET /v1/trainings")
        assert 1 <= int((info.value.headers or {})["Retry-After"]) <= 60
        await replicas[0].check(client, "POST /v1/trainings")  # another endpoint: its own count
        await replicas[0].check(f"addr:other-{uuid.uuid4().hex}", "GET /v1/trainings")  # another client

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def keyless() -> Iterator[TestClient]:
    """No API key configured (the default) and a low rate limit."""
    with TestClient(create_app(Settings(**{**TEST_SETTINGS, "rate_limit": "5/minute"}))) as client:
        wait_ready(client)
        yield client


def test_without_a_configured_key_a_made_up_one_names_no_client(keyless: TestClient) -> None:
    # Before: each made-up key was a client of its own, and 12 of 12 were answered under a 5-a-minute limit.
    made_up = [{"X-API-Key": f"k{i}"} for i in range(6)] + [{"Authorization": f"Bearer b{i}"} for i in range(6)]
    statuses = [keyless.get("/v1/trainings", params={"limit": 1}, headers=h).status_code for h in made_up]
    assert statuses == [200] * 5 + [429] * 7


def test_with_a_configured_key_a_wrong_one_names_no_client() -> None:
    settings = Settings(**{**TEST_SETTINGS, "api_key": KEY, "rate_limit": "5/minute"})
    app = create_app(settings)

    def request(headers: dict[str, str]) -> Request:
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        return Request({"type": "http", "app": app, "headers": raw, "client": ("10.0.0.7", 4321)})

    assert client_key(request({"X-API-Key": "wrong"})) == "addr:10.0.0.7"
    assert client_key(request({"Authorization": "Bearer wrong"})) == "addr:10.0.0.7"
    assert client_key(request({})) == "addr:10.0.0.7"
    assert client_key(request(AUTH)).startswith("key:")
    assert client_key(request({"Authorization": f"Bearer {KEY}"})) == client_key(request(AUTH))
