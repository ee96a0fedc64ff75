"""Import Keras's own JSON config (``model.to_json()``) of a Sequential model as a :class:`ModelSpec`.

Pure Python, by whitelist: the config is read as plain JSON and translated layer by layer by the layer types
of :mod:`app.spec.layers`. Keras's deserialisation (``keras.models.model_from_json``, ``from_config``) is never
called on it, so a ``Lambda`` (which carries Python bytecode), a custom object (``registered_name``) or any
class or argument this service does not model is a 422 that names what was refused, never code that runs.

A config key the spec does not model is accepted only with Keras 3's default value (initializers, ``seed``,
``trainable``...), since anything else could not be reproduced; ``build_config`` and ``compile_config`` are
ignored (the shapes are recomputed, and a summary does not depend on compiling).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from app.config import Limits
from app.errors import ErrorItem, Loc, SpecError, capped
from app.spec.layers import LAYER_TYPES
from app.spec.layers.common import KerasImportError
from app.spec.layers.keras_config import COMMON_FIXED, FALSE, Expect, InputDtype, Value
from app.spec.messages import error_item, validation_items
from app.spec.model import ModelSpec
from app.spec.types import SCHEMA_MAX_LAYERS


class KerasModelConfig(BaseModel):
    """Keras 3's ``model.to_json()`` of a ``Sequential`` (the shape the import accepts; it checks every key)."""

    module: str = Field("keras", description='"keras".')
    class_name: Literal["Sequential"]
    config: dict[str, Any] = Field(
        description="Sequential.get_config(): name, layers (an InputLayer, then supported layers), ..."
    )
    # Documented as a nullable string, not as the JSON type null alone, which generators cannot type (a
    # typescript-fetch client imported a "Null" model it never wrote); the import refuses any string.
    registered_name: str | None = Field(None, description="null: custom registered classes are refused (422).")
    build_config: dict[str, Any] | None = Field(None, description="Ignored: shapes are recomputed.")
    compile_config: dict[str, Any] | None = Field(None, description="Ignored.")


_MODEL_KEYS = {"module", "class_name", "config", "registered_name", "build_config", "compile_config"}
_LAYER_KEYS = {"module", "class_name", "config", "registered_name", "build_config"}
_INPUT_FIXED: dict[str, Expect] = {"dtype": InputDtype(), "sparse": FALSE, "ragged": FALSE, "optional": FALSE}
# The Sequential's own keys beyond name and layers (a model is trainable as a whole).
_MODEL_FIXED: dict[str, Expect] = {**COMMON_FIXED, "trainable": Value(True)}


def is_keras_config(body: Any) -> bool:
    """True when a request body is a Keras config (it has Keras's ``class_name``) rather than a spec."""
    return isinstance(body, dict) and "class_name" in body


def parse_model(body: Any, loc: Loc = ("body",), limits: Limits | None = None) -> ModelSpec:
    """A request body as a :class:`ModelSpec`: either a spec, or Keras's ``to_json()`` config of one.

    Args:
        limits: the service's limits, for the message of a value over a schema bound (``units``) they are below.

    Raises:
        SpecError: (422) the spec is invalid (pydantic's errors, each with its ``loc``), or the Keras config
            has something the import does not accept (``keras_import_refused``, ``loc`` into the config).
    """
    if is_keras_config(body):
        return spec_from_keras(body, loc, limits)
    try:
        return ModelSpec.model_validate(body)
    except ValidationError as exc:
        raise SpecError(validation_items(exc, loc, limits)) from None


def _refuse(loc: Loc, msg: str) -> SpecError:
    return SpecError([ErrorItem(loc, msg, "keras_import_refused")])


