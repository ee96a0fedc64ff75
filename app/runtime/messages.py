"""What crosses the process boundary between the server and a worker, typed: each task's reply, and each message
a worker sends on its channel. (MLServer's ``mlserver/parallel/messages.py`` is the model.)

They stay plain dicts (``TypedDict``): pebble pickles them and Celery serialises them as JSON as they are, and a
reply of an earlier worker reads the same. Exceptions never cross: a task answers ``{"ok": True, <payload>}`` or
a :class:`Failed`, made by :func:`failed` and read by :func:`failure_of` only.

Pure Python: no Keras, so the server reads them without importing it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, Required, TypedDict

# -- replies -----------------------------------------------------------------------------------------------------

FailureKind = Literal["build", "memory", "unavailable", "internal"]
"""``build``: Keras refused the model (``index``: the layer); ``unavailable``: a program the task needs is not
installed where the worker runs (Graphviz's ``dot``); ``internal``: anything else, a bug (``traceback``)."""


class Failure(TypedDict):
    """Why a task failed, for a person: its kind and message (:func:`plain_message`)."""

    kind: FailureKind
    msg: str
    index: NotRequired[int | None]
    traceback: NotRequired[str]


class Failed(TypedDict):
    """A task's reply when it failed."""

    ok: Literal[False]
    error: Failure


class SummaryReply(TypedDict):
    """:func:`app.runtime.tasks.summary_task`: ``app.runtime.keras.build.summarize``'s rows and totals."""

    ok: Literal[True]
    summary: dict[str, Any]


class KerasJsonReply(TypedDict):
    """:func:`app.runtime.tasks.keras_json_task`: Keras's ``model.to_json()``."""

    ok: Literal[True]
    keras_json: str


class DiagramReply(TypedDict):
    """:func:`app.runtime.tasks.diagram_task`: the model drawn, as SVG text."""

    ok: Literal[True]
    svg: str


class TrainingReply(TypedDict):
    """:func:`app.runtime.tasks.training_task`: what ``app.runtime.keras.train.train`` returned."""

    ok: Literal[True]
    result: dict[str, Any]


class ScriptReply(TypedDict):
    """:func:`app.runtime.tasks.script_task`: the run as a Python script."""

    ok: Literal[True]
    script: str


class PredictReply(TypedDict):
    """:func:`app.runtime.tasks.predict_task`: the outputs as nested lists, ``(samples, *output_shape)``."""

    ok: Literal[True]
    outputs: list[Any]


# Terminal escapes (Keras colours some messages), then any other control character but newline and tab.
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")
MAX_MESSAGE_CHARS = 2000


def plain_message(msg: str) -> str:
    """A worker's error message as a person can be shown it: no terminal escapes or control characters, nothing
    from Keras's dump of a call's arguments on (``Arguments received by ...``: tensors, even the data), and at
    most :data:`MAX_MESSAGE_CHARS` characters, with how many more there were."""
    text = _ESCAPES.sub("", msg)
    text = text.split("Arguments received by", 1)[0].rstrip()
    if len(text) > MAX_MESSAGE_CHARS:
        text = f"{text[:MAX_MESSAGE_CHARS]}... ({len(text) - MAX_MESSAGE_CHARS} more characters)"
    return text


def failed(kind: FailureKind, msg: str, *, index: int | None = None, traceback: str | None = None) -> Failed:
    """A task's failure reply, its message made plain (:func:`plain_message`)."""
    error: Failure = {"kind": kind, "msg": plain_message(msg)}
    if index is not None:
        error["index"] = index
    if traceback is not None:
        error["traceback"] = traceback
    return {"ok": False, "error": error}


def failure_of(reply: Mapping[str, Any]) -> Failure | None:
    """The failure a task's reply carries, or ``None`` when it succeeded: the one reader of ``ok`` and ``error``."""
    if reply.get("ok"):
        return None
    error: Failure = reply["error"]
    return error


# -- channel messages (worker -> server) ---------------------------------------------------------------------------


class ReadyMessage(TypedDict):
    """A worker has imported Keras, warmed up and connected: it can take tasks."""

    kind: Literal["ready"]
    pid: int
    pool: str
    keras_version: str


class GoneMessage(TypedDict):
    """A worker's connection closed (it exited or was killed); the hub says so itself."""

    kind: Literal["gone"]
    pid: int


class StartedMessage(TypedDict):
    """A training worker began a run."""

    kind: Literal["started"]
    run_id: str
    pid: int


ProgressKind = Literal["baseline", "batch", "epoch"]


class ProgressMessage(TypedDict, total=False):
    """A training's progress (``app.runtime.keras.train.RunChannel.emit``): ``baseline`` once before fitting
    (``loss``, ``val_loss``), then ``batch`` (``epoch``, ``epochs``, ``batch``, ``batches``, ``loss``) and
    ``epoch`` (``epoch``, ``epochs``, ``logs``), the event's fields beside ``kind`` and ``run_id``."""

    kind: Required[ProgressKind]
    run_id: Required[str]
    epoch: int
    epochs: int
    batch: int
    batches: int
    loss: float | None
    val_loss: float | None
    logs: dict[str, float | None]


Message = ReadyMessage | GoneMessage | StartedMessage | ProgressMessage
"""Every message a worker's channel carries to the server."""


class StopMessage(TypedDict):
    """The server asks a training worker to stop a run at its next batch (server -> worker)."""

    kind: Literal["stop"]
    run_id: str
    reason: Literal["cancelled"]
