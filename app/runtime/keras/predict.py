"""A trained model's outputs for a small batch: load its ``.keras`` file and call ``model.predict``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np


def predict(model_file: bytes, inputs: list[Any], dtype: str) -> list[Any]:
    """Load ``model_file`` with ``keras.saving.load_model`` and return ``model.predict`` of ``inputs``.

    Args:
        model_file: a ``.keras`` file (:func:`app.runtime.keras.train._model_file`).
        inputs: nested lists of shape ``(samples, *input_shape)``.
        dtype: the numpy dtype the inputs are given to Keras in (``float32`` or ``int32``).

    Returns:
        The outputs as nested lists of float (float32 values), shape ``(samples, *output_shape)``.
    """
    keras.backend.clear_session(free_memory=True)
    with tempfile.TemporaryDirectory(prefix="layerwise-predict-") as folder:
        path = Path(folder) / "model.keras"
        path.write_bytes(model_file)
        model = keras.saving.load_model(path, compile=False)
    x = np.asarray(inputs, dtype=dtype)
    out = np.asarray(model.predict(x, batch_size=max(1, len(x)), verbose=0), dtype=np.float32)
    result: list[Any] = out.tolist()
    return result
