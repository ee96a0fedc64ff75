"""The seed notebook's four models (``shared/seed/keras-lstm-examples.txt``) as request bodies.

Used as OpenAPI examples and by the tests; Keras 2's summaries printed in the notebook are the reference.
"""

from __future__ import annotations

from typing import Any

SEED_MODELS: dict[str, dict[str, Any]] = {
    "seed_example_1": {
        "name": "seed_example_1",
        "layers": [
            {
                "type": "LSTM",
                "input_shape": [10, 20],
                "units": 30,
                "return_sequences": False,
                "name": "lstm_layer",
            },
            {"type": "Dense", "units": 1, "name": "dense_layer"},
        ],
    },
    "seed_example_1_batch": {
        "name": "seed_example_1_batch",
        "layers": [
            {
                "type": "LSTM",
                "batch_input_shape": [5, 10, 20],
                "units": 30,
                "return_sequences": False,
                "name": "lstm_layer",
            },
            {"type": "Dense", "units": 1, "name": "dense_layer"},
        ],
    },
    "seed_example_2": {
        "name": "seed_example_2",
        "input_shape": [10, 20],
        "layers": [
            {"type": "LSTM", "units": 30, "return_sequences": True, "name": "lstm_layer"},
            {"type": "Flatten", "name": "flatten_layer"},
            {"type": "Dense", "units": 1, "name": "dense_layer"},
        ],
    },
    "seed_example_2_batch": {
        "name": "seed_example_2_batch",
        "batch_input_shape": [5, 10, 20],
        "layers": [
            {"type": "LSTM", "units": 30, "return_sequences": True, "name": "lstm_layer"},
            {"type": "Flatten", "name": "flatten_layer"},
            {"type": "Dense", "units": 1, "name": "dense_layer"},
        ],
    },
}

SEED_DESCRIPTIONS: dict[str, str] = {
    "seed_example_1": "LSTM -> Dense, input_shape on the first layer as Keras 2 writes it",
    "seed_example_1_batch": "The same with a fixed batch of 5 (Keras 2's batch_input_shape)",
    "seed_example_2": "LSTM(return_sequences) -> Flatten -> Dense, input_shape at the top level",
    "seed_example_2_batch": "The same with a fixed batch of 5",
}

# Graph models people write, as specs (tests/summaries/test_graph_models.py compares each with the Keras code of its
# example). Each is also an example of the summary's request body, which the playground offers.
SEQ2SEQ: dict[str, Any] = {
    "name": "seq2seq",
    "inputs": [
        {"name": "encoder_inputs", "shape": [None, 71]},
        {"name": "decoder_inputs", "shape": [None, 93], "dtype": "float32"},
    ],
    "layers": [
        {"type": "LSTM", "name": "encoder", "units": 256, "return_state": True, "inputs": ["encoder_inputs"]},
        {
            "type": "LSTM",
            "name": "decoder_lstm",
            "units": 256,
            "return_sequences": True,
            "return_state": True,
            "inputs": ["decoder_inputs"],
            "initial_state": ["encoder:1", "encoder:2"],
        },
        {"type": "Dense", "name": "decoder_dense", "units": 93, "activation": "softmax", "inputs": ["decoder_lstm:0"]},
    ],
    "outputs": ["decoder_dense"],
}

BABI: dict[str, Any] = {
    "name": "babi_rnn",
    "inputs": [
        {"name": "story", "shape": [68], "dtype": "int32"},
        {"name": "question", "shape": [4], "dtype": "int32"},
    ],
    "layers": [
        {"type": "Embedding", "name": "story_embedding", "input_dim": 22, "output_dim": 50, "inputs": ["story"]},
        {"type": "LSTM", "name": "story_lstm", "units": 100},
        {"type": "Embedding", "name": "question_embedding", "input_dim": 22, "output_dim": 50, "inputs": ["question"]},
        {"type": "LSTM", "name": "question_lstm", "units": 100},
        {"type": "Concatenate", "inputs": ["story_lstm", "question_lstm"]},
        {"type": "Dense", "units": 22, "activation": "softmax"},
    ],
    "outputs": ["dense"],
}

RESIDUAL: dict[str, Any] = {
    "name": "transformer_block",
    "inputs": [{"name": "series", "shape": [128, 1]}],
    "layers": [
        {
            "type": "MultiHeadAttention",
            "name": "attention",
            "num_heads": 4,
            "key_dim": 64,
            "dropout": 0.25,
            "inputs": ["series", "series"],
        },
        {"type": "Add", "name": "residual", "inputs": ["attention", "series"]},
        {"type": "LayerNormalization", "name": "norm", "epsilon": 1e-6},
        {"type": "Conv1D", "name": "ff_1", "filters": 4, "kernel_size": 1, "activation": "relu"},
        {"type": "Conv1D", "name": "ff_2", "filters": 1, "kernel_size": 1},
        {"type": "GlobalAveragePooling1D", "name": "pool", "data_format": "channels_first"},
        {"type": "Dense", "name": "classes", "units": 2, "activation": "softmax"},
    ],
    "outputs": ["classes"],
}

GRAPH_MODELS: dict[str, dict[str, Any]] = {"seq2seq": SEQ2SEQ, "babi_rnn": BABI, "transformer_block": RESIDUAL}
GRAPH_DESCRIPTIONS: dict[str, str] = {
    "seq2seq": "Graph: keras-io's lstm_seq2seq, the encoder's states handed to the decoder",
    "babi_rnn": "Graph: Keras's babi_rnn, a story and a question (int32 tokens) embedded, encoded and concatenated",
    "transformer_block": "Graph: a residual MultiHeadAttention block, as keras-io's time-series transformer",
}
