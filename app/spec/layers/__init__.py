"""The layer types a spec may use, one module each, and the discriminated union of them.

Adding a layer type: write its module (fields, analytic shape / params / mult-adds, Keras config keys it does
not model), add its class to :data:`~app.spec.layers.simple.SIMPLE_LAYER_CLASSES` (or, for a wrapper, to
:data:`LAYER_CLASSES` below); the request schema, the analytic engine, Keras building, export, import and the
property test all take it from there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, TypeAlias, Union

from pydantic import Field

from app.spec.layers.attention import ATTENTION_LAYER_CLASSES
from app.spec.layers.base import KerasLayer, ShapeError, keras_auto_name
from app.spec.layers.bidirectional import Bidirectional
from app.spec.layers.dense import Dense
from app.spec.layers.dropout import Dropout
from app.spec.layers.embedding import Embedding
from app.spec.layers.flatten import Flatten
from app.spec.layers.gru import GRU
from app.spec.layers.lstm import LSTM
from app.spec.layers.merge import MERGE_LAYER_CLASSES
from app.spec.layers.simple import SIMPLE_LAYER_CLASSES
from app.spec.layers.simple_rnn import SimpleRNN
from app.spec.layers.time_distributed import TimeDistributed
from app.spec.types import Shape

# Merges and attention come last: they are layers of graph models only.
LAYER_CLASSES: tuple[type[KerasLayer], ...] = (
    *SIMPLE_LAYER_CLASSES,
    Bidirectional,
    TimeDistributed,
    *MERGE_LAYER_CLASSES,
    *ATTENTION_LAYER_CLASSES,
)
if TYPE_CHECKING:
    # Code works through the KerasLayer interface; only pydantic needs the concrete union.
    AnyLayer: TypeAlias = KerasLayer
else:
    AnyLayer = Union[LAYER_CLASSES]  # noqa: UP007 (a union built from the tuple)
# A layer of a request body, told apart by "type".
Layer = Annotated[AnyLayer, Field(discriminator="type")]
# Keras class name -> layer class.
LAYER_TYPES: dict[str, type[KerasLayer]] = {cls.__name__: cls for cls in LAYER_CLASSES}

__all__ = [
    "GRU",
    "LAYER_CLASSES",
    "LAYER_TYPES",
    "LSTM",
    "AnyLayer",
    "Bidirectional",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "KerasLayer",
    "Layer",
    "Shape",
    "ShapeError",
    "SimpleRNN",
    "TimeDistributed",
    "keras_auto_name",
]
