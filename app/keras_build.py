"""Spec -> ``keras.Sequential``, its summary, and short trainings. The only module that imports Keras.

It runs inside worker processes (:mod:`app.worker`); the server process never imports it.
"""

from __future__ import annotations

import functools
import gc
import inspect
import math
import os
import re
import time
from collections.abc import Callable
from typing import Any, Protocol

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter is not our log

import keras
import numpy as np
from keras.src.layers import input_spec

from app.engine import failure_message
from app.layers import keras_objects, refusals
from app.layers.base import ShapeError
from app.spec import KerasLayer, ModelSpec, TrainingSpec, split_samples

KERAS_VERSION: str = keras.__version__

OPTIMIZERS: dict[str, Callable[..., Any]] = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
    "adagrad": keras.optimizers.Adagrad,
    "adamax": keras.optimizers.Adamax,
    "nadam": keras.optimizers.Nadam,
}


class BuildError(Exception):
    """Keras refused to build the model at layer ``index`` (0-based, into ``spec.layers``).

    ``str(error)`` is a message for a person: the layer by index, name and type, the shape it received,
    what Keras expected, and how to fix the spec.
    """

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


class RunChannel(Protocol):
    """How a training talks to whoever started it: progress out, stop requests in."""

    def emit(self, event: str, data: dict[str, Any]) -> None:
        """Send one progress event (``"epoch"`` or ``"batch"``) with plain-data fields."""

    def stop_requested(self) -> str | None:
        """Return why the run must stop now (``"cancelled"``, ``"timed_out"``), or ``None`` to go on."""


# What Keras says when it refuses an input's rank: its InputSpec check ("expected ndim=3, found ndim=2";
# keras/src/layers/input_spec.py) and TimeDistributed's own ("with at least 3 dimensions, received: (None, 30)";
# keras/src/layers/rnn/time_distributed.py).
_INPUT_SPEC = re.compile(r"expected (ndim=\d+|min_ndim=\d+|axis [^,]+), found (ndim=\d+|[^.]+)")
_AT_LEAST = re.compile(r"with at least (\d+) dimensions, received: \(([^)]*)\)")


def _what_keras_said(exc: Exception, layer: keras.layers.Layer, received: tuple[int | None, ...]) -> str:
    """The clause for a refusal: Keras's InputSpec words, one of :mod:`app.layers.refusals` (the engine's
    wording) read from Keras's own message, or Keras's message as it is."""
    raw = " ".join(str(exc).split())
    raw = re.sub(r"\x1b\[[0-9;]*m", "", raw)  # Keras colours some messages for terminals
    if isinstance(layer, keras.layers.TimeDistributed) and len(received) >= 3:
        # TimeDistributed builds and calls the wrapped layer without its InputSpec check, so what fails then is
        # some later, accidental error; the wrapped layer's InputSpec says what is wrong with one timestep.
        child = keras.KerasTensor(shape=(received[0], *received[2:]))
        try:
            input_spec.assert_input_compatibility(layer.layer.input_spec, [child], layer.layer.name)
        except ValueError as spec_exc:
            raw = " ".join(str(spec_exc).split())
    if m := _INPUT_SPEC.search(raw):
        return f"Keras expected {m.group(1)}, found {m.group(2)}"
    if m := _AT_LEAST.search(raw):
        return f"Keras expected min_ndim={m.group(1)}, found ndim={len(m.group(2).rstrip(',').split(','))}"
    if (clause := refusals.translate(raw, received)) is not None:
        return clause
    if isinstance(exc, IndexError | TypeError) and (clause := _python_error(exc, layer, received)) is not None:
        return clause
    return f"Keras said: {raw}"


