"""What the OpenAPI document says beyond what FastAPI writes from the routes (issue 19).

- Components referenced by hand: the payloads of a run's events (the event stream's ``itemSchema`` refers to
  them, which FastAPI does not read), written as answers are (every field the service sends required).
- ``TrainingRun.request`` as the ``TrainingSpec`` it is (the model keeps it a dict, so runs stored by earlier
  versions load as they were; pydantic cannot refer to a component of another generation).
- Keras's activation names as one component, ``Activation``, where pydantic writes the list inline in every
  field that takes one (six copies, and a client type for each).

FastAPI's way of extending the document is to wrap ``app.openapi``; the result is cached like FastAPI's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, get_args

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.spec.types import Activation

ACTIVATION_REF = {"$ref": "#/components/schemas/ActivationName"}


def _is_activations(node: Any) -> bool:
    """True for pydantic's inline schema of the Activation literal: ``{"type": "string", "enum": [...]}``."""
    return isinstance(node, dict) and node.get("enum") == list(get_args(Activation))


def _name_activations(node: Any) -> None:
    """Replace, in place, every inline schema of Keras's activation names with a reference to the component."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in list(children):
        if _is_activations(child):
            # A field's own words (description, examples, default) stay beside the reference (OpenAPI 3.1).
            extra = {k: v for k, v in child.items() if k not in ("type", "enum", "title")}
            node[key] = {**ACTIVATION_REF, **extra}
        else:
            _name_activations(child)


def install_openapi(app: FastAPI, answer_models: Sequence[type[BaseModel]]) -> None:
    """Add to the app's document the components of ``answer_models`` (models the document refers to by hand,
    in their serialization form) and the ``Activation`` component."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        _, definitions = models_json_schema(
            [(model, "serialization") for model in answer_models], ref_template="#/components/schemas/{model}"
        )
        for name, definition in definitions.get("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas["TrainingRun"]["properties"]["request"] = {
            "$ref": "#/components/schemas/TrainingSpec",
            "description": schemas["TrainingRun"]["properties"]["request"].get("description"),
        }
        _name_activations(schemas)
        schemas["ActivationName"] = {
            "type": "string",
            "enum": list(get_args(Activation)),
            "title": "ActivationName",
            "description": "Keras's activation names (keras.activations) that a sequence model plausibly uses.",
        }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
