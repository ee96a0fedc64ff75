"""Warnings for models that build but likely do not do what their author meant. Pure Python; no Keras.

Each warning names the layer (by index, name and type) and the fix. :func:`model_warnings` looks at the model
alone; :func:`batch_warnings` at a batch size against a fixed batch; :func:`training_warnings` at a training
request (batch, samples, labels, loss, shuffling) and is what a training path calls.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.analysis.engine import ModelFigures, analyze
from app.errors import Loc
from app.formatting import fmt_shape
from app.spec.graph import GraphSpec
from app.spec.layers import KerasLayer
from app.spec.model import ModelSpec
from app.spec.training import KERAS_DEFAULT_BATCH_SIZE, TrainingSpec, split_samples

WarningType = Literal[
    "dense_on_sequence",
    "softmax_single_unit",
    "dropout_last",
    "fixed_batch_size",
    "partial_last_batch",
    "labels_shape",
    "loss_activation",
    "stateful_shuffle",
    "mask_destroyed",
]


class ModelWarning(BaseModel):
    """A model that builds but likely does not do what its author meant: where, what, and how to fix it."""

    type: WarningType = Field(description="What kind of surprise (each one's rule is below).")
    loc: list[str | int] = Field(description="Where in the request, as an error's loc: e.g. ['body', 'layers', 2].")
    layer: int | None = Field(description="The layer concerned (0-based), or null for the model as a whole.")
    msg: str = Field(description="What happens, naming the layer by index, name and type.")
    fix: str = Field(description="How to change the spec if that is not what was meant.")


def _warning(type: WarningType, loc: Loc, layer: int | None, msg: str, fix: str) -> ModelWarning:
    return ModelWarning(type=type, loc=list(loc), layer=layer, msg=msg, fix=fix)


def _describe(spec: ModelSpec, index: int) -> str:
    layer = spec.layers[index]
    return f"layer {index} ({layer.name}, {layer.type})"


def _activation(layer: KerasLayer) -> str | None:
    """The activation of the layer's output (a wrapper's is its inner layer's), ``None`` if it has none."""
    inner = layer.innermost()
    if "activation" not in type(inner).model_fields:
        return None
    return getattr(inner, "activation", None) or "linear"


def _returns_sequences(layer: KerasLayer) -> bool:
    return any(getattr(x, "return_sequences", False) for _, x in layer.walk())


def _output_layer(spec: ModelSpec) -> int | None:
    """The last layer that computes something (Dropout and Flatten only move values), or ``None``."""
    for i in range(len(spec.layers) - 1, -1, -1):
        if _activation(spec.layers[i]) is not None:
            return i
    return None


def model_warnings(spec: ModelSpec, figures: ModelFigures, loc: Loc = ("body",)) -> list[ModelWarning]:
    """What a normalized spec builds that likely surprises.

    - ``dense_on_sequence``: a Dense gets a 3-D or larger input and its per-timestep output reaches the
      model's output. Keras's Dense acts on the last axis only (keras/src/layers/core/dense.py), so the output
      is ``(None, T, u)``, not ``(None, u)``.
    - ``softmax_single_unit``: a softmax over one unit is 1.0 whatever the input, so nothing is learned.
    - ``dropout_last``: Dropout as the last layer zeroes a fraction of the model's outputs in training.
    - ``mask_destroyed``: see :func:`mask_warnings`.
    """
    warnings: list[ModelWarning] = mask_warnings(spec, loc)
    out_rank = len(figures.layers[-1].output_shape)
    for i, (layer, row) in enumerate(zip(spec.layers, figures.layers, strict=True)):
        where = (*loc, "layers", i)
        # Warn only when nothing later brings the rank back down: a per-timestep Dense before an LSTM is fine.
        lowest_later = min((len(r.output_shape) for r in figures.layers[i:]), default=out_rank)
        if layer.type == "Dense" and len(row.input_shape) >= 3 and lowest_later >= len(row.output_shape):
            per_sample = (row.output_shape[0], row.output_shape[-1])
            earlier = next((j for j in range(i - 1, -1, -1) if _returns_sequences(spec.layers[j])), None)
            keep = ""
            if earlier is not None:
                keep = f"set return_sequences=false on layer {earlier} ({spec.layers[earlier].name}) or "
            warnings.append(
                _warning(
                    "dense_on_sequence",
                    where,
                    i,
                    f"{_describe(spec, i)} receives {fmt_shape(row.input_shape)} and acts on the last axis only: "
                    f"its output is {fmt_shape(row.output_shape)}, one vector per timestep, not "
                    f"{fmt_shape(per_sample)}, and the model's output stays "
                    f"{fmt_shape(figures.layers[-1].output_shape)}",
                    f"for one output per sample, {keep}put a Flatten before layer {i}; for one per timestep, "
                    "wrap it as TimeDistributed(Dense) to say so",
                )
            )
        activation = _activation(layer)
        units = getattr(layer.innermost(), "units", None)
        if activation == "softmax" and units == 1:
            warnings.append(
                _warning(
                    "softmax_single_unit",
                    where,
                    i,
                    f"{_describe(spec, i)} has a softmax over 1 unit, which is 1.0 whatever its input: the "
                    "output is constant and its gradient zero",
                    'use activation "sigmoid" for one probability, or as many units as classes for softmax',
                )
            )
    last = len(spec.layers) - 1
    if spec.layers[last].type == "Dropout":
        warnings.append(
            _warning(
                "dropout_last",
                (*loc, "layers", last),
                last,
                f"{_describe(spec, last)} is the model's last layer: in training it zeroes a fraction of the "
                "outputs the loss compares with the labels",
                "put the Dropout before the last computing layer, or remove it",
            )
        )
    return warnings


