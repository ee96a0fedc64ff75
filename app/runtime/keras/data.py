"""The synthetic data a training fits on: the seed notebook's random data, and the tasks of
:mod:`app.spec.tasks` (defined there, with their sources; generated here)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from app.analysis.engine import analyze, analyze_graph
from app.spec.graph import GraphSpec
from app.spec.tasks import SINE_FREQUENCY, SINE_NOISE, TEMPORAL_ORDER_SYMBOLS, Encoding, TaskLayout
from app.spec.training import TrainingSpec


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


def graph_layout(
    spec: TrainingSpec,
) -> tuple[list[tuple[tuple[int, ...], str, int]], list[tuple[tuple[int, ...], Encoding]]]:
    """What :func:`graph_arrays` needs of a normalized training's graph model at the data's length:
    ``(shape, dtype, vocabulary)`` of each input (one sample's shape; the vocabulary bounds token ids:
    :meth:`GraphSpec.token_vocab`, else 2) and ``(shape, encoding)`` of each output: one sample's shape, from the
    engine (Keras's), and how its labels are written for its loss (:meth:`TrainingSpec.graph_label_encodings`).

    Raises:
        SpecError: a loss or metric that cannot fit an output (the service checks it before queueing: a bug then).
    """
    model = spec.model_at_data_length
    assert isinstance(model, GraphSpec)
    vocab = model.token_vocab()
    inputs: list[tuple[tuple[int, ...], str, int]] = [
        (tuple(int(d) for d in x.shape if d is not None), x.dtype, vocab.get(x.name, 2)) for x in model.inputs
    ]
    shapes = [tuple(int(d) for d in shape[1:] if d is not None) for shape in analyze_graph(model).output_shapes]
    return inputs, list(zip(shapes, spec.graph_label_encodings(shapes), strict=True))


def graph_arrays(
    inputs: list[tuple[tuple[int, ...], str, int]],
    outputs: Sequence[tuple[tuple[int, ...], str]],
    samples: int,
    seed: int,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A graph model's random data, made as :func:`synthetic_data` and the random task make a Sequential's.

    Args:
        inputs: ``(shape, dtype, vocabulary)`` per input, one sample's shape: an ``int32`` input takes ids
            uniform in ``[0, vocabulary)``, a ``bool`` one random booleans (a mask: each step kept with
            probability 1/2), a ``float32`` one values uniform in [0, 1).
        outputs: ``(shape, encoding)`` per output, one sample's shape: labels 0/1 (float32) for ``binary``; for
            ``index`` and ``one_hot``, classes uniform in ``[0, shape[-1])`` at each position, as int32 indices
            or one-hot float32 rows.

    Returns:
        ``(xs, ys)``: arrays of shape ``(samples, *shape)``, one per input and one per output (an ``index``
        output's without the last axis). Inputs and 0/1 labels come from one ``numpy.random.default_rng(seed)``,
        inputs first in their order; output ``k``'s classes from ``default_rng([seed, 1 + k])``, so a graph of one
        input and one output gets a Sequential's arrays of the same shapes.
    """
    rng = np.random.default_rng(seed)
    xs: list[np.ndarray] = []
    for shape, dtype, vocab in inputs:
        if dtype == "int32":
            xs.append(rng.integers(0, vocab, size=(samples, *shape), dtype=np.int32))
        elif dtype == "bool":
            xs.append(rng.random((samples, *shape)) < 0.5)
        else:
            xs.append(rng.random((samples, *shape), dtype=np.float32))
    ys = [rng.integers(0, 2, size=(samples, *shape)).astype(np.float32) for shape, _ in outputs]
    for k, (shape, encoding) in enumerate(outputs):
        if encoding in ("index", "one_hot"):
            index = np.random.default_rng([seed, 1 + k]).integers(0, shape[-1], size=(samples, *shape[:-1]))
            ys[k] = index.astype(np.int32) if encoding == "index" else np.eye(shape[-1], dtype=np.float32)[index]
    return xs, ys


def data_layout(spec: TrainingSpec) -> TaskLayout | None:
    """The layout of a normalized training's data (:meth:`TrainingSpec.task_layout`) on the engine's shapes
    (Keras's own) at ``data.timesteps``; ``None`` for a graph on the random task (:func:`graph_layout` then).

    Raises:
        SpecError: the model does not fit the task (the service checks it before queueing: a bug then).
    """
    if not spec.uses_task_layout:
        return None
    figures = analyze(spec.model_at_data_length)
    sample_in, sample_out = (
        tuple(int(d) for d in shape[1:] if d is not None) for shape in (figures.input_shape, figures.output_shapes[0])
    )
    return spec.task_layout(sample_in, sample_out)


def task_data(layout: TaskLayout, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The data of a task (:mod:`app.spec.tasks`, where each is defined with its source) for one model.

    Args:
        layout: what :func:`app.spec.tasks.task_layout` gave for the model: the shapes (one sample's, without
            the batch), the label encoding, the classes and the vocabulary.
        samples: how many samples.
        seed: seeds ``numpy.random.default_rng``; the same arguments give the same arrays.

    Returns:
        ``(x, y)``: ``x`` of shape ``(samples, *layout.input_shape)``, float32 (int32 token ids for an
        Embedding-first model); ``y`` of shape ``(samples, *layout.output_shape)`` as float32, but
        ``(samples, *layout.output_shape[:-1])`` int32 class indices for the ``index`` encoding (Keras's
        sparse labels).
    """
    if layout.task == "random":
        return _random(layout, samples, seed)
    return _generated(layout, samples, seed, _GENERATORS[layout.task])


Generator = Callable[[TaskLayout, int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def _generated(layout: TaskLayout, samples: int, seed: int, generate: Generator) -> tuple[np.ndarray, np.ndarray]:
    """A task's data from its generator: inputs and targets (class indices, or the regression values), labels
    encoded as the layout says."""
    rng = np.random.default_rng(seed)
    x, target = generate(layout, samples, rng)
    if layout.classes is None:  # regression: target is already the output's shape
        return x, target.astype(np.float32).reshape((samples, *layout.output_shape))
    return x, _encode(target, layout)


def _random(layout: TaskLayout, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The seed's data (:func:`synthetic_data`, its numbers unchanged), labels re-drawn as classes for a class
    loss: indices uniform in ``[0, units)`` (one-hot rows for categorical_crossentropy)."""
    batch_shape: list[int | None] = [None, *layout.input_shape]
    x, y = synthetic_data(batch_shape, [None, *layout.output_shape], samples, seed, layout.vocab)
    if layout.classes is None:
        return x, y
    rng = np.random.default_rng([seed, 1])
    index = rng.integers(0, layout.classes, size=(samples, *layout.output_shape[:-1]))
    return x, _encode(index, layout)


def _encode(index: np.ndarray, layout: TaskLayout) -> np.ndarray:
    """Class indices (shape ``(samples, *output_shape[:-1])``) as the layout's labels: int32 indices, one-hot
    float32 rows, or one float32 0/1 per position for two classes on one unit."""
    if layout.encoding == "index":
        return index.astype(np.int32)
    if layout.encoding == "binary":
        return index.astype(np.float32).reshape((index.shape[0], *layout.output_shape))
    assert layout.classes is not None
    return np.asarray(np.eye(layout.classes, dtype=np.float32)[index])


def _adding(layout: TaskLayout, samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem (Hochreiter & Schmidhuber 1997, section 5.4; Le et al. 2015, arXiv:1504.00941):
    values uniform in [0, 1) on channel 0, markers on channel 1 at one step of each half; target their sum."""
    steps = layout.input_shape[0]
    half = steps // 2
    values = rng.random((samples, steps), dtype=np.float32)
    first = rng.integers(0, half, size=samples)
    second = rng.integers(half, steps, size=samples)
    markers = np.zeros((samples, steps), dtype=np.float32)
    rows = np.arange(samples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=-1), target


def _sine(layout: TaskLayout, samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Windows of noisy sine waves of random frequency and phase; target the next ``k`` noiseless values."""
    steps, ahead = layout.input_shape[0], layout.output_shape[0]
    freq = rng.uniform(*SINE_FREQUENCY, size=(samples, 1))
    phase = rng.uniform(0.0, 2 * np.pi, size=(samples, 1))
    t = np.arange(steps + ahead)[None, :]
    wave = np.sin(2 * np.pi * freq * t + phase)
    noise = rng.normal(0.0, SINE_NOISE, size=(samples, steps))
    x = (wave[:, :steps] + noise).astype(np.float32)[..., None]
    return x, wave[:, steps:]


def _temporal_order(layout: TaskLayout, samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The temporal-order problem, task 6a (Hochreiter & Schmidhuber 1997, section 5.6), at length ``T``:
    E first, B last, X or Y at t1 in [T/10, 2T/10] and t2 in [T/2, 6T/10], a-d elsewhere; class by the order."""
    steps = layout.input_shape[0]
    sym = {s: i for i, s in enumerate(TEMPORAL_ORDER_SYMBOLS)}
    symbols = rng.integers(sym["a"], sym["d"] + 1, size=(samples, steps))
    symbols[:, 0] = sym["E"]
    symbols[:, -1] = sym["B"]
    rows = np.arange(samples)
    t1 = rng.integers(round(steps / 10), round(2 * steps / 10) + 1, size=samples)
    t2 = rng.integers(round(steps / 2), round(6 * steps / 10) + 1, size=samples)
    first_y = rng.integers(0, 2, size=samples)  # 0: X, 1: Y
    second_y = rng.integers(0, 2, size=samples)
    symbols[rows, t1] = sym["X"] + first_y
    symbols[rows, t2] = sym["X"] + second_y
    x = np.eye(len(TEMPORAL_ORDER_SYMBOLS), dtype=np.float32)[symbols]
    return x, 2 * first_y + second_y  # XX=0, XY=1, YX=2, YY=3


def _running_parity(layout: TaskLayout, samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Bits in (0 or 1, each as likely), the XOR of the bits so far at every step out (class 0 or 1)."""
    bits = rng.integers(0, 2, size=(samples, layout.input_shape[0]))
    parity = np.cumsum(bits, axis=1) % 2
    return bits.astype(np.float32)[..., None], parity


def _tokens(layout: TaskLayout, samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Filler ids uniform in [K+1, V) with exactly one marker id c+1 (c the class, uniform in [0, K)) at a
    uniformly random position (the ``tokens`` task of :mod:`app.spec.tasks`)."""
    assert layout.classes is not None and layout.vocab is not None
    steps, classes = layout.input_shape[0], layout.classes
    x = rng.integers(classes + 1, layout.vocab, size=(samples, steps), dtype=np.int32)
    label = rng.integers(0, classes, size=samples)
    x[np.arange(samples), rng.integers(0, steps, size=samples)] = label + 1
    return x, label


_GENERATORS: dict[str, Generator] = {
    "adding": _adding,
    "sine": _sine,
    "temporal_order": _temporal_order,
    "running_parity": _running_parity,
    "tokens": _tokens,
}