def _python_error(exc: Exception, layer: keras.layers.Layer, received: tuple[int | None, ...]) -> str | None:
    """What a bare IndexError or TypeError from a layer's ``build`` means (Keras raises no message of its own
    for these): an axis the input lacks, a convolution's input rank, an unknown number of channels."""
    if isinstance(layer, keras.layers.TimeDistributed):  # the wrapped layer got one timestep's shape
        layer, received = layer.layer, (received[0], *received[2:])
    ndim = len(received)
    if isinstance(exc, IndexError):
        if isinstance(getattr(layer, "axis", None), int):
            return refusals.axis_out_of_range(layer.axis, ndim).what
        if isinstance(layer, keras.layers.PReLU):
            axis = next(a for a in layer.shared_axes if not -(ndim - 1) <= a - 1 < ndim - 1)
            return refusals.axis_out_of_range(axis, ndim).what
        if hasattr(layer, "rank"):  # a transposed convolution on an input of another rank
            return ShapeError(f"ndim={layer.rank + 2}", f"ndim={ndim}").what
        return None
    if "NoneType" in str(exc) and hasattr(layer, "kernel_size") and received[-1] is None:
        if hasattr(layer, "depth_multiplier"):
            return refusals.unknown_weight("depthwise_kernel", (*layer.kernel_size, None, layer.depth_multiplier)).what
        return refusals.unknown_weight("kernel", (*layer.kernel_size, None, layer.filters)).what
    return None


def _build_error(spec: ModelSpec, layers: list[keras.layers.Layer], exc: Exception) -> BuildError:
    # A layer gets an inbound node only once a call on it succeeded, so the first layer without one is the
    # layer Keras refused; what each layer received is the previous layer's output.
    index = next((i for i, layer in enumerate(layers) if not layer._inbound_nodes), len(layers) - 1)
    try:  # a TimeDistributed before it that Keras let through is the first refusal (see below)
        _check_time_distributed(spec, layers[:index])
    except BuildError as earlier:
        return earlier
    shapes = [tuple(spec.batch_shape), *(tuple(layer.output.shape) for layer in layers[:index])]
    return BuildError(index, failure_message(spec, index, shapes, _what_keras_said(exc, layers[index], shapes[index])))


@functools.cache
def _initializer_arguments(cls: type) -> tuple[str, ...]:
    """The ``*_initializer`` arguments of a Keras layer class's constructor."""
    return tuple(name for name in inspect.signature(cls).parameters if name.endswith("_initializer"))


def _argument(key: str, value: Any, initialize: bool) -> Any:
    """A constructor argument: a wrapped layer built, a built-in initializer, regularizer or constraint given as
    ``{"class_name", "config"}`` made from its class (one of :mod:`app.layers.keras_objects`'s lists, which the
    spec's schema checked: nothing is resolved by a name from the request beyond those)."""
    if isinstance(value, KerasLayer):
        return make_layer(value, initialize)
    module = keras_objects.module_of(key)
    if module is not None and isinstance(value, dict):
        return getattr(getattr(keras, module), value["class_name"])(**value.get("config", {}))
    return value


def make_layer(layer: KerasLayer, initialize: bool = True) -> keras.layers.Layer:
    """Instantiate ``keras.layers.<layer.type>`` with the spec's Keras arguments; a wrapped layer first.

    With ``initialize=False`` every weight starts at zeros instead of its Keras initializer (see
    :func:`build_model`).
    """
    cls = getattr(keras.layers, layer.type)
    config = {k: _argument(k, v, initialize) for k, v in layer.keras_config().items()}
    if not initialize:
        config.update(dict.fromkeys(_initializer_arguments(cls), "zeros"))
    trainable = config.pop("trainable", True)
    built = cls(**config)
    built.trainable = trainable  # after construction: not every constructor takes it (SpatialDropout1D)
    return built


