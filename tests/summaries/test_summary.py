"""POST /v1/models/summary against real worker processes: the seed's exact figures and the error cases."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

# The seed notebook's printed Keras 2 summaries: (name, type, output_shape, params) per layer, and the total.
EXPECTED: dict[str, tuple[list[tuple[str, str, list[int | None], int]], int]] = {
    "seed_example_1": (
        [("lstm_layer", "LSTM", [None, 30], 6120), ("dense_layer", "Dense", [None, 1], 31)],
        6151,
    ),
    "seed_example_1_batch": (
        [("lstm_layer", "LSTM", [5, 30], 6120), ("dense_layer", "Dense", [5, 1], 31)],
        6151,
    ),
    "seed_example_2": (
        [
            ("lstm_layer", "LSTM", [None, 10, 30], 6120),
            ("flatten_layer", "Flatten", [None, 300], 0),
            ("dense_layer", "Dense", [None, 1], 301),
        ],
        6421,
    ),
    "seed_example_2_batch": (
        [
            ("lstm_layer", "LSTM", [5, 10, 30], 6120),
            ("flatten_layer", "Flatten", [5, 300], 0),
            ("dense_layer", "Dense", [5, 1], 301),
        ],
        6421,
    ),
}


@pytest.mark.parametrize("example", list(EXPECTED))
def test_seed_models_match_the_notebook(client: TestClient, seed: dict[str, Any], example: str) -> None:
    r = client.post("/v1/models/summary", json=seed[example])
    assert r.status_code == 200, r.text
    body = r.json()
    rows, total = EXPECTED[example]
    assert [(x["name"], x["type"], x["output_shape"], x["params"]) for x in body["layers"]] == rows
    assert [x["index"] for x in body["layers"]] == list(range(len(rows)))
    assert body["total_params"] == total
    assert body["trainable_params"] == total
    assert body["non_trainable_params"] == 0
    assert body["weights_bytes"] == total * 4
    assert body["name"] == example
    assert f"Total params: {total:,}" in body["text"]
    assert "lstm_layer (LSTM)" in body["text"]


def test_weights_bytes_of_seed_1_is_24604(client: TestClient, seed: dict[str, Any]) -> None:
    assert client.post("/v1/models/summary", json=seed["seed_example_1"]).json()["weights_bytes"] == 24_604


def test_text_plain_answers_the_keras_table_alone(client: TestClient, seed: dict[str, Any]) -> None:
    r = client.post("/v1/models/summary", json=seed["seed_example_2_batch"], headers={"Accept": "text/plain"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.startswith('Model: "seed_example_2_batch"')
    assert "(5, 10, 30)" in r.text and "6,120" in r.text and "Total params: 6,421" in r.text


@pytest.mark.parametrize(
    ("accept", "text"),
    [
        ("application/json", False),
        ("*/*", False),
        ("text/plain", True),
        ("text/*", True),
        ("application/json;q=0.5, text/plain", True),
        ("text/plain;q=0.2, application/json", False),
        ("text/*;q=0.9, text/plain;q=0, */*", False),
    ],
)
def test_accept_negotiation(client: TestClient, seed: dict[str, Any], accept: str, text: bool) -> None:
    r = client.post("/v1/models/summary", json=seed["seed_example_1"], headers={"Accept": accept})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain" if text else "application/json")


def test_unnamed_layers_get_keras_names_every_time(client: TestClient) -> None:
    body = {"input_shape": [4, 3], "layers": [{"type": "LSTM", "units": 2}, {"type": "Dense", "units": 1}]}
    for _ in range(2):  # the same names on a warm worker that built models before
        names = [x["name"] for x in client.post("/v1/models/summary", json=body).json()["layers"]]
        assert names == ["lstm", "dense"]


def test_keras_3_extras_match_keras(client: TestClient) -> None:
    # Not in the seed: a stateful LSTM, a 3-D Dense (acts on the last axis), no bias, stacked LSTMs.
    body = {
        "batch_input_shape": [4, 7, 3],
        "layers": [
            {"type": "LSTM", "units": 5, "return_sequences": True, "stateful": True},
            {"type": "LSTM", "units": 6, "return_sequences": True, "use_bias": False},
            {"type": "Dense", "units": 2},
        ],
    }
    r = client.post("/v1/models/summary", json=body)
    assert r.status_code == 200, r.text
    rows = [(x["output_shape"], x["params"]) for x in r.json()["layers"]]
    # LSTM: 4 * units * (input + units + 1); without bias 4 * units * (input + units).
    assert rows == [([4, 7, 5], 4 * 5 * (3 + 5 + 1)), ([4, 7, 6], 4 * 6 * (5 + 6)), ([4, 7, 2], 6 * 2 + 2)]


def error(r: Any) -> list[dict[str, Any]]:
    assert r.status_code == 422, r.text
    detail: list[dict[str, Any]] = r.json()["detail"]
    assert all(set(item) == {"loc", "msg", "type"} for item in detail), detail
    return detail


@pytest.mark.parametrize(
    ("layers", "index", "needles"),
    [
        (
            [{"type": "Flatten"}, {"type": "LSTM", "units": 3}, {"type": "Dense", "units": 1}],
            1,
            ["layer 1 (lstm, LSTM)", "(None, 200)", "expected ndim=3, found ndim=2", "Flatten (layer 0)"],
        ),
        (
            [{"type": "LSTM", "units": 30}, {"type": "LSTM", "units": 3, "name": "second"}],
            1,
            [
                "layer 1 (second, LSTM)",
                "(None, 30)",
                "expected ndim=3, found ndim=2",
                "return_sequences=true",
            ],
        ),
        (
            [
                {"type": "LSTM", "units": 4, "return_sequences": True},
                {"type": "Flatten"},
                {"type": "LSTM", "units": 2},
            ],
            2,
            ["layer 2 (lstm_1, LSTM)", "(None, 40)", "expected ndim=3"],
        ),
    ],
)
def test_keras_refusal_points_at_the_layer(
    client: TestClient, layers: list[dict[str, Any]], index: int, needles: list[str]
) -> None:
    detail = error(client.post("/v1/models/summary", json={"input_shape": [10, 20], "layers": layers}))
    assert detail[0]["loc"] == ["body", "layers", index]
    for needle in needles:
        assert needle in detail[0]["msg"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (
            {"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": 0}]},
            ["body", "layers", 0, "units"],
        ),
        (
            {"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": -1}]},
            ["body", "layers", 0, "units"],
        ),
        (
            {"input_shape": [10, 20], "layers": [{"type": "Dense", "units": 1, "kernel": 3}]},
            ["body", "layers", 0, "kernel"],
        ),
        ({"input_shape": [10, 20], "layers": [{"type": "GRUU", "units": 1}]}, ["body", "layers", 0]),
        ({"layers": [{"type": "Dense", "units": 1}]}, ["body", "input_shape"]),
        (
            {"input_shape": [3], "batch_input_shape": [2, 3], "layers": [{"type": "Dense", "units": 1}]},
            ["body", "batch_input_shape"],
        ),
        (
            {
                "input_shape": [3],
                "layers": [
                    {"type": "Dense", "units": 1, "name": "d"},
                    {"type": "Dense", "units": 1, "name": "d"},
                ],
            },
            ["body", "layers", 1, "name"],
        ),
        ({"input_shape": [3], "layers": [{"type": "Dense", "units": 1}], "extra": 1}, ["body", "extra"]),
    ],
)
def test_invalid_specs_are_422_at_the_field(client: TestClient, body: dict[str, Any], loc: list[Any]) -> None:
    detail = error(client.post("/v1/models/summary", json=body))
    assert loc in [item["loc"] for item in detail]


def test_malformed_json_is_422_not_500(client: TestClient) -> None:
    r = client.post("/v1/models/summary", content=b'{"layers": [', headers={"content-type": "application/json"})
    assert error(r)[0]["type"] == "json_invalid"


def test_unknown_route_has_the_shared_error_shape(client: TestClient) -> None:
    r = client.get("/v1/nothing")
    assert r.status_code == 404
    assert r.json() == {"detail": [{"loc": [], "msg": "Not Found", "type": "http_404"}]}


def test_openapi_shows_the_four_seed_models_and_the_graph_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/models/summary"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["examples"]) == set(EXPECTED) | {"seq2seq", "babi_rnn", "transformer_block"}
    assert body["examples"]["seed_example_2"]["value"]["layers"][1] == {
        "type": "Flatten",
        "name": "flatten_layer",
    }
