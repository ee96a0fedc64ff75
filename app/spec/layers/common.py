"""What the layer modules and :mod:`app.spec.layers.keras_objects` share below :mod:`app.spec.layers.base`: the
import's refusal and Python literals for export."""

from __future__ import annotations

import json
from typing import Any

from app.errors import ErrorItem, Loc


class KerasImportError(ValueError):
    """A Keras config that the import whitelist refuses; ``loc`` is relative to the layer object."""

    def __init__(self, loc: Loc, msg: str) -> None:
        super().__init__(msg)
        self.item = ErrorItem(loc, msg, "keras_import_refused")


def python_literal(value: Any) -> str:
    """A Python literal for a JSON-like value: ``True``, ``None``, ``0.5``, ``"tanh"``, ``[5, 10]``, ``{"a": 1}``."""
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(python_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{python_literal(k)}: {python_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Python literal for {type(value).__name__}")
