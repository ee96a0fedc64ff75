"""The tasks' data and baselines: what the generator writes, and the best constant answer's loss."""

from __future__ import annotations

import numpy as np
import pytest

from app.runtime.keras.baseline import constant_loss
from app.runtime.keras.data import synthetic_data, task_data
from app.spec.tasks import TEMPORAL_ORDER_SYMBOLS, task_layout


def test_random_is_the_seed_s_data_unchanged() -> None:
    x, y = synthetic_data([None, 10, 20], [None, 1], 100, 0)
    x2, y2 = task_data(task_layout("random", (10, 20), (1,), "mse", None), 100, 0)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert int(y.sum()) == 49  # the seed's labels at seed 0: 49 of 100 are 1


def test_adding_marks_one_step_in_each_half_and_sums_them() -> None:
    x, y = task_data(task_layout("adding", (20, 2), (1,), "mse", None), 500, 3)
    assert x.shape == (500, 20, 2) and y.shape == (500, 1) and x.dtype == np.float32
    markers = x[..., 1]
    assert (markers.sum(axis=1) == 2).all()
    assert (markers[:, :10].sum(axis=1) == 1).all() and (markers[:, 10:].sum(axis=1) == 1).all()
    np.testing.assert_allclose(y[:, 0], (x[..., 0] * markers).sum(axis=1), rtol=1e-6)
    # Predicting 1 always: the variance of the sum of two U(0, 1), 1/6 (Le et al. 2015 report 0.1767).
    assert constant_loss(y, "mse", "float", None) == pytest.approx(1 / 6, abs=0.02)


def test_temporal_order_is_e_first_b_last_and_classed_by_x_and_y() -> None:
    layout = task_layout("temporal_order", (20, 8), (4,), "sparse_categorical_crossentropy", None)
    x, y = task_data(layout, 400, 0)
    symbols = np.array(TEMPORAL_ORDER_SYMBOLS)[x.argmax(axis=-1)]
    assert (symbols[:, 0] == "E").all() and (symbols[:, -1] == "B").all()
    for row, label in zip(symbols, y, strict=True):
        marked = [s for s in row if s in "XY"]
        assert len(marked) == 2 and ["XX", "XY", "YX", "YY"].index("".join(marked)) == label
    assert y.dtype == np.int32 and set(np.unique(y)) == {0, 1, 2, 3}


def test_running_parity_is_the_xor_so_far() -> None:
    x, y = task_data(task_layout("running_parity", (6, 1), (6, 1), "binary_crossentropy", None), 50, 0)
    np.testing.assert_array_equal(y[..., 0], np.cumsum(x[..., 0], axis=1) % 2)


def test_tokens_hold_exactly_one_marker_the_class() -> None:
    x, y = task_data(task_layout("tokens", (12,), (3,), "categorical_crossentropy", 10), 200, 0)
    assert x.dtype == np.int32 and x.min() >= 1 and x.max() < 10
    markers = (x <= 3).sum(axis=1)
    assert (markers == 1).all()
    np.testing.assert_array_equal(x[x <= 3] - 1, y.argmax(axis=1))


def test_sine_targets_continue_the_window() -> None:
    x, y = task_data(task_layout("sine", (30, 1), (2,), "mse", None), 20, 0)
    assert x.shape == (20, 30, 1) and y.shape == (20, 2)
    assert np.abs(x).max() < 1.3 and np.abs(y).max() <= 1.0


@pytest.mark.parametrize(
    ("loss", "expected"),
    [
        ("mse", 0.25),  # labels half 0, half 1: predict 0.5
        ("mae", 0.5),
        ("binary_crossentropy", np.log(2)),
        ("huber", 0.125),  # 0.5 * 0.5**2
        ("log_cosh", np.log(np.cosh(0.5))),
    ],
)
def test_the_baseline_is_the_best_constant_s_loss(loss: str, expected: float) -> None:
    y = np.array([[0.0], [1.0]] * 50, dtype=np.float32)
    assert constant_loss(y, loss, "float", None) == pytest.approx(expected, rel=1e-6)


def test_class_baselines_are_the_label_entropy() -> None:
    index = np.array([0, 1, 2, 3] * 25)
    assert constant_loss(index, "sparse_categorical_crossentropy", "index", 4) == pytest.approx(np.log(4))
    one_hot = np.eye(4, dtype=np.float32)[index]
    assert constant_loss(one_hot, "categorical_crossentropy", "one_hot", 4) == pytest.approx(np.log(4))
    assert constant_loss(index[:0], "mse", "index", 4) is None
