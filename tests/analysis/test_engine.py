"""The analytic engine, the limits and the warnings alone (no Keras, no workers)."""

from __future__ import annotations

from typing import Any

import pytest

from app.analysis.engine import analyze, analyze_graph
from app.analysis.warnings import model_warnings, training_warnings
from app.config import Limits
from app.errors import SpecError
from app.spec.examples import RESIDUAL, SEQ2SEQ
from app.spec.graph import GraphSpec
from app.spec.model import ModelSpec
from app.spec.training import TrainingSpec
from app.summaries.service import SummaryService

SERVICE = SummaryService(pool=None, timeout_s=1.0)  # type: ignore[arg-type]  # check() needs no pool


def model(layers: list[dict[str, Any]], **kw: Any) -> ModelSpec:
    return ModelSpec.model_validate({"input_shape": [10, 20], "layers": layers, **kw}).normalized()


def warning_types(layers: list[dict[str, Any]], **kw: Any) -> list[str]:
    spec = model(layers, **kw)
    return [w.type for w in model_warnings(spec, analyze(spec))]


def training(layers: list[dict[str, Any]], **kw: Any) -> TrainingSpec:
    body = {"model": {"input_shape": [10, 20], "layers": layers}, **kw}
    return TrainingSpec.model_validate(body).normalized()


def test_training_memory_follows_the_optimizer() -> None:
    # seed 1: 6,151 params; SGD keeps no slot, RMSprop one, Adam two.
    figures = analyze(model([{"type": "LSTM", "units": 30}, {"type": "Dense", "units": 1}]))
    assert figures.training_memory(32, "sgd").optimizer_bytes == 0
    assert figures.training_memory(32, "rmsprop").optimizer_bytes == 6151 * 4
    assert figures.training_memory(32, "adam").optimizer_bytes == 2 * 6151 * 4


def test_check_training_holds_memory_to_the_training_batch() -> None:
    service = SummaryService(pool=None, timeout_s=1.0, limits=Limits(max_memory_bytes=1_000_000))  # type: ignore[arg-type]
    layers = [{"type": "LSTM", "units": 30}, {"type": "Dense", "units": 1}]
    # The LSTM's backpropagation through time keeps B*10 timesteps*12*30 units*4 bytes of states and the weight
    # gradients of min(10, 32) loop iterations, 10*6,120*4 = 244,800 bytes.
    # batch 32: 6,151*4*4 + 32*2*124 + 32*800 + 32*14,400 + 244,800 = 837,552 bytes, under 1,000,000.
    assert service.check_training(training(layers)).batch_size == 32
    # batch 256: 98,416 + 63,488 + 204,800 + 3,686,400 + 244,800 = 4,297,904 bytes, over.
    with pytest.raises(SpecError) as info:
        service.check_training(training(layers, fit={"batch_size": 256}))
    (item,) = info.value.items
    assert item["loc"] == ["body", "model"] and "4,297,904 bytes" in item["msg"] and "1,000,000 bytes" in item["msg"]


def test_a_recurrent_layer_counts_what_backpropagation_through_time_keeps() -> None:
    """The issue's LSTM: 1,570 units over 4,096 timesteps at batch 8 reached 4.2 GB (a worker's ~0.6 GB
    included); it was estimated at 151 MiB."""
    spec = ModelSpec.model_validate(
        {"input_shape": [4096, 20], "layers": [{"type": "LSTM", "units": 1570}, {"type": "Dense", "units": 1}]}
    ).normalized()
    figures = analyze(spec)
    lstm = figures.layers[0]
    assert lstm.step_scalars == 12 * 1570 and lstm.timesteps == 4096
    params = 4 * 1570 * (20 + 1570 + 1)
    assert lstm.bptt_bytes(8) == (8 * 4096 * 12 * 1570 + 32 * params) * 4 == 3_748_305_920
    memory = figures.training_memory(8)
    assert memory.activations_bytes == 8 * 2 * (1570 + 1) * 4 + lstm.bptt_bytes(8)
    assert 3.4 * 2**30 < memory.total_bytes < 4 * 2**30
    # Both directions of a Bidirectional; none for a layer that does not recur.
    bidirectional = ModelSpec.model_validate(
        {"input_shape": [8, 4], "layers": [{"type": "Bidirectional", "layer": {"type": "GRU", "units": 5}}]}
    ).normalized()
    assert analyze(bidirectional).layers[0].step_scalars == 2 * 12 * 5
    dense = ModelSpec.model_validate({"input_shape": [8, 4], "layers": [{"type": "Dense", "units": 5}]}).normalized()
    assert analyze(dense).layers[0].step_scalars == 0 and analyze(dense).layers[0].bptt_bytes(32) == 0


def test_timesteps_limit_names_the_layer_that_steps() -> None:
    service = SummaryService(pool=None, timeout_s=1.0, limits=Limits(max_timesteps=5))  # type: ignore[arg-type]
    spec = ModelSpec.model_validate(
        {"input_shape": [10, 20], "layers": [{"type": "Dense", "units": 3}, {"type": "GRU", "units": 2}]}
    )
    with pytest.raises(SpecError) as info:
        service.check(spec)
    assert [item["loc"] for item in info.value.items] == [["body", "layers", 1]]
    assert "steps over 10 timesteps, over the limit of 5" in str(info.value)


def test_units_limit_looks_inside_wrappers() -> None:
    spec = ModelSpec.model_validate(
        {"input_shape": [10, 20], "layers": [{"type": "Bidirectional", "layer": {"type": "LSTM", "units": 9000}}]}
    )
    with pytest.raises(SpecError) as info:
        SERVICE.check(spec)
    assert ["body", "layers", 0, "layer", "units"] in [item["loc"] for item in info.value.items]


