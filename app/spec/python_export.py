"""Export a model as Keras 3 Python code. Pure Python; no Keras (Keras's own JSON comes from a worker:
:func:`app.runtime.keras.build.to_json`)."""

from __future__ import annotations

import json

from app.formatting import fmt_shape
from app.spec.graph import GraphSpec, Reference
from app.spec.layers.common import python_literal
from app.spec.model import ModelSpec


def python_snippet(spec: ModelSpec) -> str:
    """A runnable Keras 3 script that builds the same model as the service and prints its summary.

    Layers are written with the arguments that differ from Keras's defaults, plus their names, so the
    model's summary equals the service's (tests/summaries/test_export_import.py runs it).

    Args:
        spec: a normalized spec.
    """
    return "\n".join(
        [
            f'"""{spec.name}: a Keras 3 Sequential model, exported by layerwise."""',
            "",
            "import keras",
            "",
            *model_code(spec),
            "model.summary()",
            "",
        ]
    )


def model_code(spec: ModelSpec | GraphSpec) -> list[str]:
    """The lines of Keras 3 Python that assign the model to ``model`` (after ``import keras``): a
    ``keras.Sequential`` of layers, or a graph's functional calls and ``keras.Model``.

    Args:
        spec: a normalized spec.
    """
    if isinstance(spec, GraphSpec):
        return _graph_code(spec)
    # keras.Input is named only when a layer took Keras's first auto name for it (see ModelSpec.input_layer_name).
    input_name = spec.input_layer_name
    name_arg = "" if input_name == "input_layer" else f", name={json.dumps(input_name)}"
    if spec.input_dtype != "float32":  # token ids for a first Embedding, as keras-io writes them
        name_arg += f", dtype={json.dumps(spec.input_dtype)}"
    return [
        "model = keras.Sequential(",
        "    [",
        f"        keras.Input(batch_shape={fmt_shape(spec.batch_shape)}{name_arg}),",
        *(f"        {layer.python_expr()}," for layer in spec.layers),
        "    ],",
        f"    name={json.dumps(spec.name)},",
        ")",
    ]


def _variable(ref: str) -> str:
    """The Python variable that holds a reference's tensor: ``encoder:1`` -> ``encoder_1``."""
    parsed = Reference.parse(ref)
    stem = "".join(c if c.isalnum() or c == "_" else "_" for c in parsed.name)
    stem = stem if stem[0].isalpha() or stem[0] == "_" else f"t_{stem}"
    return stem if ":" not in ref else f"{stem}_{parsed.index}"


def graph_python_snippet(spec: GraphSpec) -> str:
    """A runnable Keras 3 script in the functional style that builds the same graph model as the service and
    prints its summary: a ``keras.Input`` per input, each layer called on the variables of its references (a
    layer of several outputs unpacked into one variable each), ``keras.Model(inputs, outputs)``.

    Args:
        spec: a normalized graph spec.
    """
    header = [f'"""{spec.name}: a Keras 3 functional model, exported by layerwise."""', "", "import keras", ""]
    return "\n".join([*header, *_graph_code(spec), "model.summary()", ""])


def _graph_code(spec: GraphSpec) -> list[str]:
    """A graph's lines of :func:`model_code`."""
    lines = []
    for x in spec.inputs:
        dtype = "" if x.dtype == "float32" else f", dtype={json.dumps(x.dtype)}"
        lines.append(
            f"{_variable(x.name)} = keras.Input(batch_shape={fmt_shape(x.batch_shape)}, name={json.dumps(x.name)}"
            f"{dtype})"
        )
    for layer in spec.layers:
        assert layer.name is not None
        calls = layer.call_refs()
        args = [_variable(ref) for ref in calls[0][1]]
        call = "[" + ", ".join(args) + "]" if layer.CALL_STYLE == "list" else ", ".join(args)
        for field, refs in calls[1:]:
            value = _variable(refs[0]) if field == "mask" else "[" + ", ".join(_variable(r) for r in refs) + "]"
            call += f", {field}={value}"
        for option, value in layer.call_options().items():
            call += f", {option}={python_literal(value)}"
        count = layer.output_count()
        targets = (
            _variable(layer.name) if count == 1 else ", ".join(_variable(f"{layer.name}:{k}") for k in range(count))
        )
        lines.append(f"{targets} = {layer.python_expr()}({call})")
    outputs = [_variable(ref) for ref in spec.outputs]
    inputs = ", ".join(_variable(x.name) for x in spec.inputs)
    out = outputs[0] if len(outputs) == 1 else "[" + ", ".join(outputs) + "]"
    lines += [
        f"model = keras.Model(inputs=[{inputs}], outputs={out}, name={json.dumps(spec.name)})",
    ]
    return lines