def mask_warnings(spec: ModelSpec, loc: Loc = ("body",)) -> list[ModelWarning]:
    """``mask_destroyed``: a layer that does not support masking after an ``Embedding(mask_zero=True)`` or a
    ``Masking``, whose mask it then drops: the layers after it treat the padding as data. Keras says so only on
    stderr, at build time ("Layer 'conv1d' (of type Conv1D) was passed an input with a mask attached to it.
    However, this layer does not support masking and will therefore destroy the mask information",
    keras/src/layers/layer.py, ``Layer.__call__``); the property test checks these are the layers it names.

    The mask follows Keras's ``compute_mask``: kept by a layer that supports masking, dropped by a recurrent layer
    (or a Bidirectional) without ``return_sequences`` and by GlobalAveragePooling1D, which consume it; made anew
    by a Masking, and by an Embedding with ``mask_zero``.
    """
    warnings: list[ModelWarning] = []
    source: int | None = None  # the layer whose mask reaches the current one
    for i, layer in enumerate(spec.layers):
        if source is not None and not layer.supports_masking():
            made_by = spec.layers[source]
            how = "mask_zero=true" if made_by.type == "Embedding" else "a Masking"
            warnings.append(
                _warning(
                    "mask_destroyed",
                    (*loc, "layers", i),
                    i,
                    f"{_describe(spec, i)} does not support masking, so it destroys the mask of layer {source} "
                    f"({made_by.name}, {made_by.type}): the layers after it see the padded steps as data (Keras "
                    "warns of this only in its log)",
                    f"put the layers that need the mask (LSTM, GRU, GlobalAveragePooling1D...) before layer {i}, "
                    f"or drop {how} on layer {source} if the padding does not matter",
                )
            )
            source = None
        if layer.type == "Embedding":
            source = i if getattr(layer, "mask_zero", False) else None
        elif layer.type == "Masking":
            source = i
        elif layer.type == "GlobalAveragePooling1D" or (
            layer.STEPS_OVER_TIME and layer.type != "TimeDistributed" and not _returns_sequences(layer)
        ):
            source = None
    return warnings


def batch_warnings(
    spec: ModelSpec | GraphSpec,
    batch_size: int,
    samples: int | None = None,
    loc: Loc = ("body",),
    *,
    batch_loc: Loc | None = None,
    samples_loc: Loc | None = None,
) -> list[ModelWarning]:
    """A fixed batch that a training batch size or sample count does not match.

    A model whose input fixes the batch (``batch_input_shape``) trains in Keras 3 with any ``batch_size`` and a
    smaller last batch unless a layer is stateful: the fixed batch then describes nothing about training, and
    the summary's shapes (5, ...) are not the batches fit uses. (A stateful model refuses both; TrainingSpec
    makes that a 422, and a summary says so here.)

    Args:
        spec: a normalized spec.
        batch_size: the batch a training would use.
        samples: the number of samples per epoch (training part), when known.
        loc: where the model sits in the request.
        batch_loc, samples_loc: where the batch size and the sample count were given (a training request's
            ``fit.batch_size`` and ``data.samples``); by default the model's ``batch_input_shape``.
    """
    fixed = spec.batch_shape[0]
    if fixed is None:
        return []
    stateful = any(layer.is_stateful for layer in spec.layers)
    consequence = (
        "Keras refuses to fit a stateful model so" if stateful else "Keras trains it anyway, ignoring the fixed batch"
    )
    warnings: list[ModelWarning] = []
    if batch_size != fixed:
        warnings.append(
            _warning(
                "fixed_batch_size",
                batch_loc or (*loc, "batch_input_shape"),
                None,
                f"the model's input fixes the batch at {fixed}, but the batch size is {batch_size}: {consequence}",
                f"use batch_size={fixed}, or give input_shape (an open batch) instead of batch_input_shape",
            )
        )
    elif samples is not None and samples % fixed:
        warnings.append(
            _warning(
                "partial_last_batch",
                samples_loc or (*loc, "batch_input_shape"),
                None,
                f"the model's input fixes the batch at {fixed}, but {samples} samples leave a last batch of "
                f"{samples % fixed}: {consequence}",
                f"use a multiple of {fixed} samples, or give input_shape (an open batch) instead",
            )
        )
    return warnings


