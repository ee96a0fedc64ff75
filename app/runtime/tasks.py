"""Functions that run inside worker processes. They take and return plain data (dicts, str, numbers).

A worker is started by :mod:`app.runtime.pool` with the spawn method, imports Keras once in :func:`init_worker`,
connects back to the server's :class:`app.runtime.pool.ChannelHub` and then serves tasks until it is stopped.
Exceptions never cross the process boundary: every task returns one of the typed replies of
:mod:`app.runtime.messages` (``{"ok": True, ...}``, or :func:`app.runtime.messages.failed`'s).
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Client, Connection
from typing import TYPE_CHECKING, Any, cast

from asgi_correlation_id import correlation_id

from app.runtime.deadline import Deadline
from app.runtime.messages import (
    DiagramReply,
    Failed,
    KerasJsonReply,
    Message,
    PredictReply,
    ProgressKind,
    ProgressMessage,
    ScriptReply,
    SummaryReply,
    TrainingReply,
    failed,
)

if TYPE_CHECKING:
    from app.runtime.keras.train import RunChannel

logger = logging.getLogger(__name__)

_conn: Connection | None = None
_pool_name = ""


def init_worker(address: str, authkey: bytes, pool_name: str) -> None:
    """Pebble initializer: import Keras, build a small model once (first builds pay one-off costs), then
    tell the server this worker is ready over a connection of its own.

    Raises:
        OSError: the server's channel cannot be reached; the worker exits and the pool starts another.
    """
    global _conn, _pool_name
    from app import logs
    from app.config import get_settings
    from app.runtime.keras import build as keras_build

    settings = get_settings()  # a spawned worker inherits the server's environment
    logs.configure_logging(settings.log_level, settings.log_json)
    warm_up()
    _pool_name = pool_name
    _conn = Client(address, family="AF_UNIX", authkey=authkey)
    _send({"kind": "ready", "pid": os.getpid(), "pool": pool_name, "keras_version": keras_build.KERAS_VERSION})


def warm_up() -> None:
    """Import Keras and build a small model, so that the first request does not pay those one-off costs; then
    freeze the heap (:func:`app.runtime.keras.build.freeze_heap`)."""
    from app.runtime.keras import build as keras_build
    from app.spec.model import ModelSpec

    warm = ModelSpec.model_validate(
        {"input_shape": [2, 3], "layers": [{"type": "LSTM", "units": 2}, {"type": "Dense", "units": 1}]}
    ).normalized()
    keras_build.summarize(warm)
    keras_build.freeze_heap()


def _send(message: Message) -> None:
    if _conn is not None:
        _conn.send(message)


def ping() -> int:
    """Return this worker's pid; used to start a pool's workers."""
    return os.getpid()


def with_request_id(request_id: str | None, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` with the id of the request that asked for it in this worker's log lines."""
    token = correlation_id.set(request_id)
    try:
        return fn(*args)
    finally:
        correlation_id.reset(token)


def _model_spec(spec: dict[str, Any]) -> Any:
    """The normalized spec a task was sent: a :class:`app.spec.graph.GraphSpec` for a graph model's dump, else a
    :class:`app.spec.model.ModelSpec`."""
    from app.spec.graph import GraphSpec, is_graph_body
    from app.spec.model import ModelSpec

    return GraphSpec.model_validate(spec) if is_graph_body(spec) else ModelSpec.model_validate(spec)


def summary_task(spec: dict[str, Any]) -> SummaryReply | Failed:
    """Build a normalized model spec and describe it.

    Args:
        spec: ``ModelSpec.normalized().model_dump()`` (or a ``GraphSpec``'s).

    Returns:
        ``{"ok": True, "summary": keras_build.summarize(...)}``, or a failure with ``kind`` ``"build"``
        (and the layer ``index``) when Keras refuses the model, ``"internal"`` for anything else.
    """
    from app.runtime.keras import build as keras_build

    try:
        return {"ok": True, "summary": keras_build.summarize(_model_spec(spec))}
    except keras_build.BuildError as exc:
        return failed("build", str(exc), index=exc.index)
    except Exception as exc:
        return failed("internal", f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=8))


def keras_json_task(spec: dict[str, Any]) -> KerasJsonReply | Failed:
    """Build a normalized model spec and return Keras's own JSON config of it (``model.to_json()``).

    Args:
        spec: ``ModelSpec.normalized().model_dump()``.

    Returns:
        ``{"ok": True, "keras_json": str}``, or a failure as :func:`summary_task` gives.
    """
    from app.runtime.keras import build as keras_build

    try:
        return {"ok": True, "keras_json": keras_build.to_json(_model_spec(spec))}
    except keras_build.BuildError as exc:
        return failed("build", str(exc), index=exc.index)
    except Exception as exc:
        return failed("internal", f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=8))


def diagram_task(spec: dict[str, Any]) -> DiagramReply | Failed:
    """Build a normalized model spec and draw it as Keras's ``plot_model`` does, as SVG.

    Returns:
        ``{"ok": True, "svg": str}``; a failure as :func:`summary_task` gives, or with ``kind``
        ``"unavailable"`` when Graphviz's ``dot`` program (or pydot) is not installed where the worker runs.
    """
    from app.runtime.keras import build as keras_build

    try:
        return {"ok": True, "svg": keras_build.diagram(_model_spec(spec))}
    except keras_build.BuildError as exc:
        return failed("build", str(exc), index=exc.index)
    except keras_build.DiagramUnavailable as exc:
        return failed("unavailable", str(exc))
    except Exception as exc:
        return failed("internal", f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=8))


