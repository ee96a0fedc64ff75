"""The synthetic data a training fits on, made as the seed notebook makes it."""

from __future__ import annotations

import numpy as np


def synthetic_data(
    batch_shape: list[int | None],
    output_shape: list[int | None],
    samples: int,
    seed: int,
    tokens: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels as the seed notebook makes them, or token ids for a model that starts with an
    Embedding.

    Features: float32 uniform in [0, 1), shape ``(samples, *batch_shape[1:])``; with ``tokens`` (the first
    Embedding's ``input_dim``), int32 uniform in ``[0, tokens)`` instead, every id of the vocabulary as likely.
    Labels: integers in {0, 1} (as float32), shape ``(samples, *output_shape[1:])``. Both from
    ``numpy.random.default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    shape = (samples, *[int(d) for d in batch_shape[1:] if d is not None])
    x: np.ndarray = (
        rng.random(shape, dtype=np.float32) if tokens is None else rng.integers(0, tokens, size=shape, dtype=np.int32)
    )
    y = rng.integers(0, 2, size=(samples, *[int(d) for d in output_shape[1:] if d is not None])).astype(np.float32)
    return x, y