def test_model_warnings() -> None:
    assert warning_types([{"type": "LSTM", "units": 30}, {"type": "Dense", "units": 1}]) == []
    assert warning_types([{"type": "Flatten"}, {"type": "Dense", "units": 1, "activation": "softmax"}]) == [
        "softmax_single_unit"
    ]
    assert warning_types([{"type": "LSTM", "units": 3}, {"type": "Dropout", "rate": 0.5}]) == ["dropout_last"]
    # A Dense per timestep whose output an LSTM then reduces is deliberate.
    assert warning_types([{"type": "Dense", "units": 8}, {"type": "LSTM", "units": 4}]) == []
    assert warning_types([{"type": "Dense", "units": 8}]) == ["dense_on_sequence"]


def test_training_warnings_on_a_seed_model_are_none() -> None:
    assert training_warnings(training([{"type": "LSTM", "units": 30}, {"type": "Dense", "units": 1}])) == []


FIXED = {"batch_input_shape": [5, 10, 20]}


@pytest.mark.parametrize(
    ("layers", "model_kw", "kw", "expected"),
    [
        # Keras 3 trains a non-stateful fixed-batch model with any batch size: surprising, not refused.
        ([{"type": "LSTM", "units": 3}], FIXED, {"fit": {"batch_size": 10}}, [("fixed_batch_size", None)]),
        ([{"type": "LSTM", "units": 3}], FIXED, {"data": {"samples": 53}}, [("partial_last_batch", None)]),
        (
            [{"type": "LSTM", "units": 3, "return_sequences": True}, {"type": "Dense", "units": 1}],
            None,
            {},
            [("dense_on_sequence", 1), ("labels_shape", 1)],
        ),
        (
            [{"type": "LSTM", "units": 3}, {"type": "Dense", "units": 1}],
            None,
            {"compile": {"loss": "binary_crossentropy"}},
            [("loss_activation", 1)],
        ),
        (
            [{"type": "LSTM", "units": 3}, {"type": "Dense", "units": 1, "activation": "sigmoid"}],
            None,
            {"compile": {"loss": "binary_crossentropy"}},
            [],
        ),
        (
            [{"type": "LSTM", "units": 3}, {"type": "Dense", "units": 1, "activation": "softmax"}],
            None,
            {"compile": {"loss": "categorical_crossentropy"}},
            [("softmax_single_unit", 1), ("loss_activation", 1)],
        ),
        (
            [{"type": "LSTM", "units": 3, "stateful": True}],
            FIXED,
            {"data": {"samples": 50}},
            [("stateful_shuffle", 0)],
        ),
    ],
)
def test_training_warnings(
    layers: list[dict[str, Any]], model_kw: dict[str, Any] | None, kw: dict[str, Any], expected: list[Any]
) -> None:
    body = {"model": {"layers": layers, **(model_kw or {"input_shape": [10, 20]})}, **kw}
    warnings = training_warnings(TrainingSpec.model_validate(body).normalized())
    assert [(w.type, w.layer) for w in warnings] == expected
    assert all(w.msg and w.fix for w in warnings)


def residual_block(steps: int, dropout: float) -> dict[str, Any]:
    """The playground's transformer_block (MultiHeadAttention with 4 heads on a (steps, 1) series)."""
    attention = {**RESIDUAL["layers"][0], "dropout": dropout}
    series = [{"name": "series", "shape": [steps, 1]}]
    return {**RESIDUAL, "inputs": series, "layers": [attention, *RESIDUAL["layers"][1:]]}


def test_attention_keeps_its_weights_of_every_query_key_pair_for_the_backward_pass() -> None:
    def kept(steps: int, dropout: float) -> int:
        figures = analyze_graph(GraphSpec.model_validate(residual_block(steps, dropout)).normalized())
        return figures.layers[0].kept_scalars

    assert kept(128, 0.0) == 2 * 4 * 128 * 128  # the softmax weights of 4 heads, and their gradient's product
    assert kept(128, 0.25) == 3 * 4 * 128 * 128  # and their dropout mask
    assert kept(256, 0.25) == 4 * kept(128, 0.25)  # the square of the length

    figures = analyze_graph(GraphSpec.model_validate(residual_block(128, 0.25)).normalized())
    # The outputs of the layers with weights: attention, norm and ff_2 (128, 1), ff_1 (128, 4), classes (2).
    outputs = (3 * 128 + 128 * 4 + 2) * 4
    assert figures.training_memory(32).activations_bytes == 32 * 2 * (outputs + 3 * 4 * 128 * 128 * 4)


def test_a_long_attention_is_refused_for_its_memory_before_any_worker() -> None:
    # 100,000 steps: 4 heads' weights of 10^10 pairs, 320 GB a sample; the estimate once said 344 MB, and
    # TensorFlow's ResourceExhaustedError ended the run instead.
    body = {"model": residual_block(100_000, 0.0), "fit": {"batch_size": 1}}
    with pytest.raises(SpecError) as refused:
        SERVICE.check_training(TrainingSpec.model_validate(body).normalized())
    (item,) = refused.value.items
    assert item["type"] == "limit_exceeded" and "LAYERWISE_MAX_MEMORY_BYTES" in item["msg"], item


def test_a_layer_s_activation_bytes_count_every_output_it_returns() -> None:
    # The seq2seq encoder (LSTM(256), return_state): its output and its two states, 3 x 256 float32 a sample.
    figures = analyze_graph(GraphSpec.model_validate(SEQ2SEQ).normalized())
    encoder = next(layer for layer in figures.layers if layer.name == "encoder")
    assert encoder.output_shapes == ((None, 256), (None, 256), (None, 256))
    assert encoder.activation_bytes == 3 * 256 * 4
