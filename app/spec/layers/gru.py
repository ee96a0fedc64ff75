"""``keras.layers.GRU``."""

from __future__ import annotations

from typing import ClassVar, Literal

from app.spec.layers.recurrent import RecurrentLayer
from app.spec.types import Activation


class GRU(RecurrentLayer):
    """``keras.layers.GRU``. Input ``(batch, timesteps, features)``; output ``(batch, units)``, or
    ``(batch, timesteps, units)`` with ``return_sequences``.

    Parameters ``3·u·(i + u + 2)`` with Keras 3's default ``reset_after=True`` (separate input and recurrent
    biases), ``3·u·(i + u + 1)`` without it, ``3·u·(i + u)`` without bias (keras/src/layers/rnn/gru.py,
    ``GRUCell.build``). Mult-adds per sample ``T·params``.
    """

    GATES: ClassVar[int] = 3

    type: Literal["GRU"]
    recurrent_activation: Activation | None = "sigmoid"
    reset_after: bool = True

    def bias_vectors(self) -> int:
        if not self.use_bias:
            return 0
        return 2 if self.reset_after else 1
