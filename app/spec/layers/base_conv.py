"""What the convolutions share: Keras's ``BaseConv`` arguments, the output length formula and the checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from app.errors import Loc
from app.spec.layers import refusals
from app.spec.layers.base import KerasLayer, ShapeError, TranslateLayer, Weight, prod
from app.spec.layers.keras_config import CONV_FIXED, Expect
from app.spec.layers.keras_objects import Constraint, Initializer, Regularizer
from app.spec.types import MAX_AXES, Activation, Shape

Filters = Annotated[
    int, Field(ge=1, le=2**31 - 1, description="Number of output channels (the last axis).", examples=[32])
]
# Keras takes an int (the same on every spatial axis) or one value per spatial axis.
Size = Annotated[int, Field(ge=1, le=2**31 - 1)]
# One size per spatial axis (at most a shape's axes: a bound pydantic checks before the items).
Sizes = Annotated[list[Size], Field(max_length=MAX_AXES)]
PadLength = Annotated[int, Field(ge=0, le=2**31 - 1)]


def as_tuple(value: int | Sequence[int], rank: int) -> tuple[int, ...]:
    """An int or a per-axis list as ``rank`` values, as Keras's ``standardize_tuple``
    (keras/src/utils/argument_validation.py)."""
    return (value,) * rank if isinstance(value, int) else tuple(value)


def conv_length(length: int | None, kernel: int, stride: int, dilation: int, padding: str) -> int | None:
    """One spatial axis of a convolution's output (keras/src/ops/operation_utils.py,
    ``compute_conv_output_shape``): ``floor((L - d(k-1) - 1) / s) + 1`` with ``padding="valid"``,
    ``floor((L - 1) / s) + 1`` with ``"same"`` or ``"causal"``; ``None`` stays ``None``. May be <= 0 (refused)."""
    if length is None:
        return None
    if padding == "valid":
        return (length - dilation * (kernel - 1) - 1) // stride + 1
    return (length - 1) // stride + 1


class BaseConv(KerasLayer):
    """A Keras convolution over ``RANK`` spatial axes, channels last: ``(batch, *spatial, channels)`` ->
    ``(batch, *out_spatial, filters)`` (keras/src/layers/convolutional/base_conv.py).

    Mult-adds per sample, torchinfo's convention for ``ConvNd`` (torchinfo/layer_info.py, ``calculate_macs``):
    every weight (kernel and bias elements) once per output position, ``params · prod(out_spatial)``, i.e. the
    kernel elements times the output positions.
    """

    RANK: ClassVar[int] = 1
    KERAS_FIXED: ClassVar[Mapping[str, Expect]] = CONV_FIXED

    filters: Filters
    kernel_size: Size | Sizes = Field(
        description="Length of the convolution window: one int for every spatial axis, or one per axis.",
        examples=[3],
    )
    strides: Size | Sizes = Field(1, description="Step of the window: one int, or one per spatial axis.")
    padding: Literal["valid", "same"] = "valid"
    dilation_rate: Size | Sizes = Field(1, description="Dilation of the window: one int, or one per axis.")
    activation: Activation | None = None
    use_bias: bool = True

    @model_validator(mode="after")
    def _check_arguments(self) -> BaseConv:
        # What Keras's constructor refuses (BaseConv.__init__), so that it is a 422 at the field.
        for field in ("kernel_size", "strides", "dilation_rate"):
            value = getattr(self, field)
            if isinstance(value, list) and len(value) != self.RANK:
                raise ValueError(
                    f"{field} has {len(value)} values, but {self.type} has {self.RANK} spatial axis"
                    f"{'' if self.RANK == 1 else 'es'}: give one int, or {self.RANK} values"
                )
        return self

    def check_strides_and_dilation(self) -> None:
        """What Conv1D, Conv2D and Conv1DTranspose's constructors refuse (``BaseConv.__init__``,
        ``BaseConvTranspose.__init__``; SeparableConv1D's does not check it).

        Raises:
            ValueError: strides > 1 together with dilation_rate > 1.
        """
        strides, dilation = as_tuple(self.strides, self.RANK), as_tuple(self.dilation_rate, self.RANK)
        if max(strides) > 1 and max(dilation) > 1:
            raise ValueError(
                f"Keras does not support strides > 1 with dilation_rate > 1 (received strides={self.strides}, "
                f"dilation_rate={self.dilation_rate}): set one of them to 1"
            )

    def _spec(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        return (
            as_tuple(self.kernel_size, self.RANK),
            as_tuple(self.strides, self.RANK),
            as_tuple(self.dilation_rate, self.RANK),
        )

    def check_input(self, input_shape: Shape) -> None:
        """Keras's checks in ``build`` order: the rank its InputSpec asks for (at least), weights that need the
        channels (unknown channels fail first), the groups, then the exact rank (Keras compares it only with
        the kernel's, in ``compute_output_shape``)."""
        super().check_input(input_shape)
        refusals.check_known_weights(self, input_shape)
        self.check_channels(input_shape)
        if len(input_shape) != self.RANK + 2:
            raise ShapeError(f"ndim={self.RANK + 2}", f"ndim={len(input_shape)}")

    def check_channels(self, input_shape: Shape) -> None:
        """What ``build`` checks of the input's (known) channels before the output shape (none here)."""

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        kernel, strides, dilation = self._spec()
        spatial = [
            conv_length(length, k, s, d, self.padding)
            for length, k, s, d in zip(input_shape[1:-1], kernel, strides, dilation, strict=True)
        ]
        if any(length is not None and length <= 0 for length in spatial):
            raise refusals.conv_too_short(kernel, dilation, strides)
        return (input_shape[0], *spatial, self.filters)

    def mult_adds(self, input_shape: Shape) -> int:
        return self.param_count(input_shape) * prod(self.output_shape(input_shape)[1:-1])

    @classmethod
    def from_keras_config(cls, config: Mapping[str, Any], loc: Loc, translate: TranslateLayer) -> dict[str, Any]:
        """As :meth:`KerasLayer.from_keras_config`, with Keras's size lists read as the int they repeat."""
        return super().from_keras_config(keras_tuple_config(config, _SIZE_KEYS), loc, translate)


_SIZE_KEYS = ("kernel_size", "strides", "dilation_rate", "output_padding")


class KernelConv(BaseConv):
    """A convolution with one kernel and a bias (Conv1D, Conv2D, Conv1DTranspose): their initializers,
    regularizers and constraints (SeparableConv1D has a depthwise and a pointwise kernel instead)."""

    kernel_initializer: Initializer = "glorot_uniform"
    bias_initializer: Initializer = "zeros"
    kernel_regularizer: Regularizer = None
    bias_regularizer: Regularizer = None
    activity_regularizer: Regularizer = None
    kernel_constraint: Constraint = None
    bias_constraint: Constraint = None


class GroupedConv(KernelConv):
    """Conv1D and Conv2D: :class:`BaseConv` with ``groups``.

    Weights (``BaseConv.build``): a kernel ``(*kernel_size, channels // groups, filters)`` and a bias
    ``(filters,)``, so ``prod(kernel_size)·(channels/groups)·filters + filters``.
    """

    groups: Annotated[int, Field(ge=1, le=2**31 - 1)] = Field(
        1, description="Channel groups, each convolved separately; must divide filters and the input's channels."
    )

    @model_validator(mode="after")
    def _check_groups(self) -> GroupedConv:
        self.check_strides_and_dilation()
        if self.filters % self.groups:
            raise ValueError(
                f"Keras needs filters divisible by groups (received filters={self.filters}, groups={self.groups}): "
                "use a groups value that divides filters"
            )
        return self

    def check_channels(self, input_shape: Shape) -> None:
        channels = input_shape[-1]
        if channels is not None and channels % self.groups:
            raise refusals.groups_mismatch(self.groups, channels)

    def weights(self, input_shape: Shape) -> list[Weight]:
        channels = input_shape[-1]
        kernel, _, _ = self._spec()
        per_group = None if channels is None else channels // self.groups
        weights = [Weight("kernel", (*kernel, per_group, self.filters))]
        return [*weights, Weight("bias", (self.filters,))] if self.use_bias else weights


def keras_tuple_config(config: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """Keras's ``get_config()`` writes sizes as lists (``kernel_size: [3]``, ``[3, 3]``); a list of one value
    repeated is the spec's int (Keras's ``standardize_tuple`` reads both alike), so that an imported model
    exports as it was most likely written."""
    out = dict(config)
    for key in keys:
        value = out.get(key)
        if (
            isinstance(value, list)
            and value
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            and len(set(value)) == 1
        ):
            out[key] = value[0]
    return out
