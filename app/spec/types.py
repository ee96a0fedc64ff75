"""The request language's vocabulary: the field types every spec model shares, in Keras's words. Pure pydantic.

Shapes are tuples with the batch axis first, ``None`` for an open batch, as Keras writes them.
"""

from __future__ import annotations

from itertools import islice
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

Shape = tuple[int | None, ...]

# The most layers a request's model may list: far past any real sequence model (keras-io's largest has a few
# dozen), and the ceiling of LAYERWISE_MAX_LAYERS, the service's own limit (100 by default). A bound in the schema,
# so that pydantic refuses a longer list before it validates any of its items.
SCHEMA_MAX_LAYERS = 1000
# The most entries of a per-axis list (kernel_size, strides, pool_size...): a shape has at most 8 axes here.
MAX_AXES = 8

# Keras's activation names (keras.activations), the ones a sequence model plausibly uses.
Activation = Literal[
    "linear",
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "gelu",
    "silu",
    "swish",
    "mish",
    "sigmoid",
    "hard_sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "softplus",
    "softsign",
    "exponential",
]

# Names as TensorFlow's name scopes accept them (Keras itself only forbids "/"): letters, digits, "_", ".", "-".
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
# The pattern in words, for the schema's description and the error a name that does not match it gets.
NAME_RULE = (
    "1 to 64 characters: ASCII letters, digits, '_', '.' and '-', starting with a letter or digit (no spaces or "
    "accents)"
)
Name = Annotated[
    str,
    StringConstraints(pattern=NAME_PATTERN),
    Field(
        description=f"Keras layer/model name: {NAME_RULE}. Optional; Keras-style names (lstm, lstm_1, ...) are "
        "given to unnamed layers."
    ),
]
# A reference to a tensor of a graph model: "x" is the only (or first) output of the input or layer named x,
# "x:k" its output k, counted as Keras returns them (an LSTM with return_state: output, state_h, state_c).
REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}(:[0-9]{1,3})?$"
Ref = Annotated[
    str,
    StringConstraints(pattern=REF_PATTERN),
    Field(
        description='A tensor of a graph model: "x" is the only (or first) output of the input or layer named x, '
        '"x:k" its output k, counted as Keras returns them (an LSTM with return_state gives output, state_h, '
        "state_c as x:0, x:1, x:2).",
        examples=["encoder:1"],
    ),
]
# Call arguments that take several tensors: a merge's inputs, an RNN's initial_state (a layer has at most a
# few; the bound keeps a hostile body cheap).
Refs = Annotated[list[Ref], Field(min_length=1, max_length=64)]

# Upper bounds here only keep numbers sane (int32); the service's resource limits are settings.
Dim = Annotated[int, Field(ge=1, le=2**31 - 1)]
# The examples are what a front-end starts a new layer's required field with (the playground does).
Units = Annotated[int, Field(ge=1, le=2**31 - 1, description="Dimensionality of the output space.", examples=[32])]
Rate = Annotated[float, Field(ge=0.0, lt=1.0, description="Fraction of the units to drop, in [0, 1).", examples=[0.2])]
InputShape = Annotated[
    list[Dim | None],
    Field(
        min_length=1,
        max_length=8,
        description="Shape of one sample, without the batch dimension; null for an axis of any length (Keras's "
        "None), e.g. [null] for token sequences of any length, [null, 20] for any number of timesteps.",
    ),
]
BatchInputShape = Annotated[
    list[Dim | None],
    Field(
        min_length=2,
        max_length=9,
        description="Batch size first (an integer fixes it, null leaves it open), then one sample's shape.",
    ),
]


class StrictModel(BaseModel):
    """Base of every request model: unknown fields rejected, no type coercion, no NaN or infinity.

    An object with more keys than the model has fields is refused whole, as one error (``too_many_keys``),
    before its fields are validated: pydantic would otherwise give one error per unknown key, and 90,000 keys
    in a 1 MiB body cost 2 s and a 9 MB answer here (bench/big_bodies.py).
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _bound_keys(cls, data: Any) -> Any:
        fields = cls.model_fields  # read once: pydantic builds it on each access
        if isinstance(data, dict) and len(data) > len(fields):
            unknown = list(islice((key for key in data if key not in fields), 3))
            raise PydanticCustomError(
                "too_many_keys",
                "this {what} has {count} keys, more than the {fields} fields it takes; remove the unknown ones "
                "(the first: {unknown})",
                {
                    "what": cls.__name__,
                    "count": f"{len(data):,}",
                    "fields": len(fields),
                    "unknown": ", ".join(repr(str(key)[:40]) for key in unknown),
                },
            )
        return data
