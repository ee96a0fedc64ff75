"""A worker's error message as the run shows it: no terminal escapes, no dump of a call's arguments, bounded."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import app.runtime.keras  # noqa: F401  (chooses Keras's backend before keras is imported)
from app.runtime.messages import MAX_MESSAGE_CHARS, plain_message
from app.runtime.tasks import script_task


def keras_call_failure() -> str:
    """Keras 3's own words for a failing layer call: bold escapes around the cause, then the arguments."""
    layer = keras.layers.Lambda(lambda t: t @ np.zeros((3, 3), "float32"))
    with pytest.raises(Exception) as info:
        layer(np.full((2, 4), 0.123456, dtype="float32"))
    return str(info.value)


def test_a_keras_call_failure_loses_its_escapes_and_its_arguments() -> None:
    raw = keras_call_failure()
    assert "\x1b[1m" in raw and "Arguments received by Lambda.call()" in raw  # what Keras says, for a terminal
    msg = plain_message(raw)
    assert "\x1b" not in msg and "Arguments received" not in msg and "tf.Tensor" not in msg
    assert msg.startswith("Exception encountered when calling Lambda.call().") and "Matrix size-incompatible" in msg


def test_a_long_message_is_cut_and_says_by_how_much() -> None:
    msg = plain_message("x" * (MAX_MESSAGE_CHARS + 123) + "\x07")
    assert msg == "x" * MAX_MESSAGE_CHARS + "... (123 more characters)"


def test_a_task_s_failure_carries_the_plain_message() -> None:
    out = script_task({"model": "not a spec"}, "graph", 0, "r")
    assert out["ok"] is False and out["error"]["kind"] == "internal"
    assert "\x1b" not in out["error"]["msg"] and len(out["error"]["msg"]) <= MAX_MESSAGE_CHARS + 40
