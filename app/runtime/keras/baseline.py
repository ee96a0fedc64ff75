"""The loss of the best constant answer: what a model that ignores its input can reach, the line a run has to
beat to have learned anything.

numpy only (no Keras), so that it is cheap and testable alone; it lives with the data it scores.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from app.spec.tasks import Encoding

# Keras's fuzz factor (keras.config.epsilon()): probabilities are clipped to [EPSILON, 1 - EPSILON] in the
# cross-entropies, and denominators and logarithms of mape and msle are kept away from 0 by it.
EPSILON = 1e-7
HUBER_DELTA = 1.0  # keras.losses.Huber's default
_GOLDEN_STEPS = 200  # golden-section steps: the bracket shrinks by 0.618**200, far below float64's precision


def _entropy(p: np.ndarray) -> np.ndarray:
    """Cross-entropy of class frequencies ``p`` (last axis) with themselves, as Keras's clipped
    categorical_crossentropy scores them: ``-sum(p * log(clip(p)))``."""
    return np.asarray(-(p * np.log(np.clip(p, EPSILON, 1 - EPSILON))).sum(axis=-1))


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, EPSILON, 1 - EPSILON)
    return np.asarray(-(p * np.log(q) + (1 - p) * np.log(1 - q)))


def _golden(y: np.ndarray, loss: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Per column of ``y`` (samples x elements), the least mean of ``loss(y, c)`` over a constant ``c``, for a
    loss convex in ``c`` (its minimum is within the column's range): golden-section search."""
    lo, hi = y.min(axis=0), y.max(axis=0)
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(_GOLDEN_STEPS):
        a = hi - ratio * (hi - lo)
        b = lo + ratio * (hi - lo)
        fa, fb = loss(y, a[None, :]).mean(axis=0), loss(y, b[None, :]).mean(axis=0)
        left = fa <= fb
        hi = np.where(left, b, hi)
        lo = np.where(left, lo, a)
    c = (lo + hi) / 2
    return np.asarray(loss(y, c[None, :]).mean(axis=0))


def _huber(y: np.ndarray, c: np.ndarray) -> np.ndarray:
    err = np.abs(y - c)
    return np.asarray(np.where(err <= HUBER_DELTA, 0.5 * err**2, HUBER_DELTA * (err - 0.5 * HUBER_DELTA)))


def _log_cosh(y: np.ndarray, c: np.ndarray) -> np.ndarray:
    x = c - y
    return np.asarray(x + np.logaddexp(0.0, -2.0 * x) - np.log(2.0))  # Keras's stable form of log(cosh(x))


def _mape(y: np.ndarray, c: np.ndarray) -> np.ndarray:
    return np.asarray(100.0 * np.abs(y - c) / np.maximum(np.abs(y), EPSILON))


def constant_loss(y: np.ndarray, loss: str, encoding: Encoding, classes: int | None) -> float | None:
    """The loss of the best constant answer on labels ``y``: the least value of ``loss`` that one output, the
    same for every sample, reaches (each output element or, for class losses, each position's distribution
    chosen on its own). ``None`` for no labels.

    Closed forms where there is one: mse the variance; mae the mean distance to the median; msle the variance
    of ``log(1 + y)``; cross-entropies the entropy of the label frequencies (clipped as Keras clips its
    predictions). huber, log_cosh and mape (convex in the constant) by golden-section search.

    Args:
        y: labels as :func:`app.runtime.keras.data.task_data` writes them: ``(samples, *output)`` floats, or
            ``(samples, *output[:-1])`` class indices for the ``index`` encoding.
        loss: a Keras loss name of :data:`app.spec.training.Loss`.
        encoding: how ``y`` is written.
        classes: the number of classes for the ``index`` encoding.

    Raises:
        ValueError: a loss this function does not know.
    """
    if len(y) == 0:
        return None
    if encoding == "index":
        assert classes is not None
        freq = np.stack([(y == k).mean(axis=0) for k in range(classes)], axis=-1)
        return float(_entropy(freq).mean())
    flat = y.reshape(len(y), -1).astype(np.float64)
    if loss == "categorical_crossentropy":
        return float(_entropy(y.astype(np.float64).mean(axis=0)).mean())
    if loss == "binary_crossentropy":
        return float(_binary_entropy(flat.mean(axis=0)).mean())
    if loss == "mse":
        return float(flat.var(axis=0).mean())
    if loss == "mae":
        return float(np.abs(flat - np.median(flat, axis=0)).mean())
    if loss == "msle":
        return float(np.log1p(np.maximum(flat, EPSILON)).var(axis=0).mean())
    if loss == "huber":
        return float(_golden(flat, _huber).mean())
    if loss == "log_cosh":
        return float(_golden(flat, _log_cosh).mean())
    if loss == "mape":
        return float(_golden(flat, _mape).mean())
    raise ValueError(f"no baseline for loss {loss!r}")
