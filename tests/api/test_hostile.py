"""Hostile and malformed requests (tests/hostile_requests.py): each gets a 4xx whose error names the field,
no worker is asked anything, and the next valid request is answered as before."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.hostile_requests import CATALOGUE, OK_MODEL, Hostile


def test_the_catalogue_holds_at_least_thirty_cases() -> None:
    assert len(CATALOGUE) >= 30
    assert len({case.name for case in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.parametrize("case", CATALOGUE, ids=[case.name for case in CATALOGUE])
def test_hostile_request_is_refused_clearly_and_harmlessly(client: TestClient, case: Hostile) -> None:
    cache = client.app.state.summaries.cache  # type: ignore[attr-defined]
    lookups = (cache.hits, cache.misses)  # every model build for a summary or a training goes through the cache
    runs = client.get("/v1/trainings", params={"limit": 5}).json()["items"]
    r = client.request(case.method, case.path, **case.request_kwargs())

    assert r.status_code == case.status, r.text[:500]
    detail = r.json()["detail"]
    assert detail and all(set(item) == {"loc", "msg", "type"} for item in detail)
    assert any(tuple(item["loc"][: len(case.loc)]) == case.loc and case.needle in item["msg"] for item in detail), (
        detail
    )
    # Refused before any worker: no build asked for (not even one the cache would answer), no run recorded.
    assert (cache.hits, cache.misses) == lookups
    assert client.get("/v1/trainings", params={"limit": 5}).json()["items"] == runs
    # The service is fine: a valid request right after is answered as before.
    ok = client.post("/v1/models/summary", json=OK_MODEL)
    assert ok.status_code == 200 and ok.json()["total_params"] == 4 * 4 * (20 + 4 + 1) + 5
