"""``keras.layers.Conv2D``."""

from __future__ import annotations

from typing import ClassVar, Literal

from app.spec.layers.base_conv import GroupedConv


class Conv2D(GroupedConv):
    """``keras.layers.Conv2D``, channels last: ``(batch, rows, cols, channels)`` -> ``(batch, new_rows,
    new_cols, filters)``, each axis as Conv1D's steps (keras/src/ops/operation_utils.py,
    ``compute_conv_output_shape``). Parameters ``kr·kc·(channels/groups)·filters + filters``
    (keras/src/layers/convolutional/base_conv.py, ``build``). Mult-adds per sample: ``params · new_rows ·
    new_cols`` (torchinfo's convention for convolutions).
    """

    RANK: ClassVar[int] = 2
    INPUT_MIN_NDIM: ClassVar[int] = 4
    NEEDS: ClassVar[str] = "4-D input (batch, rows, cols, channels)"

    type: Literal["Conv2D"]
