"""The synthetic tasks a training fits on: what each one is, where it comes from, and the model it needs.

Pure: no numpy, no Keras. The data itself is made in the worker by ``app.runtime.keras.data`` from the
:class:`TaskLayout` that :func:`task_layout` gives here, so that the shapes a task needs are checked in one
place, before any worker, and the generator only follows them.

A task is a function of (model input shape, model output shape, loss, vocabulary) that either gives a layout
or refuses with a :class:`~app.errors.SpecError` (422) naming the shape the task needs and the shape the model
has. Shapes here are one sample's, without the batch axis.

=================  =====================  ===================  =================================================
task               input (one sample)     output               target
=================  =====================  ===================  =================================================
``random``         any                    any                  the seed notebook's: labels in {0, 1}
``adding``         ``(T, 2)``, T >= 2     ``(1,)``             the sum of the two marked values, in [0, 2)
``sine``           ``(T, 1)``, T >= 2     ``(k,)``/``(k, 1)``  the next k values of the (noiseless) wave
``temporal_order`` ``(T, 8)``, T >= 10    ``(4,)``             one of 4 classes: the order of X and Y
``running_parity`` ``(T, 1)``             ``(T, 1)``/``(T, 2)`` the parity of the bits so far, at each step
``tokens``         ``(T,)`` ids, Embedding ``(K,)`` or ``(1,)``  which of K marker tokens the sequence holds
=================  =====================  ===================  =================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from app.errors import Loc, SpecError

TaskName = Literal["random", "adding", "sine", "temporal_order", "running_parity", "tokens"]
TASK_NAMES: tuple[TaskName, ...] = ("random", "adding", "sine", "temporal_order", "running_parity", "tokens")

REGRESSION_LOSSES = frozenset({"mse", "mae", "mape", "msle", "huber", "log_cosh"})
# How labels are written for a loss: class indices for the sparse loss, one-hot rows for the others on a
# class output (binary_crossentropy then scores each class as its own 0/1 label), floats for a regression task.
Encoding = Literal["float", "binary", "one_hot", "index"]
ENCODING_TEXT: dict[Encoding, str] = {
    "float": "real numbers",
    "binary": "0/1 values",
    "one_hot": "one-hot rows",
    "index": "class indices",
}

# The temporal-order task's alphabet, one-hot in this order (Hochreiter & Schmidhuber 1997, section 5.6).
TEMPORAL_ORDER_SYMBOLS = ("a", "b", "c", "d", "B", "E", "X", "Y")
# The sine task: frequencies (cycles per step) and the noise on the inputs (standard deviation).
SINE_FREQUENCY = (1 / 32, 1 / 8)
SINE_NOISE = 0.05


@dataclass(frozen=True)
class TaskInfo:
    """One task's definition as the schema, the README and the errors describe it."""

    name: TaskName
    summary: str
    source: str
    needs_input: str
    needs_output: str


