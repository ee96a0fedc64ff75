"""``keras.layers.Embedding``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from pydantic import Field

from app.spec.layers.base import KerasLayer, Weight
from app.spec.layers.keras_config import COMMON_FIXED, NULL, Expect
from app.spec.layers.keras_objects import Constraint, Initializer, Regularizer
from app.spec.types import Dim, Shape


class Embedding(KerasLayer):
    """``keras.layers.Embedding(input_dim, output_dim)``: integer tokens in ``[0, input_dim)`` to vectors,
    ``(batch, *any)`` -> ``(batch, *any, output_dim)`` (keras/src/layers/core/embedding.py,
    ``compute_output_shape``). Keras 3 casts a float input to int32 without a word, so it takes any input;
    layerwise gives the model an int32 input when an Embedding is its first layer, and trains it on tokens.

    Weight: ``embeddings`` ``(input_dim, output_dim)``, trainable unless the layer is frozen (pretrained
    vectors: ``trainable: false``). Mult-adds: 0 -- a lookup multiplies nothing (torchinfo counts an
    ``nn.Embedding`` as its parameters per sample; the gather does no multiply-accumulate, so none here).

    Keras 2's ``input_length`` is the model's input shape (``[input_length]``) in Keras 3, which ignores the
    argument; :meth:`app.spec.ModelSpec.normalized` moves it there.
    """

    # Keras sets supports_masking = mask_zero: without it, a mask from a Masking before it is destroyed.
    SUPPORTS_MASKING: ClassVar[bool] = False
    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = {
        **COMMON_FIXED,
        "quantization_config": NULL,
        "lora_rank": NULL,
        "lora_alpha": NULL,
    }

    type: Literal["Embedding"]
    input_dim: Dim = Field(description="Size of the vocabulary: tokens are 0 .. input_dim - 1.", examples=[1000])
    output_dim: Dim = Field(description="Length of each token's vector.", examples=[64])
    mask_zero: bool = Field(
        False, description="Token 0 is padding: masked for the layers after it that support masking."
    )
    embeddings_initializer: Initializer = "uniform"
    embeddings_regularizer: Regularizer = None
    activity_regularizer: Regularizer = None
    embeddings_constraint: Constraint = None
    input_length: Dim | None = Field(
        None, description="Keras 2, first layer only: the sequence length, i.e. the model's input_shape [n]."
    )

    def keras_config(self) -> dict[str, object]:
        config = super().keras_config()
        config.pop("input_length", None)
        return config

    def supports_masking(self) -> bool:
        return self.mask_zero  # keras/src/layers/core/embedding.py: self.supports_masking = mask_zero

    def weights(self, input_shape: Shape) -> list[Weight]:
        return [Weight("embeddings", (self.input_dim, self.output_dim))]

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        return (*input_shape, self.output_dim)
