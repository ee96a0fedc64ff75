"""Measure where eager execution stops paying: the default of LAYERWISE_EAGER_MAX_STEPS.

For a fresh model per fit (as every training run is), graph mode pays a trace once and then runs fast steps;
eager mode pays nothing up front and runs slower steps. This times build + compile + fit of the seed's LSTM ->
Flatten -> Dense model in a warm process for a range of step counts, in both modes, and prints the largest
step count at which eager is still faster (the median of several repetitions each).

With ``--agreement N`` it instead trains N random small models (LSTM, GRU, Dense, Flatten, Dropout; random
shapes, losses, optimizers, batch sizes, seeds) for one epoch through the service's own training code in both
modes, and counts how often the losses are not bit-identical, and by how much (relative), separately for the
runs the service would run eagerly by itself and for those with dropout.

    .venv/bin/python bench/eager_threshold.py [--agreement 30]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.runtime.keras import train as keras_train
from app.spec.training import TrainingSpec


def fit_seconds(steps: int, eager: bool, seed: int) -> float:
    began = time.perf_counter()
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input(shape=(10, 20)),
            keras.layers.LSTM(30, return_sequences=True),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )
    model.compile(loss="mse", optimizer="adam", run_eagerly=eager)
    rng = np.random.default_rng(seed)
    x = rng.random((steps * 32, 10, 20), dtype=np.float32)
    y = rng.integers(0, 2, size=(steps * 32, 1)).astype(np.float32)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    return time.perf_counter() - began


class _NoChannel:
    def emit(self, event: str, data: dict[str, Any]) -> None:
        pass

    def stop_requested(self) -> str | None:
        return None


def random_training(rng: random.Random) -> dict[str, Any]:
    """A random small one-epoch training request (the service's body)."""
    units = rng.randint(2, 40)
    layers = rng.choice(
        [
            [{"type": "LSTM", "units": units}, {"type": "Dense", "units": 1}],
            [
                {"type": "LSTM", "units": units, "return_sequences": True},
                {"type": "Flatten"},
                {"type": "Dense", "units": rng.randint(1, 3), "activation": "sigmoid"},
            ],
            [{"type": "GRU", "units": units}, {"type": "Dense", "units": 1}],
            [{"type": "GRU", "units": units}, {"type": "Dropout", "rate": 0.3}, {"type": "Dense", "units": 1}],
        ]
    )
    return {
        "model": {"input_shape": [rng.randint(1, 12), rng.randint(1, 20)], "layers": layers},
        "compile": {
            "loss": rng.choice(["mse", "binary_crossentropy", "mae"]),
            "optimizer": rng.choice(["adam", "sgd", "rmsprop"]),
        },
        "data": {"samples": rng.randint(1, 448)},
        "fit": {"epochs": 1, "batch_size": rng.choice([None, 8, 16, 32]), "shuffle": rng.random() < 0.7},
        "seed": rng.randint(0, 100),
    }


def agreement(n: int) -> None:
    """Train ``n`` random trainings in both modes; print how many histories differ, and by how much."""
    rng = random.Random(1)
    tally: dict[str, list[float]] = {"auto eager": [], "with dropout": []}
    for _ in range(n):
        body = random_training(rng)
        spec = TrainingSpec.model_validate(body).normalized()
        # No run here validates and the step limit is out of the way: only dropout keeps one in graph mode.
        auto_eager = keras_train.execution_mode(spec, eager_max_steps=10**9) == "eager"
        group = "auto eager" if auto_eager else "with dropout"
        losses = []
        for eagerly in (False, True):
            forced = TrainingSpec.model_validate({**body, "compile": {**body["compile"], "run_eagerly": eagerly}})
            losses.append(keras_train.train(forced.normalized(), _NoChannel())["history"]["loss"])
        graph, eager = losses
        tally[group].append(max(abs(g - e) / max(abs(g), 1e-30) for g, e in zip(graph, eager, strict=True)))
    for group, diffs in tally.items():
        if diffs:
            differ = [d for d in diffs if d > 0]
            worst = f", at most {max(differ):.1e} relative" if differ else ""
            print(f"{group:>13}: {len(differ)} of {len(diffs)} histories not bit-identical{worst}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--agreement", type=int, metavar="N", help="compare the modes' losses on N random runs")
    args = parser.parse_args()
    if args.agreement:
        agreement(args.agreement)
        return
    for mode in (False, True):  # warm both paths
        fit_seconds(2, mode, 0)
    print(f"{'steps':>6}{'graph s':>10}{'eager s':>10}")
    best = 0
    for steps in (1, 2, 4, 8, 10, 12, 14, 16, 24, 32, 64, 128):
        graph = statistics.median(fit_seconds(steps, False, s) for s in range(5))
        eager_s = statistics.median(fit_seconds(steps, True, s) for s in range(5))
        print(f"{steps:>6}{graph:>10.3f}{eager_s:>10.3f}")
        if eager_s < graph:
            best = steps
    print(f"eager is faster up to {best} steps on this machine")


if __name__ == "__main__":
    main()