TASKS: dict[TaskName, TaskInfo] = {
    info.name: info
    for info in (
        TaskInfo(
            "random",
            "The seed notebook's data: features uniform in [0, 1) (token ids uniform in [0, input_dim) for an "
            "Embedding-first model), labels drawn at random, so there is nothing to learn. Labels follow the loss: "
            "{0, 1} for regression and binary losses, one-hot rows over the last axis for categorical_crossentropy, "
            "class indices in [0, units) for sparse_categorical_crossentropy.",
            "keras-lstm-examples.txt, the seed notebook (../shared/seed/)",
            "any input",
            "any output",
        ),
        TaskInfo(
            "adding",
            "The adding problem: each step is [value, marker], values uniform in [0, 1), markers 0 but for exactly "
            "two steps, one in each half of the sequence; the target is the sum of the two marked values.",
            "Hochreiter & Schmidhuber 1997, Long Short-Term Memory, section 5.4; the form of Le, Jaitly & Hinton "
            "2015, arXiv:1504.00941, section 4.1 (values in [0, 1), target their sum)",
            "(T, 2): T timesteps of [value, marker], T >= 2, float features (no Embedding)",
            "(1,): one number per sample (e.g. Dense(1)), with a regression loss",
        ),
        TaskInfo(
            "sine",
            "Next-step forecasting: a window of T steps of sin(2*pi*f*t + phase) plus Gaussian noise (standard "
            f"deviation {SINE_NOISE}), f uniform in [1/32, 1/8) cycles per step and phase uniform in [0, 2*pi) "
            "per sample; the target is the next k values of the wave without noise.",
            "next-step forecasting as in TensorFlow's time-series tutorial (tensorflow.org/tutorials/structured_data/"
            "time_series); the waves are this service's",
            "(T, 1): a window of T values, T >= 2, float features (no Embedding)",
            "(k,) or (k, 1): the next k values (Dense(1) for the next one), with a regression loss",
        ),
        TaskInfo(
            "temporal_order",
            "The temporal-order problem (task 6a): one-hot symbols over a, b, c, d, B, E, X, Y; the sequence starts "
            "with E, ends with B, and is a, b, c or d at random but at t1 in [T/10, 2T/10] and t2 in [T/2, 6T/10] "
            "(10-20 and 50-60 at the paper's T of about 100), which are X or Y. The class is the order: XX=0, XY=1, "
            "YX=2, YY=3.",
            "Hochreiter & Schmidhuber 1997, Long Short-Term Memory, section 5.6 (task 6a), positions scaled to T",
            "(T, 8): T one-hot symbols, T >= 10, float features (no Embedding)",
            "(4,): one score per class (e.g. Dense(4, softmax))",
        ),
        TaskInfo(
            "running_parity",
            "Bits in, the parity so far out: each step's input is 0 or 1 (each as likely), its target the XOR of "
            "the bits up to and including it.",
            "the parity problem (Minsky & Papert 1969, Perceptrons) read out at every step, as a streaming task",
            "(T, 1): T bits, float features (no Embedding)",
            "(T, 1) (a sigmoid per step) or (T, 2) (two classes per step): needs return_sequences on the last "
            "recurrent layer",
        ),
        TaskInfo(
            "tokens",
            "Which token a sequence contains: with K classes (the output's units; 2 for one unit) and a "
            "vocabulary of V = the Embedding's input_dim, tokens 1..K are markers and K+1..V-1 filler. Each "
            "sequence holds exactly one marker, at a uniformly random position, and filler tokens uniform in "
            "[K+1, V) elsewhere; its class is its marker minus 1 (classes equally likely). Token 0 never occurs "
            "(the padding id of mask_zero).",
            "this service's, after the keyword-spotting toy tasks of sequence classification tutorials",
            "(T,): token ids for a model that starts with an Embedding whose input_dim is at least K + 2",
            "(K,) with K >= 2 (e.g. Dense(K, softmax)) or (1,) for two classes (Dense(1, sigmoid))",
        ),
    )
}


@dataclass(frozen=True)
class TaskLayout:
    """What a task's data is for one model: everything the generator needs besides the sample count and seed.

    Attributes:
        task: the task.
        input_shape: one sample's input, without the batch (the data's length for a variable-length model).
        output_shape: one sample's output, without the batch.
        encoding: how labels are written (see :data:`Encoding`).
        classes: the number of classes of a class task (``random`` with a class loss too); ``None`` for
            regression.
        vocab: the first Embedding's ``input_dim``, for token inputs; ``None`` for float features.
    """

    task: TaskName
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    encoding: Encoding
    classes: int | None
    vocab: int | None


def _fmt(shape: Sequence[int | None]) -> str:
    """One sample's shape as Python writes a tuple: ``(20, 2)``, ``(1,)``."""
    items = ["None" if d is None else str(d) for d in shape]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _class_encoding(
    task: TaskName, classes: int, units: int, loss: str, loc: Loc, output_loc: Loc, output: Sequence[int]
) -> Encoding:
    """The encoding of ``classes`` classes on an output whose last axis has ``units`` units.

    Raises:
        SpecError: (422) the output's last axis is neither ``classes`` nor (for two classes) 1, or the loss
            cannot score it (a class loss over one unit).
    """
    if units == 1 and classes == 2:
        if loss in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
            raise SpecError.one(
                (*loc, "compile", "loss"),
                f"{loss} needs one unit per class, but task {task!r} has 2 classes and the model's output "
                f"{_fmt(output)} has 1 unit: over one unit the loss is always 0; use loss 'binary_crossentropy' "
                "with a sigmoid output, or end the model with Dense(2, activation='softmax')",
                "loss_output",
            )
        return "binary"
    if units != classes:
        two = " or 1 (a sigmoid, for two classes)" if classes == 2 else ""
        raise SpecError.one(
            output_loc,
            f"task {task!r} has {classes} classes, so the output's last axis needs {classes} units{two}, but the "
            f"model's output is {_fmt(output)}; end the model with Dense({classes}, activation='softmax')",
            "task_output_shape",
        )
    return "index" if loss == "sparse_categorical_crossentropy" else "one_hot"


