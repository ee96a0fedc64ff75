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


def seed_training(epochs: int, steps_per_execution: int | None = 1, **more: Any) -> TrainingSpec:
    """The seed's first model on 100 samples: 4 batches of 32 per epoch, one step per call of the train function
    unless ``steps_per_execution`` says otherwise (None: the service chooses); ``more`` goes into ``fit``."""
    return TrainingSpec.model_validate(
        {
            "model": {
                "input_shape": [10, 20],
                "layers": [{"type": "LSTM", "units": 30}, {"type": "Dense", "units": 1}],
            },
            "data": {"samples": 100},
            "fit": {"epochs": epochs, **more},
            "compile": {"steps_per_execution": steps_per_execution},
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


def test_grouped_steps_give_the_history_of_single_steps() -> None:
    # 1,000 samples, 800 to train: 25 steps an epoch, so groups of 7 leave a group of 4; validation too.
    def history(grouped: int | None) -> dict[str, Any]:
        spec = seed_training(3, grouped, validation_split=0.2)
        spec = spec.model_copy(update={"data": spec.data.model_copy(update={"samples": 1000})})
        out = keras_train.train(spec, Recording())
        assert out["steps_per_execution"] == (grouped or 42)  # the service's choice: more than an epoch's
        recorded: dict[str, Any] = out["history"]
        return recorded

    single = history(1)
    assert set(single) == {"loss", "val_loss"} and len(single["loss"]) == 3
    assert history(7) == single and history(None) == single


def test_a_stop_request_is_seen_once_per_group() -> None:
    # Groups of 2 of an epoch's 4 batches: asked before fit (call 1), after batch 2 (2) and 4 (3) of epoch 1, then
    # after batch 2 of epoch 2 (4), which stops; the batch events come once per group, the epoch's last included.
    channel = Recording()
    channel.n = 4
    out = keras_train.train(seed_training(2, 2), channel, batch_every_s=0)
    assert out["stop_reason"] == "timed_out" and channel.calls == 4
    assert out["epochs_completed"] == 1 and len(out["history"]["loss"]) == 1
    batches = [(data["epoch"], data["batch"]) for kind, data in channel.events if kind == "batch"]
    assert batches == [(1, 2), (1, 4), (2, 2)]


def test_the_service_groups_cheap_steps_and_never_an_eager_run() -> None:
    def chosen(units: int, samples: int, execution: str = "graph") -> int:
        layers = [{"type": "LSTM", "units": units}, {"type": "Dense", "units": 1}]
        spec = TrainingSpec.model_validate(
            {"model": {"input_shape": [10, 20], "layers": layers}, "data": {"samples": samples}}
        ).normalized()
        return keras_train.steps_per_execution(spec, execution)

    # The seed's step: 3 x 61,231 Mult-Adds (the engine's: 10 x 4 x 30 x (20 + 30 + 1) + 31) x 32 samples
    # = 5.88 M; 250 M // 5.88 M = 42 steps a group.
    assert chosen(30, 10_000) == 42
    assert chosen(30, 100) == 42  # the same for any number of samples: Keras ends a group at an epoch's end
    assert chosen(30, 100, "eager") == 1
    # 42.8 M Mult-Adds a sample (10 x 4 x 1024 x (20 + 1024 + 1) + 1025), x 3 x 32: 4.1 G, past a group's budget.
    assert chosen(1024, 10_000) == 1


def test_a_model_trained_before_trains_again_exactly_as_a_new_one() -> None:
    # Dropout (seed states), BatchNormalization (moving statistics), validation, shuffling and early stopping:
    # the second run of one model reuses the first's compiled model and traced functions, and must give the
    # history a new model gives.
    layers = [
        {"type": "LSTM", "units": 16, "return_sequences": True, "dropout": 0.2},
        {"type": "BatchNormalization"},
        {"type": "Dropout", "rate": 0.3},
        {"type": "Flatten"},
        {"type": "Dense", "units": 1},
    ]

    def spec(seed: int, samples: int, epochs: int) -> TrainingSpec:
        return TrainingSpec.model_validate(
            {
                "model": {"input_shape": [10, 20], "layers": layers},
                "data": {"samples": samples},
                "fit": {"epochs": epochs, "validation_split": 0.25, "early_stopping": {"patience": 1}},
                "compile": {"metrics": ["mae"]},
                "seed": seed,
            }
        ).normalized()

    keras_train._last = None
    new = keras_train.train(spec(7, 300, 4), Recording())["history"]
    keras_train._last = None
    keras_train.train(spec(1, 200, 2), Recording())
    first = keras_train._last
    assert first is not None
    again = keras_train.train(spec(7, 300, 4), Recording())["history"]
    assert keras_train._last is not None and keras_train._last.model is first.model  # reused, not rebuilt
    assert set(again) == {"loss", "val_loss", "mae", "val_mae"} and again == new


def test_a_tiny_model_runs_eagerly_every_time_and_is_not_kept() -> None:
    # Eager and graph differ in the last bits of float32: the mode is the spec's, whatever ran before.
    keras_train._last = None
    runs = [keras_train.train(seed_training(1, None), Recording(), eager_max_steps=14) for _ in range(2)]
    assert [run["execution"] for run in runs] == ["eager", "eager"] and runs[0]["history"] == runs[1]["history"]
    assert keras_train._last is None  # nothing traced to keep
    graph = keras_train.train(seed_training(2), Recording())  # 8 steps, graph mode (eager_max_steps 0)
    kept = keras_train._last
    assert graph["execution"] == "graph" and kept is not None
    keras_train.train(seed_training(1, None), Recording(), eager_max_steps=14)  # eager: the graph model stays
    assert keras_train._last is kept


def test_a_group_that_ends_past_the_epoch_counts_the_epoch_s_batches() -> None:
    # 4 batches in groups of 3: Keras reports the second group's end as batch 6 (3 + 3), past the epoch's 4.
    channel = Recording()
    out = keras_train.train(seed_training(2, 3), channel, batch_every_s=0)
    batches = [(data["epoch"], data["batch"], data["batches"]) for kind, data in channel.events if kind == "batch"]
    assert batches == [(1, 3, 4), (1, 4, 4), (2, 3, 4), (2, 4, 4)] and out["epochs_completed"] == 2
    # The run's last group is not asked (every step has trained): a stop from the 5th call on cuts nothing.
    late = StopFromCall(5)  # calls: before fit, after each of epoch 1's two groups, after epoch 2's first
    whole = keras_train.train(seed_training(2, 3), late)
    assert late.calls == 4 and whole["stop_reason"] is None and whole["epochs_completed"] == 2


def test_a_stateful_model_is_never_reused() -> None:
    # Its carried states are not Keras Layer.variables: a reused model would start from the last run's states.
    spec = TrainingSpec.model_validate(
        {
            "model": {"batch_input_shape": [5, 10, 4], "layers": [{"type": "LSTM", "units": 8, "stateful": True}]},
            "data": {"samples": 100},
            "fit": {"epochs": 2},
            "compile": {"run_eagerly": False},
            "seed": 1,
        }
    ).normalized()
    first = keras_train.train(spec, Recording())["history"]
    assert keras_train._last is None
    assert keras_train.train(spec, Recording())["history"] == first
