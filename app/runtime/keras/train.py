"""Short trainings: compile and fit a built model on synthetic data, reporting progress and stopping on request.

It runs inside worker processes (:mod:`app.runtime.tasks`, or a Celery child: :mod:`app.scaleout.worker`).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import keras

from app.runtime.keras.baseline import constant_loss
from app.runtime.keras.build import build_any, describe
from app.runtime.keras.data import data_layout, graph_data, task_data
from app.spec.graph import GraphSpec
from app.spec.layers import KerasLayer
from app.spec.training import KERAS_DEFAULT_BATCH_SIZE, TrainingSpec, split_samples

OPTIMIZERS: dict[str, Callable[..., Any]] = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
    "adagrad": keras.optimizers.Adagrad,
    "adamax": keras.optimizers.Adamax,
    "nadam": keras.optimizers.Nadam,
}


class RunChannel(Protocol):
    """How a training talks to whoever started it: progress out, stop requests in."""

    def emit(self, event: str, data: dict[str, Any]) -> None:
        """Send one progress event (``"baseline"`` once before fitting, then ``"epoch"`` and ``"batch"``) with
        plain-data fields."""

    def stop_requested(self) -> str | None:
        """Return why the run must stop now (``"cancelled"``, ``"timed_out"``), or ``None`` to go on."""


def _summed(values: Iterable[float | None]) -> float | None:
    """The sum of the outputs' baselines, or None when one has none."""
    total = 0.0
    for value in values:
        if value is None:
            return None
        total += value
    return total


def _finite_or_none(value: Any) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None


