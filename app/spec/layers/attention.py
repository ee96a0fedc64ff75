"""Keras's attention layers (keras/src/layers/attention/): ``Attention`` (Luong's dot-product),
``AdditiveAttention`` (Bahdanau's) and ``MultiHeadAttention`` (Vaswani et al. 2017). Graph models only: each
is called on a query and a value (and optionally a key, the value by default).

Mult-adds count the weights as everywhere else (:mod:`app.analysis.engine`) and, because the scores are where
attention's cost lies, the two matmuls of the scores as well: ``Tq·Tv·d`` for the query-key products and as
many for the weighted sum of the values, per head. They grow with the product of the query's and the value's
lengths, the square of the sequence length for self-attention.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from app.formatting import fmt_shape
from app.spec.layers.base import KerasLayer, KerasRefusal, Weight, prod
from app.spec.layers.keras_config import COMMON_FIXED, Expect, OneOf, Value
from app.spec.layers.keras_objects import Constraint, Initializer, Regularizer
from app.spec.types import Dim, Rate, Shape


def _query_value_key(layer: KerasLayer, inputs: list[Shape]) -> tuple[Shape, Shape, Shape]:
    query, value = inputs[0], inputs[1]
    return query, value, inputs[2] if len(inputs) > 2 else value


class BaseAttention(KerasLayer):
    """What the attention layers share: inputs query, value[, key] of rank 3 or more."""

    INPUTS: ClassVar[tuple[int, int]] = (2, 3)
    CALL_STYLE: ClassVar[str] = "list"
    CALL_OPTIONS: ClassVar[tuple[str, ...]] = ("use_causal_mask",)
    CHECKED_ON_CALL: ClassVar[bool] = True
    SUPPORTS_MASKING: ClassVar[bool] = True
    NEEDS: ClassVar[str] = "a query and a value (and optionally a key): give inputs two or three references"

    use_causal_mask: bool = Field(
        False,
        description="A call argument: each query step attends only to value steps up to its own (a decoder's "
        "self-attention). It changes no shape or count.",
    )

    def output_shape(self, input_shape: Shape) -> Shape:
        raise KerasRefusal(f"{self.type} takes a query and a value; it is a layer of graph models only")

    def _check(self, inputs: list[Shape]) -> tuple[Shape, Shape, Shape]:
        """The query, value and key, refused where Keras would build but fail when the layer runs."""
        query, value, key = _query_value_key(self, inputs)
        shown = ", ".join(fmt_shape(s) for s in inputs)
        if any(len(s) != 3 for s in (query, value, key)):
            raise KerasRefusal(
                f"{self.type} takes a query, a value and a key of shape (batch, timesteps, features), but it was "
                f"given {shown}"
            )
        if value[1] != key[1] and None not in (value[1], key[1]):
            raise KerasRefusal(f"{self.type} needs a value and a key of one length (axis 1), but it was given {shown}")
        return query, value, key


class Attention(BaseAttention):
    """``keras.layers.Attention``: dot-product attention (Luong et al. 2015). Output ``(batch, Tq, dv)``: the
    query's length, the value's features (``Attention.compute_output_shape``). The query and the key must have
    the same features (their dot products are the scores; Keras finds out only when the layer runs).

    Parameters: ``use_scale`` adds a scalar ``scale``, ``score_mode="concat"`` a scalar ``concat_score_weight``
    (``Attention.build``). Mult-adds per sample: ``Tq·Tv·d`` for the scores and ``Tq·Tv·dv`` for the sum.
    """

    type: Literal["Attention"]
    use_scale: bool = Field(False, description="Learn a scalar that multiplies the scores.")
    score_mode: Literal["dot", "concat"] = Field(
        "dot", description='"dot": the scores are query-key dot products; "concat": tanh of their sums.'
    )
    dropout: Rate = 0.0
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="The seed of the dropout.")

    def call_output_shapes(self, inputs: list[Shape], arguments: Mapping[str, list[Shape]]) -> list[Shape]:
        return [_scored(self, inputs)]

    def call_weights(self, inputs: list[Shape]) -> list[Weight]:
        weights = [Weight("scale", ())] if self.use_scale else []
        if self.score_mode == "concat":
            weights.append(Weight("concat_score_weight", ()))
        return _frozen(self, weights)

    def call_mult_adds(self, inputs: list[Shape]) -> int:
        return _score_mult_adds(inputs)

    def call_kept_scalars(self, inputs: list[Shape]) -> int:
        """:func:`_kept_scores`; the concat score keeps ``tanh(query + key)`` of every pair and feature too
        (``Attention._calculate_scores``)."""
        return _kept_scores(inputs, 1, self.dropout, features=self.score_mode == "concat")


class AdditiveAttention(BaseAttention):
    """``keras.layers.AdditiveAttention``: additive attention (Bahdanau et al. 2015); shapes and Mult-Adds as
    :class:`Attention`'s. Parameters: ``use_scale`` (the default) adds a ``scale`` of the query's features
    (``AdditiveAttention.build``)."""

    # Attention.get_config's keys, which AdditiveAttention's constructor does not take.
    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = {**COMMON_FIXED, "score_mode": Value("dot"), "seed": Value(None)}

    type: Literal["AdditiveAttention"]
    use_scale: bool = Field(True, description="Learn a vector that scales the summed query and key.")
    dropout: Rate = 0.0

    def call_output_shapes(self, inputs: list[Shape], arguments: Mapping[str, list[Shape]]) -> list[Shape]:
        return [_scored(self, inputs)]

    def call_weights(self, inputs: list[Shape]) -> list[Weight]:
        return _frozen(self, [Weight("scale", (inputs[0][-1],))] if self.use_scale else [])

    def call_mult_adds(self, inputs: list[Shape]) -> int:
        return _score_mult_adds(inputs)

    def call_kept_scalars(self, inputs: list[Shape]) -> int:
        """:func:`_kept_scores`, with ``tanh(query + key)`` of every pair and feature (Keras's additive score
        reduces it over the features: ``AdditiveAttention._calculate_scores``)."""
        return _kept_scores(inputs, 1, self.dropout, features=True)


def _frozen(layer: KerasLayer, weights: list[Weight]) -> list[Weight]:
    """``weights`` as Keras counts them: all non-trainable for a layer with ``trainable=False``."""
    return weights if layer.trainable else [Weight(w.name, w.shape, False) for w in weights]


def _scored(layer: BaseAttention, inputs: list[Shape]) -> Shape:
    """The output of (additive) dot-product attention: the query's shape with the value's features.

    Raises:
        KerasRefusal: see :meth:`BaseAttention._check`; or a query and key of different feature sizes.
    """
    query, value, key = layer._check(inputs)
    if query[-1] != key[-1] and None not in (query[-1], key[-1]):
        raise KerasRefusal(
            f"{layer.type} scores the query against the key, which needs them of one feature size, but it was "
            f"given {', '.join(fmt_shape(s) for s in inputs)}: project them to one size (a Dense)"
        )
    return (*query[:-1], value[-1])


def _kept_scores(inputs: list[Shape], heads: int, dropout: float, features: bool = False) -> int:
    """What an attention layer holds per sample at the backward pass's peak beyond its output, in the engine's
    convention (kept values, each with its gradient): two tensors of ``heads·Tq·Tk``, the softmax's weights
    (which the softmax's gradient and the weighted sum's need) and the softmax gradient's product of them with
    their gradient; one more for the dropout mask when ``dropout`` > 0; and with ``features`` ``Tq·Tk·d`` for a
    score that is ``tanh`` of the summed query and key. This is what grows with the square of the length.
    Measured (``bench/training_memory.py``, one graph-mode step of the playground's transformer_block at 1,024
    steps and a batch of 8): 528 MiB taken against 512 estimated, 682 against 768 with dropout."""
    query, key = inputs[0], inputs[2] if len(inputs) > 2 else inputs[1]
    pairs = prod(query[1:-1]) * prod(key[1:-1])
    return heads * pairs * (2 + (dropout > 0)) + (pairs * prod(query[-1:]) if features else 0)


def _score_mult_adds(inputs: list[Shape]) -> int:
    """``Tq·Tv·d`` for the scores and ``Tq·Tv·dv`` for the weighted sum of the values, per sample."""
    query, value = inputs[0], inputs[1]
    steps = prod(query[1:-1]) * prod(value[1:-1])
    return steps * prod(query[-1:]) + steps * prod(value[-1:])


class MultiHeadAttention(BaseAttention):
    """``keras.layers.MultiHeadAttention`` (Vaswani et al. 2017, "Attention is all you need"): ``num_heads``
    heads, each projecting the query and the key to ``key_dim`` and the value to ``value_dim`` (``key_dim`` by
    default), then projecting their concatenation back to the query's features. Output: the query's shape
    (``MultiHeadAttention.compute_output_shape``).

    Parameters (``MultiHeadAttention.build``: four ``EinsumDense``): query ``dq·h·k + h·k``, key ``dk·h·k +
    h·k``, value ``dv·h·v + h·v``, output ``h·v·dq + dq``; no bias terms without ``use_bias``. Mult-adds per
    sample: each projection's weights once per position, then ``h·Tq·Tk·k`` for the scores and ``h·Tq·Tk·v``
    for the weighted sum.
    """

    CALL_STYLE: ClassVar[str] = "positional"
    # MultiHeadAttention.get_config's keys this service does not model, at their defaults.
    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = {
        **COMMON_FIXED,
        "use_gate": Value(False),
        "output_shape": Value(None),
        # Built on (batch, timesteps, features), the default (None) is the time axis, which get_config writes.
        "attention_axes": OneOf(Value(None), Value([1])),
        "sliding_window": Value(None),
        "flash_attention": Value(None),
        "seed": Value(None),
    }

    type: Literal["MultiHeadAttention"]
    num_heads: Dim = Field(description="The number of attention heads.", examples=[4])
    key_dim: Dim = Field(description="The size of each head's query and key.", examples=[64])
    value_dim: Dim | None = Field(None, description="The size of each head's value; key_dim when null.")
    dropout: Rate = 0.0
    use_bias: bool = True
    kernel_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"
    kernel_regularizer: Regularizer = None
    bias_regularizer: Regularizer = None
    activity_regularizer: Regularizer = None
    kernel_constraint: Constraint = None
    bias_constraint: Constraint = None

    @field_validator("trainable")
    @classmethod
    def _freezable(cls, trainable: bool) -> bool:
        # Keras 3 builds the four projections (EinsumDense sublayers) after the constructor's trainable=False,
        # so they stay trainable: the layer's row says 0 trainable, the model's totals and fit train them all.
        if not trainable:
            raise ValueError(
                "Keras 3 does not freeze a MultiHeadAttention given trainable=false (its projections are built "
                "afterwards and stay trainable, so fit would still train them): leave trainable out"
            )
        return trainable

    def call_output_shapes(self, inputs: list[Shape], arguments: Mapping[str, list[Shape]]) -> list[Shape]:
        query, _, _ = self._check(inputs)
        return [query]

    def call_weights(self, inputs: list[Shape]) -> list[Weight]:
        query, value, key = _query_value_key(self, inputs)
        h, k = self.num_heads, self.key_dim
        v = self.value_dim or k
        out = query[-1]
        weights = [Weight("query/kernel", (query[-1], h, k))]
        if self.use_bias:
            weights.append(Weight("query/bias", (h, k)))
        weights.append(Weight("key/kernel", (key[-1], h, k)))
        if self.use_bias:
            weights.append(Weight("key/bias", (h, k)))
        weights.append(Weight("value/kernel", (value[-1], h, v)))
        if self.use_bias:
            weights.append(Weight("value/bias", (h, v)))
        weights.append(Weight("attention_output/kernel", (h, v, out)))
        if self.use_bias:
            weights.append(Weight("attention_output/bias", (out,)))
        return _frozen(self, weights)

    def call_mult_adds(self, inputs: list[Shape]) -> int:
        query, _value, key = _query_value_key(self, inputs)
        h, k = self.num_heads, self.key_dim
        v = self.value_dim or k
        tq, tk = prod(query[1:-1]), prod(key[1:-1])
        sizes = {w.name: w.size for w in self.call_weights(inputs)}

        def uses(name: str) -> int:
            return sizes.get(f"{name}/kernel", 0) + sizes.get(f"{name}/bias", 0)

        projections = tq * uses("query") + tk * uses("key") + tk * uses("value") + tq * uses("attention_output")
        return projections + h * tq * tk * k + h * tq * tk * v

    def call_kept_scalars(self, inputs: list[Shape]) -> int:
        """:func:`_kept_scores` of its ``num_heads`` heads (``MultiHeadAttention._compute_attention``)."""
        return _kept_scores(inputs, self.num_heads, self.dropout)


ATTENTION_LAYER_CLASSES: tuple[type[KerasLayer], ...] = (Attention, AdditiveAttention, MultiHeadAttention)
