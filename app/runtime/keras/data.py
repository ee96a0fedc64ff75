"""The synthetic data a training fits on, made as the seed notebook makes it."""

from __future__ import annotations

import numpy as np


def synthetic_data(
    batch_shape: list[int | None], output_shape: list[int | None], samples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels as the seed notebook makes them.

    Features: float32 uniform in [0, 1), shape ``(samples, *batch_shape[1:])``. Labels: integers in {0, 1}
    (as float32), shape ``(samples, *output_shape[1:])``. Both from ``numpy.random.default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    x = rng.random((samples, *[int(d) for d in batch_shape[1:] if d is not None]), dtype=np.float32)
    y = rng.integers(0, 2, size=(samples, *[int(d) for d in output_shape[1:] if d is not None])).astype(np.float32)
    return x, y
