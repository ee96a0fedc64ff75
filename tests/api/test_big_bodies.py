"""Every endpoint that takes a body answers the costliest bodies within the body limit at once, with a few KB:
lists bounded in the schema before their items are validated, and at most MAX_ERROR_ITEMS items in a 422.
(Before: a 977 KiB body of 500,000 layers was a 145-320 MB 422 after seconds of the event loop's time.)"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.errors import MAX_ERROR_ITEMS

HALF_A_MILLION = {"input_shape": [10, 20], "layers": [1] * 500_000}
WRONG_LSTM = {"type": "LSTM", **dict.fromkeys(("units", "activation", "use_bias", "dropout", "stateful"), "x")}
BODIES: dict[str, Any] = {
    "500,000 layers": HALF_A_MILLION,
    "1,000 layers with five wrong fields each": {"input_shape": [10, 20], "layers": [WRONG_LSTM] * 1000},
    "one layer with 90,000 unknown keys": {
        "input_shape": [10, 20],
        "layers": [{"type": "Dense", "units": 1, **{f"k{i}": 0 for i in range(90_000)}}],
    },
    "a Keras config of 40,000 layers": {
        "class_name": "Sequential",
        "config": {"layers": [{"class_name": "Lambda"}] * 40_000},
    },
}
MODEL_PATHS = [
    "/v1/models/summary",
    "/v1/models/summary/text",
    "/v1/models/export",
    "/v1/models/export/keras_json",
    "/v1/models/export/python",
    "/v1/models/export/spec",
]
# The answer is a few KB; the time bound is loose for a shared machine (the work is about a millisecond).
MAX_ANSWER_BYTES = 8 * 1024
QUICK_S = 1.0


def post(client: TestClient, path: str, body: Any) -> tuple[Any, float]:
    raw = json.dumps(body, separators=(",", ":")).encode()
    assert len(raw) < 1024 * 1024  # within the default body limit
    start = time.perf_counter()
    r = client.post(path, content=raw, headers={"Content-Type": "application/json"})
    return r, time.perf_counter() - start


@pytest.mark.parametrize("name", list(BODIES))
@pytest.mark.parametrize("path", MODEL_PATHS)
def test_a_costly_model_body_is_a_small_quick_422(client: TestClient, path: str, name: str) -> None:
    r, took = post(client, path, BODIES[name])
    assert r.status_code == 422, r.text[:300]
    assert len(r.content) <= MAX_ANSWER_BYTES and took < QUICK_S, (len(r.content), took)
    detail = r.json()["detail"]
    assert 1 <= len(detail) <= MAX_ERROR_ITEMS + 1
    assert all(set(item) == {"loc", "msg", "type"} for item in detail)


@pytest.mark.parametrize("name", [n for n in BODIES if not n.startswith("a Keras")])
def test_a_costly_training_body_is_a_small_quick_422(client: TestClient, name: str) -> None:
    r, took = post(client, "/v1/trainings", {"model": BODIES[name]})
    assert r.status_code == 422, r.text[:300]
    assert len(r.content) <= MAX_ANSWER_BYTES and took < QUICK_S, (len(r.content), took)


def test_the_half_million_layers_are_refused_by_their_count(client: TestClient) -> None:
    r, _ = post(client, "/v1/models/summary", HALF_A_MILLION)
    assert r.json()["detail"] == [
        {
            "loc": ["body", "layers"],
            "msg": "the model has 500,000 layers; a request holds at most 1,000 (and this service builds at most 100, "
            "LAYERWISE_MAX_LAYERS); use fewer layers",
            "type": "too_long",
        }
    ]
    r, _ = post(client, "/v1/trainings", {"model": HALF_A_MILLION})
    assert [item["loc"] for item in r.json()["detail"]] == [["body", "model", "layers"]]


def test_many_errors_list_twenty_and_say_how_many_more(client: TestClient) -> None:
    layers = [{"class_name": "InputLayer", "config": {"batch_shape": [None, 4]}}] + [{"class_name": "Lambda"}] * 100
    r, _ = post(client, "/v1/models/summary", {"class_name": "Sequential", "config": {"layers": layers}})
    detail = r.json()["detail"]
    assert len(detail) == MAX_ERROR_ITEMS + 1
    assert detail[-1] == {
        "loc": ["body"],
        "msg": "and 80 more errors, not listed: an answer lists the first 20 errors; fix these and send the request "
        "again",
        "type": "too_many_errors",
    }


def test_validation_of_layers_stops_after_twenty_errors_and_says_where(client: TestClient) -> None:
    r, _ = post(
        client, "/v1/models/summary", {"input_shape": [10, 20], "layers": [{"type": "Dense", "units": 0}] * 100}
    )
    detail = r.json()["detail"]
    assert [item["loc"] for item in detail[:20]] == [["body", "layers", i, "units"] for i in range(20)]
    assert detail[-1] == {
        "loc": ["body", "layers", 20],
        "msg": "layers.20 and what follows it were not checked, after the 20 errors above; fix these and send the "
        "request again",
        "type": "too_many_errors",
    }
