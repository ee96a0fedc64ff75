"""``keras.layers.TimeDistributed`` around a Dense."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from app.spec.layers.base import KerasLayer
from app.spec.layers.dense import Dense
from app.spec.types import Shape


class TimeDistributed(KerasLayer):
    """``keras.layers.TimeDistributed(layer)``: the wrapped Dense applied to every timestep, with one set of
    weights.

    Input at least 3-D ``(batch, timesteps, ...)``; the Dense sees ``(batch, ...)`` and the output puts the
    time axis back: ``(batch, timesteps, ..., units)`` (keras/src/layers/rnn/time_distributed.py,
    ``TimeDistributed.compute_output_shape``). Parameters: the Dense's. Mult-adds per sample: the Dense's per
    timestep, ``T·positions·params``.
    """

    WRAPPED_FIELDS: ClassVar[tuple[str, ...]] = ("layer",)
    INPUT_MIN_NDIM: ClassVar[int] = 3
    NEEDS: ClassVar[str] = "input of at least 3-D (batch, timesteps, features)"
    STEPS_OVER_TIME: ClassVar[bool] = True

    type: Literal["TimeDistributed"]
    layer: Dense = Field(description="The layer applied to every timestep: a Dense.")

    def _child_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], *input_shape[2:])

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        child = self.layer.output_shape(self._child_shape(input_shape))
        return (child[0], input_shape[1], *child[1:])

    def param_count(self, input_shape: Shape) -> int:
        return self.layer.param_count(self._child_shape(input_shape))

    def mult_adds(self, input_shape: Shape) -> int:
        steps = input_shape[1]
        assert steps is not None
        return steps * self.layer.mult_adds(self._child_shape(input_shape))
