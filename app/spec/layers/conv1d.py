"""``keras.layers.Conv1D``."""

from __future__ import annotations

from typing import ClassVar, Literal

from app.spec.layers.base_conv import GroupedConv


class Conv1D(GroupedConv):
    """``keras.layers.Conv1D``: ``(batch, steps, channels)`` -> ``(batch, new_steps, filters)``.

    ``new_steps = floor((steps - d(k-1) - 1) / s) + 1`` with ``padding="valid"`` (refused when it is not
    positive: a kernel longer than the sequence), ``floor((steps - 1) / s) + 1`` with ``"same"`` or
    ``"causal"`` (keras/src/ops/operation_utils.py, ``compute_conv_output_shape``). Parameters
    ``k·(channels/groups)·filters + filters`` (keras/src/layers/convolutional/base_conv.py, ``build``).
    Mult-adds per sample: ``params · new_steps`` (torchinfo's convention for convolutions).
    """

    RANK: ClassVar[int] = 1
    INPUT_MIN_NDIM: ClassVar[int] = 3
    NEEDS: ClassVar[str] = "3-D input (batch, steps, channels)"

    type: Literal["Conv1D"]
    padding: Literal["valid", "same", "causal"] = "valid"  # type: ignore[assignment]  # causal: Conv1D only
