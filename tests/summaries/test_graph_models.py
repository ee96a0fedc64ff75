"""Graph (functional) models through the app with real workers: Keras's rows, counts and own text for three models
people write (keras-io's ``lstm_seq2seq``, Keras's old ``babi_rnn`` example, the residual attention block of
keras-io's ``timeseries_classification_transformer``), each compared with the Keras code those examples write;
their diagram, export (functional Python that runs, Keras JSON that imports back) and refusals."""

from __future__ import annotations

import copy
import json
from typing import Any

import keras
import pytest
from fastapi.testclient import TestClient

from app.runtime.keras.build import summary_text
from app.spec.examples import BABI, RESIDUAL, SEQ2SEQ

L = keras.layers


def seq2seq_keras() -> keras.Model:
    """keras-io's lstm_seq2seq, as it writes the training model."""
    encoder_inputs = keras.Input(shape=(None, 71), name="encoder_inputs")
    _, state_h, state_c = L.LSTM(256, return_state=True, name="encoder")(encoder_inputs)
    decoder_inputs = keras.Input(shape=(None, 93), name="decoder_inputs")
    outputs, _, _ = L.LSTM(256, return_sequences=True, return_state=True, name="decoder_lstm")(
        decoder_inputs, initial_state=[state_h, state_c]
    )
    outputs = L.Dense(93, activation="softmax", name="decoder_dense")(outputs)
    return keras.Model([encoder_inputs, decoder_inputs], outputs, name="seq2seq")


def babi_keras() -> keras.Model:
    """Keras's old examples/babi_rnn.py, in Keras 3."""
    story = keras.Input(shape=(68,), dtype="int32", name="story")
    encoded_story = L.LSTM(100, name="story_lstm")(L.Embedding(22, 50, name="story_embedding")(story))
    question = keras.Input(shape=(4,), dtype="int32", name="question")
    encoded_question = L.LSTM(100, name="question_lstm")(L.Embedding(22, 50, name="question_embedding")(question))
    merged = L.Concatenate(name="concatenate")([encoded_story, encoded_question])
    return keras.Model([story, question], L.Dense(22, activation="softmax", name="dense")(merged), name="babi_rnn")


def residual_keras() -> keras.Model:
    """keras-io's timeseries_classification_transformer: one encoder block (attention, residual, feed-forward)."""
    series = keras.Input(shape=(128, 1), name="series")
    x = L.MultiHeadAttention(num_heads=4, key_dim=64, dropout=0.25, name="attention")(series, series)
    x = L.Add(name="residual")([x, series])
    x = L.LayerNormalization(epsilon=1e-6, name="norm")(x)
    x = L.Conv1D(filters=4, kernel_size=1, activation="relu", name="ff_1")(x)
    x = L.Conv1D(filters=1, kernel_size=1, name="ff_2")(x)
    x = L.GlobalAveragePooling1D(data_format="channels_first", name="pool")(x)
    return keras.Model(series, L.Dense(2, activation="softmax", name="classes")(x), name="transformer_block")


