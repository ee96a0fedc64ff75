"""``keras.layers.LSTM``."""

from __future__ import annotations

from typing import ClassVar, Literal

from app.spec.layers.recurrent import RecurrentLayer
from app.spec.types import Activation


class LSTM(RecurrentLayer):
    """``keras.layers.LSTM``. Input ``(batch, timesteps, features)``; output ``(batch, units)``, or
    ``(batch, timesteps, units)`` with ``return_sequences``.

    Parameters ``4·u·(i + u + 1)``, ``4·u·(i + u)`` without bias (four gates; keras/src/layers/rnn/lstm.py,
    ``LSTMCell.build``). Mult-adds per sample ``T·4·u·(i + u + 1)``.
    """

    GATES: ClassVar[int] = 4
    STATES: ClassVar[int] = 2

    type: Literal["LSTM"]
    recurrent_activation: Activation | None = "sigmoid"
    unit_forget_bias: bool = True
