"""The layer types that hold no other layer, in the order the request schema lists them; a wrapper
(TimeDistributed) may hold any of them."""

from __future__ import annotations

from app.layers.activation import Activation
from app.layers.average_pooling1d import AveragePooling1D
from app.layers.base import KerasLayer
from app.layers.batch_normalization import BatchNormalization
from app.layers.conv1d import Conv1D
from app.layers.conv1d_transpose import Conv1DTranspose
from app.layers.conv2d import Conv2D
from app.layers.cropping1d import Cropping1D
from app.layers.dense import Dense
from app.layers.dropout import Dropout
from app.layers.embedding import Embedding
from app.layers.flatten import Flatten
from app.layers.gaussian_noise import GaussianNoise
from app.layers.global_average_pooling1d import GlobalAveragePooling1D
from app.layers.global_max_pooling1d import GlobalMaxPooling1D
from app.layers.gru import GRU
from app.layers.layer_normalization import LayerNormalization
from app.layers.leaky_relu import LeakyReLU
from app.layers.lstm import LSTM
from app.layers.masking import Masking
from app.layers.max_pooling1d import MaxPooling1D
from app.layers.max_pooling2d import MaxPooling2D
from app.layers.permute import Permute
from app.layers.prelu import PReLU
from app.layers.relu import ReLU
from app.layers.repeat_vector import RepeatVector
from app.layers.reshape import Reshape
from app.layers.separable_conv1d import SeparableConv1D
from app.layers.simple_rnn import SimpleRNN
from app.layers.softmax import Softmax
from app.layers.spatial_dropout1d import SpatialDropout1D
from app.layers.up_sampling1d import UpSampling1D
from app.layers.zero_padding1d import ZeroPadding1D

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