def training_warnings(training: TrainingSpec, loc: Loc = ("body",)) -> list[ModelWarning]:
    """Everything a normalized training request likely gets wrong, the model's own warnings included.

    Beyond :func:`model_warnings` and :func:`batch_warnings`:

    - ``labels_shape``: the synthetic labels are shaped like the model's output; when that has a time axis
      they are one label per timestep, not the seed's one per sample.
    - ``loss_activation``: binary_crossentropy on an output that is not a probability (Keras's default
      ``from_logits=False`` clips it), or categorical_crossentropy over one unit (the loss is always 0).
    - ``stateful_shuffle``: a stateful RNN with ``shuffle=true`` carries its state into unrelated samples.

    A graph model gets none of these yet.

    Raises:
        SpecError: the model is refused by the analytic engine (normalize and check it first).
    """
    model = training.model
    model_loc = (*loc, "model")
    if isinstance(model, GraphSpec):  # the warnings read a stack; a graph's are not written yet
        return []
    figures = analyze(model, model_loc)
    batch_size = training.fit.batch_size or model.batch_shape[0] or KERAS_DEFAULT_BATCH_SIZE
    train, _ = split_samples(training.data.samples, training.fit.validation_split)
    warnings = model_warnings(model, figures, model_loc)
    warnings += batch_warnings(
        model,
        batch_size,
        train,
        model_loc,
        batch_loc=(*loc, "fit", "batch_size"),
        samples_loc=(*loc, "data", "samples"),
    )
    out = figures.layers[-1].output_shape
    last = len(model.layers) - 1
    if len(out) > 2:
        labels = (training.data.samples, *out[1:])
        warnings.append(
            _warning(
                "labels_shape",
                (*model_loc, "layers", last),
                last,
                f"the model's output is {fmt_shape(out)}, so training makes labels of shape {fmt_shape(labels)}: "
                f"one per position of {fmt_shape(out[1:-1])}, not one per sample",
                "if one label per sample is meant, end the model with a layer that returns (batch, units): "
                "return_sequences=false on the last recurrent layer, or a Flatten before the last Dense",
            )
        )
    output = _output_layer(model)
    if output is not None:
        activation = _activation(model.layers[output])
        where = (*model_loc, "layers", output)
        loss = training.output_losses[0]
        if loss == "binary_crossentropy" and activation != "sigmoid":
            warnings.append(
                _warning(
                    "loss_activation",
                    where,
                    output,
                    f"binary_crossentropy expects probabilities in [0, 1], but {_describe(model, output)} gives "
                    f"its output through {activation!r}: Keras clips it, and learning stalls outside (0, 1)",
                    f'set activation "sigmoid" on layer {output}, or use loss "mse"',
                )
            )
        if loss == "categorical_crossentropy" and out[-1] == 1:
            warnings.append(
                _warning(
                    "loss_activation",
                    where,
                    output,
                    f"categorical_crossentropy over the one unit of {_describe(model, output)} is always 0: "
                    "there is nothing to learn",
                    'use loss "binary_crossentropy" with a sigmoid output for two classes',
                )
            )
    if training.fit.shuffle and any(layer.is_stateful for layer in model.layers):
        i = next(i for i, layer in enumerate(model.layers) if layer.is_stateful)
        warnings.append(
            _warning(
                "stateful_shuffle",
                (*loc, "fit", "shuffle"),
                i,
                f"{_describe(model, i)} is stateful, so each batch starts from the state the previous batch left, "
                "but shuffle=true puts unrelated samples after each other",
                "set fit.shuffle to false so that consecutive batches continue each other's sequences",
            )
        )
    return warnings
