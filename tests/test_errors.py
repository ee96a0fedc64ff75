"""The shared error answers, against the real app: 405s whose Allow lists what really works (HEAD on the health
probes), 415 for a body not sent as JSON."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.hostile_requests import OK_MODEL

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


# -- 415 ------------------------------------------------------------------------------------------------------

JSON_BODY_OPERATIONS = [("/v1/models/summary", "model"), ("/v1/models/export", "model"), ("/v1/trainings", "training")]


def body_of(kind: str) -> dict[str, Any]:
    return OK_MODEL if kind == "model" else {"model": OK_MODEL}


@pytest.mark.parametrize(("path", "kind"), JSON_BODY_OPERATIONS)
@pytest.mark.parametrize(
    ("content_type", "said"),
    [
        ("application/x-www-form-urlencoded", "sent as 'application/x-www-form-urlencoded'"),
        ("text/plain; charset=utf-8", "sent as 'text/plain'"),
        (None, "sent without a Content-Type"),
    ],
)
def test_a_body_not_sent_as_json_is_415(
    client: TestClient, path: str, kind: str, content_type: str | None, said: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    runs = client.get("/v1/trainings", params={"limit": 5}).json()["items"]
    r = client.post(path, content=json.dumps(body_of(kind)).encode(), headers=headers)
    item = only_item(r, 415)
    assert item["loc"] == ["header", "content-type"] and item["type"] == "unsupported_media_type"
    assert said in item["msg"] and "send it as JSON with `Content-Type: application/json`" in item["msg"]
    assert client.get("/v1/trainings", params={"limit": 5}).json()["items"] == runs  # nothing was queued


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/spec+json"]
)
def test_json_media_types_with_parameters_or_a_suffix_are_accepted(client: TestClient, content_type: str) -> None:
    r = client.post(SUMMARY, content=json.dumps(OK_MODEL).encode(), headers={"Content-Type": content_type})
    assert r.status_code == 200, r.text
    assert r.json()["total_params"] == 4 * 4 * (20 + 4 + 1) + 5


def test_the_openapi_document_lists_the_415_where_a_body_is_taken(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert "ErrorBody" in document["components"]["schemas"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            has_415 = "415" in operation["responses"]
            assert has_415 == ("requestBody" in operation), (method, path)
            if has_415:
                schema = operation["responses"]["415"]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}
    assert {p for p, item in document["paths"].items() for op in item.values() if "415" in op["responses"]} == {
        path for path, _ in JSON_BODY_OPERATIONS
    }
