"""Short trainings: compile and fit a built model on synthetic data, reporting progress and stopping on request.

It runs inside worker processes (:mod:`app.runtime.tasks`, or a Celery child: :mod:`app.scaleout.worker`).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import keras
import tensorflow as tf

from app.analysis.engine import analyze
from app.runtime.keras.baseline import constant_loss
from app.runtime.keras.build import build_any, describe
from app.runtime.keras.data import data_layout, graph_arrays, graph_layout, task_data
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
        # With grouped steps Keras passes the group's last index, begin + steps_per_execution - 1, uncapped
        # where an epoch ends within the group: the batches done are at most the epoch's.
        done = min(batch + 1, self.steps)
        self._batches_run = done
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at = {"epoch": self.epoch, "batch": done}
            self.model.stop_training = True
        last = self.epoch == self.epochs and done == self.steps
        # After the last batch there is nothing left to cut: a run that trained every step is not timed out.
        reason = None if last else self.channel.stop_requested()
        if reason is not None:
            self.stop_reason = reason
            self.model.stop_training = True
        now = time.monotonic()
        if now - self._last_emit >= self.batch_every_s or done == self.steps:  # the epoch's last batch always
            self._last_emit = now
            self.channel.emit(
                "batch",
                {
                    "epoch": self.epoch,
                    "epochs": self.epochs,
                    "batch": done,
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


# Grouping steps (Keras's steps_per_execution) saves the per-call overhead of the compiled train function, about
# a millisecond a step here; a group is kept small enough that progress and stop requests are still seen often.
# 250 M Mult-Adds is about 0.1 s at the 2-3 G Mult-Adds a second the seed's LSTM trains at on this machine's
# cores, 0.25 s (the batch events' least interval) at a pessimistic 1 G. bench/bench.py measures what it buys.
GROUP_MULT_ADDS = 250_000_000
MAX_STEPS_PER_EXECUTION = 64


def steps_per_execution(spec: TrainingSpec, execution: str) -> int:
    """How many training steps a call of Keras's train function runs (``compile(steps_per_execution=...)``):
    ``compile.steps_per_execution`` when given, else 1 for an eager run (its loop is Python either way) and
    otherwise as many steps as fit in :data:`GROUP_MULT_ADDS`, from 1 to :data:`MAX_STEPS_PER_EXECUTION`. It
    depends on the model and the batch size only (not on the number of samples), so that the next run of the
    same model can reuse its traced function (:func:`train`); Keras ends a group early at an epoch's last batch.

    A step's cost is estimated as 3 x the forward pass's Mult-Adds for its batch (:func:`app.analysis.engine.analyze`
    at the data's length): the backward pass costs about twice the forward (the "6N FLOPs per parameter and
    token" of Kaplan et al. 2020, "Scaling Laws for Neural Language Models", section 2.1, counts 2N forward and
    4N backward). The history is the same for any grouping (Keras runs the same steps in a loop of one graph);
    ``bench/bench.py`` checks it against plain Keras's default.
    """
    if spec.compile.steps_per_execution is not None:
        return spec.compile.steps_per_execution
    if execution == "eager":
        return 1
    step_mult_adds = (
        3 * analyze(spec.model_at_data_length).mult_adds * (spec.fit.batch_size or KERAS_DEFAULT_BATCH_SIZE)
    )
    fit = GROUP_MULT_ADDS // step_mult_adds if step_mult_adds else MAX_STEPS_PER_EXECUTION
    return max(1, min(fit, MAX_STEPS_PER_EXECUTION))


# A compiled model's weights and optimizer state, kept for the next run of the same model, cost at most this many
# bytes (its float32 weights, and as much twice over for Adam's two moments): the next run of another model builds
# beside it until it is freed.
REUSE_MAX_BYTES = 256 * 2**20


@dataclass
class _Compiled:
    """The last run's compiled model and what its traced train function depends on (:func:`_reuse_key`)."""

    key: str
    model: Any  # keras.Model


_last: _Compiled | None = None