class _ProgressCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Reports epochs and (throttled) batches to the channel, stops on request or on a non-finite loss.

    An epoch cut short by a stop request (cancel, time limit) is not reported: Keras still calls
    ``on_epoch_end`` with the logs of the batches it ran, but a mean over part of an epoch is not that epoch's
    loss. :attr:`epochs_completed` counts the epochs reported. An epoch cut by divergence is reported (its
    non-finite loss is the point).
    """

    def __init__(self, channel: RunChannel, epochs: int, steps: int, batch_every_s: float) -> None:
        super().__init__()
        self.channel = channel
        self.epochs = epochs
        self.steps = steps
        self.batch_every_s = batch_every_s
        self.epoch = 0
        self.stop_reason: str | None = None
        self.diverged_at: dict[str, int] | None = None
        self._last_emit = 0.0
        self._batches_run = 0  # in the current epoch
        self.epochs_completed = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch + 1
        self._batches_run = 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._batches_run = batch + 1
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at = {"epoch": self.epoch, "batch": batch + 1}
            self.model.stop_training = True
        last = self.epoch == self.epochs and batch + 1 == self.steps
        # After the last batch there is nothing left to cut: a run that trained every step is not timed out.
        reason = None if last else self.channel.stop_requested()
        if reason is not None:
            self.stop_reason = reason
            self.model.stop_training = True
        now = time.monotonic()
        if now - self._last_emit >= self.batch_every_s or batch + 1 == self.steps:  # the epoch's last batch always
            self._last_emit = now
            self.channel.emit(
                "batch",
                {
                    "epoch": self.epoch,
                    "epochs": self.epochs,
                    "batch": batch + 1,
                    "batches": self.steps,
                    "loss": None if loss is None else _finite_or_none(loss),
                },
            )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.stop_reason is not None and self._batches_run < self.steps:
            return  # cut short by a stop request: not an epoch's loss
        self.epochs_completed = epoch + 1
        self.channel.emit(
            "epoch",
            {
                "epoch": epoch + 1,
                "epochs": self.epochs,
                "logs": {k: _finite_or_none(v) for k, v in (logs or {}).items()},
            },
        )


def _draws_random_numbers(layer: KerasLayer) -> bool:
    """Whether the layer (or the layer it wraps) uses random numbers in training: dropout of any kind."""
    return any(
        (x.type == "Dropout" and getattr(x, "rate", 0) > 0)
        or getattr(x, "dropout", 0) > 0
        or getattr(x, "recurrent_dropout", 0) > 0
        for _, x in layer.walk()
    )


def _model_file(model: keras.Model) -> bytes:
    """The model as a ``.keras`` file (Keras 3's zip of config and weights, ``keras.saving.save_model``), whose
    ``keras.saving.load_model`` gives the same model."""
    with tempfile.TemporaryDirectory(prefix="layerwise-model-") as folder:
        path = Path(folder) / "model.keras"
        model.save(path)
        return path.read_bytes()


def execution_mode(spec: TrainingSpec, eager_max_steps: int) -> str:
    """``"eager"`` or ``"graph"`` (Keras's default), as ``compile.run_eagerly`` says, else chosen by the service:
    eager for a run of at most ``eager_max_steps`` training steps (batches x epochs), no validation and no
    dropout; graph otherwise.

    Graph mode traces the train step once per model, which dominates tiny trainings; eager mode skips that but
    is slower per step (``bench/eager_threshold.py`` measures the crossover). The two run different kernels
    (TensorFlow's graph optimiser fuses some), so an eager loss can differ from Keras's default run in the last
    bits of float32 (``bench/eager_threshold.py --agreement 100``: 2 of 76 random one-epoch runs without dropout,
    by at most 1.2e-7 relative); for the seed's models they are identical. With dropout the masks are drawn in
    another way in each mode (1 of 24 differed, by 3.4e-7, in that run; an earlier sweep saw 1.5e-5 once, not
    reproduced), and eager evaluation can differ in ``val_loss``: those runs stay in graph mode, so their
    history is exactly what ``model.fit`` gives by default.
    """
    if spec.compile.run_eagerly is not None:
        return "eager" if spec.compile.run_eagerly else "graph"
    train_samples, _ = split_samples(spec.data.samples, spec.fit.validation_split)
    steps = math.ceil(train_samples / (spec.fit.batch_size or KERAS_DEFAULT_BATCH_SIZE)) * spec.fit.epochs
    random = any(_draws_random_numbers(layer) for layer in spec.model.layers)
    return "eager" if spec.fit.validation_split == 0 and not random and steps <= eager_max_steps else "graph"


def train(
    spec: TrainingSpec,
    channel: RunChannel,
    batch_every_s: float = 0.25,
    eager_max_steps: int = 0,
    max_model_bytes: int = 0,
) -> dict[str, Any]:
    """Build, compile and fit the model of a normalized training spec on the data of its task
    (:func:`app.runtime.keras.data.task_data`), with Keras's EarlyStopping when ``fit.early_stopping`` is set.

    Weights, data and shuffling are seeded from ``spec.seed`` (``keras.utils.set_random_seed``), so the same
    spec gives the same history, in either execution mode (see :func:`execution_mode`).

    Args:
        batch_every_s: least seconds between two ``batch`` progress events.
        eager_max_steps: runs of at most this many steps (and no validation) run eagerly; 0 never.
        max_model_bytes: a run that trained every epoch (or was stopped early) returns its trained model as a
            ``.keras`` file (``model.save``) when it is at most this many bytes; 0 never.

    Returns:
        ``{"summary": <summarize()>, "history": {"loss": [...], "val_loss": [...], ...},
        "epochs_completed": int, "diverged": {"epoch", "batch"} | None, "stop_reason": str | None,
        "execution": "eager" | "graph", "fit_s": float, "baseline": {"loss", "val_loss"} (the best constant
        answer's loss on the training and validation parts: :func:`app.runtime.keras.baseline.constant_loss`),
        "early_stopped": {"epoch", "best_epoch", "best"} | None, "model_file": bytes | None,
        "model_file_bytes": int | None}`` (the file's size, kept or not). Non-finite values in the history are ``None``
        (JSON has no NaN).

    Raises:
        BuildError: see :func:`build_model`.
        SpecError: the model does not fit the task (the service checks it before queueing: a bug then).
    """
    keras.backend.clear_session(free_memory=True)  # the last run's model and functions go (see freeze_heap)
    keras.utils.set_random_seed(spec.seed)
    model = build_any(spec.model)
    description = describe(model)
    optimizer_cls = OPTIMIZERS[spec.compile.optimizer]
    rate = spec.compile.learning_rate
    optimizer = optimizer_cls() if rate is None else optimizer_cls(learning_rate=rate)
    execution = execution_mode(spec, eager_max_steps)
    model.compile(
        loss=spec.compile.loss,
        optimizer=optimizer,
        metrics=list(spec.compile.metrics) or None,
        run_eagerly=execution == "eager",
    )

    x: Any  # one array, or a graph's list of them, for inputs and labels alike
    y: Any
    layout = data_layout(spec)  # checked against the engine's shapes (Keras's own) before queueing
    if layout is None:  # a graph on the random task: one array per input and per output
        assert isinstance(spec.model, GraphSpec)
        x, y = graph_data(spec.model, spec.data.samples, spec.seed, spec.data.timesteps)
    else:
        x, y = task_data(layout, spec.data.samples, spec.seed)
    batch_size = spec.fit.batch_size or KERAS_DEFAULT_BATCH_SIZE
    train_samples, _ = split_samples(spec.data.samples, spec.fit.validation_split)
    steps = math.ceil(train_samples / batch_size)
    # Keras validates on the last part of the arrays, as given (split_samples), before shuffling.
    if layout is None:  # a graph: Keras sums the one loss over the outputs, and so does the baseline
        baseline = {
            "loss": _summed(constant_loss(part[:train_samples], spec.compile.loss, "binary", None) for part in y),
            "val_loss": _summed(constant_loss(part[train_samples:], spec.compile.loss, "binary", None) for part in y),
        }
    else:
        baseline = {
            "loss": constant_loss(y[:train_samples], spec.compile.loss, layout.encoding, layout.classes),
            "val_loss": constant_loss(y[train_samples:], spec.compile.loss, layout.encoding, layout.classes),
        }
    callback = _ProgressCallback(channel, spec.fit.epochs, steps, batch_every_s)
    callbacks: list[keras.callbacks.Callback] = [callback]
    stopping = spec.fit.early_stopping
    early = None
    if stopping is not None:
        early = keras.callbacks.EarlyStopping(
            monitor=stopping.monitor,
            patience=stopping.patience,
            min_delta=stopping.min_delta,
            restore_best_weights=stopping.restore_best_weights,
        )
        callbacks.append(early)  # after the progress callback: the epoch that stops is reported first
    started = time.perf_counter()
    if (reason := channel.stop_requested()) is not None:  # cancelled while it was being built: no fit at all
        return {
            "summary": description,
            "history": {},
            "epochs_completed": 0,
            "diverged": None,
            "stop_reason": reason,
            "execution": execution,
            "fit_s": 0.0,
            "baseline": baseline,
            "early_stopped": None,
        }
    channel.emit("baseline", baseline)  # the line a run is drawn against, known before its first epoch
    history = model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=spec.fit.epochs,
        validation_split=spec.fit.validation_split,
        shuffle=spec.fit.shuffle,
        verbose=0,
        callbacks=callbacks,
    )
    fit_s = time.perf_counter() - started
    early_stopped = None
    if early is not None and early.stopped_epoch > 0 and callback.stop_reason is None and not callback.diverged_at:
        best = _finite_or_none(early.best) if early.best is not None else None
        early_stopped = {"epoch": early.stopped_epoch + 1, "best_epoch": early.best_epoch + 1, "best": best}
    model_file, model_file_bytes = None, None
    if max_model_bytes > 0 and callback.stop_reason is None and callback.diverged_at is None:
        model_file = _model_file(model)
        model_file_bytes = len(model_file)
        if model_file_bytes > max_model_bytes:
            model_file = None
    return {
        "summary": description,
        # Keras's History also holds an epoch cut short by a stop request; the run keeps whole epochs only.
        "history": {
            k: [_finite_or_none(v) for v in values[: callback.epochs_completed]]
            for k, values in history.history.items()
        },
        "epochs_completed": callback.epochs_completed,
        "diverged": callback.diverged_at,
        "stop_reason": callback.stop_reason,
        "execution": execution,
        "fit_s": fit_s,
        "baseline": baseline,
        "early_stopped": early_stopped,
        "model_file": model_file,
        "model_file_bytes": model_file_bytes,
    }
