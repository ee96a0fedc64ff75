"""``keras.layers.Conv1DTranspose``."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from app.spec.layers.base import Weight
from app.spec.layers.base_conv import KernelConv, as_tuple
from app.spec.types import Shape


def transpose_length(
    length: int | None, kernel: int, stride: int, dilation: int, padding: str, output_padding: int | None
) -> int | None:
    """One axis of a transposed convolution's output (keras/src/backend/common/backend_utils.py,
    ``_get_output_shape_given_tf_padding``), with the kernel's span ``K = d(k-1) + 1``: ``valid``
    ``(L-1)·s + K + (max(K, s) - K`` or ``output_padding)``; ``same`` ``L·s``, or ``(L-1)·s + K mod 2 +
    output_padding`` when that is given."""
    if length is None:
        return None
    span = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(span, stride) - span if output_padding is None else output_padding
        return (length - 1) * stride + span + extra
    if output_padding is None:
        return length * stride
    return (length - 1) * stride + span % 2 + output_padding


class Conv1DTranspose(KernelConv):
    """``keras.layers.Conv1DTranspose``: ``(batch, steps, channels)`` -> ``(batch, new_steps, filters)``, with
    ``new_steps`` from :func:`transpose_length` (keras/src/layers/convolutional/base_conv_transpose.py,
    ``compute_output_shape``). Weights (``build``): a kernel ``(k, filters, channels)`` and a bias
    ``(filters,)``, so ``k·filters·channels + filters``. Mult-adds per sample: ``params · new_steps``,
    torchinfo's convention for ``ConvTranspose1d`` (torchinfo/layer_info.py, ``calculate_macs``: output
    positions, not input ones).
    """

    RANK: ClassVar[int] = 1
    INPUT_MIN_NDIM: ClassVar[int] = 3
    NEEDS: ClassVar[str] = "3-D input (batch, steps, channels)"

    type: Literal["Conv1DTranspose"]
    output_padding: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = Field(
        None, description="Extra steps at the end of the output; less than strides. null: Keras infers it."
    )

    @model_validator(mode="after")
    def _check_output_padding(self) -> Conv1DTranspose:
        self.check_strides_and_dilation()
        strides = as_tuple(self.strides, 1)[0]
        if self.output_padding is not None and self.output_padding >= strides:
            raise ValueError(
                f"Keras needs output_padding less than strides (received output_padding={self.output_padding}, "
                f"strides={self.strides}): lower output_padding or raise strides"
            )
        return self

    def weights(self, input_shape: Shape) -> list[Weight]:
        kernel, _, _ = self._spec()
        weights = [Weight("kernel", (*kernel, self.filters, input_shape[-1]))]
        return [*weights, Weight("bias", (self.filters,))] if self.use_bias else weights

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        (kernel,), (stride,), (dilation,) = self._spec()
        length = transpose_length(input_shape[1], kernel, stride, dilation, self.padding, self.output_padding)
        return (input_shape[0], length, self.filters)
