"""What a training really takes against the engine's training-memory estimate, model by model.

    .venv/bin/python bench/training_memory.py            # the grid below
    .venv/bin/python bench/training_memory.py --one '{"model": ..., "fit": ...}'   # one training spec

Each training runs in a fresh process: it imports Keras and warms up as a worker does, reads its resident
memory (VmRSS), resets the peak (``/proc/self/clear_refs``), builds and fits the model for one graph-mode step
(samples = batch_size, so the data set is one batch) and reads the peak (VmHWM). The growth, peak minus the
resident memory before, is what the training took; the estimate is
:meth:`app.analysis.engine.ModelFigures.training_memory`. Bounded: a few seconds a case.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MIB = 2**20


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def case(layers: list[dict[str, Any]], input_shape: list[int], batch: int) -> dict[str, Any]:
    """A one-step graph-mode training of ``layers`` on ``input_shape`` at ``batch``."""
    return {
        "model": {"input_shape": input_shape, "layers": layers},
        "compile": {"run_eagerly": False},
        "data": {"samples": batch},
        "fit": {"epochs": 1, "batch_size": batch},
    }


GRID: list[dict[str, Any]] = [
    case([{"type": "LSTM", "units": 128}, {"type": "Dense", "units": 1}], [512, 32], 32),
    case([{"type": "LSTM", "units": 256}, {"type": "Dense", "units": 1}], [512, 32], 32),
    case([{"type": "LSTM", "units": 256}, {"type": "Dense", "units": 1}], [1024, 32], 32),
    case([{"type": "LSTM", "units": 256, "return_sequences": True}, {"type": "Dense", "units": 1}], [512, 32], 32),
    case([{"type": "GRU", "units": 256}, {"type": "Dense", "units": 1}], [1024, 32], 32),
    case([{"type": "SimpleRNN", "units": 256}, {"type": "Dense", "units": 1}], [1024, 32], 32),
    case(
        [{"type": "Bidirectional", "layer": {"type": "LSTM", "units": 128}}, {"type": "Dense", "units": 1}],
        [512, 32],
        32,
    ),
    case(
        [
            {"type": "Conv1D", "filters": 128, "kernel_size": 5, "padding": "same"},
            {"type": "Conv1D", "filters": 128, "kernel_size": 5, "padding": "same"},
            {"type": "GlobalAveragePooling1D"},
            {"type": "Dense", "units": 1},
        ],
        [4096, 32],
        32,
    ),
    case([{"type": "Dense", "units": 1024}, {"type": "Dense", "units": 1}], [256, 256], 64),
]


class _Quiet:
    def emit(self, event: str, data: dict[str, Any]) -> None:
        pass

    def stop_requested(self) -> str | None:
        return None


def measure_one(body: dict[str, Any]) -> dict[str, Any]:
    """Train ``body`` in this process; its estimate, and what the training took, in bytes."""
    from app.analysis.engine import analyze, analyze_graph
    from app.runtime import tasks
    from app.runtime.keras import train
    from app.spec.graph import GraphSpec
    from app.spec.training import TrainingSpec

    spec = TrainingSpec.model_validate(body).normalized()
    assert spec.fit.batch_size is not None
    figures = analyze_graph(spec.model) if isinstance(spec.model, GraphSpec) else analyze(spec.model)
    estimate = figures.training_memory(spec.fit.batch_size, spec.compile.optimizer)
    tasks.warm_up()
    before = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current VmRSS
    train.train(spec, _Quiet(), 10.0, 0)
    return {
        "estimate": estimate.total_bytes,
        "activations": estimate.activations_bytes,
        "took": _status("VmHWM") - before,
    }


def measure(body: dict[str, Any]) -> dict[str, Any]:
    """:func:`measure_one` in a fresh process (so no earlier case's memory is counted)."""
    out = subprocess.run(
        [sys.executable, __file__, "--one", json.dumps(body)],
        capture_output=True,
        text=True,
        check=True,
        env={"LAYERWISE_LOG_LEVEL": "warning", "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def describe(body: dict[str, Any]) -> str:
    layers = "+".join(
        f"{layer['type']}({layer.get('units') or layer.get('filters') or layer.get('layer', {}).get('units', '')})"
        for layer in body["model"]["layers"]
    )
    return f"{layers} on {body['model']['input_shape']} at batch {body['fit']['batch_size']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", help="a training spec as JSON: measure it in this process, print JSON")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(json.loads(args.one))))
        return
    for body in GRID:
        m = measure(body)
        print(
            f"{describe(body):62s} took {m['took'] / MIB:8.1f} MiB, estimated {m['estimate'] / MIB:8.1f} MiB "
            f"({m['estimate'] / max(m['took'], 1):.2f}x)",
            flush=True,
        )


if __name__ == "__main__":
    main()