# name -> (spec, Keras code, {layer: (type, output_shape, params, connected_to)}, total params)
MODELS: dict[str, tuple[dict[str, Any], Any, dict[str, tuple[str, list[Any], int, list[str]]], int]] = {
    "seq2seq": (
        SEQ2SEQ,
        seq2seq_keras,
        {
            "encoder_inputs": ("InputLayer", [None, None, 71], 0, []),
            "decoder_inputs": ("InputLayer", [None, None, 93], 0, []),
            "encoder": ("LSTM", [None, 256], 335_872, ["encoder_inputs"]),
            "decoder_lstm": ("LSTM", [None, None, 256], 358_400, ["decoder_inputs", "encoder:1", "encoder:2"]),
            "decoder_dense": ("Dense", [None, None, 93], 23_901, ["decoder_lstm:0"]),
        },
        718_173,
    ),
    "babi_rnn": (
        BABI,
        babi_keras,
        {
            "story": ("InputLayer", [None, 68], 0, []),
            "question": ("InputLayer", [None, 4], 0, []),
            "story_embedding": ("Embedding", [None, 68, 50], 1_100, ["story"]),
            "question_embedding": ("Embedding", [None, 4, 50], 1_100, ["question"]),
            "story_lstm": ("LSTM", [None, 100], 60_400, ["story_embedding"]),
            "question_lstm": ("LSTM", [None, 100], 60_400, ["question_embedding"]),
            "concatenate": ("Concatenate", [None, 200], 0, ["story_lstm", "question_lstm"]),
            "dense": ("Dense", [None, 22], 4_422, ["concatenate"]),
        },
        127_422,
    ),
    "transformer_block": (
        RESIDUAL,
        residual_keras,
        {
            "series": ("InputLayer", [None, 128, 1], 0, []),
            # query, key and value (1 -> 4 heads x 64, with bias) and the output projection (256 -> 1, with bias)
            "attention": ("MultiHeadAttention", [None, 128, 1], 3 * (1 * 256 + 256) + 256 + 1, ["series", "series"]),
            "residual": ("Add", [None, 128, 1], 0, ["attention", "series"]),
            "norm": ("LayerNormalization", [None, 128, 1], 2, ["residual"]),
            "ff_1": ("Conv1D", [None, 128, 4], 8, ["norm"]),
            "ff_2": ("Conv1D", [None, 128, 1], 5, ["ff_1"]),
            "pool": ("GlobalAveragePooling1D", [None, 128], 0, ["ff_2"]),
            "classes": ("Dense", [None, 2], 258, ["pool"]),
        },
        2_066,
    ),
}


@pytest.mark.parametrize("example", list(MODELS))
def test_graph_model_gives_keras_rows_and_text(client: TestClient, example: str) -> None:
    spec, make, rows, total = MODELS[example]
    r = client.post("/v1/models/summary", json=spec)
    assert r.status_code == 200, r.text
    body = r.json()
    got = {x["name"]: (x["type"], x["output_shape"], x["params"], x["connected_to"]) for x in body["layers"]}
    assert got == rows
    assert body["total_params"] == body["trainable_params"] == total
    keras.backend.clear_session()
    assert body["text"] == summary_text(make())
    assert "Connected to" in body["text"] and f"Total params: {total:,}" in body["text"]


def test_a_layer_of_several_outputs_lists_every_shape(client: TestClient) -> None:
    body = client.post("/v1/models/summary", json=SEQ2SEQ).json()
    rows = {x["name"]: x for x in body["layers"]}
    assert rows["encoder"]["output_shapes"] == [[None, 256], [None, 256], [None, 256]]
    assert rows["decoder_lstm"]["output_shapes"] == [[None, None, 256], [None, 256], [None, 256]]
    assert rows["decoder_dense"]["output_shapes"] is None
    # Variable-length: per-timestep figures, and at ?timesteps= the LSTMs' T*params (both inputs at that length).
    assert body["mult_adds"] is None and body["mult_adds_per_timestep"] == 718_173
    at = client.post("/v1/models/summary?timesteps=10", json=SEQ2SEQ).json()
    assert at["mult_adds"] == 10 * 718_173
    assert at["input_bytes"] == 10 * (71 + 93) * 4


def test_attention_counts_the_square_of_the_length(client: TestClient) -> None:
    body = client.post("/v1/models/summary", json=RESIDUAL).json()
    rows = {x["name"]: x for x in body["layers"]}
    # Projections: each weight once per position (query, key, value and output over 128 steps), then the
    # scores and the weighted sum: heads x Tq x Tk x (key_dim + value_dim).
    projections = 128 * (3 * 512 + 257)
    assert rows["attention"]["mult_adds"] == projections + 4 * 128 * 128 * (64 + 64)


