"""pydantic's validation errors in the service's words: one ``loc`` form, and messages that say how to fix.

- ``loc``: pydantic's discriminated union puts the member it tried in the location
  (``["layers", 0, "LSTM", "units"]``, ``["layers", 0, "Bidirectional", "layer", "GRU", "units"]``); the service's
  own errors do not (``["layers", 0, "units"]``). :func:`drop_tags` takes the tag out, so every error has the
  second form and a front-end walks one kind of path through the spec.
- messages: a layer without ``type`` or with an unknown one lists the supported types; a name that does not
  match its pattern says in words what a name may hold; ``units`` over the schema's int32 bound gives the
  service's limit (``LAYERWISE_MAX_UNITS``) as the engine does for any ``units`` over it. Other errors keep
  pydantic's message, which already says what was expected.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from app.config import Limits
from app.errors import MAX_ERROR_ITEMS, NOT_CHECKED, ErrorItem, capped
from app.spec.layers import LAYER_CLASSES, LAYER_TYPES
from app.spec.layers.base import layer_type_names
from app.spec.types import NAME_PATTERN, NAME_RULE

Part = str | int

# The fields that hold another layer (Bidirectional's and TimeDistributed's ``layer``).
WRAPPED_FIELDS = frozenset(field for cls in LAYER_CLASSES for field in cls.WRAPPED_FIELDS)


def _holds_layer(part: Part) -> bool:
    """Whether what follows ``part`` in a loc is a layer: an index into ``layers``, or a wrapper's field."""
    return isinstance(part, int) or part in WRAPPED_FIELDS


def drop_tags(loc: Sequence[Part]) -> tuple[Part, ...]:
    """``loc`` without the union tags pydantic adds after a layer's place:
    ``("layers", 0, "Bidirectional", "layer", "LSTM", "units")`` -> ``("layers", 0, "layer", "units")``."""
    return tuple(
        part
        for i, part in enumerate(loc)
        if not (i and isinstance(part, str) and part in LAYER_TYPES and _holds_layer(loc[i - 1]))
        and not (i and part in MODEL_TAGS and loc[i - 1] == "model")
        and not (i >= 2 and part in PER_OUTPUT_TAGS and loc[i - 1] in PER_OUTPUT_FIELDS and loc[i - 2] == "compile")
    )


# The tags of a training's model union (app.spec.training.model_kind).
MODEL_TAGS = ("sequential", "graph")
# The tags of compile's per-output arguments (app.spec.training's LossArg and LossWeights): one value, a list, a dict.
PER_OUTPUT_FIELDS = ("loss", "loss_weights")
PER_OUTPUT_TAGS = ("one", "list", "dict")


def _layer_words(loc: Sequence[Part], infer_type: bool = True) -> str:
    """The layer a loc (with its tags) ends at, in words: ``layer 2``, ``layer 2 (LSTM)``, ``the layer that
    layer 0 (Bidirectional) wraps``, ``the GRU that layer 0 (Bidirectional) wraps``; with ``infer_type``, a
    wrapped layer of the one type its field holds is named by it (``the Dense that layer 0 (TimeDistributed)
    wraps``)."""
    index: int | None = None
    tags: list[str] = []
    field: str | None = None
    for i, part in enumerate(loc):
        previous = loc[i - 1] if i else None
        if isinstance(part, int) and previous == "layers":
            index, tags, field = part, [], None
        elif isinstance(part, str) and part in LAYER_TYPES and previous is not None and _holds_layer(previous):
            tags.append(part)
        elif isinstance(part, str) and part in WRAPPED_FIELDS and previous in LAYER_TYPES:
            field = part
    layer = "the layer" if index is None else f"layer {index}"
    if not tags:
        return layer
    if field is None:
        return f"{layer} ({tags[0]})"
    inner = tags[1] if len(tags) > 1 else "layer"
    accepted = _accepted_types((tags[0], field))
    if len(tags) == 1 and infer_type and len(accepted) == 1:
        inner = accepted[0]  # a field that holds one layer type has no union, so no tag: name the type it holds
    return f"the {inner} that {layer} ({tags[0]}) wraps"


def _accepted_types(loc: Sequence[Part]) -> tuple[str, ...]:
    """The ``type`` values the layer a loc (with its tags) ends at may have: any supported type in ``layers``,
    the wrapper's choice in a wrapper's field."""
    if len(loc) >= 2 and isinstance(loc[-2], str) and loc[-2] in LAYER_TYPES:
        field = LAYER_TYPES[loc[-2]].model_fields.get(str(loc[-1]))
        if field is not None:
            return layer_type_names(field.annotation)
    return tuple(LAYER_TYPES)