def build_model(spec: ModelSpec, initialize: bool = True) -> keras.Sequential:
    """Build the Keras 3 model for a normalized spec.

    Keras 2's ``batch_input_shape`` becomes ``keras.Input(batch_shape=...)``, the Keras 3 way.

    Args:
        initialize: give the weights their Keras initializers. Summaries pass False and get zeros: shapes and
            counts do not depend on initial values, and the orthogonal initializer of a recurrent kernel is a
            QR decomposition, O(units^3): a 1,024-unit LSTM builds in ~12 ms instead of ~700 ms.

    Raises:
        BuildError: Keras refused a layer (e.g. "expected ndim=3, found ndim=2" for an LSTM after Flatten).
    """
    layers = [make_layer(layer, initialize) for layer in spec.layers]
    # Named, so that Keras's session-wide name counter does not make to_json() differ between builds.
    inputs = keras.Input(batch_shape=tuple(spec.batch_shape), name=spec.input_layer_name, dtype=spec.input_dtype)
    try:
        model = keras.Sequential([inputs, *layers], name=spec.name)
    except (ValueError, TypeError, IndexError) as exc:
        raise _build_error(spec, layers, exc) from None
    if not all(layer._inbound_nodes for layer in layers):  # Sequential.build gives up quietly on some errors
        raise _build_error(spec, layers, ValueError("the layer's output shape cannot be inferred"))
    _check_time_distributed(spec, layers)
    return model


def _check_time_distributed(spec: ModelSpec, layers: list[keras.layers.Layer]) -> None:
    """Refuse a TimeDistributed whose wrapped layer's InputSpec does not take one timestep's shape.

    TimeDistributed builds and calls the wrapped layer without that check (keras/src/layers/rnn/
    time_distributed.py), so a MaxPooling1D over a 2-D timestep builds quietly and fails only in ``fit``; the
    check is Keras's own (``assert_input_compatibility``), made here where Keras skips it.

    Raises:
        BuildError: at the first such TimeDistributed.
    """
    shapes = [tuple(spec.batch_shape), *(tuple(layer.output.shape) for layer in layers)]
    for i, layer in enumerate(layers):
        if not isinstance(layer, keras.layers.TimeDistributed):
            continue
        child = keras.KerasTensor(shape=(shapes[i][0], *shapes[i][2:]))
        try:
            input_spec.assert_input_compatibility(layer.layer.input_spec, [child], layer.layer.name)
        except ValueError as exc:
            what = _what_keras_said(exc, layer, shapes[i])
            raise BuildError(i, failure_message(spec, i, shapes[: i + 1], what)) from None


def _count(weights: list[Any]) -> int:
    return int(sum(math.prod(w.shape) for w in weights))


def summary_text(model: keras.Model) -> str:
    """Keras's own ``model.summary()`` table, as a string."""
    parts: list[str] = []
    model.summary(print_fn=lambda text, line_break=True: parts.append(text))
    return "".join(parts).rstrip("\n") + "\n"


# Keras keeps per-session state that only clear_session() drops, and cycles between Keras objects wait for a
# full collection. Measured over 1,000 distinct summaries in one worker: +149 MB without releasing, +15 MB
# releasing every 50 builds (bench/bench.py's worker_rss). After freeze_heap(), a release takes ~8 ms.
RELEASE_EVERY_BUILDS = 50
_builds = 0


def freeze_heap() -> None:
    """Move everything alive now (TensorFlow, Keras, the warm-up's caches) out of the garbage collector's reach
    (``gc.freeze``), so a full collection walks only what later requests create: ``clear_session`` with
    ``free_memory=True`` then costs ~8 ms instead of ~200 ms. Call once, after warming up."""
    gc.collect()
    gc.freeze()


def _release_memory_now_and_then() -> None:
    global _builds
    _builds += 1
    if _builds % RELEASE_EVERY_BUILDS == 0:
        keras.backend.clear_session(free_memory=True)


def summarize(spec: ModelSpec) -> dict[str, Any]:
    """Build the model (weights left at zeros: see :func:`build_model`) and describe it as Keras does.

    Returns:
        ``{"name", "layers": [{"index", "name", "type", "output_shape", "params", "trainable_params",
        "non_trainable_params"}], "total_params", "trainable_params", "non_trainable_params", "text",
        "keras_version"}``; ``output_shape`` is a list with ``None`` for an open batch, counts are numbers of
        scalars.

    Raises:
        BuildError: see :func:`build_model`.
    """
    _release_memory_now_and_then()
    model = build_model(spec, initialize=False)
    return _describe(model)