def test_masks_flow_from_a_bool_input(client: TestClient) -> None:
    # keras-io's video classifier: a GRU given the frames' mask as a call argument.
    spec = {
        "inputs": [{"name": "frames", "shape": [20, 16]}, {"name": "frame_mask", "shape": [20], "dtype": "bool"}],
        "layers": [
            {"type": "GRU", "units": 16, "return_sequences": True, "mask": "frame_mask", "inputs": ["frames"]},
            {"type": "GRU", "units": 8},
            {"type": "Dropout", "rate": 0.4},
            {"type": "Dense", "units": 3, "activation": "softmax"},
        ],
        "outputs": ["dense"],
    }
    r = client.post("/v1/models/summary", json=spec)
    assert r.status_code == 200, r.text
    rows = {x["name"]: x for x in r.json()["layers"]}
    assert rows["gru"]["connected_to"] == ["frames", "frame_mask"]
    assert rows["gru"]["params"] == 3 * 16 * (16 + 16 + 2)  # Keras 3's GRU: reset_after, two bias vectors


def test_operations_keras_adds_are_named_as_in_a_fresh_process(client: TestClient) -> None:
    # A Masking on an input makes Keras add NotEqual and Any operations, which its table shows, named by a
    # session-wide count: the second such model a worker built once said not_equal_1, where Keras says not_equal.
    for units in (3, 5):
        spec = {
            "name": "masked",
            "inputs": [{"name": "x", "shape": [None, 4]}],
            "layers": [{"type": "Masking", "name": "m"}, {"type": "GRU", "name": "g", "units": units}],
            "outputs": ["g"],
        }
        r = client.post("/v1/models/summary", json=spec)
        assert r.status_code == 200, r.text
        keras.backend.clear_session()
        x = keras.Input((None, 4), name="x")
        model = keras.Model(x, L.GRU(units, name="g")(L.Masking(name="m")(x)), name="masked")
        assert r.json()["text"] == summary_text(model)
        assert "│ not_equal " in r.json()["text"] and "│ any (Any) " in r.json()["text"]


def _masked_model(which: str) -> keras.Model:
    """keras-io's bidirectional LSTM (a masking Embedding), or a Masking on an input, in a fresh session."""
    keras.backend.clear_session()
    if which == "embedding":
        tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
        x = L.Embedding(200, 8, mask_zero=True, name="emb")(tokens)
        x = L.Bidirectional(L.LSTM(4, return_sequences=True), name="bi1")(x)
        x = L.Bidirectional(L.LSTM(4), name="bi2")(x)
        return keras.Model(tokens, L.Dense(1, activation="sigmoid", name="out")(x), name="bilstm_imdb")
    series = keras.Input(shape=(None, 4), name="series")
    return keras.Model(series, L.GRU(3, name="g")(L.Masking(name="m")(series)), name="masked_gru")


@pytest.mark.parametrize("which", ["embedding", "masking"])
def test_keras_json_of_a_masked_model_imports(client: TestClient, which: str) -> None:
    # Keras's to_json() lists the operations that compute an Embedding's or a Masking's mask (NotEqual, Any)
    # as layers, and the mask as a call argument of the layers after: the import once refused NotEqual, so no
    # masked functional model (keras-io's bidirectional LSTM) imported, not even the service's own export.
    model = _masked_model(which)
    config = json.loads(model.to_json())
    assert "NotEqual" in [layer["class_name"] for layer in config["config"]["layers"]]
    r = client.post("/v1/models/summary", json=config)
    assert r.status_code == 200, r.text
    assert r.json()["text"] == summary_text(_masked_model(which))
    spec = client.post("/v1/models/export/spec", json=config).json()
    assert "NotEqual" not in json.dumps(spec) and "not_equal" not in json.dumps(spec)


