"""Export a model as Keras 3 Python code. Pure Python; no Keras (Keras's own JSON comes from a worker:
:func:`app.runtime.keras.build.to_json`)."""

from __future__ import annotations

import json

from app.formatting import fmt_shape
from app.spec.model import ModelSpec


def python_snippet(spec: ModelSpec) -> str:
    """A runnable Keras 3 script that builds the same model as the service and prints its summary.

    Layers are written with the arguments that differ from Keras's defaults, plus their names, so the
    model's summary equals the service's (tests/summaries/test_export_import.py runs it).

    Args:
        spec: a normalized spec.
    """
    # keras.Input is named only when a layer took Keras's first auto name for it (see ModelSpec.input_layer_name).
    input_name = spec.input_layer_name
    name_arg = "" if input_name == "input_layer" else f", name={json.dumps(input_name)}"
    if spec.input_dtype != "float32":  # token ids for a first Embedding, as keras-io writes them
        name_arg += f", dtype={json.dumps(spec.input_dtype)}"
    lines = [
        f'"""{spec.name}: a Keras 3 Sequential model, exported by layerwise."""',
        "",
        "import keras",
        "",
        "model = keras.Sequential(",
        "    [",
        f"        keras.Input(batch_shape={fmt_shape(spec.batch_shape)}{name_arg}),",
        *(f"        {layer.python_expr()}," for layer in spec.layers),
        "    ],",
        f"    name={json.dumps(spec.name)},",
        ")",
        "model.summary()",
        "",
    ]
    return "\n".join(lines)