def _short(value: Any, limit: int = 40) -> str:
    """A value as JSON, cut to ``limit`` characters (a message never echoes a whole input)."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message(error: Mapping[str, Any], limits: Limits | None) -> tuple[str, str] | None:
    """(message, type) for the errors whose pydantic message does not say how to fix them; None for the rest."""
    kind = error["type"]
    loc: tuple[Part, ...] = tuple(error["loc"])
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    if kind in ("union_tag_not_found", "union_tag_invalid", "model_attributes_type") and loc and _holds_layer(loc[-1]):
        where = _layer_words(loc)
        types = ", ".join(_accepted_types(loc))
        if kind == "model_attributes_type":
            first = _accepted_types(loc)[0]
            example = {"type": first, **({"units": 32} if "units" in LAYER_TYPES[first].model_fields else {})}
            return (
                f'{where} is {_short(value)}, not a layer: a layer is a JSON object with "type", one of {types}, '
                f"and its arguments, e.g. {json.dumps(example)}",
                kind,
            )
        given = value.get("type") if isinstance(value, dict) else None
        if kind == "union_tag_not_found" or given is None:
            return f'{where} has no "type": every layer needs "type", its Keras class name, one of {types}', kind
        return f'{where} has type {_short(given)}, which is not supported here: "type" must be one of {types}', kind
    if kind == "literal_error" and len(loc) >= 2 and loc[-1] == "type" and _holds_layer(loc[-2]):
        # A wrapper's field that holds one layer type only (TimeDistributed's Dense): no union, a Literal.
        where, types = _layer_words(loc[:-1], infer_type=False), ", ".join(_accepted_types(loc[:-1]))
        return f'{where} has type {_short(value)}, which is not supported here: "type" must be {types}', kind
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == NAME_PATTERN:
        owner = "the model" if len(loc) == 1 else _layer_words(loc[:-1])
        return (
            f"{owner} has the name {_short(value)}, which is not valid: a name has {NAME_RULE}; rename it, or "
            "leave it out",
            kind,
        )
    if kind == "too_long" and loc and loc[-1] == "layers":
        count = ctx.get("actual_length")
        limit = f" (and this service builds at most {limits.max_layers:,}, LAYERWISE_MAX_LAYERS)" if limits else ""
        return (
            f"the model has {count:,} layers; a request holds at most {ctx.get('max_length'):,}{limit}; use fewer "
            "layers"
            if isinstance(count, int) and isinstance(ctx.get("max_length"), int)
            else str(error.get("msg", "")),
            kind,
        )
    if kind == "less_than_equal" and loc and loc[-1] == "units":
        bound = ctx.get("le")
        units = f"{value:,}" if isinstance(value, int) else _short(value)
        where = _layer_words(loc[:-1])
        # The schema's bound (int32) is far above the service's limit, which the engine checks afterwards; a
        # value over both gets the limit's message, as a value between the two does.
        if limits is not None and isinstance(bound, int) and limits.max_units < bound:
            msg = f"over the limit of {limits.max_units:,} units per layer (LAYERWISE_MAX_UNITS)"
            kind = "limit_exceeded"
        else:
            msg = f"over {bound:,}, the most a Keras layer takes" if isinstance(bound, int) else "too many"
        return f"{where} has units={units}, {msg}; use fewer units", kind
    return None


def error_item(error: Mapping[str, Any], limits: Limits | None = None, loc: Sequence[Part] = ()) -> ErrorItem:
    """One pydantic error (an item of ``ValidationError.errors()``) as the service answers it: ``loc`` prefixed
    and without union tags, the message rewritten where pydantic's does not say how to fix it, no input echo.

    Args:
        limits: the service's limits, for a message that names one (``units`` over the schema's bound).
        loc: where the validated value sits in the request, e.g. ``("body",)``.
    """
    message = _message(error, limits)
    msg, kind = message if message is not None else (str(error.get("msg", "")), str(error.get("type", "value_error")))
    return ErrorItem((*loc, *drop_tags(error.get("loc", ()))), msg, kind)


def error_items(errors: Sequence[Any], limits: Limits | None = None, loc: Sequence[Part] = ()) -> list[ErrorItem]:
    """pydantic's errors as the items of the shared error body (:func:`error_item` each).

    pydantic's errors echo the offending input and a docs URL; a 10 MB body must not come back in the answer,
    so only what the shared error shape promises is kept, and at most :data:`app.errors.MAX_ERROR_ITEMS` items
    with one more that counts the rest (:func:`app.errors.capped`).
    """
    kept = [e for i, e in enumerate(errors) if i < MAX_ERROR_ITEMS or e.get("type") == NOT_CHECKED]
    return capped([error_item(e, limits, loc) for e in kept], len(errors))


def validation_items(exc: ValidationError, loc: Sequence[Part], limits: Limits | None = None) -> list[ErrorItem]:
    """A pydantic ``ValidationError`` from validating part of a request by hand, as the items FastAPI's would
    get (``loc`` prefixed, union tags out of it, no input echo).

    Args:
        limits: the service's limits, named by the message of a value over a schema bound they are below.
    """
    return error_items(exc.errors(), limits, loc)