def _check_keys(obj: Mapping[str, Any], allowed: set[str], loc: Loc, what: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise _refuse(
            (*loc, unknown[0]),
            f"{what} has key {unknown[0]!r}, which the import does not accept (known: {', '.join(sorted(allowed))})",
        )


def _layer_object(obj: Any, loc: Loc, allowed: tuple[str, ...]) -> dict[str, Any]:
    """One serialized layer ``{"module", "class_name", "config", ...}`` as spec fields, by whitelist."""
    if not isinstance(obj, dict):
        raise KerasImportError(loc, "a layer must be an object with class_name and config")
    class_name = obj.get("class_name")
    if class_name not in allowed:
        why = " (it runs Python code, which this service never deserialises)" if class_name == "Lambda" else ""
        raise KerasImportError(
            (*loc, "class_name"),
            f"layer class {class_name!r} is not supported{why}; supported here: {', '.join(allowed)}",
        )
    unknown = sorted(set(obj) - _LAYER_KEYS)
    if unknown:
        raise KerasImportError((*loc, unknown[0]), f"{class_name} layer object has unknown key {unknown[0]!r}")
    if obj.get("registered_name") is not None:
        raise KerasImportError(
            (*loc, "registered_name"),
            f"{class_name} is registered as the custom object {obj['registered_name']!r}; custom objects are "
            "never deserialised: use the built-in Keras layer",
        )
    if obj.get("module", "keras.layers") != "keras.layers":
        raise KerasImportError((*loc, "module"), f"{class_name} must come from module keras.layers")
    config = obj.get("config")
    if not isinstance(config, dict):
        raise KerasImportError((*loc, "config"), f"{class_name} needs a config object")
    return LAYER_TYPES[class_name].from_keras_config(config, (*loc, "config"), _layer_object)


def _keras_loc(loc: Loc, first_layer: int, pydantic_loc: tuple[str | int, ...]) -> Loc:
    """Where in the Keras config a pydantic error on the translated spec lies."""
    if pydantic_loc[:1] == ("layers",) and len(pydantic_loc) > 1 and isinstance(pydantic_loc[1], int):
        where: list[str | int] = [*loc, "config", "layers", first_layer + pydantic_loc[1]]
        # (LSTM, units) -> config.units; (Bidirectional, layer, GRU, units) -> config.layer.config.units
        for part in pydantic_loc[2:]:
            if part not in LAYER_TYPES:
                where += ["config", part]
        return tuple(where)
    if pydantic_loc[:1] == ("batch_input_shape",):
        if not first_layer:  # from the config's build_input_shape
            return (*loc, "config", "build_input_shape", *pydantic_loc[1:])
        return (*loc, "config", "layers", 0, "config", "batch_shape", *pydantic_loc[1:])
    return (*loc, "config", *pydantic_loc)


def spec_from_keras(body: Mapping[str, Any], loc: Loc = ("body",), limits: Limits | None = None) -> ModelSpec:
    """Translate Keras's ``to_json()`` of a Sequential into a spec (not yet normalized).

    The input comes from the leading ``InputLayer`` (``batch_shape``, or Keras 2's ``batch_input_shape``),
    else from the config's ``build_input_shape``. Bidirectional's ``forward_``/``backward_`` copies become the
    RNN they were made from.

    Raises:
        SpecError: (422, ``keras_import_refused``) not a Sequential, a class or key the import does not
            accept, a custom object; or (pydantic's types) a value the spec refuses -- ``loc`` points into
            the Keras config, e.g. ``["body", "config", "layers", 2, "class_name"]``; Keras 2's ``to_json()``
            (``keras_version`` 2.x, ``backend``) is refused as such, with how to convert it.
    """
    _refuse_keras_2(body, loc)
    _check_keys(body, _MODEL_KEYS, loc, "the model")
    if body.get("class_name") != "Sequential":
        raise _refuse(
            (*loc, "class_name"),
            f"only Sequential models are imported, not {body.get('class_name')!r}: rebuild it as a Sequential",
        )
    if body.get("module", "keras") not in ("keras", "keras.models") or body.get("registered_name") is not None:
        raise _refuse((*loc, "module"), "the model must be Keras's own Sequential (module keras, no registered_name)")
    config = body.get("config")
    if not isinstance(config, dict):
        raise _refuse((*loc, "config"), "the model needs a config object")
    config_loc = (*loc, "config")
    _check_keys(config, {"name", "layers", "build_input_shape", *_MODEL_FIXED}, config_loc, "the Sequential config")
    for key, expect in _MODEL_FIXED.items():
        if key in config and not expect.matches(config[key]):
            raise _refuse((*config_loc, key), f"the model's {key} must be {expect}")
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        raise _refuse((*config_loc, "layers"), "the model needs a non-empty list of layers")
    if len(layers) > SCHEMA_MAX_LAYERS + 1:  # its InputLayer besides
        raise SpecError.one(
            (*config_loc, "layers"),
            f"the model has {len(layers):,} layers; a request holds at most {SCHEMA_MAX_LAYERS:,} (and an "
            "InputLayer); use fewer layers",
            "too_long",
        )

    spec: dict[str, Any] = {"layers": []}
    if "name" in config:
        spec["name"] = config["name"]
    first = 0
    head = layers[0]
    if isinstance(head, dict) and head.get("class_name") == "InputLayer":
        first = 1
        spec["batch_input_shape"] = _input_shape(head, (*config_loc, "layers", 0))  # checks config is an object
    elif config.get("build_input_shape") is not None:
        spec["batch_input_shape"] = config["build_input_shape"]
    else:
        raise _refuse(
            (*config_loc, "layers", 0),
            "the model has no input shape: its layers do not start with an InputLayer and its config has no "
            "build_input_shape; start the model with keras.Input(shape=...) before calling to_json()",
        )

    errors: list[ErrorItem] = []
    for i, obj in enumerate(layers[first:], start=first):
        try:
            spec["layers"].append(_layer_object(obj, (*config_loc, "layers", i), tuple(LAYER_TYPES)))
        except KerasImportError as exc:
            errors.append(exc.item)
    if errors:
        raise SpecError(capped(errors))
    try:
        return ModelSpec.model_validate(spec)
    except ValidationError as exc:
        items: list[ErrorItem] = []
        for error in exc.errors():
            where = _keras_loc(loc, first, tuple(error["loc"]))
            # The message counts layers as the Keras config does (its InputLayer first), as its loc does.
            part = error["loc"]
            index = part[1] if part[:1] == ("layers",) and len(part) > 1 else None
            shifted = (part[0], index + first, *part[2:]) if isinstance(index, int) else part
            item = error_item({**error, "loc": shifted}, limits)
            items.append(ErrorItem(where, item["msg"], item["type"]))
        raise SpecError(capped(items)) from None


def _refuse_keras_2(body: Mapping[str, Any], loc: Loc) -> None:
    """Refuse Keras 2's ``model.to_json()`` (tf.keras), recognised by the top-level keys it adds and Keras 3's
    lacks: ``keras_version`` ("2.x") and ``backend``. Its layers differ too (``batch_input_shape`` in their
    configs, Keras 2's initializer and dtype forms), so it is refused as a whole, with how to convert it.

    Raises:
        SpecError: (422, ``keras_import_refused``) at the ``keras_version`` key (else ``backend``).
    """
    version = body.get("keras_version")
    if "backend" not in body and not (isinstance(version, str) and version.startswith("2.")):
        return
    key = "keras_version" if "keras_version" in body else "backend"
    found = ", ".join(f"{k} {json.dumps(body[k])[:40]}" for k in ("keras_version", "backend") if k in body)
    raise _refuse(
        (*loc, key),
        f"this is Keras 2's model.to_json() ({found}), which the import does not read (nor does Keras 3's "
        "model_from_json): it reads Keras 3's. Load the model in Keras 3 and call to_json() there (from Keras 2.13+, "
        "model.save('model.keras'), then keras.models.load_model('model.keras').to_json() in Keras 3), or write "
        "the model as a spec: input_shape (the first layer's batch_input_shape without the batch) and its layers",
    )


def _input_shape(obj: Mapping[str, Any], loc: Loc) -> Any:
    _check_keys(obj, _LAYER_KEYS, loc, "the InputLayer")
    config = obj.get("config")
    if not isinstance(config, dict):
        raise _refuse((*loc, "config"), "the InputLayer needs a config object")
    _check_keys(config, {"batch_shape", "batch_input_shape", "name", *_INPUT_FIXED}, (*loc, "config"), "the InputLayer")
    for key, expect in _INPUT_FIXED.items():
        if key in config and not expect.matches(config[key]):
            raise _refuse((*loc, "config", key), f"the InputLayer's {key} must be {expect}")
    shape = config.get("batch_shape", config.get("batch_input_shape"))
    if shape is None:
        raise _refuse((*loc, "config", "batch_shape"), "the InputLayer needs batch_shape")
    return shape
