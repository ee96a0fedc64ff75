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
