"""Response models of a summary: Keras's table as data, with the analytic engine's figures and warnings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.analysis.engine import TrainingMemory
from app.analysis.warnings import ModelWarning

Shape = list[int | None]


class ResponseModel(BaseModel):
    """Base of every response model: in the OpenAPI document every field is required, defaults included, since
    the service always sends each one (``null`` when it has no value). Generated clients then read a value, not
    "value, null or absent" (issue 19)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class LayerSummary(ResponseModel):
    """One row of Keras's summary table."""

    index: int = Field(description="0-based position in the model's layers.")
    name: str
    type: str = Field(description="Keras class name, e.g. LSTM.")
    output_shape: Shape = Field(description="Keras's output shape; null for an open batch, as Keras prints None.")
    params: int = Field(description="Parameters of this layer (scalars), as Keras's 'Param #'.")
    trainable_params: int
    non_trainable_params: int
    output_shapes: list[Shape] | None = Field(
        None,
        description="Graph models: every output's shape, for a layer of several (an RNN with return_state: its "
        "output, then its states); null for a layer of one output, and in a Sequential.",
    )
    connected_to: list[str] = Field(
        default_factory=list,
        description='Graph models: the tensors the layer was called on, as references ("encoder:1"), in Keras\'s '
        '"Connected to" order (its table cuts them to 18 characters); empty for an InputLayer and in a Sequential.',
    )
    # The figures below are null only in summaries recorded before they existed (training runs are stored).
    mult_adds: int | None = Field(
        None,
        description="Multiply-accumulate operations of this layer's forward pass for one sample, counted as "
        "torchinfo counts them (torchinfo/layer_info.py, calculate_macs): every weight, bias elements included, "
        "once per use. Dense: positions * params (positions = product of the axes between batch and features, "
        "1 for 2-D input); LSTM, GRU, SimpleRNN: timesteps * params, e.g. LSTM T*4u(i+u+1); Bidirectional: "
        "twice its RNN; TimeDistributed: timesteps * its Dense's; Flatten, Dropout: 0. Activations and other "
        "elementwise work are not counted.",
    )
    mult_adds_batch: int | None = Field(
        None, description="mult_adds for the summary's batch_size samples: mult_adds * batch_size."
    )
    activation_bytes: int | None = Field(
        None,
        description="Bytes of this layer's outputs for one sample, as float32 (4 bytes each): all of them for a "
        "layer that returns several (an LSTM with return_state: its output and states).",
    )


class ModelSummary(ResponseModel):
    """What ``model.summary()`` says, as data, plus the table itself."""

    name: str
    layers: list[LayerSummary]
    total_params: int
    trainable_params: int
    non_trainable_params: int
    weights_bytes: int = Field(description="Bytes the weights take as float32: total_params * 4.")
    keras_version: str
    text: str = Field(description="Keras's own summary table, as model.summary() prints it.")
    # The figures below are null (warnings empty) only in summaries recorded before they existed: training runs
    # are stored, and a run recorded by an earlier version must still load.
    batch_size: int | None = Field(
        None,
        description="The batch the *_batch figures and training_memory are for: the training's batch_size, else "
        "the batch_size asked for, else the model's fixed batch, else 32 (Keras's default in fit).",
    )
    mult_adds: int | None = Field(
        None, description="Mult-adds of one sample's forward pass: the sum of the layers' mult_adds."
    )
    mult_adds_batch: int | None = Field(None, description="mult_adds * batch_size.")
    activation_bytes: int | None = Field(None, description="Bytes of all layers' outputs for one sample (float32).")
    input_bytes: int | None = Field(None, description="Bytes of one input sample (float32).")
    training_memory: TrainingMemory | None = Field(
        None,
        description="Estimated memory of a training step at batch_size (null for a variable length not given "
        "with ?timesteps=).",
    )
    timesteps: int | None = Field(
        None,
        description="For an input with a null (variable-length) axis: the length its length-dependent figures "
        "are for (?timesteps=, or a training's data.timesteps). When null for such a model, mult_adds, "
        "activation_bytes, input_bytes and training_memory are null (never a number that assumes a length) and "
        "the *_per_timestep figures are given.",
    )
    mult_adds_per_timestep: float | None = Field(
        None,
        description="Variable-length input without a length: the Mult-Adds each step of the null axes adds to one "
        "sample, (f(2048) - f(1024)) / 1024: exact for a model linear in the length, an average for strided ones.",
    )
    activation_bytes_per_timestep: float | None = Field(
        None, description="Likewise for the bytes of all layers' outputs for one sample."
    )
    warnings: list[ModelWarning] = Field(
        default_factory=list,
        description="What builds but likely surprises (e.g. a Dense on a sequence acts per timestep), each "
        "with the layer and the fix. Empty when nothing was found.",
    )
