"""When a training's stop request counts: in a real Keras fit, in this process (the worker's code path)."""

from __future__ import annotations

from typing import Any

import pytest

from app.runtime.keras import train as keras_train
from app.spec.training import TrainingSpec


class StopFromCall:
    """A run channel that asks to stop (``reason``) from its ``n``-th ``stop_requested`` call on.

    ``train`` asks once before ``fit`` (a run cancelled while it was built never fits), then at the end of every
    batch but the run's last: call ``n`` is the end of batch ``n - 1``.
    """

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
    # 2 epochs x 4 batches: a stop asked for from the 8th and last batch on, after every step has run.
    out = keras_train.train(seed_training(2), StopFromCall(9, reason))
    assert out["stop_reason"] is None and out["epochs_completed"] == 2 and len(out["history"]["loss"]) == 2


def test_a_stop_within_an_epoch_keeps_only_the_whole_epochs() -> None:
    # Keras's History would also hold the cut epoch, with the mean loss of the batches it ran.
    whole = keras_train.train(seed_training(2), StopFromCall(10**9))["history"]["loss"]
    channel = StopFromCall(8)  # the 3rd of the second epoch's 4 batches
    out = keras_train.train(seed_training(2), channel)
    assert out["stop_reason"] == "timed_out" and channel.calls == 8
    assert out["epochs_completed"] == 1 and out["history"]["loss"] == whole[:1]
    out = keras_train.train(seed_training(2), StopFromCall(2))  # the first batch
    assert out["stop_reason"] == "timed_out" and out["epochs_completed"] == 0 and out["history"]["loss"] == []


def test_a_stop_at_an_epoch_s_last_batch_keeps_that_epoch() -> None:
    out = keras_train.train(seed_training(3), StopFromCall(9))  # the last batch of the second of 3 epochs
    assert out["stop_reason"] == "timed_out"
    assert out["epochs_completed"] == 2 and len(out["history"]["loss"]) == 2


def test_a_run_cancelled_before_it_fits_does_not_fit() -> None:
    channel = StopFromCall(1, "cancelled")
    out = keras_train.train(seed_training(2), channel)
    assert out["stop_reason"] == "cancelled" and out["epochs_completed"] == 0 and channel.calls == 1
    assert out["fit_s"] == 0.0 and out["summary"]["total_params"] == 6151


class Recording(StopFromCall):
    """A channel that never stops the run and keeps every event it is sent."""

    def __init__(self) -> None:
        super().__init__(10**9)
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, event: str, data: dict[str, Any]) -> None:
        self.events.append((event, data))


def test_the_baseline_is_sent_before_the_first_batch_and_the_model_file_returned() -> None:
    channel = Recording()
    out = keras_train.train(seed_training(1), channel, max_model_bytes=10**7)
    assert channel.events[0] == ("baseline", out["baseline"])
    assert [kind for kind, _ in channel.events[1:]] == ["batch"] * (len(channel.events) - 2) + ["epoch"]
    assert out["model_file"][:2] == b"PK" and out["model_file_bytes"] == len(out["model_file"])
    too_small = keras_train.train(seed_training(1), Recording(), max_model_bytes=1000)
    assert too_small["model_file"] is None and too_small["model_file_bytes"] == out["model_file_bytes"]
