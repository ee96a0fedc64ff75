"""The layer types that hold no other layer, in the order the request schema lists them; a wrapper
(TimeDistributed) may hold any of them."""

from __future__ import annotations

from app.spec.layers.activation import Activation
from app.spec.layers.average_pooling1d import AveragePooling1D
from app.spec.layers.base import KerasLayer
from app.spec.layers.batch_normalization import BatchNormalization
from app.spec.layers.conv1d import Conv1D
from app.spec.layers.conv1d_transpose import Conv1DTranspose
from app.spec.layers.conv2d import Conv2D
from app.spec.layers.cropping1d import Cropping1D
from app.spec.layers.dense import Dense
from app.spec.layers.dropout import Dropout
from app.spec.layers.embedding import Embedding
from app.spec.layers.flatten import Flatten
from app.spec.layers.gaussian_noise import GaussianNoise
from app.spec.layers.global_average_pooling1d import GlobalAveragePooling1D
from app.spec.layers.global_max_pooling1d import GlobalMaxPooling1D
from app.spec.layers.gru import GRU
from app.spec.layers.layer_normalization import LayerNormalization
from app.spec.layers.leaky_relu import LeakyReLU
from app.spec.layers.lstm import LSTM
from app.spec.layers.masking import Masking
from app.spec.layers.max_pooling1d import MaxPooling1D
from app.spec.layers.max_pooling2d import MaxPooling2D
from app.spec.layers.permute import Permute
from app.spec.layers.prelu import PReLU
from app.spec.layers.relu import ReLU
from app.spec.layers.repeat_vector import RepeatVector
from app.spec.layers.reshape import Reshape
from app.spec.layers.separable_conv1d import SeparableConv1D
from app.spec.layers.simple_rnn import SimpleRNN
from app.spec.layers.softmax import Softmax
from app.spec.layers.spatial_dropout1d import SpatialDropout1D
from app.spec.layers.up_sampling1d import UpSampling1D
from app.spec.layers.zero_padding1d import ZeroPadding1D

SIMPLE_LAYER_CLASSES: tuple[type[KerasLayer], ...] = (
    LSTM,
    GRU,
    SimpleRNN,
    Dense,
    Flatten,
    Dropout,
    Embedding,
    Conv1D,
    Conv1DTranspose,
    SeparableConv1D,
    Conv2D,
    MaxPooling1D,
    AveragePooling1D,
    MaxPooling2D,
    GlobalMaxPooling1D,
    GlobalAveragePooling1D,
    BatchNormalization,
    LayerNormalization,
    Activation,
    ReLU,
    LeakyReLU,
    PReLU,
    Softmax,
    Reshape,
    RepeatVector,
    Permute,
    Masking,
    SpatialDropout1D,
    GaussianNoise,
    ZeroPadding1D,
    Cropping1D,
    UpSampling1D,
)
