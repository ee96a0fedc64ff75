"""The shared error answers, against the real app: 405s whose Allow lists what really works (HEAD on the health
probes)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
SUMMARY = "/v1/models/summary"


def only_item(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    (item,) = r.json()["detail"]
    assert set(item) == {"loc", "msg", "type"}
    out: dict[str, Any] = item
    return out


# -- HEAD and 405 ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_head_on_the_health_probes_answers_as_get(client: TestClient, path: str) -> None:
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.headers["content-type"] == get.headers["content-type"] == "application/json"
    assert head.headers["content-length"] == get.headers["content-length"]


def documented_paths(client: TestClient) -> dict[str, set[str]]:
    """Each documented path (parameters filled in) and the methods its operations use."""
    paths: dict[str, dict[str, Any]] = client.get("/openapi.json").json()["paths"]
    return {re.sub(r"\{[^}]+\}", "no-such-run", path): {m.upper() for m in item} for path, item in paths.items()}


def test_a_405_allows_exactly_the_methods_that_work(client: TestClient) -> None:
    paths = documented_paths(client)
    assert paths["/healthz"] == paths["/readyz"] == {"GET", "HEAD"}
    assert paths["/metrics"] == {"GET"} and paths["/v1/trainings"] == {"GET", "POST"}
    assert paths["/v1/trainings/no-such-run"] == {"GET", "DELETE"}
    for path, documented in paths.items():
        allowed = ", ".join(sorted(documented))
        for method in METHODS:
            r = client.request(method, path, json={} if method in ("POST", "PUT", "PATCH") else None)
            if method in documented:
                assert r.status_code != 405, (method, path)
                continue
            assert r.status_code == 405, (method, path, r.status_code)
            assert r.headers["allow"] == allowed, (method, path)
            if method != "HEAD":
                item = only_item(r, 405)
                assert item == {
                    "loc": [],
                    "msg": f"{method} is not allowed here; this path answers {allowed}",
                    "type": "http_405",
                }


@pytest.mark.parametrize(
    ("path", "allowed"), [("/", "GET"), ("/openapi.json", "GET, HEAD"), ("/static/app.css", "GET, HEAD")]
)
def test_undocumented_paths_allow_what_their_route_answers(client: TestClient, path: str, allowed: str) -> None:
    r = client.post(path)
    assert only_item(r, 405)["msg"] == f"POST is not allowed here; this path answers {allowed}"
    assert r.headers["allow"] == allowed
    for method in allowed.split(", "):
        assert client.request(method, path).status_code == 200
