"""``keras.layers.Bidirectional`` around an LSTM, GRU or SimpleRNN."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from app.errors import Loc
from app.spec.layers.base import KerasLayer, TranslateLayer, Weight
from app.spec.layers.common import KerasImportError
from app.spec.layers.gru import GRU
from app.spec.layers.lstm import LSTM
from app.spec.layers.recurrent import check_mask, check_states
from app.spec.layers.simple_rnn import SimpleRNN
from app.spec.types import Ref, Refs, Shape

Recurrent = Annotated[LSTM | GRU | SimpleRNN, Field(discriminator="type")]


class Bidirectional(KerasLayer):
    """``keras.layers.Bidirectional(layer, merge_mode)``: the wrapped RNN run forwards and backwards.

    Keras makes two copies of ``layer``, named ``forward_<name>`` and ``backward_<name>``
    (keras/src/layers/rnn/bidirectional.py, ``Bidirectional.__init__``). Output: the RNN's output with the
    last axis doubled for ``merge_mode="concat"`` (the default), as is for ``"sum"``, ``"mul"``, ``"ave"``
    (``Bidirectional.compute_output_shape``). Parameters and mult-adds: twice the RNN's.
    """

    WRAPPED_FIELDS: ClassVar[tuple[str, ...]] = ("layer",)
    SUPPORTS_MASKING: ClassVar[bool] = True
    INPUT_NDIM: ClassVar[int | None] = 3
    NEEDS: ClassVar[str] = "3-D input (batch, timesteps, features)"
    STEPS_OVER_TIME: ClassVar[bool] = True

    type: Literal["Bidirectional"]
    layer: Recurrent = Field(description="The RNN to run in both directions: an LSTM, GRU or SimpleRNN.")
    CALL_ARGUMENTS: ClassVar[tuple[str, ...]] = ("initial_state", "mask")
    CHECKED_ON_CALL: ClassVar[bool] = True
    initial_state: Refs | None = Field(
        None,
        description="Graph models only: the initial states of the forward RNN, then of the backward one (an LSTM: "
        "4 tensors), each (batch, units).",
    )
    mask: Ref | None = Field(None, description="Graph models only: a (batch, timesteps) boolean tensor.")
    # merge_mode=None returns two tensors, which a Sequential cannot pass on.
    merge_mode: Literal["concat", "sum", "mul", "ave"] = "concat"

    def output_shape(self, input_shape: Shape) -> Shape:
        self.check_input(input_shape)
        shape = self.layer.output_shape(input_shape)
        if self.merge_mode == "concat":
            last = shape[-1]
            assert last is not None
            return (*shape[:-1], 2 * last)
        return shape

    def output_count(self) -> int:
        # The output, then the forward and the backward RNN's states (Bidirectional.call: [y, *states]).
        return 1 + 2 * self.layer.STATES if self.layer.return_state else 1

    def call_output_shapes(self, inputs: list[Shape], arguments: Mapping[str, list[Shape]]) -> list[Shape]:
        out = self.output_shape(inputs[0])
        batch = inputs[0][0]
        # The initial states of both directions, forward first (Bidirectional.call splits the list in halves).
        check_states(self.layer, arguments.get("initial_state"), batch, 2 * self.layer.STATES)
        check_mask(inputs[0], arguments.get("mask"))
        if not self.layer.return_state:
            return [out]
        return [out, *[(batch, self.layer.units)] * (2 * self.layer.STATES)]

    def weights(self, input_shape: Shape) -> list[Weight]:
        # Both copies are made from the wrapped layer's config, trainable flag included.
        # The forward and the backward copy (Keras's variable paths end with the RNN's own names: "kernel").
        inner = self.layer.counted_weights(input_shape)
        return [*inner, *inner]

    def mult_adds(self, input_shape: Shape) -> int:
        return 2 * self.layer.mult_adds(input_shape)

    def drops_time_axis(self, index: int, consumer: str) -> str | None:
        return (
            f", but layer {index} ({self.name}) returns only its last output: set return_sequences=true on the "
            f"{self.layer.type} it wraps"
        )

    @classmethod
    def from_keras_config(cls, config: Mapping[str, Any], loc: Loc, translate: TranslateLayer) -> dict[str, Any]:
        """As :meth:`KerasLayer.from_keras_config`, and undo what ``Bidirectional.__init__`` did to the RNN.

        Keras serializes the forward copy as ``layer`` (named ``forward_<name>``, ``zero_output_for_mask``
        forced to ``return_sequences``) and the backward copy as ``backward_layer``. The backward copy is
        accepted only as Keras derives it (the same config with ``go_backwards=true``, named
        ``backward_<name>``); a backward layer of one's own is refused.
        """
        config = dict(config)
        backward = config.pop("backward_layer", None)
        forward = config.get("layer")
        if isinstance(forward, dict) and isinstance(forward.get("config"), dict):
            inner = dict(forward["config"])
            name = inner.get("name")
            expected_backward = None
            if isinstance(name, str):
                # Keras named the copies forward_<name> and backward_<name>, after taking a "forward_" prefix
                # off <name> for the first only: recover <name> from what the backward copy is called.
                base = name.removeprefix("forward_")
                if isinstance(backward, dict) and backward.get("config", {}).get("name") == f"backward_{name}":
                    base = name
                inner["name"] = base
                expected_backward = {**forward["config"], "name": f"backward_{base}", "go_backwards": True}
            if inner.get("zero_output_for_mask") == inner.get("return_sequences", False):
                inner.pop("zero_output_for_mask")
            if backward is not None and (
                not isinstance(backward, dict)
                or backward.get("class_name") != forward.get("class_name")
                or backward.get("config") != expected_backward
            ):
                raise KerasImportError(
                    (*loc, "backward_layer"),
                    "Bidirectional backward_layer is accepted only as Keras derives it from layer (the same "
                    "config with go_backwards=true, named backward_<name>); a backward layer of its own is not "
                    "supported: remove backward_layer",
                )
            config["layer"] = {**forward, "config": inner}
        return super().from_keras_config(config, loc, translate)
