"""When a training's stop request counts: in a real Keras fit, in this process (the worker's code path)."""

from __future__ import annotations

from typing import Any

import pytest

from app import keras_build
from app.spec import TrainingSpec


class StopFromCall:
    """A run channel that asks to stop (``reason``) from its ``n``-th ``stop_requested`` call on."""

    def __init__(self, n: int, reason: str = "timed_out") -> None:
        self.n, self.reason, self.calls = n, reason, 0

    def emit(self, event: str, data: dict[str, Any]) -> None:
        pass

    def stop_requested(self) -> str | None:
        self.calls += 1
        return self.reason if self.calls >= self.n else None


def seed_training(epochs: int) -> TrainingSpec:
    """The seed's first model on 100 samples: 4 batches of 32 per epoch."""
    return TrainingSpec.model_validate(
        {
            "model": {
                "input_shape": [10, 20],
                "layers": [{"type": "LSTM", "units": 30}, {"type": "Dense", "units": 1}],
            },
            "data": {"samples": 100},
            "fit": {"epochs": epochs},
        }
    ).normalized()


@pytest.mark.parametrize("reason", ["timed_out", "cancelled"])
def test_a_stop_at_the_last_batch_cuts_nothing_so_the_run_is_whole(reason: str) -> None:
    # 2 epochs x 4 batches: the stop is asked for at the 8th and last batch, after every step has run.
    out = keras_build.train(seed_training(2), StopFromCall(8, reason))
    assert out["stop_reason"] is None and out["epochs_completed"] == 2 and len(out["history"]["loss"]) == 2


def test_a_stop_before_the_last_batch_ends_the_run_at_that_epoch() -> None:
    channel = StopFromCall(7)  # the 7th of 8 batches
    out = keras_build.train(seed_training(2), channel)
    assert out["stop_reason"] == "timed_out" and out["epochs_completed"] == 2 and channel.calls == 7
    out = keras_build.train(seed_training(2), StopFromCall(2))  # in the first epoch
    assert out["stop_reason"] == "timed_out" and out["epochs_completed"] == 1
