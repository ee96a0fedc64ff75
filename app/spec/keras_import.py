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
from app.spec.graph import MAX_INPUTS, GraphSpec, is_graph_body
from app.spec.layers import LAYER_TYPES
from app.spec.layers.common import KerasImportError
from app.spec.layers.keras_config import COMMON_FIXED, FALSE, Expect, InputDtype, Value
from app.spec.messages import error_item, validation_items
from app.spec.model import ModelSpec
from app.spec.types import SCHEMA_MAX_LAYERS


class KerasModelConfig(BaseModel):
    """Keras 3's ``model.to_json()`` of a ``Sequential`` or a functional ``Model`` (the shape the import accepts;
    it checks every key)."""

    module: str = Field("keras", description='"keras" (a Sequential), "keras.src.models.functional" (a Functional).')
    class_name: Literal["Sequential", "Functional"]
    config: dict[str, Any] = Field(
        description="get_config(): name, layers (a Sequential's: an InputLayer, then supported layers; a "
        "Functional's: its InputLayers and layers, each with its inbound_nodes), and for a Functional its "
        "input_layers and output_layers."
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


def parse_model(body: Any, loc: Loc = ("body",), limits: Limits | None = None) -> ModelSpec | GraphSpec:
    """A request body as a :class:`ModelSpec`, or a :class:`GraphSpec` when it has a top-level ``inputs``:
    either a spec, or Keras's ``to_json()`` config of a Sequential.

    Args:
        limits: the service's limits, for the message of a value over a schema bound (``units``) they are below.

    Raises:
        SpecError: (422) the spec is invalid (pydantic's errors, each with its ``loc``), or the Keras config
            has something the import does not accept (``keras_import_refused``, ``loc`` into the config).
    """
    if is_keras_config(body):
        return spec_from_keras(body, loc, limits)
    try:
        if is_graph_body(body):
            return GraphSpec.model_validate(body)
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


def spec_from_keras(
    body: Mapping[str, Any], loc: Loc = ("body",), limits: Limits | None = None
) -> ModelSpec | GraphSpec:
    """Translate Keras's ``to_json()`` of a Sequential (or a functional ``Model``: :func:`graph_from_keras`) into
    a spec (not yet normalized).

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
    if body.get("class_name") == "Functional":
        return graph_from_keras(body, loc, limits)
    if body.get("class_name") != "Sequential":
        raise _refuse(
            (*loc, "class_name"),
            f"only Sequential and Functional models are imported, not {body.get('class_name')!r}: rebuild it as "
            "one of them",
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
            layer = _layer_object(obj, (*config_loc, "layers", i), tuple(LAYER_TYPES))
            if layer.get("return_state"):
                raise KerasImportError(
                    (*config_loc, "layers", i, "config", "return_state"),
                    f"{layer['type']} return_state=true returns its states too, which a Sequential cannot pass on; "
                    "export the model as a functional Model to keep them",
                )
            spec["layers"].append(layer)
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


# A functional model's layer object also says its name and the calls it was made by.
_GRAPH_LAYER_KEYS = {*_LAYER_KEYS, "name", "inbound_nodes"}
# The call keywords of a node that a spec says (mask, initial_state) or that hold Keras's defaults.
_CALL_DEFAULTS: dict[str, Expect] = {"training": FALSE, "mask": Value(None)}
# The layers whose call takes use_causal_mask (app.spec.layers.attention).
_CAUSAL = ("Attention", "AdditiveAttention", "MultiHeadAttention")


def _history(tensor: Any, loc: Loc) -> str:
    """A serialized Keras tensor (``{"class_name": "__keras_tensor__", "config": {"keras_history": [layer,
    node, index]}}``) as a reference ``"layer:index"``.

    Raises:
        KerasImportError: not a Keras tensor, or one from a layer's second call (a shared layer).
    """
    config = tensor.get("config") if isinstance(tensor, dict) else None
    history = config.get("keras_history") if isinstance(config, dict) else None
    if (
        not isinstance(tensor, dict)
        or tensor.get("class_name") != "__keras_tensor__"
        or not isinstance(history, list)
        or len(history) != 3
        or not isinstance(history[0], str)
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in history[1:])
    ):
        raise KerasImportError(loc, "a layer's call must take Keras tensors (__keras_tensor__ with a keras_history)")
    name, node, index = history
    if node != 0:
        raise KerasImportError(
            loc, f"{name} is called more than once (a shared layer), which the import does not support"
        )
    return f"{name}:{index}"


def _call(obj: Mapping[str, Any], spec: dict[str, Any], loc: Loc, masks: frozenset[str] = frozenset()) -> None:
    """Add what a functional model's layer was called on (its one inbound node) to its spec fields; a ``mask``
    that is one of Keras's own mask operations (``masks``: :func:`_mask_operations`) is left out, as Keras
    passes it again by itself."""
    nodes = obj.get("inbound_nodes")
    if not isinstance(nodes, list) or len(nodes) != 1 or not isinstance(nodes[0], dict):
        count = len(nodes) if isinstance(nodes, list) else 0
        raise KerasImportError(
            (*loc, "inbound_nodes"),
            f"{spec['type']} must be called once (it has {count} calls): a shared layer is not supported",
        )
    node, where = nodes[0], (*loc, "inbound_nodes", 0)
    args = node.get("args", [])
    kwargs = node.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict) or not args:
        raise KerasImportError(where, f"{spec['type']}'s call needs args (a list) and kwargs (an object)")
    if isinstance(args[0], list):  # a merge or Attention: layer([a, b])
        if len(args) != 1:
            raise KerasImportError((*where, "args"), f"{spec['type']} takes one list of tensors")
        spec["inputs"] = [_history(t, (*where, "args", 0, k)) for k, t in enumerate(args[0])]
    else:  # one tensor, or MultiHeadAttention's query, value
        spec["inputs"] = [_history(t, (*where, "args", k)) for k, t in enumerate(args)]
    for key, value in kwargs.items():
        at = (*where, "kwargs", key)
        if key == "initial_state" and isinstance(value, list):
            spec["initial_state"] = [_history(t, (*at, k)) for k, t in enumerate(value)]
        elif key == "mask" and value is not None:
            ref = _history(value, at)
            if ref.split(":")[0] not in masks:
                spec["mask"] = ref
        elif key == "key" and spec["type"] == "MultiHeadAttention" and value is not None:
            spec["inputs"].append(_history(value, at))
        elif key == "use_causal_mask" and spec["type"] in _CAUSAL and isinstance(value, bool):
            spec["use_causal_mask"] = value
        elif key in _CALL_DEFAULTS and _CALL_DEFAULTS[key].matches(value):
            continue
        else:
            raise KerasImportError(
                at, f"{spec['type']}'s call argument {key}={json.dumps(value)[:80]} is not supported by the import"
            )


def _tensor_name(tensor: Any) -> str | None:
    """The layer a serialized Keras tensor comes from, if it is one from a first call; else ``None``."""
    config = (
        tensor.get("config") if isinstance(tensor, dict) and tensor.get("class_name") == "__keras_tensor__" else None
    )
    history = config.get("keras_history") if isinstance(config, dict) else None
    if isinstance(history, list) and len(history) == 3 and isinstance(history[0], str) and history[1:] == [0, 0]:
        return history[0]
    return None


def _mask_operations(layers: list[Any]) -> frozenset[str]:
    """The names of the operations Keras itself adds to a functional model to compute a mask, which its
    ``to_json()`` lists as layers: ``NotEqual(x, 0)`` for an ``Embedding(mask_zero=True)`` called on ``x``, and
    ``Any(NotEqual(x, mask_value), axis=-1)`` for a ``Masking(mask_value)`` called on ``x``. Only these exact
    forms, of Keras's own module and beside the layer whose mask they are, are recognised; the import leaves them
    out (the rebuilt model makes them again) and any other operation stays refused as a class not supported."""
    called_on: dict[str, list[tuple[str, Any]]] = {}  # tensor name -> (class, mask value) of the layers on it
    ops: dict[str, tuple[str, str | None, Any]] = {}  # op name -> (class, its tensor's name, its constant)
    for obj in layers:
        if not isinstance(obj, dict):
            continue
        nodes = obj.get("inbound_nodes")
        node = nodes[0] if isinstance(nodes, list) and len(nodes) == 1 and isinstance(nodes[0], dict) else None
        args = node.get("args") if node is not None else None
        if not isinstance(args, list) or not args:
            continue
        raw = obj.get("config")
        config: dict[str, Any] = raw if isinstance(raw, dict) else {}
        source = _tensor_name(args[0])
        cls = obj.get("class_name")
        if cls == "Embedding" and config.get("mask_zero") is True and source:
            called_on.setdefault(source, []).append(("Embedding", 0))
        elif cls == "Masking" and source:
            called_on.setdefault(source, []).append(("Masking", config.get("mask_value", 0.0)))
        elif obj.get("module") == "keras.src.ops.numpy" and node is not None and node.get("kwargs") == {}:
            name = obj.get("name")
            if cls == "NotEqual" and set(config) == {"name"} and len(args) == 2 and isinstance(name, str):
                constant = args[1]
                if isinstance(constant, int | float) and not isinstance(constant, bool):
                    ops[name] = ("NotEqual", source, constant)
            elif (
                cls == "Any"
                and config.get("axis") == -1
                and config.get("keepdims") is False
                and set(config) == {"name", "axis", "keepdims"}
                and len(args) == 1
                and isinstance(name, str)
            ):
                ops[name] = ("Any", source, None)
    found: set[str] = set()
    for name, (cls, source, constant) in ops.items():
        users = called_on.get(source or "", []) if cls == "NotEqual" else []
        if ("Embedding", 0) in users and constant == 0:
            found.add(name)
        if any(kind == "Masking" and value == constant for kind, value in users):
            found.add(name)
    for name, (cls, source, _) in ops.items():  # Masking's Any, on its NotEqual
        if cls == "Any" and source in found and ops[source][0] == "NotEqual":
            found.add(name)
    return frozenset(found)


def graph_from_keras(body: Mapping[str, Any], loc: Loc = ("body",), limits: Limits | None = None) -> GraphSpec:
    """Translate Keras's ``to_json()`` of a functional ``Model`` into a graph spec (not yet normalized): each
    ``InputLayer`` an input, each layer's one call its ``inputs`` (and ``initial_state``, ``mask``), the
    ``output_layers`` its outputs. Layers go through the same whitelist as a Sequential's; nothing is
    deserialised.

    Raises:
        SpecError: (422, ``keras_import_refused``) a key, class or call the import does not accept (a shared
            layer, a call argument it does not model), ``loc`` into the config; or pydantic's, as for a
            Sequential.
    """
    config = body.get("config")
    if not isinstance(config, dict):
        raise _refuse((*loc, "config"), "the model needs a config object")
    config_loc = (*loc, "config")
    allowed = {"name", "layers", "input_layers", "output_layers", *_MODEL_FIXED}
    _check_keys(config, allowed, config_loc, "the Functional config")
    for key, expect in _MODEL_FIXED.items():
        if key in config and not expect.matches(config[key]):
            raise _refuse((*config_loc, key), f"the model's {key} must be {expect}")
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        raise _refuse((*config_loc, "layers"), "the model needs a non-empty list of layers")
    if len(layers) > SCHEMA_MAX_LAYERS + MAX_INPUTS:  # counted before any is walked: a long list costs nothing
        raise _refuse(
            (*config_loc, "layers"),
            f"the model has {len(layers):,} layers; a request holds at most {SCHEMA_MAX_LAYERS:,} and "
            f"{MAX_INPUTS} inputs (and the service's limit is lower): use fewer layers",
        )
    spec: dict[str, Any] = {"inputs": [], "layers": []}
    if "name" in config:
        spec["name"] = config["name"]
    errors: list[ErrorItem] = []
    masks = _mask_operations(layers)
    for i, obj in enumerate(layers):
        where = (*config_loc, "layers", i)
        if isinstance(obj, dict) and obj.get("name") in masks:
            continue  # Keras's own mask operation: the rebuilt model makes it again
        try:
            if not isinstance(obj, dict):
                raise KerasImportError(where, "a layer must be an object with class_name and config")
            _check_keys(obj, _GRAPH_LAYER_KEYS, where, "the layer")
            if obj.get("class_name") == "InputLayer":
                inner = obj.get("config")
                if not isinstance(inner, dict):
                    raise KerasImportError((*where, "config"), "the InputLayer needs a config object")
                # A graph input says its own dtype (a bool mask, int32 tokens): the spec checks it.
                checked = {k: v for k, v in obj.items() if k in _LAYER_KEYS}
                _input_shape({**checked, "config": {k: v for k, v in inner.items() if k != "dtype"}}, where)
                shape = inner.get("batch_shape", inner.get("batch_input_shape"))
                if not isinstance(shape, list) or len(shape) < 2:
                    raise KerasImportError((*where, "config", "batch_shape"), "the InputLayer needs a batch_shape")
                dtype = inner.get("dtype", "float32")
                if isinstance(dtype, dict):  # Keras 3.x serializes a DTypePolicy
                    dtype = dtype.get("config", {}).get("name", "float32")
                spec["inputs"].append(
                    {"name": inner.get("name", obj.get("name")), "shape": shape[1:], "batch_size": shape[0]}
                    | ({} if dtype == "float32" else {"dtype": dtype})
                )
                continue
            layer_obj = {k: v for k, v in obj.items() if k in _LAYER_KEYS}
            layer = _layer_object(layer_obj, where, tuple(LAYER_TYPES))
            _call(obj, layer, where, masks)
            spec["layers"].append(layer)
        except KerasImportError as exc:
            errors.append(exc.item)
    if errors:
        raise SpecError(errors)
    outputs = config.get("output_layers")
    if isinstance(outputs, list) and outputs and not isinstance(outputs[0], list):
        outputs = [outputs]  # one output: Keras writes its triple alone
    if not isinstance(outputs, list) or not outputs:
        raise _refuse((*config_loc, "output_layers"), "the model needs output_layers")
    refs = []
    for k, triple in enumerate(outputs):
        if not (isinstance(triple, list) and len(triple) == 3 and isinstance(triple[0], str)):
            raise _refuse((*config_loc, "output_layers", k), "an output is [layer name, node index, tensor index]")
        refs.append(f"{triple[0]}:{triple[2]}" if triple[2] else triple[0])
    spec["outputs"] = refs
    try:
        return GraphSpec.model_validate(spec)
    except ValidationError as exc:
        raise SpecError(validation_items(exc, config_loc, limits)) from None


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
