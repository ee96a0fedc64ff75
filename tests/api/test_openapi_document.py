"""The OpenAPI document says what the service does, precisely enough for generated clients (issue 19).

What the generated clients of tests/e2e/test_generated_clients.py would only meet on some path, checked on the whole
document: names, every status and header an operation answers with, one error type, one media type per
answer, output fields the service always sends marked required, closed vocabularies as enums. The document is
built in-process (no worker is needed to write it), with and without an API key and rate limits.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest

import app
from app.analysis.warnings import WarningType
from app.config import Settings
from app.main import create_app
from app.spec.types import Activation
from tests.serving import ROOT

OPERATION_IDS = {
    ("post", "/v1/models/summary"): "summarizeModel",
    ("post", "/v1/models/summary/text"): "summarizeModelText",
    ("post", "/v1/models/export"): "exportModel",
    ("post", "/v1/models/export/keras_json"): "exportKerasJson",
    ("post", "/v1/models/export/python"): "exportPython",
    ("post", "/v1/models/export/spec"): "exportSpec",
    ("post", "/v1/models/diagram"): "drawModel",
    ("post", "/v1/trainings"): "createTraining",
    ("get", "/v1/trainings"): "listTrainings",
    ("get", "/v1/trainings/{run_id}"): "getTraining",
    ("delete", "/v1/trainings/{run_id}"): "cancelTraining",
    ("get", "/v1/trainings/{run_id}/events"): "followTraining",
    ("get", "/v1/trainings/{run_id}/model"): "getTrainingModel",
    ("get", "/v1/trainings/{run_id}/script"): "getTrainingScript",
    ("post", "/v1/trainings/{run_id}/predict"): "predictTraining",
    ("get", "/healthz"): "getHealth",
    ("head", "/healthz"): "headHealth",
    ("get", "/readyz"): "getReadiness",
    ("head", "/readyz"): "headReadiness",
    ("get", "/metrics"): "getMetrics",
}
# Operations behind the rate limit and the API key: all but the health probes.
PROTECTED = {key for key in OPERATION_IDS if key[1] not in ("/healthz", "/readyz")}
ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}
# Response components and the fields of each the service may leave out (none: null is sent, not nothing).
OUTPUT_MODELS = [
    "ModelSummary",
    "LayerSummary",
    "TrainingMemory",
    "ModelWarning",
    "TrainingRun",
    "TrainingRunPage",
    "RunError",
    "Progress",
    "Divergence",
    "Baseline",
    "EarlyStopped",
    "PredictResponse",
    "ErrorBody",
    "ErrorItemModel",
    "Health",
    "Readiness",
    "TrainingStatusEvent",
    "TrainingBatchEvent",
    "TrainingEpochEvent",
    "TrainingEndEvent",
]


def document(**settings: Any) -> dict[str, Any]:
    """The OpenAPI document of an app with these settings (no lifespan: the document needs no worker)."""
    schema: dict[str, Any] = create_app(Settings(runs_db=":memory:", **settings)).openapi()
    return schema


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    """The document with the default settings: rate limits on, no API key."""
    return document()


def operations(doc: dict[str, Any]) -> Iterator[tuple[tuple[str, str], dict[str, Any]]]:
    """Every operation, keyed by (method, path)."""
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
                yield (method, path), operation


def walk(node: Any, where: str = "#") -> Iterator[tuple[str, Any]]:
    """Every sub-object of a JSON document, with its JSON pointer."""
    yield where, node
    if isinstance(node, dict):
        for key, child in node.items():
            yield from walk(child, f"{where}/{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            yield from walk(child, f"{where}/{i}")


def test_every_operation_is_named(doc: dict[str, Any]) -> None:
    assert {key: op.get("operationId") for key, op in operations(doc)} == OPERATION_IDS


def test_every_error_answer_is_an_error_body(doc: dict[str, Any]) -> None:
    wrong = {}
    for key, operation in operations(doc):
        for status, response in operation["responses"].items():
            # A probe's 503 is its readiness body; a HEAD answer has no body.
            if int(status) >= 400 and key[0] != "head" and key != ("get", "/readyz"):
                content = response.get("content", {})
                if content != {"application/json": {"schema": ERROR_BODY}}:
                    wrong[(*key, status)] = content
    assert wrong == {}
    assert "HTTPValidationError" not in doc["components"]["schemas"]


# The content-negotiated answers curl users know: JSON first (what a generated client reads), then what
# `Accept: text/plain` or `?format=python` answers; the operations of one media type each are for clients.
NEGOTIATED = {("post", "/v1/models/summary"), ("post", "/v1/models/export")}


def test_every_answer_has_one_media_type(doc: dict[str, Any]) -> None:
    """A generator reads an answer as its first media type: a second one is an answer it cannot read."""
    several = {
        (*key, status): list(response.get("content", {}))
        for key, operation in operations(doc)
        for status, response in operation["responses"].items()
        if len(response.get("content", {})) > 1
    }
    assert set(several) == {(*key, "200") for key in NEGOTIATED}
    assert all(media[0] == "application/json" for media in several.values()), several


def test_bodies_over_the_limit_and_unauthorized_requests_are_documented() -> None:
    doc = document(api_key="secret")
    missing = []
    for key, operation in operations(doc):
        statuses = set(operation["responses"])
        if "requestBody" in operation and not {"413", "415"} <= statuses:
            missing.append((*key, "413/415"))
        if key in PROTECTED and "401" not in statuses:
            missing.append((*key, "401"))
        if key not in PROTECTED and "401" in statuses:
            missing.append((*key, "401 on a probe"))
    assert missing == []


def test_without_a_key_no_operation_says_401(doc: dict[str, Any]) -> None:
    assert [key for key, op in operations(doc) if "401" in op["responses"]] == []


def test_rate_limited_operations_document_429_with_retry_after(doc: dict[str, Any]) -> None:
    missing = [key for key, op in operations(doc) if key in PROTECTED and "429" not in op["responses"]]
    assert missing == []
    unlimited = document(rate_limit="")
    # Without rate limits only the service's own bounds answer 429: the trainings' (queued runs, runs per client)
    # the model builds a client may have waiting, on every operation that builds a model in a worker, and the
    # open event streams.
    assert [key for key, op in operations(unlimited) if "429" in op["responses"]] == [
        ("post", "/v1/models/summary"),
        ("post", "/v1/models/summary/text"),
        ("post", "/v1/models/export"),
        ("post", "/v1/models/export/keras_json"),
        ("post", "/v1/models/diagram"),
        ("post", "/v1/trainings"),
        ("get", "/v1/trainings/{run_id}/events"),
    ]


def test_retry_after_on_every_429_and_503_and_location_on_201_202(doc: dict[str, Any]) -> None:
    missing = []
    for key, operation in operations(doc):
        for status, response in operation["responses"].items():
            header = {"429": "Retry-After", "503": "Retry-After", "201": "Location", "202": "Location"}.get(status)
            if header and not response.get("headers", {}).get(header, {}).get("required"):
                missing.append((*key, status, header))
    assert missing == []


def test_probes_say_what_they_answer(doc: dict[str, Any]) -> None:
    paths = doc["paths"]
    for path in ("/healthz", "/readyz"):
        assert all("content" not in response for response in paths[path]["head"]["responses"].values()), path
    assert paths["/healthz"]["get"]["responses"]["200"]["content"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/Health"}}
    }
    readiness = {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}}
    assert paths["/readyz"]["get"]["responses"]["200"]["content"] == readiness
    assert paths["/readyz"]["get"]["responses"]["503"]["content"] == readiness
    assert list(paths["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]


def test_text_and_export_answers_are_typed(doc: dict[str, Any]) -> None:
    def content(path: str) -> dict[str, Any]:
        response: dict[str, Any] = doc["paths"][path]["post"]["responses"]["200"]["content"]
        return response

    assert content("/v1/models/summary") == {
        "application/json": {"schema": {"$ref": "#/components/schemas/ModelSummary"}},
        "text/plain": {"schema": {"type": "string"}},
    }
    assert content("/v1/models/summary/text") == {"text/plain": {"schema": {"type": "string"}}}
    assert content("/v1/models/export/keras_json")["application/json"]["schema"] == {
        "$ref": "#/components/schemas/KerasModelConfig"
    }
    # A Sequential's spec, or a graph's (schemathesis found the answer for a graph outside a ModelSpec-only schema).
    assert content("/v1/models/export/spec")["application/json"]["schema"] == {
        "oneOf": [{"$ref": "#/components/schemas/ModelSpec"}, {"$ref": "#/components/schemas/GraphSpec"}]
    }
    assert doc["components"]["schemas"]["KerasModelConfig"]["properties"]["class_name"]["enum"] == [
        "Sequential",
        "Functional",
    ]
    assert list(content("/v1/models/export/python")) == ["text/x-python"]


def test_the_model_body_is_a_named_one_of(doc: dict[str, Any]) -> None:
    for path in ("/v1/models/summary", "/v1/models/summary/text", "/v1/models/export/keras_json"):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"]["$ref"] == "#/components/schemas/ModelRequest", path
    assert doc["components"]["schemas"]["ModelRequest"]["oneOf"] == [
        {"$ref": "#/components/schemas/ModelSpec"},
        {"$ref": "#/components/schemas/GraphSpec"},
        {"$ref": "#/components/schemas/KerasModelConfig"},
    ]


def test_no_schema_is_only_null(doc: dict[str, Any]) -> None:
    """typescript-fetch makes a model named ``Null`` of ``{type: null}`` standing alone, and does not write it."""
    only_null = [
        where
        for where, node in walk(doc)
        if isinstance(node, dict) and node.get("type") == "null" and where.split("/")[-2] not in ("anyOf", "oneOf")
    ]
    assert only_null == []


def test_the_event_stream_is_described_as_one(doc: dict[str, Any]) -> None:
    content = doc["paths"]["/v1/trainings/{run_id}/events"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/event-stream"]
    stream = content["text/event-stream"]
    assert stream["schema"] == {"type": "string"}
    events = {
        member["properties"]["event"]["const"]: member["properties"]["data"]["contentSchema"]
        for member in stream["x-itemSchema"]["oneOf"]
    }
    assert events == {
        kind: {"$ref": f"#/components/schemas/Training{kind.title()}Event"}
        for kind in ("status", "batch", "epoch", "end")
    }


def test_output_fields_the_service_always_sends_are_required(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    optional = {
        name: sorted(set(schemas[name]["properties"]) - set(schemas[name].get("required", [])))
        for name in OUTPUT_MODELS
    }
    # A status event's started_at is sent with "running" only.
    assert optional == {name: (["started_at"] if name == "TrainingStatusEvent" else []) for name in OUTPUT_MODELS}


def test_closed_vocabularies_are_enums(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert schemas["TrainingRun"]["properties"]["request"] == {
        "$ref": "#/components/schemas/TrainingSpec",
        "description": "The normalized training request.",
    }
    for name, field in (("RunError", "kind"), ("ModelWarning", "type"), ("ErrorItemModel", "type")):
        prop = schemas[name]["properties"][field]
        assert "enum" in prop or "$ref" in prop, (name, field, prop)
    assert schemas["ActivationName"]["enum"] == list(get_args(Activation))
    copies = [where for where, node in walk(doc) if isinstance(node, dict) and "tanh" in node.get("enum", [])]
    assert copies == ["#/components/schemas/ActivationName"]


def test_every_error_type_the_code_writes_is_in_the_enum(doc: dict[str, Any]) -> None:
    """The literal ``type`` of every ErrorItem, SpecError.one and error class in app/, against the document's
    enum (pydantic's own types come from pydantic_core's list)."""
    written: set[str] = set()
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in ("ErrorItem", "one") and len(node.args) > 2 and isinstance(node.args[2], ast.Constant):
                    written.add(str(node.args[2].value))
            elif isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "error_type" for t in node.targets):
                assert isinstance(node.value, ast.Constant)
                written.add(str(node.value.value))
    assert len(written) > 20
    enum = doc["components"]["schemas"]["ErrorItemModel"]["properties"]["type"]["enum"]
    assert sorted(written - set(enum)) == []


def _warning_types_written() -> set[str]:
    """The warning types the code writes as constants: ``_warning(TYPE, ...)`` in app/."""
    written: set[str] = set()
    for path in Path(app.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", "") == "_warning"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                written.add(str(node.args[0].value))
    return written


def test_every_warning_type_the_code_writes_is_in_the_enum() -> None:
    # A warning type missing from the enum is an answer a generated client refuses.
    assert _warning_types_written() - set(get_args(WarningType)) == set()


def test_every_layer_type_of_the_union_is_a_layer_schema(doc: dict[str, Any]) -> None:
    # A component named like a layer class (the activation names once took "Activation", the layer's name)
    # would replace the layer's schema: the playground and generated clients then lose that layer.
    schemas = doc["components"]["schemas"]
    for member in schemas["ModelSpec"]["properties"]["layers"]["items"]["oneOf"]:
        name = member["$ref"].rsplit("/", 1)[-1]
        assert schemas[name]["properties"]["type"]["const"] == name