def task_layout(
    task: TaskName,
    input_shape: Sequence[int | None],
    output_shape: Sequence[int | None],
    loss: str,
    vocab: int | None,
    loc: Loc = ("body",),
    output_loc: Loc | None = None,
) -> TaskLayout:
    """Check that a model fits a task and loss, and give the layout of its data.

    Args:
        task: ``data.task``.
        input_shape: one sample's input, without the batch, at the data's length (``data.timesteps`` for a
            variable-length model): the analytic engine's, or Keras's.
        output_shape: one sample's output, without the batch (the analytic engine's
            :func:`app.analysis.engine.analyze` gives it before any worker; Keras's gives the same).
        loss: ``compile.loss``.
        vocab: the first layer's ``input_dim`` when it is an Embedding (token inputs), else ``None``.
        loc: the training request's location; errors point at ``(*loc, "data", "task")``, ``compile.loss`` or
            ``output_loc``.
        output_loc: where the model's output is written (its last layer); ``(*loc, "model")`` if not given.

    Raises:
        SpecError: (422, ``task_input_shape`` / ``task_output_shape`` / ``loss_output``) the model's input or
            output is not the shape the task needs (the message names both), or the loss cannot fit the output
            (a class loss on one unit, a class loss on a regression task), with the fix.
    """
    output_loc = output_loc or (*loc, "model")
    task_loc = (*loc, "data", "task")
    info = TASKS[task]
    if None in input_shape or None in output_shape:  # the caller resolves lengths first; a bug otherwise
        raise ValueError(f"task_layout needs known shapes, got {input_shape} and {output_shape}")
    inp = tuple(int(d) for d in input_shape if d is not None)
    out = tuple(int(d) for d in output_shape if d is not None)
    units = out[-1] if out else 1

    def refuse_input(example: str) -> SpecError:
        return SpecError.one(
            task_loc,
            f"task {task!r} needs an input of shape {info.needs_input}, but the model's input is {_fmt(inp)}"
            + (" token ids (it starts with an Embedding)" if vocab is not None else "")
            + f"; {example}",
            "task_input_shape",
        )

    def refuse_output(example: str) -> SpecError:
        return SpecError.one(
            output_loc,
            f"task {task!r} needs an output of shape {info.needs_output}, but the model's output is {_fmt(out)}; "
            f"{example}",
            "task_output_shape",
        )

    def regression() -> Encoding:
        if loss not in REGRESSION_LOSSES:
            raise SpecError.one(
                (*loc, "compile", "loss"),
                f"task {task!r} has real-valued targets, but {loss} scores classes; use a regression loss: "
                + ", ".join(sorted(REGRESSION_LOSSES)),
                "loss_output",
            )
        return "float"

    float_features = vocab is None
    if task == "random":
        if loss in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
            if units < 2:
                raise SpecError.one(
                    (*loc, "compile", "loss"),
                    f"{loss} needs one unit per class, but the model's output {_fmt(out)} has 1 unit: over one unit "
                    "the loss is always 0; use loss 'binary_crossentropy' with a sigmoid output for two classes, "
                    "or end the model with Dense(n, activation='softmax') for n >= 2 classes",
                    "loss_output",
                )
            return TaskLayout(task, inp, out, "index" if loss.startswith("sparse") else "one_hot", units, vocab)
        return TaskLayout(task, inp, out, "binary" if loss == "binary_crossentropy" else "float", None, vocab)
    if task == "adding":
        if not float_features or len(inp) != 2 or inp[1] != 2 or inp[0] < 2:
            raise refuse_input(f"set the model's input_shape to [{max(2, inp[0] if inp else 20)}, 2]")
        if out != (1,):
            raise refuse_output("end the model with Dense(1) after a recurrent layer without return_sequences")
        return TaskLayout(task, inp, out, regression(), None, None)
    if task == "sine":
        if not float_features or len(inp) != 2 or inp[1] != 1 or inp[0] < 2:
            raise refuse_input(f"set the model's input_shape to [{max(2, inp[0] if inp else 20)}, 1]")
        if not (len(out) == 1 or (len(out) == 2 and out[1] == 1)):
            raise refuse_output("end the model with Dense(1) for the next value, Dense(k) for the next k")
        return TaskLayout(task, inp, out, regression(), None, None)
    if task == "temporal_order":
        if not float_features or len(inp) != 2 or inp[1] != len(TEMPORAL_ORDER_SYMBOLS) or inp[0] < 10:
            raise refuse_input(f"set the model's input_shape to [{max(10, inp[0] if inp else 20)}, 8]")
        if len(out) != 1:
            raise refuse_output("end the model with Dense(4, activation='softmax') after the last recurrent layer")
        return TaskLayout(task, inp, out, _class_encoding(task, 4, units, loss, loc, output_loc, out), 4, None)
    if task == "running_parity":
        if not float_features or len(inp) != 2 or inp[1] != 1:
            raise refuse_input(f"set the model's input_shape to [{inp[0] if inp else 10}, 1]")
        if len(out) != 2 or out[0] != inp[0]:
            raise refuse_output(
                f"set return_sequences=true on the last recurrent layer so the output is ({inp[0]}, 1), one "
                "parity per step"
            )
        return TaskLayout(task, inp, out, _class_encoding(task, 2, units, loss, loc, output_loc, out), 2, None)
    # tokens
    if vocab is None or len(inp) != 1:
        raise refuse_input("start the model with an Embedding (input_shape [T], e.g. [20])")
    if len(out) != 1:
        raise refuse_output("end the model with Dense(K, activation='softmax') after a pooling or recurrent layer")
    classes = 2 if units == 1 else units
    encoding = _class_encoding(task, classes, units, loss, loc, output_loc, out)
    if vocab < classes + 2:
        raise SpecError.one(
            task_loc,
            f"task 'tokens' with {classes} classes needs a vocabulary of at least {classes + 2} ids (0 unused, "
            f"1..{classes} markers, filler after), but the Embedding's input_dim is {vocab}; set input_dim to "
            f"{classes + 2} or more",
            "task_input_shape",
        )
    return TaskLayout(task, inp, out, encoding, classes, vocab)


