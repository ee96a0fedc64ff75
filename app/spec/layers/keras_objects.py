"""Keras's built-in initializers, regularizers and constraints, as a spec may give them: a built-in name
(``"glorot_uniform"``, ``"l2"``, ``"non_neg"``) or ``{"class_name", "config"}`` of a built-in class
(``{"class_name": "RandomNormal", "config": {"stddev": 0.001}}``).

They change no shape or count; trainings use them, both exports write them and import reads them. Only the
classes listed here are accepted, each with the config keys its constructor takes (keras/src/initializers/,
keras/src/regularizers/regularizers.py, keras/src/constraints/constraints.py); nothing else is ever resolved by
name, and a custom object (``registered_name``, another module) is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from app.errors import Loc
from app.spec.layers.common import KerasImportError, python_literal
from app.spec.types import StrictModel

InitializerName = Literal[
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
    "identity",
    "zeros",
    "ones",
    "uniform",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "variance_scaling",
]
RegularizerName = Literal["l1", "l2", "l1_l2"]
ConstraintName = Literal["max_norm", "min_max_norm", "non_neg", "unit_norm"]

Number = float | int
# Each class's constructor arguments (Keras 3.15), with the kinds of value they take.
_SEEDED = {"seed": (int, type(None))}
_ARGUMENTS: dict[str, dict[str, dict[str, tuple[type, ...]]]] = {
    "initializers": {
        **{
            name: dict(_SEEDED)
            for name in ("GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "LecunUniform", "LecunNormal")
        },
        "Orthogonal": {"gain": (float, int), **_SEEDED},
        "Identity": {"gain": (float, int)},
        "Zeros": {},
        "Ones": {},
        "Constant": {"value": (float, int)},
        "RandomNormal": {"mean": (float, int), "stddev": (float, int), **_SEEDED},
        "TruncatedNormal": {"mean": (float, int), "stddev": (float, int), **_SEEDED},
        "RandomUniform": {"minval": (float, int), "maxval": (float, int), **_SEEDED},
        "VarianceScaling": {"scale": (float, int), "mode": (str,), "distribution": (str,), **_SEEDED},
    },
    "regularizers": {
        "L1": {"l1": (float, int)},
        "L2": {"l2": (float, int)},
        "L1L2": {"l1": (float, int), "l2": (float, int)},
    },
    "constraints": {
        "MaxNorm": {"max_value": (float, int), "axis": (int,)},
        "MinMaxNorm": {"min_value": (float, int), "max_value": (float, int), "rate": (float, int), "axis": (int,)},
        "NonNeg": {},
        "UnitNorm": {"axis": (int,)},
    },
}
_CHOICES = {
    "mode": ("fan_in", "fan_out", "fan_avg"),
    "distribution": ("truncated_normal", "untruncated_normal", "uniform"),
}
# The field-name endings that hold each kind, and the Keras module of each.
SUFFIXES: dict[str, str] = {
    "_initializer": "initializers",
    "_regularizer": "regularizers",
    "_constraint": "constraints",
}


class KerasObjectSpec(StrictModel):
    """``{"class_name", "config"}`` of a built-in Keras object; :attr:`MODULE` says which kind."""

    MODULE: ClassVar[str] = ""

    class_name: str
    config: dict[str, Number | str | None] = Field(default_factory=dict, max_length=16)

    @model_validator(mode="after")
    def _check_config(self) -> KerasObjectSpec:
        arguments = _ARGUMENTS[self.MODULE][self.class_name]
        for key, value in self.config.items():
            if key not in arguments:
                known = ", ".join(arguments) or "none"
                raise ValueError(f"{self.class_name} has no argument {key!r} (its arguments: {known})")
            kinds = arguments[key]
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise ValueError(f"{self.class_name} {key}={value!r} must be {' or '.join(k.__name__ for k in kinds)}")
            if key in _CHOICES and value not in _CHOICES[key]:
                raise ValueError(f"{self.class_name} {key}={value!r} must be one of {', '.join(_CHOICES[key])}")
        return self


class InitializerObject(KerasObjectSpec):
    """A built-in initializer with arguments, e.g. ``{"class_name": "RandomNormal", "config": {"stddev": 0.001}}``."""

    MODULE: ClassVar[str] = "initializers"

    class_name: Literal[
        "GlorotUniform",
        "GlorotNormal",
        "HeUniform",
        "HeNormal",
        "LecunUniform",
        "LecunNormal",
        "Orthogonal",
        "Identity",
        "Zeros",
        "Ones",
        "Constant",
        "RandomNormal",
        "TruncatedNormal",
        "RandomUniform",
        "VarianceScaling",
    ]


class RegularizerObject(KerasObjectSpec):
    """A built-in regularizer, e.g. ``{"class_name": "L2", "config": {"l2": 0.01}}``."""

    MODULE: ClassVar[str] = "regularizers"

    class_name: Literal["L1", "L2", "L1L2"]


class ConstraintObject(KerasObjectSpec):
    """A built-in constraint, e.g. ``{"class_name": "MaxNorm", "config": {"max_value": 3}}``."""

    MODULE: ClassVar[str] = "constraints"

    class_name: Literal["MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"]


Initializer = Annotated[
    InitializerName | InitializerObject,
    Field(description="A Keras built-in initializer: its name, or {class_name, config} of a built-in class."),
]
Regularizer = Annotated[
    RegularizerName | RegularizerObject | None,
    Field(description="A Keras built-in regularizer (l1, l2, l1_l2, or {class_name: L1 | L2 | L1L2, config})."),
]
Constraint = Annotated[
    ConstraintName | ConstraintObject | None,
    Field(
        description="A Keras built-in constraint (max_norm, min_max_norm, non_neg, unit_norm, or {class_name, config})."
    ),
]


def module_of(field: str) -> str | None:
    """``"initializers"``, ``"regularizers"`` or ``"constraints"`` for a field that holds one, else None."""
    return next((module for suffix, module in SUFFIXES.items() if field.endswith(suffix)), None)


def python_expr(module: str, value: Mapping[str, Any]) -> str:
    """Keras 3 code for an object given as ``{"class_name", "config"}``, e.g.
    ``keras.initializers.RandomNormal(stddev=0.001)``."""
    args = ", ".join(f"{k}={python_literal(v)}" for k, v in value.get("config", {}).items())
    return f"keras.{module}.{value['class_name']}({args})"


def from_keras(module: str, value: Any, loc: Loc) -> Any:
    """Keras's serialized object (``{"module": "keras.initializers", "class_name", "config", "registered_name"}``)
    as the spec gives it (``{"class_name", "config"}``); a name or ``None`` stays as it is. Nothing is
    deserialised: pydantic then checks the class and its arguments against the lists above.

    Raises:
        KerasImportError: a custom object (``registered_name``) or one from another module.
    """
    if not isinstance(value, dict):
        return value
    unknown = sorted(set(value) - {"module", "class_name", "config", "registered_name"})
    if unknown:
        raise KerasImportError((*loc, unknown[0]), f"a serialized Keras object has no key {unknown[0]!r}")
    if value.get("registered_name") is not None or value.get("module", f"keras.{module}") != f"keras.{module}":
        raise KerasImportError(
            loc,
            f"{value.get('class_name')!r} is not one of Keras's built-in {module} (module keras.{module}, no "
            f"registered_name); custom objects are never deserialised: use a built-in one",
        )
    config = value.get("config") or {}
    if isinstance(config, dict):
        # Keras writes every argument; a null one (seed, GlorotUniform's input_axes...) is its default, left out.
        config = {k: v for k, v in config.items() if v is not None}
    return {"class_name": value.get("class_name"), "config": config}