class _ConnectionChannel:
    """A run's :class:`app.runtime.keras.train.RunChannel` over this worker's connection to the server."""

    def __init__(self, run_id: str, time_limit_s: float) -> None:
        self.run_id = run_id
        self.deadline = Deadline(time_limit_s)
        self.reason: str | None = None

    def emit(self, event: str, data: dict[str, Any]) -> None:
        message: ProgressMessage = {"kind": cast(ProgressKind, event), "run_id": self.run_id, **data}  # type: ignore[typeddict-item]
        _send(message)

    def stop_requested(self) -> str | None:
        # poll() is one select() call: cheap enough for every batch.
        while _conn is not None and self.reason is None and _conn.poll():
            message = _conn.recv()
            if message.get("kind") == "stop" and message.get("run_id") == self.run_id:
                self.reason = str(message.get("reason", "cancelled"))
        self.reason = self.deadline.stop_reason(self.reason)
        return self.reason


def training_task(
    run_id: str, spec: dict[str, Any], time_limit_s: float, progress_interval_s: float, eager_max_steps: int
) -> TrainingReply | Failed:
    """Train a normalized training spec, reporting progress for ``run_id`` to the server as it goes.

    Args:
        run_id: the run this training belongs to; tags every progress message.
        spec: ``TrainingSpec.normalized().model_dump()``.
        time_limit_s: seconds after which the training stops itself at the next batch (``"timed_out"``).
        progress_interval_s: least seconds between two ``batch`` progress messages.
        eager_max_steps: runs of at most this many steps (and no validation) run eagerly.

    Returns:
        ``{"ok": True, "result": app.runtime.keras.train.train(...)}`` or a failure as :func:`summary_task` gives.
    """
    _send({"kind": "started", "run_id": run_id, "pid": os.getpid()})
    channel = _ConnectionChannel(run_id, time_limit_s)
    return run_training(run_id, spec, channel, progress_interval_s, eager_max_steps)


def run_training(
    run_id: str, spec: dict[str, Any], channel: RunChannel, progress_interval_s: float, eager_max_steps: int
) -> TrainingReply | Failed:
    """Train ``spec`` reporting to ``channel`` (a :class:`app.runtime.keras.train.RunChannel`); what
    :func:`training_task` returns. The Celery task (:mod:`app.scaleout.worker`) calls it with a Redis channel."""
    from app.config import get_settings
    from app.runtime.keras import build as keras_build
    from app.runtime.keras import train as keras_train
    from app.spec.training import TrainingSpec

    began = time.monotonic()
    logger.info("training run %s started in worker %d", run_id, os.getpid())
    try:
        training = TrainingSpec.model_validate(spec)
        max_model_bytes = get_settings().max_model_bytes  # a worker has the server's environment
        result = keras_train.train(training, channel, progress_interval_s, eager_max_steps, max_model_bytes)
        out: TrainingReply | Failed = {"ok": True, "result": result}
        stop = result["stop_reason"]
    except keras_build.BuildError as exc:
        out, stop = failed("build", str(exc), index=exc.index), "build"
    except MemoryError as exc:  # TensorFlow could not allocate a tensor (app.runtime.keras.train)
        out, stop = failed("memory", str(exc)), "memory"
    except Exception as exc:
        out = failed("internal", f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=8))
        stop = "internal"
    logger.info("training run %s ended (%s) after %.2f s", run_id, stop or "done", time.monotonic() - began)
    return out


def script_task(spec: dict[str, Any], execution: str | None, eager_max_steps: int, run_id: str) -> ScriptReply | Failed:
    """Write a training as a runnable Keras 3 script (:func:`app.runtime.keras.script.training_script`).

    Args:
        spec: ``TrainingSpec.normalized().model_dump()``.
        execution: ``"eager"`` or ``"graph"``, as the run ran; None for a run not started yet: then as it will
            run (:func:`app.runtime.keras.train.execution_mode` with ``eager_max_steps``).
        run_id: named in the script.

    Returns:
        ``{"ok": True, "script": str}``, or a failure with ``kind`` ``"internal"``.
    """
    from app.runtime.keras import script as keras_script
    from app.runtime.keras import train as keras_train
    from app.spec.training import TrainingSpec

    try:
        training = TrainingSpec.model_validate(spec)
        mode = execution or keras_train.execution_mode(training, eager_max_steps)
        return {"ok": True, "script": keras_script.training_script(training, mode, run_id)}
    except Exception as exc:
        return failed("internal", f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=8))


def predict_task(model_file: bytes, inputs: list[Any], dtype: str) -> PredictReply | Failed:
    """Load a trained model file and answer its outputs for a small batch.

    Args:
        model_file: a ``.keras`` file, as :func:`app.runtime.keras.train.train` returns it.
        inputs: the batch as nested lists, shape ``(samples, *input_shape)`` (checked by the caller).
        dtype: ``"float32"``, or ``"int32"`` for a model that takes token ids.

    Returns:
        ``{"ok": True, "outputs": nested lists of float, shape (samples, *output_shape)}``, or a failure with
        ``kind`` ``"internal"``.
    """
    from app.runtime.keras import predict as keras_predict

    try:
        return {"ok": True, "outputs": keras_predict.predict(model_file, inputs, dtype)}
    except Exception as exc:
        return failed("internal", f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=8))
