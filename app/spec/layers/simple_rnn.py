"""``keras.layers.SimpleRNN``."""

from __future__ import annotations

from typing import ClassVar, Literal

from app.spec.layers.recurrent import RecurrentLayer


class SimpleRNN(RecurrentLayer):
    """``keras.layers.SimpleRNN``. Input ``(batch, timesteps, features)``; output ``(batch, units)``, or
    ``(batch, timesteps, units)`` with ``return_sequences``.

    Parameters ``u·(i + u + 1)``, ``u·(i + u)`` without bias (keras/src/layers/rnn/simple_rnn.py,
    ``SimpleRNNCell.build``). Mult-adds per sample ``T·params``.
    """

    GATES: ClassVar[int] = 1

    type: Literal["SimpleRNN"]
