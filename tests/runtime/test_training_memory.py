"""The engine's training-memory estimate against the peak resident memory of real trainings.

Each case is one graph-mode step in a fresh process (``bench/training_memory.py``). The estimate must cover what
the training took, less TensorFlow's fixed cost of tracing a step (:data:`TRACING_BYTES`) and the data set's
copies (the arrays and tf.data's, :func:`data_bytes`), and must not be wildly above it.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from app.spec.examples import RESIDUAL
from app.spec.training import TrainingSpec
from tests.conftest import pure_tests_only
from tests.serving import ROOT

# The measurement is the benchmark's own (bench/ is scripts, not a package).
_spec = importlib.util.spec_from_file_location("bench_training_memory", ROOT / "bench" / "training_memory.py")
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
case, measure = bench.case, bench.measure

# What any graph-mode training takes beyond the model: tracing the step, TensorFlow's thread pools (~60 MiB).
TRACING_BYTES = 64 * 2**20

CASES = {
    "lstm": case([{"type": "LSTM", "units": 128}, {"type": "Dense", "units": 1}], [512, 32], 32),
    "gru_sequences": case(
        [{"type": "GRU", "units": 128, "return_sequences": True}, {"type": "Dense", "units": 1}], [512, 32], 32
    ),
    "bidirectional_lstm_small_batch": case(
        [{"type": "Bidirectional", "layer": {"type": "LSTM", "units": 256}}, {"type": "Dense", "units": 1}],
        [128, 32],
        8,
    ),
    "conv1d": case(
        [
            {"type": "Conv1D", "filters": 128, "kernel_size": 5, "padding": "same"},
            {"type": "Conv1D", "filters": 128, "kernel_size": 5, "padding": "same"},
            {"type": "GlobalAveragePooling1D"},
            {"type": "Dense", "units": 1},
        ],
        [4096, 32],
        32,
    ),
    # The playground's transformer_block at 1,024 steps: 4 heads' weights of a million query-key pairs.
    "attention": {
        "model": {**RESIDUAL, "inputs": [{"name": "series", "shape": [1024, 1]}]},
        "compile": {"run_eagerly": False},
        "data": {"samples": 8},
        "fit": {"epochs": 1, "batch_size": 8},
    },
}


def data_bytes(body: dict[str, Any]) -> int:
    """The synthetic data set twice (the arrays, and the tensors tf.data makes of them), float32."""
    spec = TrainingSpec.model_validate(body).normalized()
    values = 1
    for axis in spec.model.batch_shape[1:]:
        assert axis is not None
        values *= axis
    return 2 * spec.data.samples * (values + 1) * 4


@pytest.mark.parametrize("name", CASES)
def test_the_estimate_bounds_what_a_real_training_takes(name: str) -> None:
    pure_tests_only("Keras (a real training in a subprocess)")
    body = CASES[name]
    m = measure(body)
    took, estimate = m["took"], m["estimate"]
    assert took <= estimate + TRACING_BYTES + data_bytes(body), f"{name}: took {took:,} B, estimated {estimate:,} B"
    assert estimate <= 4 * took, f"{name}: estimated {estimate:,} B, 4x more than the {took:,} B it took"