def to_json(spec: ModelSpec) -> str:
    """Keras's own JSON config of the model (``model.to_json()``), for export.

    Raises:
        BuildError: see :func:`build_model`.
    """
    _release_memory_now_and_then()
    return str(build_model(spec).to_json())


def _describe(model: keras.Model) -> dict[str, Any]:
    rows = []
    for i, layer in enumerate(model.layers):
        trainable = _count(layer.trainable_weights)
        non_trainable = _count(layer.non_trainable_weights)
        rows.append(
            {
                "index": i,
                "name": layer.name,
                "type": type(layer).__name__,
                "output_shape": list(layer.output.shape),
                "params": layer.count_params(),
                "trainable_params": trainable,
                "non_trainable_params": non_trainable,
            }
        )
    trainable = _count(model.trainable_weights)
    non_trainable = _count(model.non_trainable_weights)
    return {
        "name": model.name,
        "layers": rows,
        "total_params": trainable + non_trainable,
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
        "text": summary_text(model),
        "keras_version": KERAS_VERSION,
    }


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
    wrapped = getattr(layer, "layer", None)
    return (
        (getattr(layer, "type", "") == "Dropout" and getattr(layer, "rate", 0) > 0)
        or getattr(layer, "dropout", 0) > 0
        or getattr(layer, "recurrent_dropout", 0) > 0
        or (isinstance(wrapped, KerasLayer) and _draws_random_numbers(wrapped))
    )


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
    steps = math.ceil(train_samples / (spec.fit.batch_size or 32)) * spec.fit.epochs
    random = any(_draws_random_numbers(layer) for layer in spec.model.layers)
    return "eager" if spec.fit.validation_split == 0 and not random and steps <= eager_max_steps else "graph"


def train(
    spec: TrainingSpec, channel: RunChannel, batch_every_s: float = 0.25, eager_max_steps: int = 0
) -> dict[str, Any]:
    """Build, compile and fit the model of a normalized training spec on synthetic data.

    Weights, data and shuffling are seeded from ``spec.seed`` (``keras.utils.set_random_seed``), so the same
    spec gives the same history, in either execution mode (see :func:`execution_mode`).

    Args:
        batch_every_s: least seconds between two ``batch`` progress events.
        eager_max_steps: runs of at most this many steps (and no validation) run eagerly; 0 never.

    Returns:
        ``{"summary": <summarize()>, "history": {"loss": [...], "val_loss": [...], ...},
        "epochs_completed": int, "diverged": {"epoch", "batch"} | None, "stop_reason": str | None,
        "execution": "eager" | "graph", "fit_s": float}``. Non-finite values in the history are ``None``
        (JSON has no NaN).

    Raises:
        BuildError: see :func:`build_model`.
    """
    keras.backend.clear_session(free_memory=True)  # the last run's model and functions go (see freeze_heap)
    keras.utils.set_random_seed(spec.seed)
    model = build_model(spec.model)
    description = _describe(model)
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

    input_shape = spec.model.batch_shape
    if spec.model.variable_axes:  # sequences of data.timesteps; the model itself keeps its open length
        assert spec.data.timesteps is not None, "TrainingSpec.normalized() requires it"
        input_shape = spec.model.at_length(spec.data.timesteps).batch_shape
    output_shape = list(model.compute_output_shape((None, *input_shape[1:])))
    first = spec.model.layers[0]
    tokens = getattr(first, "input_dim", None) if first.type == "Embedding" else None
    x, y = synthetic_data(input_shape, output_shape, spec.data.samples, spec.seed, tokens)
    batch_size = spec.fit.batch_size or 32
    train_samples, _ = split_samples(spec.data.samples, spec.fit.validation_split)
    steps = math.ceil(train_samples / batch_size)
    callback = _ProgressCallback(channel, spec.fit.epochs, steps, batch_every_s)
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
        }
    history = model.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=spec.fit.epochs,
        validation_split=spec.fit.validation_split,
        shuffle=spec.fit.shuffle,
        verbose=0,
        callbacks=[callback],
    )
    fit_s = time.perf_counter() - started
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
    }
