"""POST /v1/models/summary's insight beyond Keras's table, against real worker processes: Mult-Adds, bytes and
training memory of the seed's models by hand, the new layer types, warnings, and the size limits."""

from __future__ import annotations

import os
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Limits
from app.spec.training import TrainingSpec
from app.summaries.models import ModelSummary
from app.summaries.service import SummaryService

# The seed's LSTM(30) over 10 timesteps keeps, for backpropagation through time, 10*12*30 scalars of states per
# sample (app.analysis.engine.BPTT_SCALARS_PER_UNIT) and the weight gradients of 10 loop iterations.
BPTT_STATES_PER_SAMPLE = 10 * 12 * 30 * 4  # 14,400 bytes
BPTT_GRADIENTS = 10 * 6_120 * 4  # 244,800 bytes


def summary(client: TestClient, body: dict[str, Any], **params: Any) -> dict[str, Any]:
    r = client.post("/v1/models/summary", json=body, params=params)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


# The seed's LSTM: T=10 timesteps of i=20 features into u=30 units; params 4u(i+u+1) = 4*30*51 = 6120, each
# used once per timestep. Its Dense: 30 -> 1 (31 params) in example 1, 300 -> 1 (301) after Flatten in example 2.
LSTM_MULT_ADDS = 10 * 4 * 30 * (20 + 30 + 1)  # 61,200


def test_seed_1_mult_adds_and_memory_by_hand(client: TestClient, seed: dict[str, Any]) -> None:
    body = summary(client, seed["seed_example_1"])
    assert [x["mult_adds"] for x in body["layers"]] == [LSTM_MULT_ADDS, 30 * 1 + 1]
    assert body["mult_adds"] == 61_200 + 31 == 61_231
    assert body["batch_size"] == 32  # open batch: Keras's fit default
    assert [x["mult_adds_batch"] for x in body["layers"]] == [61_200 * 32, 31 * 32]
    assert body["mult_adds_batch"] == 61_231 * 32 == 1_959_392
    # Outputs per sample, float32: (30,) and (1,).
    assert [x["activation_bytes"] for x in body["layers"]] == [30 * 4, 1 * 4]
    assert body["activation_bytes"] == 124
    assert body["input_bytes"] == 10 * 20 * 4 == 800
    params = 6151
    assert body["training_memory"] == {
        "batch_size": 32,
        "optimizer": "adam",
        "weights_bytes": params * 4,  # 24,604
        "gradients_bytes": params * 4,
        "optimizer_bytes": 2 * params * 4,  # Adam's m and v: 49,208
        # Both layers have weights: 32*2*(120 + 4) = 7,936; plus what the LSTM's backpropagation through time
        # keeps: its states, 32 samples*10 timesteps*12*30 units*4 = 460,800, and the weight gradients of
        # min(10, 32) loop iterations, 10*6,120*4 = 244,800.
        "activations_bytes": 32 * 2 * (120 + 4) + BPTT_STATES_PER_SAMPLE * 32 + BPTT_GRADIENTS,  # 713,536
        "input_bytes": 32 * 800,  # 25,600
        "total_bytes": 24_604 + 24_604 + 49_208 + 713_536 + 25_600,  # 837,552
    }
    assert body["warnings"] == []


def test_seed_1_batch_uses_its_fixed_batch(client: TestClient, seed: dict[str, Any]) -> None:
    body = summary(client, seed["seed_example_1_batch"])
    assert body["batch_size"] == 5
    assert body["mult_adds"] == 61_231 and body["mult_adds_batch"] == 61_231 * 5 == 306_155
    memory = body["training_memory"]
    assert memory["activations_bytes"] == 5 * 2 * 124 + 5 * BPTT_STATES_PER_SAMPLE + BPTT_GRADIENTS == 318_040
    assert memory["input_bytes"] == 5 * 800 == 4_000
    assert memory["total_bytes"] == 24_604 * 4 + 318_040 + 4_000 == 420_456


def test_seed_2_mult_adds_and_memory_by_hand(client: TestClient, seed: dict[str, Any]) -> None:
    body = summary(client, seed["seed_example_2"])
    # LSTM (return_sequences changes the output, not the work), Flatten (none), Dense 300 -> 1.
    assert [x["mult_adds"] for x in body["layers"]] == [61_200, 0, 300 * 1 + 1]
    assert body["mult_adds"] == 61_501
    assert [x["activation_bytes"] for x in body["layers"]] == [10 * 30 * 4, 300 * 4, 1 * 4]
    params = 6421
    memory = body["training_memory"]
    assert memory["weights_bytes"] == memory["gradients_bytes"] == params * 4 == 25_684
    assert memory["optimizer_bytes"] == 2 * 25_684
    # Flatten has no weights, so (like torchinfo) its output is not counted: LSTM 1,200 + Dense 4 bytes; and the
    # LSTM's backpropagation through time, as in the first example.
    bptt = 32 * BPTT_STATES_PER_SAMPLE + BPTT_GRADIENTS
    assert memory["activations_bytes"] == 32 * 2 * (1_200 + 4) + bptt == 782_656
    assert memory["total_bytes"] == 25_684 * 4 + 782_656 + 32 * 800 == 910_992