def check_metrics(metrics: Sequence[str], encoding: Encoding, loc: Loc = ("body",)) -> None:
    """Refuse a metric the labels cannot be scored by.

    Class indices (the ``index`` encoding, for sparse_categorical_crossentropy) are one number per sample where
    the output has a row of scores: Keras's mae, mse, mape and binary_accuracy then fail inside ``fit`` on the
    shapes ([n] against [n, units]), and categorical_accuracy takes the argmax of an index (a wrong number);
    ``accuracy`` and ``sparse_categorical_accuracy`` score them. Every other encoding has the output's shape,
    which sparse_categorical_accuracy fails on (keras/src/metrics/accuracy_metrics.py; measured with Keras 3).

    Raises:
        SpecError: (422, ``metric_labels``) at ``compile.metrics[i]``.
    """
    for i, metric in enumerate(metrics):
        if encoding == "index" and metric not in ("accuracy", "sparse_categorical_accuracy"):
            msg = (
                f"{metric} cannot score the class indices sparse_categorical_crossentropy trains on (one per sample, "
                "where the output has one score per class); use 'accuracy' or 'sparse_categorical_accuracy', or "
                "the loss 'categorical_crossentropy' (one-hot labels) for this metric"
            )
        elif encoding != "index" and metric == "sparse_categorical_accuracy":
            msg = (
                f"sparse_categorical_accuracy needs class indices as labels, but with this loss the labels are "
                f"{ENCODING_TEXT[encoding]}; use loss 'sparse_categorical_crossentropy', or the metric 'accuracy' "
                "(Keras picks the right one)"
            )
        else:
            continue
        raise SpecError.one((*loc, "compile", "metrics", i), msg, "metric_labels")
