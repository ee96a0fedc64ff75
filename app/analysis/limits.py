"""The service's size limits, checked on a spec and on what the analytic engine computed of it, before any worker
is involved: each refusal is a 422 (``limit_exceeded``) that gives the computed figure, the limit and its setting.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from app.analysis.engine import FLOAT32_BYTES, ModelFigures
from app.config import Limits, Settings
from app.errors import ErrorItem, Loc, SpecError
from app.formatting import fmt_bytes, fmt_count
from app.spec.graph import GraphSpec
from app.spec.layers import KerasLayer
from app.spec.model import ModelSpec
from app.spec.training import Optimizer, TrainingSpec


def _units(layer: KerasLayer, loc: Loc) -> list[tuple[Loc, KerasLayer, int]]:
    """Every ``units`` of the layer and of the layers it wraps, each at its ``loc``."""
    found = ((where, x, getattr(x, "units", None)) for where, x in layer.walk(loc))
    return [((*where, "units"), x, units) for where, x, units in found if isinstance(units, int)]


def check_layer_count(spec: ModelSpec | GraphSpec, limits: Limits, loc: Loc = ("body",)) -> None:
    """The one limit checked before :func:`analyze`: a stack over ``max_layers`` is not walked at all.

    Raises:
        SpecError: (422, ``limit_exceeded``) giving the count and the limit.
    """
    if len(spec.layers) > limits.max_layers:
        raise SpecError.one(
            (*loc, "layers"),
            f"the model has {len(spec.layers)} layers, over the limit of {limits.max_layers} "
            "(LAYERWISE_MAX_LAYERS); use fewer layers",
            "limit_exceeded",
        )


def check_limits(
    spec: ModelSpec | GraphSpec,
    figures: ModelFigures,
    limits: Limits,
    batch_size: int,
    optimizer: Optimizer = "adam",
    loc: Loc = ("body",),
    *,
    training: bool = False,
) -> None:
    """The limits on what the model would allocate: units per layer, timesteps, parameters (``max_params``, or
    for a training the lower ``max_training_params``), and the estimated training memory at ``batch_size`` with
    ``optimizer`` (:meth:`ModelFigures.training_memory`).

    Args:
        spec: the normalized spec ``figures`` were computed from.
        training: the model is to be trained (its weights initialised and fitted), not only described.

    Raises:
        SpecError: (422, ``limit_exceeded``) one item per limit passed, each giving the computed figure, the
            limit and its setting.
    """
    errors: list[ErrorItem] = []
    for i, layer in enumerate(spec.layers):
        for where, holder, units in _units(layer, (*loc, "layers", i)):
            if units > limits.max_units:
                inside = "" if holder is layer else f" in its {holder.type}"
                errors.append(
                    ErrorItem(
                        where,
                        f"layer {i} ({layer.name}, {layer.type}) has units={units:,}{inside}, over the limit of "
                        f"{limits.max_units:,} units per layer (LAYERWISE_MAX_UNITS); use fewer units",
                        "limit_exceeded",
                    )
                )
    for row in figures.layers:
        if row.timesteps is not None and row.timesteps > limits.max_timesteps:
            errors.append(
                ErrorItem(
                    (*loc, "layers", row.index),
                    f"layer {row.index} ({row.name}, {row.type}) steps over {row.timesteps:,} timesteps, "
                    f"over the limit of {limits.max_timesteps:,} (LAYERWISE_MAX_TIMESTEPS); use shorter sequences",
                    "limit_exceeded",
                )
            )
    params = figures.total_params
    max_params, setting = (
        (limits.max_training_params, "LAYERWISE_MAX_TRAINING_PARAMS for a training")
        if training
        else (limits.max_params, "LAYERWISE_MAX_PARAMS")
    )
    if params > max_params:
        largest = max(figures.layers, key=lambda layer: layer.params)
        errors.append(
            ErrorItem(
                (*loc, "layers", largest.index),
                f"the model has {fmt_count(params)} parameters ({fmt_bytes(params * FLOAT32_BYTES)} of float32 "
                f"weights), over the limit of {max_params:,} ({setting}); the largest layer is "
                f"{largest.index} ({largest.name}, {largest.type}) with {fmt_count(largest.params)}: use fewer "
                "units or a shorter input to it",
                "limit_exceeded",
            )
        )
    memory = figures.training_memory(batch_size, optimizer)
    if memory.total_bytes > limits.max_memory_bytes:
        errors.append(
            ErrorItem(
                loc,
                f"training this model at a batch of {batch_size} needs an estimated {fmt_bytes(memory.total_bytes)} "
                f"({fmt_count(memory.total_bytes)} bytes: {memory.breakdown()}), over the limit of "
                f"{fmt_bytes(limits.max_memory_bytes)} ({limits.max_memory_bytes:,} bytes, "
                "LAYERWISE_MAX_MEMORY_BYTES); use a smaller model, input or batch",
                "limit_exceeded",
            )
        )
    if errors:
        raise SpecError(errors)


def check_training_limits(
    training: TrainingSpec, output_shapes: Sequence[Sequence[int | None]], settings: Settings, loc: Loc
) -> None:
    """The limits on what a training does: samples, epochs, their product (the work), and the bytes of the
    synthetic data its worker allocates (features and labels, float32).

    Args:
        training: a normalized training request.
        output_shapes: the shape of each of the model's outputs (batch first), which the labels take.

    Raises:
        SpecError: (422, ``limit_exceeded``) one item per limit passed, giving the figure, the limit and its
            setting.
    """
    samples, epochs = training.data.samples, training.fit.epochs
    errors: list[ErrorItem] = []

    def over(where: Loc, what: str, limit: int, setting: str, fix: str) -> None:
        errors.append(ErrorItem(where, f"{what}, over the limit of {limit:,} ({setting}); {fix}", "limit_exceeded"))

    if samples > settings.max_samples:
        where = (*loc, "data", "samples")
        over(where, f"samples={samples:,}", settings.max_samples, "LAYERWISE_MAX_SAMPLES", "use fewer")
    if epochs > settings.max_epochs:
        over((*loc, "fit", "epochs"), f"epochs={epochs:,}", settings.max_epochs, "LAYERWISE_MAX_EPOCHS", "use fewer")
    if samples * epochs > settings.max_sample_epochs:
        over(
            (*loc, "fit", "epochs"),
            f"samples x epochs = {samples:,} x {epochs:,} = {samples * epochs:,} sample-epochs",
            settings.max_sample_epochs,
            "LAYERWISE_MAX_SAMPLE_EPOCHS",
            "train on fewer samples or for fewer epochs",
        )
    steps = training.data.timesteps or 1  # the length of a variable-length model's null axes
    model = training.model
    inputs = [x.batch_shape for x in model.inputs] if isinstance(model, GraphSpec) else [model.batch_shape]
    values = sum(math.prod(d or steps for d in shape[1:]) for shape in [*inputs, *output_shapes])
    data_bytes = samples * values * 4
    if data_bytes > settings.max_data_bytes:
        over(
            (*loc, "data", "samples"),
            f"{samples:,} samples of {values:,} float32 values each (features and labels) take {data_bytes:,} bytes",
            settings.max_data_bytes,
            "LAYERWISE_MAX_DATA_BYTES",
            "use fewer samples or a smaller input shape",
        )
    if errors:
        raise SpecError(errors)