def _reuse_key(spec: TrainingSpec, execution: str, grouped: int) -> str:
    """What a compiled model's train and test functions depend on: the model, the compile arguments, the data's
    shapes and types (task, length, batch) and the execution; samples, epochs, seed, shuffling, validation and
    early stopping may differ between runs that share one."""
    return json.dumps(
        {
            "model": spec.model.model_dump(mode="json"),
            "compile": spec.compile.model_dump(mode="json", exclude={"run_eagerly", "steps_per_execution"}),
            "task": spec.data.task,
            "timesteps": spec.data.timesteps,
            "batch_size": spec.fit.batch_size or KERAS_DEFAULT_BATCH_SIZE,
            "execution": execution,
            "steps_per_execution": grouped,
        },
        sort_keys=True,
    )


def _make_optimizer(spec: TrainingSpec) -> Any:
    optimizer_cls = OPTIMIZERS[spec.compile.optimizer]
    rate = spec.compile.learning_rate
    return optimizer_cls() if rate is None else optimizer_cls(learning_rate=rate)


def _reset(compiled: keras.Model, fresh: keras.Model, spec: TrainingSpec) -> bool:
    """Give ``compiled`` the state a new run starts from: ``fresh``'s variables (just built after the seed: its
    initial weights and its dropout layers' seed states, Keras's ``Layer.variables``) and a new optimizer's
    (step 0, zero moments). False, changing nothing, when the two do not match variable for variable."""
    optimizer = _make_optimizer(spec)
    optimizer.build(fresh.trainable_variables)
    targets, sources = [*compiled.variables, *compiled.optimizer.variables], [*fresh.variables, *optimizer.variables]
    if len(compiled.variables) != len(fresh.variables) or len(targets) != len(sources):
        return False  # e.g. a run stopped before its first step never built its optimizer's moments
    pairs = list(zip(targets, sources, strict=True))
    if any(a.shape != b.shape or a.dtype != b.dtype for a, b in pairs):
        return False
    for target, source in pairs:
        target.assign(source)
    return True


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

    The process keeps the last graph-mode run's compiled model (when its weights and moments fit in
    :data:`REUSE_MAX_BYTES`), and the next run of the same model (:func:`_reuse_key`) trains it from a new
    model's initial state instead of compiling and tracing again: the same history, without the tracing that
    dominates a small graph-mode run (``bench/bench.py``'s ``train_large`` after ``train_small``; ``train_new``
    has no model to reuse).

    Args:
        batch_every_s: least seconds between two ``batch`` progress events.
        eager_max_steps: runs of at most this many steps (and no validation) run eagerly; 0 never.
        max_model_bytes: a run that trained every epoch (or was stopped early) returns its trained model as a
            ``.keras`` file (``model.save``) when it is at most this many bytes; 0 never.

    Returns:
        ``{"summary": <summarize()>, "history": {"loss": [...], "val_loss": [...], ...},
        "epochs_completed": int, "diverged": {"epoch", "batch"} | None, "stop_reason": str | None,
        "execution": "eager" | "graph", "steps_per_execution": int (:func:`steps_per_execution`), "fit_s": float,
        "baseline": {"loss", "val_loss"} (the best constant answer's loss on the training and validation parts:
        :func:`app.runtime.keras.baseline.constant_loss`),
        "early_stopped": {"epoch", "best_epoch", "best"} | None, "model_file": bytes | None,
        "model_file_bytes": int | None}`` (the file's size, kept or not). Non-finite values in the history are ``None``
        (JSON has no NaN).

    Raises:
        BuildError: see :func:`build_model`.
        SpecError: the model does not fit the task (the service checks it before queueing: a bug then).
    """
    global _last
    # Chosen from the spec alone, never from what this worker ran before: eager and graph can differ in the
    # last bits of float32, and a spec must give one history.
    execution = execution_mode(spec, eager_max_steps)
    grouped = steps_per_execution(spec, execution)
    key = _reuse_key(spec, execution, grouped)
    reusable = _last.model if _last is not None and _last.key == key else None
    if execution == "graph":
        _last = None  # another model's, replaced by this one: freed by the clear_session below, before the build
    # An eager run keeps it (at most REUSE_MAX_BYTES): tiny runs between two larger ones of a model do not make
    # it trace again (bench/curves.py's samples: 100 to 400 eagerly, then 500 traced anew).
    keras.backend.clear_session(free_memory=True)  # the last run's model and functions go (see freeze_heap)
    keras.utils.set_random_seed(spec.seed)
    model = build_any(spec.model)  # the initial weights any new model of this spec and seed has
    if reusable is not None and _reset(reusable, model, spec):
        # The same model compiled, its functions traced: started from the new model's state, it trains as the
        # new model would, step for step (tests/runtime/test_train.py compares histories), without tracing.
        model = reusable
    else:
        model.compile(
            **spec.keras_compile_args(),  # loss, loss_weights, metrics
            optimizer=_make_optimizer(spec),
            run_eagerly=execution == "eager",
            steps_per_execution=grouped,
        )
    # An eager model has nothing traced to reuse: bench/bench.py's train_small ran slower reusing one (761 ms)
    # than building anew (train_new, 670 ms).
    # A stateful RNN's carried states are not among Keras's Layer.variables, so a reset could not restore them.
    stateful = any(layer.is_stateful for layer in spec.model.layers)
    if execution == "graph" and not stateful and 3 * 4 * model.count_params() <= REUSE_MAX_BYTES:
        _last = _Compiled(key, model)
    description = describe(model)

    x: Any  # one array, or a graph's list of them, for inputs and labels alike
    y: Any
    layout = data_layout(spec)  # checked against the engine's shapes (Keras's own) before queueing
    if layout is None:  # a graph on the random task: one array per input and per output
        assert isinstance(spec.model, GraphSpec)
        graph_inputs, graph_outputs = graph_layout(spec)
        x, y = graph_arrays(graph_inputs, graph_outputs, spec.data.samples, spec.seed)
    else:
        x, y = task_data(layout, spec.data.samples, spec.seed)
    batch_size = spec.fit.batch_size or KERAS_DEFAULT_BATCH_SIZE
    train_samples, _ = split_samples(spec.data.samples, spec.fit.validation_split)
    steps = math.ceil(train_samples / batch_size)
    # Keras validates on the last part of the arrays, as given (split_samples), before shuffling.
    # Keras's loss is the sum of each output's loss times its weight, and so is the baseline.
    losses, weights = spec.output_losses, spec.output_loss_weights
    if layout is None:  # a graph on the random task: labels per output as its loss has them
        baseline = {
            key: _summed(
                None if (value := constant_loss(part[rows], loss, encoding, shape[-1])) is None else weight * value
                for part, (shape, encoding), loss, weight in zip(y, graph_outputs, losses, weights, strict=True)
            )
            for key, rows in (("loss", slice(None, train_samples)), ("val_loss", slice(train_samples, None)))
        }
    else:
        baseline = {
            key: None if value is None else weights[0] * value
            for key, value in (
                ("loss", constant_loss(y[:train_samples], losses[0], layout.encoding, layout.classes)),
                ("val_loss", constant_loss(y[train_samples:], losses[0], layout.encoding, layout.classes)),
            )
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
            mode=spec.early_stopping_mode,
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
            "steps_per_execution": grouped,
            "fit_s": 0.0,
            "baseline": baseline,
            "early_stopped": None,
        }
    channel.emit("baseline", baseline)  # the line a run is drawn against, known before its first epoch
    try:
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
    except tf.errors.ResourceExhaustedError as exc:
        # TensorFlow's allocator refused a tensor: the run's memory (the service's estimate is no bound), not a bug.
        # Its message is "Graph execution error:", a traceback, then (perhaps after a function's name) "OOM when
        # allocating tensor with shape[...] ...".
        text = str(exc.message)
        at = text.find("OOM when allocating")
        raise MemoryError(text[at:].splitlines()[0] if at >= 0 else "ResourceExhaustedError") from exc
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
        "steps_per_execution": grouped,
        "fit_s": fit_s,
        "baseline": baseline,
        "early_stopped": early_stopped,
        "model_file": model_file,
        "model_file_bytes": model_file_bytes,
    }
