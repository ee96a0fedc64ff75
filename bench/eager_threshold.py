"""Measure where eager execution stops paying: the default of LAYERWISE_EAGER_MAX_STEPS.

For a fresh model per fit (as every training run is), graph mode pays a trace once and then runs fast steps;
eager mode pays nothing up front and runs slower steps. This times build + compile + fit of the seed's LSTM ->
Flatten -> Dense model in a warm process for a range of step counts, in both modes, and prints the largest
step count at which eager is still faster (the median of several repetitions each).

    .venv/bin/python bench/eager_threshold.py
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np


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


def main() -> None:
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
