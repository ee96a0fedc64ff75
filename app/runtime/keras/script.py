"""A training run as a runnable Keras 3 script: the same data, model, compile and fit, with the same seed, that
prints the history (``GET /v1/trainings/{id}/script``).

The data is made by the service's own generators, written into the script from their source
(:func:`inspect.getsource`) together with the module-level functions and constants they use, so that the
script and the service cannot drift apart: there is one definition of each task, in :mod:`.data`.
It runs in a worker, which has Keras: the script names the versions it ran with.
"""

from __future__ import annotations

import builtins
import dis
import inspect
import textwrap
import types
from collections.abc import Callable, Iterator
from typing import Any

import keras
import tensorflow as tf

from app.runtime.keras import data
from app.runtime.keras.train import OPTIMIZERS, steps_per_execution
from app.spec.graph import GraphSpec
from app.spec.layers.common import python_literal
from app.spec.python_export import model_code
from app.spec.training import KERAS_DEFAULT_BATCH_SIZE, TrainingSpec

_EXECUTION_TEXT = {
    "eager": (
        "It runs eagerly (run_eagerly=True), as layerwise ran this run: a short run without validation or dropout "
        "is quicker without tracing. Keras's default, graph mode (run_eagerly=False), runs other kernels and can "
        "differ in the last bits of float32."
    ),
    "graph": (
        "It runs in graph mode, Keras's default (run_eagerly=False), as layerwise ran this run. Run eagerly, the "
        "kernels differ and so can the last bits of float32 (and dropout draws its masks in another way)."
    ),
}


def _globals_used(fn: types.FunctionType) -> Iterator[str]:
    """The global names a function's code loads (``LOAD_GLOBAL``), its nested code (comprehensions) included."""
    stack = [fn.__code__]
    while stack:
        code = stack.pop()
        for op in dis.get_instructions(code):
            if op.opname == "LOAD_GLOBAL" and isinstance(op.argval, str):
                yield op.argval
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))


def embedded_source(functions: list[Callable[..., Any]]) -> str:
    """The source of ``functions`` and of the module-level functions (of :mod:`.data`) and constants they use,
    as a script can hold them: constants as ``NAME = <repr>`` first, then each function after the ones it calls.

    Raises:
        TypeError: a function uses a global that is neither a module (``np``), a function of :mod:`.data` nor a
            plain constant: it could not run in the script.
    """
    constants: dict[str, Any] = {}
    ordered: list[types.FunctionType] = []

    def visit(fn: types.FunctionType) -> None:
        if fn in ordered:
            return
        for name in _globals_used(fn):
            if name not in fn.__globals__ and hasattr(builtins, name):
                continue  # round, range, len: every script has them
            value = fn.__globals__.get(name)
            if isinstance(value, types.ModuleType):  # np: the script imports it
                continue
            if isinstance(value, types.FunctionType) and value.__module__ == data.__name__:
                visit(value)
            elif isinstance(value, int | float | str | tuple):
                constants[name] = value
            else:
                raise TypeError(f"{fn.__name__} uses {name}, which a script cannot hold")
        ordered.append(fn)

    for fn in functions:
        assert isinstance(fn, types.FunctionType)
        visit(fn)
    parts = [f"{name} = {value!r}" for name, value in constants.items()]
    if parts:
        parts = ["\n".join(parts)]
    parts += [inspect.getsource(fn).rstrip() for fn in ordered]
    return "\n\n\n".join(parts)


def _data_code(spec: TrainingSpec) -> tuple[list[str], list[Callable[..., Any]]]:
    """The lines that make ``x`` and ``y`` as the run did (:func:`app.runtime.keras.train.train`), and the
    functions of :mod:`.data` they call."""
    layout = data.data_layout(spec)
    if layout is None:  # a graph on the random task
        assert isinstance(spec.model, GraphSpec)
        inputs, outputs = data.graph_layout(spec)
        return [
            "# One (shape, dtype, vocabulary) per input and one (shape, label encoding) per output, one sample's:",
            "# the random task's data for this graph (layerwise's graph_layout).",
            f"INPUTS = {inputs!r}",
            f"OUTPUTS = {outputs!r}",
            "x, y = graph_arrays(INPUTS, OUTPUTS, SAMPLES, SEED)",
        ], [data.graph_arrays]
    fields = ", ".join(f"{name}={getattr(layout, name)!r}" for name in layout.__dataclass_fields__)
    lines = [
        "# What layerwise's task_layout chose for this model and loss (the fields of its TaskLayout).",
        f"layout = SimpleNamespace({fields})",
    ]
    if layout.task == "random":
        return [*lines, "x, y = _random(layout, SAMPLES, SEED)"], [data._random]
    generator = data._GENERATORS[layout.task]
    return [*lines, f"x, y = _generated(layout, SAMPLES, SEED, {generator.__name__})"], [data._generated, generator]