def test_seed_2_batch(client: TestClient, seed: dict[str, Any]) -> None:
    body = summary(client, seed["seed_example_2_batch"])
    assert body["batch_size"] == 5
    assert body["mult_adds_batch"] == 61_501 * 5 == 307_505
    bptt = 5 * BPTT_STATES_PER_SAMPLE + BPTT_GRADIENTS
    assert body["training_memory"]["total_bytes"] == 25_684 * 4 + 5 * 2 * 1_204 + bptt + 5 * 800 == 435_576


def test_batch_size_parameter_scales_the_batch_figures(client: TestClient, seed: dict[str, Any]) -> None:
    body = summary(client, seed["seed_example_1"], batch_size=100)
    assert body["batch_size"] == 100
    assert body["mult_adds_batch"] == 61_231 * 100
    assert body["training_memory"]["activations_bytes"] == 100 * 2 * 124 + 100 * BPTT_STATES_PER_SAMPLE + BPTT_GRADIENTS
    assert client.post("/v1/models/summary", json=seed["seed_example_1"], params={"batch_size": 0}).status_code == 422


def test_the_recurrent_family(client: TestClient) -> None:
    body = summary(
        client,
        {
            "input_shape": [10, 20],
            "layers": [
                {"type": "Bidirectional", "layer": {"type": "LSTM", "units": 8, "return_sequences": True}},
                {"type": "GRU", "units": 6, "return_sequences": True},
                {"type": "Dropout", "rate": 0.2},
                {"type": "SimpleRNN", "units": 5, "return_sequences": True},
                {"type": "TimeDistributed", "layer": {"type": "Dense", "units": 3}},
                {"type": "Bidirectional", "layer": {"type": "GRU", "units": 2}, "merge_mode": "sum"},
            ],
        },
    )
    rows = [(x["name"], x["type"], x["output_shape"], x["params"], x["mult_adds"]) for x in body["layers"]]
    bi_lstm = 2 * 4 * 8 * (20 + 8 + 1)  # two LSTMs of 8 units on 20 features
    gru = 3 * 6 * (16 + 6 + 2)  # reset_after=True (Keras 3's default): two bias vectors
    rnn = 5 * (6 + 5 + 1)
    td = 5 * 3 + 3
    bi_gru = 2 * 3 * 2 * (3 + 2 + 2)
    assert rows == [
        ("bidirectional", "Bidirectional", [None, 10, 16], bi_lstm, 10 * bi_lstm),
        ("gru", "GRU", [None, 10, 6], gru, 10 * gru),
        ("dropout", "Dropout", [None, 10, 6], 0, 0),
        ("simple_rnn", "SimpleRNN", [None, 10, 5], rnn, 10 * rnn),
        ("time_distributed", "TimeDistributed", [None, 10, 3], td, 10 * td),
        ("bidirectional_1", "Bidirectional", [None, 2], bi_gru, 10 * bi_gru),
    ]
    assert body["total_params"] == bi_lstm + gru + rnn + td + bi_gru


def test_dense_on_a_sequence_is_a_warning_naming_the_layer_and_the_fix(client: TestClient) -> None:
    layers = [{"type": "LSTM", "units": 30, "return_sequences": True}, {"type": "Dense", "units": 1}]
    body = summary(client, {"input_shape": [10, 20], "layers": layers})
    assert body["layers"][1]["output_shape"] == [None, 10, 1]
    (warning,) = body["warnings"]
    assert warning["type"] == "dense_on_sequence"
    assert warning["loc"] == ["body", "layers", 1] and warning["layer"] == 1
    assert "layer 1 (dense, Dense) receives (None, 10, 30)" in warning["msg"]
    assert "(None, 10, 1)" in warning["msg"] and "not (None, 1)" in warning["msg"]
    assert "return_sequences=false on layer 0 (lstm)" in warning["fix"] and "Flatten" in warning["fix"]


def test_dense_per_timestep_before_an_rnn_is_not_a_warning(client: TestClient) -> None:
    body = summary(
        client, {"input_shape": [10, 20], "layers": [{"type": "Dense", "units": 8}, {"type": "LSTM", "units": 4}]}
    )
    assert body["warnings"] == []