def test_an_operation_that_is_not_a_layers_own_mask_stays_refused(client: TestClient) -> None:
    config = json.loads(_masked_model("embedding").to_json())
    (op,) = [layer for layer in config["config"]["layers"] if layer["class_name"] == "NotEqual"]
    op["inbound_nodes"][0]["args"][1] = 1  # not Embedding's mask (ids != 0)
    r = client.post("/v1/models/summary", json=config)
    assert r.status_code == 422
    assert "layer class 'NotEqual' is not supported" in r.json()["detail"][0]["msg"]


def test_diagram_is_keras_plot_model_as_svg(client: TestClient) -> None:
    r = client.post("/v1/models/diagram", json=SEQ2SEQ)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert r.text.lstrip().startswith("<?xml") and "<svg" in r.text
    for name in ("encoder_inputs", "decoder_inputs", "encoder", "decoder_lstm", "decoder_dense"):
        assert name in r.text
    assert "(None, None, 256)" in r.text  # shapes are drawn
    # One box per layer and nothing else: model_to_dot's dpi=None once drew a stray node named "dpi".
    assert r.text.count('class="node"') == 5 and "<title>dpi</title>" not in r.text
    seq = client.post("/v1/models/diagram", json={"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": 4}]})
    assert seq.status_code == 200 and "lstm" in seq.text
    assert seq.text.count('class="node"') == 1 and "<title>dpi</title>" not in seq.text


def test_diagram_refuses_what_the_summary_refuses(client: TestClient) -> None:
    bad = {
        "inputs": [{"name": "a", "shape": [5, 3]}, {"name": "b", "shape": [5, 2]}],
        "layers": [
            {"type": "LSTM", "name": "enc", "units": 4, "inputs": ["a"]},
            {"type": "Add", "name": "sum", "inputs": ["enc", "b"]},
        ],
        "outputs": ["sum"],
    }
    for path in ("/v1/models/diagram", "/v1/models/summary"):
        r = client.post(path, json=bad)
        assert r.status_code == 422
        (item,) = r.json()["detail"]
        assert item["loc"] == ["body", "layers", 1] and item["type"] == "keras_build_error"
        assert item["msg"].startswith("layer 1 (sum, Add) cannot take enc (None, 4) and b (None, 5, 2): Add needs")


@pytest.mark.parametrize("example", list(MODELS))
def test_functional_python_builds_the_same_model(client: TestClient, example: str) -> None:
    spec, _, _, total = MODELS[example]
    r = client.post("/v1/models/export/python", json=spec)
    assert r.status_code == 200, r.text
    assert "keras.Model(inputs=" in r.text
    keras.backend.clear_session()
    namespace: dict[str, Any] = {}
    exec(compile(r.text.replace("model.summary()", ""), f"<{example}.py>", "exec"), namespace)
    model = namespace["model"]
    summary = client.post("/v1/models/summary", json=spec).json()
    assert model.count_params() == total
    assert summary_text(model) == summary["text"]


@pytest.mark.parametrize("example", list(MODELS))
def test_functional_keras_json_imports_back(client: TestClient, example: str) -> None:
    spec = MODELS[example][0]
    exported = client.post("/v1/models/export/keras_json", json=spec)
    assert exported.status_code == 200, exported.text
    assert json.loads(exported.text)["class_name"] == "Functional"
    again = client.post("/v1/models/summary", content=exported.content, headers={"content-type": "application/json"})
    assert again.status_code == 200, again.text
    first = client.post("/v1/models/summary", json=spec).json()
    assert again.json()["text"] == first["text"]
    as_spec = client.post(
        "/v1/models/export/spec", content=exported.content, headers={"content-type": "application/json"}
    )
    assert as_spec.status_code == 200 and as_spec.json()["outputs"] == spec["outputs"]


