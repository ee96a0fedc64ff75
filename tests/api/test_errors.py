"""The shared error answers, against the real app: 405s whose Allow lists what really works (HEAD on the health
probes), 415 for a body not sent as JSON, one loc form (no union tag), and messages that say how to fix."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.spec.layers import LAYER_TYPES
from app.spec.layers.simple import SIMPLE_LAYER_CLASSES
from tests.hostile_requests import OK_MODEL

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
SUMMARY = "/v1/models/summary"


def only_item(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    (item,) = r.json()["detail"]
    assert set(item) == {"loc", "msg", "type"}
    out: dict[str, Any] = item
    return out


def item_at(r: Any, loc: list[Any]) -> dict[str, Any]:
    """The error item at ``loc`` of a 422 (a model over a limit may be over others too)."""
    assert r.status_code == 422, r.text
    (item,) = [item for item in r.json()["detail"] if item["loc"] == loc]
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

JSON_BODY_OPERATIONS = [
    ("/v1/models/summary", "model"),
    ("/v1/models/summary/text", "model"),
    ("/v1/models/export", "model"),
    ("/v1/models/export/keras_json", "model"),
    ("/v1/models/export/python", "model"),
    ("/v1/models/export/spec", "model"),
    ("/v1/models/diagram", "model"),
    ("/v1/trainings", "training"),
]


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
        *(path for path, _ in JSON_BODY_OPERATIONS),
        "/v1/trainings/{run_id}/predict",  # a run's inputs (tests/runs/test_model_file.py sends them)
    }


# -- one loc form ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        (SUMMARY, {"input_shape": [10, 20], "layers": [{"type": "GRU", "units": 0}]}, ["body", "layers", 0, "units"]),
        (
            SUMMARY,
            {"input_shape": [10, 20], "layers": [{"type": "Bidirectional", "layer": {"type": "LSTM", "units": -1}}]},
            ["body", "layers", 0, "layer", "units"],
        ),
        (
            SUMMARY,
            {
                "input_shape": [10, 20],
                "layers": [{"type": "TimeDistributed", "layer": {"type": "Dense", "units": 1, "x": 1}}],
            },
            ["body", "layers", 0, "layer", "x"],
        ),
        (
            "/v1/trainings",
            {"model": {"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": 4, "dropout": 2}]}},
            ["body", "model", "layers", 0, "dropout"],
        ),
        (
            "/v1/trainings",
            {"model": {"input_shape": [10, 20], "layers": [{"type": "Bidirectional", "layer": {"type": "GRU"}}]}},
            ["body", "model", "layers", 0, "layer", "units"],
        ),
    ],
)
def test_locs_name_the_field_without_the_union_tag(
    client: TestClient, path: str, body: dict[str, Any], loc: list[Any]
) -> None:
    assert only_item(client.post(path, json=body), 422)["loc"] == loc


def test_pydantic_and_the_service_use_the_same_loc_for_a_field(client: TestClient) -> None:
    # units=0 is refused by pydantic, units=200,000 by the service's limit: the same field, the same loc.
    loc = ["body", "layers", 0, "layer", "units"]
    layers: list[dict[str, Any]] = [{"type": "Bidirectional", "layer": {"type": "LSTM", "units": 0}}]
    by_pydantic = only_item(client.post(SUMMARY, json={"input_shape": [10, 20], "layers": layers}), 422)
    layers[0]["layer"]["units"] = 200_000
    by_service = item_at(client.post(SUMMARY, json={"input_shape": [10, 20], "layers": layers}), loc)
    assert by_pydantic["loc"] == by_service["loc"] == loc
    assert by_service["type"] == "limit_exceeded"


# -- messages that say how to fix -----------------------------------------------------------------------------

ALL_TYPES = ", ".join(LAYER_TYPES)


@pytest.mark.parametrize(
    ("layers", "loc", "msg"),
    [
        (
            [{"units": 4}],
            ["body", "layers", 0],
            f'layer 0 has no "type": every layer needs "type", its Keras class name, one of {ALL_TYPES}',
        ),
        (
            [{"type": "Conv3D"}],
            ["body", "layers", 0],
            f'layer 0 has type "Conv3D", which is not supported here: "type" must be one of {ALL_TYPES}',
        ),
        (
            [{"type": "Bidirectional", "layer": {"units": 4}}],
            ["body", "layers", 0, "layer"],
            'the layer that layer 0 (Bidirectional) wraps has no "type": every layer needs "type", its Keras class '
            "name, one of LSTM, GRU, SimpleRNN",
        ),
        (
            [{"type": "TimeDistributed", "layer": {"type": "Bidirectional", "layer": {"type": "GRU", "units": 4}}}],
            ["body", "layers", 0, "layer"],
            'the layer that layer 0 (TimeDistributed) wraps has type "Bidirectional", which is not supported here: '
            f'"type" must be one of {", ".join(cls.__name__ for cls in SIMPLE_LAYER_CLASSES)}',
        ),
        (
            [{"type": "LSTM", "units": 4, "name": "my lstm"}],
            ["body", "layers", 0, "name"],
            'layer 0 (LSTM) has the name "my lstm", which is not valid: a name has 1 to 64 characters: ASCII '
            "letters, digits, '_', '.' and '-', starting with a letter or digit (no spaces or accents); rename it, "
            "or leave it out",
        ),
        (
            [{"type": "LSTM", "units": 2**31}],
            ["body", "layers", 0, "units"],
            "layer 0 (LSTM) has units=2,147,483,648, over the limit of 8,192 units per layer (LAYERWISE_MAX_UNITS); "
            "use fewer units",
        ),
        (
            [{"type": "Bidirectional", "layer": {"type": "GRU", "units": 10**12}}],
            ["body", "layers", 0, "layer", "units"],
            "the GRU that layer 0 (Bidirectional) wraps has units=1,000,000,000,000, over the limit of 8,192 units "
            "per layer (LAYERWISE_MAX_UNITS); use fewer units",
        ),
    ],
)
def test_pydantic_messages_say_how_to_fix(
    client: TestClient, layers: list[dict[str, Any]], loc: list[Any], msg: str
) -> None:
    item = only_item(client.post(SUMMARY, json={"input_shape": [10, 20], "layers": layers}), 422)
    assert (item["loc"], item["msg"]) == (loc, msg)


def test_units_over_the_schema_bound_is_a_limit_like_any_units_over_the_limit(client: TestClient) -> None:
    loc = ["body", "layers", 0, "units"]
    for units in (9000, 2**40):  # over the limit; over the schema's int32 bound too
        body = {"input_shape": [10, 20], "layers": [{"type": "GRU", "units": units}]}
        item = item_at(client.post(SUMMARY, json=body), loc)
        assert item["type"] == "limit_exceeded"
        assert (
            f"units={units:,}, over the limit of 8,192 units per layer (LAYERWISE_MAX_UNITS); use fewer units"
            in (item["msg"])
        )
    # The same in a training's model.
    model = {"input_shape": [3], "layers": [{"type": "Dense", "units": 2**31}]}
    item = only_item(client.post("/v1/trainings", json={"model": model}), 422)
    assert item["loc"] == ["body", "model", "layers", 0, "units"] and "LAYERWISE_MAX_UNITS" in item["msg"]


def test_a_json_syntax_error_gives_line_column_and_what_was_expected(client: TestClient) -> None:
    raw = b'{\n  "input_shape": [10, 20]\n  "layers": []\n}'
    r = client.post(SUMMARY, content=raw, headers={"Content-Type": "application/json"})
    item = only_item(r, 422)
    assert item == {
        "loc": ["body", 30],
        "msg": "the body is not valid JSON: Expecting ',' delimiter at line 3, column 3 (character 30); fix the "
        "JSON there",
        "type": "json_invalid",
    }


@pytest.mark.parametrize(
    ("path", "holds"),
    [
        (
            SUMMARY,
            "holding a model spec: a Sequential (input_shape and layers) or a graph model (Keras's functional Model: "
            "inputs, layers called on references, outputs); or Keras's own `model.to_json()` of either, of the "
            "supported layers; the keys of a ModelSpec: name, input_shape, batch_input_shape, layers (required)",
        ),
        (
            "/v1/trainings",
            "holding a training run: the model, how to compile and fit it, and the seed of data and weights; the "
            "keys of a TrainingSpec: model (required), compile, data, fit, seed",
        ),
    ],
)
@pytest.mark.parametrize("content_type", ["application/json", None])
def test_an_empty_body_says_a_json_body_is_required_and_what_it_holds(
    client: TestClient, path: str, holds: str, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    item = only_item(client.post(path, content=b"", headers=headers), 422)
    assert item == {
        "loc": ["body"],
        "msg": "the request has no body; send one as JSON with `Content-Type: application/json`, "
        f"{holds}; /docs has examples",
        "type": "missing",
    }


def test_stateful_with_an_open_batch_in_batch_input_shape_says_to_fix_the_batch(client: TestClient) -> None:
    layers = [{"type": "LSTM", "units": 4, "stateful": True}]
    given = only_item(client.post(SUMMARY, json={"batch_input_shape": [None, 10, 20], "layers": layers}), 422)
    assert given["msg"] == (
        "layer 0 (LSTM) is stateful, which needs a fixed batch size; batch_input_shape starts with null (an open "
        "batch): make its first number the batch size, e.g. [5, 10, 20]"
    )
    assert "instead of input_shape" not in given["msg"]
    # With input_shape, the advice is still to give batch_input_shape.
    other = only_item(client.post(SUMMARY, json={"input_shape": [10, 20], "layers": layers}), 422)
    assert other["msg"].endswith("give batch_input_shape (e.g. [5, 10, 20]) instead of input_shape")


def test_an_enormous_input_gives_sizes_in_scientific_notation(client: TestClient) -> None:
    body = {"input_shape": [2**31 - 1] * 8, "layers": [{"type": "Dense", "units": 1}]}
    r = client.post(SUMMARY, json=body)
    assert r.status_code == 422, r.text
    memory = next(item for item in r.json()["detail"] if item["loc"] == ["body"])
    assert memory["msg"].startswith(
        "training this model at a batch of 1 needs an estimated 1.81e+75 B (1.81e+75 bytes: "
    )
    assert " PB" not in memory["msg"] and not re.search(r"\d{19}", memory["msg"].replace(",", ""))


def test_a_trailing_slash_redirects_to_the_path_alone_whatever_the_host(client: TestClient) -> None:
    """Starlette's redirect took its Location from the client's Host header (issue 18); this one is a path."""
    r = client.get("/v1/trainings/?limit=2", headers={"Host": "evil.example"}, follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/v1/trainings?limit=2"
    assert r.json()["detail"][0]["type"] == "trailing_slash"
    followed = client.get("/v1/trainings/?limit=2")
    assert followed.status_code == 200 and "items" in followed.json()
    # Only a path the service has, for a method it answers there: anything else is the 404 it was.
    assert client.get("/v1/nothing/", follow_redirects=False).status_code == 404
    assert client.delete("/v1/models/summary/", follow_redirects=False).status_code == 404
