"""The values of Keras config keys this service does not model, as import accepts them.

Keras's ``get_config()`` carries keys the spec leaves out (initializers, regularizers, ``trainable``...). Import
takes such a key only when it holds Keras 3's default, because anything else could not be reproduced; these
matchers say what that default is. They compare plain JSON and never deserialise anything.
"""

from __future__ import annotations

import json
from typing import Any


class Expect:
    """One accepted value of a Keras config key; ``str()`` says which, for error messages."""

    def matches(self, value: Any) -> bool:
        """True when ``value`` is the accepted one."""
        raise NotImplementedError

    def __str__(self) -> str:
        raise NotImplementedError


class Value(Expect):
    """Exactly this JSON value (``None``, ``False``, ``"channels_last"``...)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def matches(self, value: Any) -> bool:
        # bool is an int in Python: False must not match 0; 1 and 1.0 are the same JSON number.
        if isinstance(value, bool) or isinstance(self.value, bool):
            return value is self.value
        if isinstance(value, int | float) and isinstance(self.value, int | float):
            return value == self.value
        return type(value) is type(self.value) and value == self.value

    def __str__(self) -> str:
        return json.dumps(self.value)


class OneOf(Expect):
    """Any of these accepted values (a default Keras writes in another form once the layer is built)."""

    def __init__(self, *expects: Expect) -> None:
        self.expects = expects

    def matches(self, value: Any) -> bool:
        return any(e.matches(value) for e in self.expects)

    def __str__(self) -> str:
        return " or ".join(str(e) for e in self.expects)


class KerasObject(Expect):
    """A serialized Keras object of one built-in class with its default config, e.g. an initializer::

        {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}, ...}

    Keys Keras added or dropped between 3.x versions may be absent, but a present one must hold the default.
    """

    def __init__(self, module: str, class_name: str, **config: Any) -> None:
        self.module = module
        self.class_name = class_name
        self.config = config

    def matches(self, value: Any) -> bool:
        if not isinstance(value, dict) or not set(value) <= {"module", "class_name", "config", "registered_name"}:
            return False
        config = value.get("config", {})
        return (
            value.get("module", self.module) == self.module
            and value.get("class_name") == self.class_name
            and value.get("registered_name") is None
            and isinstance(config, dict)
            and all(k in self.config and Value(self.config[k]).matches(v) for k, v in config.items())
        )

    def __str__(self) -> str:
        return f"Keras's default {self.class_name}"


class Float32(Expect):
    """The float32 dtype: ``"float32"`` or Keras 3's ``DTypePolicy`` of that name."""

    def matches(self, value: Any) -> bool:
        return value == "float32" or KerasObject("keras", "DTypePolicy", name="float32").matches(value)

    def __str__(self) -> str:
        return "float32"


class InputDtype(Expect):
    """An InputLayer's dtype: float32, or the int32 (or int64) of token ids before an Embedding. The service
    derives the dtype from the first layer (:attr:`app.spec.ModelSpec.input_dtype`), so the value is only
    checked to be one of these."""

    def matches(self, value: Any) -> bool:
        return value in ("float32", "int32", "int64") or Float32().matches(value)

    def __str__(self) -> str:
        return "float32, or int32 / int64 before an Embedding"


NULL = Value(None)
FALSE = Value(False)

# Keys of every layer's config (keras/src/layers/layer.py, Layer.get_config) that the spec does not model
# (``trainable`` it does: a field of every layer).
COMMON_FIXED: dict[str, Expect] = {"dtype": Float32()}

GLOROT_UNIFORM = KerasObject("keras.initializers", "GlorotUniform", seed=None, input_axes=None, output_axes=None)
ORTHOGONAL = KerasObject("keras.initializers", "Orthogonal", seed=None, gain=1.0)
ZEROS = KerasObject("keras.initializers", "Zeros")

# Dense's keys beyond its arguments (keras/src/layers/core/dense.py, Dense.get_config).
DENSE_FIXED: dict[str, Expect] = {
    **COMMON_FIXED,
    "lora_rank": NULL,
    "lora_alpha": NULL,
    "quantization_config": NULL,
}

# The recurrent layers' keys beyond their arguments (keras/src/layers/rnn/rnn.py, RNN.get_config, and
# lstm.py / gru.py / simple_rnn.py).
RECURRENT_FIXED: dict[str, Expect] = {
    **COMMON_FIXED,
    "go_backwards": FALSE,
    "unroll": FALSE,
    "zero_output_for_mask": FALSE,
    "seed": NULL,
}

# The convolutions' keys beyond their arguments (keras/src/layers/convolutional/base_conv.py,
# BaseConv.get_config; base_conv_transpose.py likewise).
CONV_FIXED: dict[str, Expect] = {**COMMON_FIXED, "data_format": Value("channels_last")}

# SeparableConv1D's (keras/src/layers/convolutional/base_separable_conv.py, get_config).
SEPARABLE_CONV_FIXED: dict[str, Expect] = {
    **COMMON_FIXED,
    "data_format": Value("channels_last"),
    "depthwise_initializer": GLOROT_UNIFORM,
    "pointwise_initializer": GLOROT_UNIFORM,
    "bias_initializer": ZEROS,
    "depthwise_regularizer": NULL,
    "pointwise_regularizer": NULL,
    "bias_regularizer": NULL,
    "activity_regularizer": NULL,
    "depthwise_constraint": NULL,
    "pointwise_constraint": NULL,
    "bias_constraint": NULL,
}

ONES = KerasObject("keras.initializers", "Ones")
UNIFORM = KerasObject("keras.initializers", "RandomUniform", seed=None, minval=-0.05, maxval=0.05)

# A default initializer by name -> Keras's serialized form of it, so that import reads it back as the name.
DEFAULT_OBJECTS: dict[str, Expect] = {
    "glorot_uniform": GLOROT_UNIFORM,
    "orthogonal": ORTHOGONAL,
    "zeros": ZEROS,
    "ones": ONES,
    "uniform": UNIFORM,
}

# The pooling layers' (keras/src/layers/pooling/base_pooling.py, base_global_pooling.py).
POOLING_FIXED: dict[str, Expect] = {**COMMON_FIXED, "data_format": Value("channels_last")}

# The normalization layers' initializers, regularizers and constraints (keras/src/layers/normalization/
# batch_normalization.py and layer_normalization.py, get_config).
NORMALIZATION_FIXED: dict[str, Expect] = {
    **COMMON_FIXED,
    "beta_initializer": ZEROS,
    "gamma_initializer": ONES,
    "beta_regularizer": NULL,
    "gamma_regularizer": NULL,
    "beta_constraint": NULL,
    "gamma_constraint": NULL,
}
