"""The synthetic data a training fits on, made as the seed notebook makes it."""

from __future__ import annotations

import numpy as np

from app.analysis.engine import analyze_graph
from app.spec.graph import GraphSpec
from app.spec.layers import Embedding


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


def graph_data(
    spec: GraphSpec, samples: int, seed: int, timesteps: int | None = None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One array per input and one labels array per output of a graph model, made as :func:`synthetic_data`
    makes a Sequential's, from one ``numpy.random.default_rng(seed)``, inputs first in their order.

    An input of dtype ``int32`` takes token ids below the ``input_dim`` of the Embedding it feeds (the smallest,
    if several do; 2 if none does), a ``bool`` input random booleans (a mask: each step kept with probability
    1/2), a ``float32`` one uniform values in [0, 1). Null (variable-length) axes are ``timesteps`` long.
    Labels are 0/1 (float32), shaped like each output, at that length.

    Args:
        spec: a normalized graph spec.
        timesteps: the length of every null axis after the batch; required when the model has one.
    """
    rng = np.random.default_rng(seed)
    model = spec.at_length(timesteps) if timesteps is not None else spec
    vocab: dict[str, int] = {}
    for layer in model.layers:
        if isinstance(layer, Embedding) and layer.inputs:
            source = layer.inputs[0].split(":")[0]
            dim = layer.input_dim
            vocab[source] = min(dim, vocab.get(source, dim))
    xs: list[np.ndarray] = []
    for x in model.inputs:
        shape = (samples, *[int(d) for d in x.shape if d is not None])
        if x.dtype == "int32":
            xs.append(rng.integers(0, vocab.get(x.name, 2), size=shape, dtype=np.int32))
        elif x.dtype == "bool":
            xs.append(rng.random(shape) < 0.5)
        else:
            xs.append(rng.random(shape, dtype=np.float32))
    figures = analyze_graph(model)
    ys = [
        rng.integers(0, 2, size=(samples, *[int(d) for d in shape[1:] if d is not None])).astype(np.float32)
        for shape in figures.output_shapes
    ]
    return xs, ys