def test_fixed_batch_with_another_batch_size_is_a_warning(client: TestClient, seed: dict[str, Any]) -> None:
    body = summary(client, seed["seed_example_1_batch"], batch_size=10)
    assert [(w["type"], w["loc"]) for w in body["warnings"]] == [("fixed_batch_size", ["body", "batch_input_shape"])]
    assert "fixes the batch at 5, but the batch size is 10" in body["warnings"][0]["msg"]


def test_import_errors_and_limits_share_the_error_shape(client: TestClient) -> None:
    r = client.post("/v1/models/summary", json={"input_shape": [10, 20], "layers": [{"type": "Dense", "units": 10**9}]})
    assert r.status_code == 422
    assert all(set(item) == {"loc", "msg", "type"} for item in r.json()["detail"])


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


LIMITS = Limits()  # the session client runs with the default limits
PARAMS_LIMIT = f"over the limit of {LIMITS.max_params:,} (LAYERWISE_MAX_PARAMS)"
ABUSE = {
    "lstm_200k_units": (
        {"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": 200_000}]},
        # 4u(i+u+1) = 4 * 200,000 * 200,021
        ["units=200,000", f"limit of {LIMITS.max_units:,}", "160,016,800,000 parameters", PARAMS_LIMIT],
    ),
    "stack_of_500": (
        {"input_shape": [8], "layers": [{"type": "Dense", "units": 8}] * 500},
        ["500 layers", f"limit of {LIMITS.max_layers}"],
    ),
    "dense_1e9_params": (
        # Within the units limit: 122,070 inputs * 8,192 units + 8,192 biases = 8,192 * 122,071 parameters.
        {"input_shape": [122_070], "layers": [{"type": "Dense", "units": 8192}]},
        [f"{8192 * 122_071:,} parameters", "1,000,005,632 parameters", PARAMS_LIMIT],
    ),
}


@pytest.mark.parametrize("case", list(ABUSE))
def test_abusive_models_are_refused_before_any_worker(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    body, needles = ABUSE[case]
    service: SummaryService = client.app.state.summaries  # type: ignore[attr-defined]
    pool = client.app.state.pools[0]  # type: ignore[attr-defined]
    workers = list(pool._hub.ready["summary"])

    async def no_worker(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a worker was asked to build a model over the limits")

    monkeypatch.setattr(service._pool, "call", no_worker)
    before = {pid: _rss_kib(pid) for pid in workers}
    r = client.post("/v1/models/summary", json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert {item["type"] for item in detail} == {"limit_exceeded"}
    text = " ".join(item["msg"] for item in detail)
    for needle in needles:
        assert needle in text
    after = {pid: _rss_kib(pid) for pid in workers}
    assert all(abs(after[pid] - before[pid]) < 1024 for pid in workers), (before, after)  # KiB: nothing allocated
    assert all(os.path.exists(f"/proc/{pid}") for pid in workers)


def test_summary_for_a_training_uses_its_batch_optimizer_and_warnings(client: TestClient) -> None:
    # What the training path calls: SummaryService.summarize_training(normalized TrainingSpec).
    service: SummaryService = client.app.state.summaries  # type: ignore[attr-defined]
    training = TrainingSpec.model_validate(
        {
            "model": {
                "batch_input_shape": [5, 10, 20],
                "layers": [{"type": "LSTM", "units": 30}, {"type": "Dense", "units": 1}],
            },
            "compile": {"optimizer": "sgd", "loss": "binary_crossentropy"},
            "fit": {"batch_size": 10},
        }
    ).normalized()
    body = client.portal.call(service.summarize_training, training)  # type: ignore[union-attr]
    assert body.batch_size == 10 and body.mult_adds_batch == 61_231 * 10
    assert body.training_memory is not None
    assert body.training_memory.optimizer == "sgd" and body.training_memory.optimizer_bytes == 0
    assert [(w.type, w.loc) for w in body.warnings] == [
        ("fixed_batch_size", ["body", "fit", "batch_size"]),
        ("loss_activation", ["body", "model", "layers", 1]),
    ]


def test_a_summary_recorded_before_these_figures_still_loads() -> None:
    # Training runs are stored with their summary; a run recorded by an earlier version must load, not 500.
    row = {"index": 0, "name": "dense", "type": "Dense", "output_shape": [None, 1], "params": 4}
    old = {
        "name": "sequential",
        "layers": [{**row, "trainable_params": 4, "non_trainable_params": 0}],
        "total_params": 4,
        "trainable_params": 4,
        "non_trainable_params": 0,
        "weights_bytes": 16,
        "keras_version": "3.15.1",
        "text": "...",
    }
    summary = ModelSummary.model_validate(old)
    assert summary.mult_adds is None and summary.training_memory is None and summary.warnings == []