def test_a_shared_layer_in_keras_json_is_refused_by_name(client: TestClient) -> None:
    x = keras.Input(shape=(5, 3), name="x")
    lstm = L.LSTM(4, return_sequences=True, name="shared")
    model = keras.Model(x, lstm(lstm(L.Dense(4, name="d")(x))))
    r = client.post("/v1/models/summary", content=model.to_json(), headers={"content-type": "application/json"})
    assert r.status_code == 422
    item = r.json()["detail"][0]
    assert item["type"] == "keras_import_refused" and "shared layer" in item["msg"]


def small(body: dict[str, Any], units: int = 8) -> dict[str, Any]:
    """The graph with every LSTM and attention made small: the same graph, trained in seconds."""
    body = copy.deepcopy(body)
    for layer in body["layers"]:
        if layer["type"] == "LSTM":
            layer["units"] = units
        if layer["type"] == "MultiHeadAttention":
            layer["key_dim"] = 4
    return body


@pytest.mark.parametrize("example", list(MODELS))
def test_graph_model_trains_on_an_array_per_input(client: TestClient, example: str) -> None:
    body = {
        "model": small(MODELS[example][0]),
        "data": {"samples": 64, "timesteps": 6},
        "fit": {"epochs": 2, "batch_size": 16, "validation_split": 0.25},
        "compile": {"loss": "binary_crossentropy"},
    }
    r = client.post("/v1/trainings?wait=180", json=body)
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["status"] == "succeeded", run
    assert len(run["history"]["loss"]) == len(run["history"]["val_loss"]) == 2
    assert all(isinstance(v, float) and v > 0 for v in run["history"]["loss"])
    again = client.post("/v1/trainings?wait=180", json=body).json()
    assert again["history"] == run["history"]  # seeded: the same arrays, weights and shuffling


def test_a_graph_training_names_graph_fields_in_its_errors(client: TestClient) -> None:
    bad = copy.deepcopy(SEQ2SEQ)
    bad["layers"][1]["initial_state"] = ["encoder:1", "nowhere"]
    r = client.post("/v1/trainings", json={"model": bad, "data": {"timesteps": 5}})
    assert r.status_code == 422
    (item,) = r.json()["detail"]
    assert item["loc"] == ["body", "model", "layers", 1, "initial_state", 1] and item["type"] == "unknown_reference"
    r = client.post("/v1/trainings", json={"model": {**SEQ2SEQ, "outputs": []}, "data": {"timesteps": 5}})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "model", "outputs"]


def test_a_causal_self_attention_exports_and_imports_its_call_argument(client: TestClient) -> None:
    spec = {
        "name": "decoder_block",
        "inputs": [{"name": "tokens", "shape": [None], "dtype": "int32"}],
        "layers": [
            {"type": "Embedding", "name": "embed", "input_dim": 100, "output_dim": 16},
            {
                "type": "MultiHeadAttention",
                "name": "self_attention",
                "num_heads": 2,
                "key_dim": 8,
                "use_causal_mask": True,
                "inputs": ["embed", "embed"],
            },
            {"type": "Add", "name": "residual", "inputs": ["embed", "self_attention"]},
            {"type": "Dense", "name": "next_token", "units": 100, "activation": "softmax"},
        ],
        "outputs": ["next_token"],
    }
    summary = client.post("/v1/models/summary", json=spec)
    assert summary.status_code == 200, summary.text
    python = client.post("/v1/models/export/python", json=spec).text
    assert "(embed, embed, use_causal_mask=True)" in python
    exported = client.post("/v1/models/export/keras_json", json=spec).content
    assert '"use_causal_mask": true' in exported.decode()
    back = client.post("/v1/models/export/spec", content=exported, headers={"content-type": "application/json"})
    assert back.status_code == 200, back.text
    (attention,) = [layer for layer in back.json()["layers"] if layer["type"] == "MultiHeadAttention"]
    assert attention["use_causal_mask"] is True
    assert client.post("/v1/models/summary", json=back.json()).json()["text"] == summary.json()["text"]