def training_script(spec: TrainingSpec, execution: str, run_id: str | None = None) -> str:
    """A runnable Keras 3 script of a training: it makes the run's data with the service's own generators,
    builds the model (:func:`app.spec.python_export.model_code`), compiles and fits it with the run's arguments
    after ``keras.utils.set_random_seed(seed)``, and prints ``history.history`` as JSON (NaN as ``NaN``).

    Run with the Keras and TensorFlow the service runs (named in the script), it prints the run's history
    (``tests/runs/test_script.py`` runs scripts and compares).

    Args:
        spec: a normalized training spec.
        execution: ``"eager"`` or ``"graph"``: how the run ran (:func:`app.runtime.keras.train.execution_mode`).
        run_id: named in the script's docstring.

    Raises:
        SpecError: the model does not fit its task (the service checked it before queueing: a bug then).
    """
    data_lines, functions = _data_code(spec)
    fit = spec.fit
    opt_class = OPTIMIZERS[spec.compile.optimizer].__name__  # the class train() compiles with
    rate = spec.compile.learning_rate
    optimizer = (
        f"keras.optimizers.{opt_class}()"
        if rate is None
        else f"keras.optimizers.{opt_class}(learning_rate={python_literal(rate)})"
    )
    compile_args = spec.keras_compile_args()  # what train() compiles with
    callbacks: list[str] = []
    if fit.early_stopping is not None:
        stop = fit.early_stopping
        callbacks = [
            "    callbacks=[",
            "        keras.callbacks.EarlyStopping(",
            f"            monitor={python_literal(stop.monitor)},",
            f"            patience={python_literal(stop.patience)},",
            f"            min_delta={python_literal(stop.min_delta)},",
            f"            restore_best_weights={python_literal(stop.restore_best_weights)},",
            f"            mode={python_literal(spec.early_stopping_mode)},",
            "        )",
            "    ],",
        ]
    what = f"layerwise training run {run_id}" if run_id else "A layerwise training"
    task = "the random task: the seed notebook's data" if spec.data.task == "random" else f"the {spec.data.task} task"
    about = textwrap.fill(
        f"Run with Keras {keras.version()} and TensorFlow {tf.__version__} (what layerwise ran it with), it makes "
        f"the same data ({task}; {spec.data.samples} samples), builds, compiles and fits the same model with the "
        "same seed, and prints the history as JSON: the run's own history.",
        width=100,
    )
    lines = [
        f'"""{spec.model.name}: {what}, as a Keras 3 script.',
        "",
        about,
        "",
        textwrap.fill(_EXECUTION_TEXT[execution], width=100),
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import json",
        *(["from types import SimpleNamespace"] if spec.uses_task_layout else []),
        "",
        "import keras",
        "import numpy as np",
        "",
        f"SEED = {spec.seed}",
        f"SAMPLES = {spec.data.samples}",
        "",
        "# The data, made by layerwise's own functions (app/runtime/keras/data.py), copied here as they ran.",
        "",
        "",
        embedded_source(functions),
        "",
        "",
        *data_lines,
        "",
        "# The seed fixes the weights, the dropout masks and the shuffling, as in the run.",
        "keras.utils.set_random_seed(SEED)",
        *model_code(spec.model),
        "model.compile(",
        f"    loss={python_literal(compile_args['loss'])},",
        f"    loss_weights={python_literal(compile_args['loss_weights'])},",
        f"    optimizer={optimizer},",
        f"    metrics={python_literal(compile_args['metrics'])},",
        f"    run_eagerly={execution == 'eager'!r},",
        # The run's grouping of steps: the same history as 1, in less time.
        f"    steps_per_execution={steps_per_execution(spec, execution)},",
        ")",
        "history = model.fit(",
        "    x,",
        "    y,",
        f"    batch_size={fit.batch_size or KERAS_DEFAULT_BATCH_SIZE},",
        f"    epochs={fit.epochs},",
        f"    validation_split={python_literal(fit.validation_split)},",
        f"    shuffle={python_literal(fit.shuffle)},",
        "    verbose=0,",
        *callbacks,
        ")",
        "print(json.dumps(history.history))",
        "",
    ]
    return "\n".join(lines)
