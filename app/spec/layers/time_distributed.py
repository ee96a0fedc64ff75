"""``keras.layers.TimeDistributed`` around any layer that takes one timestep's shape."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, TypeAlias, Union

from pydantic import Field, model_validator

from app.spec.layers.base import KerasLayer, ShapeError, Weight
from app.spec.layers.simple import SIMPLE_LAYER_CLASSES
from app.spec.types import Shape

if TYPE_CHECKING:
    Inner: TypeAlias = KerasLayer
else:
    Inner = Annotated[Union[SIMPLE_LAYER_CLASSES], Field(discriminator="type")]  # noqa: UP007


class TimeDistributed(KerasLayer):
    """``keras.layers.TimeDistributed(layer)``: the wrapped layer applied to every timestep, with one set of
    weights.

    Input at least 3-D ``(batch, timesteps, ...)``; the wrapped layer sees ``(batch, ...)`` and the output puts
    the time axis back: ``(batch, timesteps, *inner_output[1:])`` (keras/src/layers/rnn/time_distributed.py,
    ``TimeDistributed.compute_output_shape``). Parameters: the wrapped layer's, trainable as it is (a frozen
    wrapper freezes them all). Mult-adds per sample: the wrapped layer's per timestep, ``T·inner``.
    A refusal of the wrapped layer is the wrapper's, for the per-timestep shape.
    """

    WRAPPED_FIELDS: ClassVar[tuple[str, ...]] = ("layer",)
    INPUT_MIN_NDIM: ClassVar[int] = 3
    NEEDS: ClassVar[str] = "input of at least 3-D (batch, timesteps, features)"
    STEPS_OVER_TIME: ClassVar[bool] = True
    SUPPORTS_MASKING: ClassVar[bool] = True

    type: Literal["TimeDistributed"]
    layer: Inner = Field(description="The layer applied to every timestep (a Dense, Conv1D, ... any but a wrapper).")

    @model_validator(mode="after")
    def _one_output(self) -> TimeDistributed:
        # Keras's TimeDistributed reshapes one output back to timesteps; an RNN's states are more (Keras 3.15
        # fails inside its call with "Cannot convert ... to a shape").
        if getattr(self.layer, "return_state", False):
            count = self.layer.output_count()
            raise ValueError(
                f"TimeDistributed applies its layer to each timestep and takes one output from it, but "
                f"{self.layer.type} with return_state=True returns {count} (its output and its states): set "
                f"return_state to false, or call the {self.layer.type} outside TimeDistributed"
            )
        return self

    def _child_shape(self, input_shape: Shape) -> Shape:
        return (input_shape[0], *input_shape[2:])

    def check_input(self, input_shape: Shape) -> None:
        if len(input_shape) < 3:  # Keras's own check, before the wrapped layer's
            raise ShapeError("min_ndim=3", f"ndim={len(input_shape)}")

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        self.layer.check_input(self._child_shape(input_shape))  # what is wrong with one timestep comes first
        child = self.layer.output_shape(self._child_shape(input_shape))
        return (child[0], input_shape[1], *child[1:])

    def weights(self, input_shape: Shape) -> list[Weight]:
        return self.layer.counted_weights(self._child_shape(input_shape))

    def mult_adds(self, input_shape: Shape) -> int:
        steps = input_shape[1]
        assert steps is not None
        return steps * self.layer.mult_adds(self._child_shape(input_shape))
