"""A catalogue of hostile or malformed requests, each with the answer it must get: a 4xx whose error names
the field. Used by tests/api/test_hostile.py (answers, no worker involved, the service fine afterwards) and by
bench/insight.py (how fast each is answered over real HTTP)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SUMMARY = "/v1/models/summary"
TRAININGS = "/v1/trainings"
OK_MODEL: dict[str, Any] = {
    "input_shape": [10, 20],
    "layers": [{"type": "LSTM", "units": 4}, {"type": "Dense", "units": 1}],
}


def model(**kw: Any) -> dict[str, Any]:
    """A valid small model with some fields replaced."""
    return {**OK_MODEL, **kw}


def lstm(**kw: Any) -> dict[str, Any]:
    """The model with its LSTM's arguments replaced."""
    return model(layers=[{"type": "LSTM", "units": 4, **kw}, {"type": "Dense", "units": 1}])


def training(**kw: Any) -> dict[str, Any]:
    """A valid training of the small model with some sections replaced."""
    return {"model": OK_MODEL, **kw}


@dataclass(frozen=True)
class Hostile:
    """One request and what it must be answered with.

    ``loc`` is the start of the ``loc`` one of the error items must have; ``needle`` a piece of its message.
    ``raw`` is sent as the body's bytes instead of ``body`` as JSON, with ``Content-Type: content_type``;
    ``headers`` go along.
    """

    name: str
    path: str
    status: int
    loc: tuple[str | int, ...]
    needle: str = ""
    body: Any = None
    raw: bytes | None = None
    method: str = "POST"
    params: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def request_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``httpx.Client.request`` (or a TestClient's) that send this request."""
        kwargs: dict[str, Any] = {"params": self.params, "headers": dict(self.headers)}
        if self.raw is not None:
            kwargs["content"] = self.raw
            kwargs["headers"]["Content-Type"] = self.content_type
        elif self.body is not None:
            kwargs["json"] = self.body
        return kwargs


EXPORT = "/v1/models/export"

# A variable axis (null, Keras's None) after the batch, in every place a shape is given, before every layer type
# that has something to say about it. Keras takes most (a null time axis); it refuses a weight whose size would
# depend on an unknown length (null features before a Dense or an LSTM, a Flatten then a Dense), and so does the
# service, naming the layer. None of them may ever be a 5xx (tests/test_no_500.py sends them all).
_NULL_SHAPES: list[tuple[str, list[int | None]]] = [
    ("time", [None, None, 20]),
    ("fixed batch, time", [5, None, 20]),
    ("features", [None, 10, None]),
    ("every sample", [None, None, None]),
]
_NULL_STACKS: dict[str, list[dict[str, Any]]] = {
    "LSTM": [{"type": "LSTM", "units": 4}],
    "GRU": [{"type": "GRU", "units": 4}],
    "SimpleRNN": [{"type": "SimpleRNN", "units": 4}],
    "Bidirectional": [{"type": "Bidirectional", "layer": {"type": "LSTM", "units": 4}}],
    "TimeDistributed": [{"type": "TimeDistributed", "layer": {"type": "Dense", "units": 4}}],
    "Dense": [{"type": "Dense", "units": 4}],
    "Flatten": [{"type": "Flatten"}, {"type": "Dense", "units": 4}],
    "Dropout": [{"type": "Dropout", "rate": 0.1}],
}
UNKNOWN_WEIGHT = "depends on an axis of unknown length (None)"


def _null_answer(kind: str, shape: list[int | None]) -> tuple[int, int | None]:
    """The status Keras's rules give a stack on this shape, and the layer refused (None for a 200)."""
    if kind == "Flatten":
        return 422, 1  # Flatten's output is (batch, None): the Dense after it has no kernel size
    if kind != "Dropout" and shape[-1] is None:
        return 422, 0  # a kernel of (None, units)
    return 200, None


def null_requests() -> list[Hostile]:
    """Every null-axis request with its answer: a 200, or a 422 at the layer Keras refuses."""
    cases: list[Hostile] = []
    for (what, shape), (kind, stack) in zip(_NULL_SHAPES * 2, _NULL_STACKS.items(), strict=True):
        status, layer = _null_answer(kind, shape)
        needle = UNKNOWN_WEIGHT if status == 422 else ""
        at: tuple[str | int, ...] = ("body", "layers", layer) if layer is not None else ()
        top = {"batch_input_shape": shape, "layers": stack}
        first = {"layers": [{**stack[0], "batch_input_shape": shape}, *stack[1:]]}
        cases += [
            Hostile(f"null {what} axis before {kind}", SUMMARY, status, at, needle, top),
            Hostile(f"null {what} axis on {kind} itself", SUMMARY, status, at, needle, first),
        ]
    body = {"batch_input_shape": [None, None, 20], "layers": _NULL_STACKS["LSTM"]}
    for export in ("keras_json", "python", "spec"):
        cases.append(
            Hostile(f"null time axis, export as {export}", EXPORT, 200, (), "", body, params={"format": export})
        )
    cases.append(
        Hostile(
            "null time axis, training without data.timesteps",
            TRAININGS,
            422,
            ("body", "data", "timesteps"),
            "give data.timesteps",
            {"model": body},
        )
    )
    # Keras's own to_json() of Sequential([keras.Input(shape=(None, 20)), LSTM(4)]), as Keras 3 writes it.
    keras_json = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "sequential",
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "config": {"batch_shape": [None, None, 20], "dtype": "float32", "name": "input_layer"},
                    "registered_name": None,
                },
                {"module": "keras.layers", "class_name": "LSTM", "config": {"name": "lstm", "units": 4}},
            ],
        },
        "registered_name": None,
    }
    cases.append(Hostile("Keras JSON of Input(shape=(None, 20))", SUMMARY, 200, (), "", keras_json))
    return cases


CATALOGUE: list[Hostile] = [
    *(case for case in null_requests() if case.status == 422),
    # Sizes a model asks for
    Hostile("huge units", SUMMARY, 422, ("body", "layers", 0, "units"), "LAYERWISE_MAX_UNITS", lstm(units=200_000)),
    Hostile(
        "units over int32",
        SUMMARY,
        422,
        ("body", "layers", 0, "units"),
        "over the limit of 8,192 units per layer (LAYERWISE_MAX_UNITS)",
        lstm(units=2**31),
    ),
    Hostile(
        "thousands of layers",
        SUMMARY,
        422,
        ("body", "layers"),
        "LAYERWISE_MAX_LAYERS",
        model(layers=[{"type": "Dense", "units": 2}] * 5000),
    ),
    # Bodies made to cost the most within the body limit: bounded before their items are validated.
    Hostile(
        "half a million layers of 1",
        SUMMARY,
        422,
        ("body", "layers"),
        "the model has 500,000 layers; a request holds at most 1,000",
        model(layers=[1] * 500_000),
    ),
    Hostile(
        "a layer with 90,000 unknown keys",
        SUMMARY,
        422,
        ("body", "layers", 0),
        "has 90,002 keys, more than the",
        model(layers=[{"type": "Dense", "units": 1, **{f"k{i}": 0 for i in range(90_000)}}]),
    ),
    Hostile(
        "a thousand layers every one wrong",
        SUMMARY,
        422,
        ("body", "layers", 20),
        "and what follows it were not checked",
        model(layers=[{"type": "Dense", "units": 0}] * 1000),
    ),
    Hostile(
        "a Keras config of 40,000 layers",
        SUMMARY,
        422,
        ("body", "config", "layers"),
        "the model has 40,000 layers",
        {"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda"}] * 40_000}},
    ),
    Hostile(
        "a kernel_size of half a million axes",
        SUMMARY,
        422,
        ("body", "layers", 0, "kernel_size"),
        "at most 8 items",
        model(layers=[{"type": "Conv1D", "filters": 4, "kernel_size": [1] * 500_000}]),
    ),
    Hostile(
        "a 10^9-parameter Dense",
        SUMMARY,
        422,
        ("body", "layers", 0),
        "LAYERWISE_MAX_PARAMS",
        {"input_shape": [122_070], "layers": [{"type": "Dense", "units": 8192}]},
    ),
    Hostile(
        "10,000-length sequence",
        SUMMARY,
        422,
        ("body", "layers", 0),
        "LAYERWISE_MAX_TIMESTEPS",
        model(input_shape=[10_000, 20]),
    ),
    Hostile(
        "0-length sequence",
        SUMMARY,
        422,
        ("body", "input_shape", 0),
        "greater than or equal to 1",
        model(input_shape=[0, 20]),
    ),
    Hostile("empty input shape", SUMMARY, 422, ("body", "input_shape"), "at least 1", model(input_shape=[])),
    Hostile("no layers", SUMMARY, 422, ("body", "layers"), "at least 1", model(layers=[])),
    # Numbers that are not the right numbers
    Hostile(
        "negative units",
        SUMMARY,
        422,
        ("body", "layers", 0, "units"),
        "greater than or equal to 1",
        lstm(units=-3),
    ),
    Hostile("zero units", SUMMARY, 422, ("body", "layers", 0, "units"), "greater than or equal to 1", lstm(units=0)),
    Hostile("fractional units", SUMMARY, 422, ("body", "layers", 0, "units"), "integer", lstm(units=2.5)),
    Hostile("units as a string", SUMMARY, 422, ("body", "layers", 0, "units"), "integer", lstm(units="30")),
    Hostile(
        "NaN as a number",
        SUMMARY,
        422,
        ("body", "layers", 0, "dropout"),
        "finite",
        raw=b'{"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": 4, "dropout": NaN}]}',
    ),
    Hostile(
        "infinity as a number",
        SUMMARY,
        422,
        ("body", "layers", 0, "units"),
        "integer",
        raw=b'{"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": Infinity}]}',
    ),
    Hostile("dropout over 1", SUMMARY, 422, ("body", "layers", 0, "dropout"), "less than 1", lstm(dropout=1.5)),
    Hostile("a boolean for units", SUMMARY, 422, ("body", "layers", 0, "units"), "integer", lstm(units=True)),
    # Names and types
    Hostile("unicode in a name", SUMMARY, 422, ("body", "layers", 0, "name"), "ASCII letters", lstm(name="lstm_ø")),
    Hostile(
        "control characters in a name",
        SUMMARY,
        422,
        ("body", "layers", 0, "name"),
        "ASCII letters",
        lstm(name="a\x00b\n"),
    ),
    Hostile("a 10,000-character name", SUMMARY, 422, ("body", "name"), "1 to 64 characters", model(name="n" * 10_000)),
    Hostile(
        "duplicate names",
        SUMMARY,
        422,
        ("body", "layers", 1, "name"),
        "unique",
        model(layers=[{"type": "LSTM", "units": 4, "name": "x"}, {"type": "Dense", "units": 1, "name": "x"}]),
    ),
    Hostile("unknown layer type", SUMMARY, 422, ("body", "layers", 0), "Conv3D", model(layers=[{"type": "Conv3D"}])),
    Hostile(
        "a layer without a type",
        SUMMARY,
        422,
        ("body", "layers", 0),
        'needs "type", its Keras class name, one of LSTM, GRU, SimpleRNN, Dense',
        model(layers=[{"units": 4}]),
    ),
    Hostile(
        "a Bidirectional around a Dense",
        SUMMARY,
        422,
        ("body", "layers", 0, "layer"),
        '"type" must be one of LSTM, GRU, SimpleRNN',
        model(layers=[{"type": "Bidirectional", "layer": {"type": "Dense", "units": 4}}]),
    ),
    Hostile(
        "unknown field",
        SUMMARY,
        422,
        ("body", "layers", 0, "kernel_size"),
        "not permitted",
        lstm(kernel_size=3),
    ),
    Hostile("unknown activation", SUMMARY, 422, ("body", "layers", 0, "activation"), "tanh", lstm(activation="eval")),
    Hostile(
        "stateful with an open batch in batch_input_shape",
        SUMMARY,
        422,
        ("body", "layers", 0, "stateful"),
        "batch_input_shape starts with null (an open batch): make its first number the batch size, e.g. [5, 10, 20]",
        {"batch_input_shape": [None, 10, 20], "layers": [{"type": "LSTM", "units": 4, "stateful": True}]},
    ),
    Hostile(
        "both input shapes",
        SUMMARY,
        422,
        ("body", "batch_input_shape"),
        "exactly one",
        model(batch_input_shape=[5, 10, 20]),
    ),
    Hostile(
        "stateful without a fixed batch",
        SUMMARY,
        422,
        ("body", "layers", 0, "stateful"),
        "fixed batch",
        lstm(stateful=True),
    ),
    # An imported Keras config that carries code
    Hostile(
        "Lambda in a Keras config",
        SUMMARY,
        422,
        ("body", "config", "layers", 1, "class_name"),
        "Lambda",
        {
            "class_name": "Sequential",
            "config": {
                "name": "m",
                "layers": [
                    {"class_name": "InputLayer", "config": {"batch_shape": [None, 4]}},
                    {
                        "class_name": "Lambda",
                        "config": {"function": {"class_name": "__lambda__", "config": {"code": "x"}}},
                    },
                ],
            },
        },
    ),
    Hostile(
        "custom object in a Keras config",
        SUMMARY,
        422,
        ("body", "config", "layers", 1, "registered_name"),
        "custom object",
        {
            "class_name": "Sequential",
            "config": {
                "name": "m",
                "layers": [
                    {"class_name": "InputLayer", "config": {"batch_shape": [None, 4]}},
                    {"class_name": "Dense", "registered_name": "Custom>Evil", "config": {"units": 1}},
                ],
            },
        },
    ),
    # Bodies that are not what JSON or the schema says
    Hostile(
        "a 10 MB body",
        SUMMARY,
        413,
        ("body",),
        "LAYERWISE_MAX_BODY_BYTES",
        raw=b'{"name": "' + b"x" * 10_000_000 + b'"}',
    ),
    Hostile("deeply nested JSON", SUMMARY, 422, ("body",), "nested too deeply", raw=b"[" * 100_000 + b"]" * 100_000),
    Hostile("not JSON", SUMMARY, 422, ("body",), "JSON", raw=b"layers: [LSTM]"),
    Hostile(
        "a JSON syntax error on line 2",
        SUMMARY,
        422,
        ("body",),
        "Expecting value at line 2, column 13 (character 38)",
        raw=b'{"input_shape": [10, 20],\n "layers": [}',
    ),
    Hostile(
        "a form-encoded body (curl -d without -H)",
        SUMMARY,
        415,
        ("header", "content-type"),
        "send it as JSON with `Content-Type: application/json`",
        raw=b'{"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": 4}]}',
        content_type="application/x-www-form-urlencoded",
    ),
    Hostile(
        "a text/plain training",
        TRAININGS,
        415,
        ("header", "content-type"),
        "sent as 'text/plain'",
        raw=b'{"model": {"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": 4}]}}',
        content_type="text/plain",
    ),
    Hostile(
        "Keras 2's to_json()",
        SUMMARY,
        422,
        ("body", "keras_version"),
        "Keras 2's model.to_json()",
        {
            "class_name": "Sequential",
            "config": {
                "name": "m",
                "layers": [{"class_name": "Dense", "config": {"units": 1, "batch_input_shape": [None, 4]}}],
            },
            "keras_version": "2.15.0",
            "backend": "tensorflow",
        },
    ),
    Hostile("a JSON array", SUMMARY, 422, ("body",), "dictionary", [OK_MODEL]),
    Hostile("an empty body", SUMMARY, 422, ("body",), "has no body", raw=b""),
    # Trainings that ask for too much, or nonsense
    Hostile(
        "absurd epochs",
        TRAININGS,
        422,
        ("body", "fit", "epochs"),
        "LAYERWISE_MAX_EPOCHS",
        training(fit={"epochs": 10**9}),
    ),
    Hostile(
        "absurd samples",
        TRAININGS,
        422,
        ("body", "data", "samples"),
        "LAYERWISE_MAX_SAMPLES",
        training(data={"samples": 10**9}),
    ),
    Hostile(
        "zero batch size",
        TRAININGS,
        422,
        ("body", "fit", "batch_size"),
        "greater than or equal to 1",
        training(fit={"batch_size": 0}),
    ),
    Hostile(
        "absurd batch size",
        TRAININGS,
        422,
        ("body", "fit", "batch_size"),
        "less than or equal",
        training(fit={"batch_size": 10**12}),
    ),
    Hostile(
        "validation_split of 1.0",
        TRAININGS,
        422,
        ("body", "fit", "validation_split"),
        "less than 1",
        training(fit={"validation_split": 1.0}),
    ),
    Hostile(
        "negative validation_split",
        TRAININGS,
        422,
        ("body", "fit", "validation_split"),
        "greater than or equal to 0",
        training(fit={"validation_split": -0.1}),
    ),
    Hostile(
        "negative learning rate",
        TRAININGS,
        422,
        ("body", "compile", "learning_rate"),
        "greater than 0",
        training(compile={"learning_rate": -1}),
    ),
    Hostile(
        "unknown loss", TRAININGS, 422, ("body", "compile", "loss"), "mse", training(compile={"loss": "os.system"})
    ),
    Hostile("negative seed", TRAININGS, 422, ("body", "seed"), "greater than or equal to 0", training(seed=-1)),
    Hostile(
        "stateful training on a ragged sample count",
        TRAININGS,
        422,
        ("body", "data", "samples"),
        "multiples of 5",
        training(
            model={"batch_input_shape": [5, 10, 20], "layers": [{"type": "LSTM", "units": 4, "stateful": True}]},
            data={"samples": 53},
        ),
    ),
    # Query strings
    Hostile(
        "a wait of a day",
        TRAININGS,
        422,
        ("query", "wait"),
        "LAYERWISE_MAX_WAIT_S",
        training(),
        params={"wait": 86_400},
    ),
    Hostile(
        "a negative wait",
        TRAININGS,
        422,
        ("query", "wait"),
        "greater than or equal to 0",
        training(),
        params={"wait": -1},
    ),
    Hostile(
        "a zero batch_size for a summary",
        SUMMARY,
        422,
        ("query", "batch_size"),
        "greater than",
        OK_MODEL,
        params={"batch_size": 0},
    ),
    Hostile(
        "a page of 100,000 runs",
        TRAININGS,
        422,
        ("query", "limit"),
        "less than or equal to 100",
        method="GET",
        params={"limit": 100_000},
    ),
    Hostile(
        "a misspelt wait",
        TRAININGS,
        422,
        ("query", "wiat"),
        "unknown query parameter 'wiat' for this endpoint: it takes wait",
        training(),
        params={"wiat": 60},
    ),
    Hostile(
        "a query parameter a summary does not take",
        SUMMARY,
        422,
        ("query", "batchsize"),
        "it takes batch_size",
        OK_MODEL,
        params={"batchsize": 64},
    ),
    Hostile("an unknown run", TRAININGS + "/" + "z" * 5000, 404, ("path", "run_id"), "no training run", method="GET"),
    # Positions past a 64-bit integer (SQLite's INTEGER, Redis's scores): they crashed the stream and the list
    Hostile(
        "a page cursor past 2**63",
        TRAININGS,
        422,
        ("query", "cursor"),
        "next_cursor",
        method="GET",
        params={"cursor": str(2**63)},
    ),
    Hostile(
        "a page cursor that is not one",
        TRAININGS,
        422,
        ("query", "cursor"),
        "next_cursor",
        method="GET",
        params={"cursor": "1;DROP"},
    ),
    Hostile(
        "events after 2**63",
        TRAININGS + "/0123456789abcdef0123456789abcdef/events",
        422,
        ("query", "after"),
        "less than or equal to",
        method="GET",
        params={"after": 2**63},
    ),
    Hostile(
        "a 20-digit Last-Event-ID",
        TRAININGS + "/0123456789abcdef0123456789abcdef/events",
        422,
        ("header", "last-event-id"),
        "Last-Event-ID",
        method="GET",
        headers={"Last-Event-ID": "9" * 20},
    ),
    # The tasks, the labels and the trained model (issue 16): refused before any worker.
    Hostile(
        "a model that does not fit the adding task",
        TRAININGS,
        422,
        ("body", "data", "task"),
        "(T, 2)",
        body=training(data={"task": "adding"}),
    ),
    Hostile("an unknown task", TRAININGS, 422, ("body", "data", "task"), "", body=training(data={"task": "xor"})),
    Hostile(
        "a sparse loss on one unit",
        TRAININGS,
        422,
        ("body", "compile", "loss"),
        "binary_crossentropy",
        body=training(compile={"loss": "sparse_categorical_crossentropy"}),
    ),
    Hostile(
        "early stopping on val_loss without validation",
        TRAININGS,
        422,
        ("body", "fit", "early_stopping", "monitor"),
        "validation_split",
        body=training(fit={"early_stopping": {"patience": 2}}),
    ),
    Hostile(
        "a negative patience",
        TRAININGS,
        422,
        ("body", "fit", "early_stopping", "patience"),
        "greater than or equal to 0",
        body=training(fit={"early_stopping": {"patience": -1}}),
    ),
    Hostile(
        "predict with no inputs",
        TRAININGS + "/0123456789abcdef0123456789abcdef/predict",
        422,
        ("body", "inputs"),
        "at least 1",
        body={"inputs": []},
    ),
    Hostile(
        "predict with inputs that are a string",
        TRAININGS + "/0123456789abcdef0123456789abcdef/predict",
        422,
        ("body", "inputs"),
        "list",
        body={"inputs": "[[1, 2]]"},
    ),
    Hostile(
        "predict for an unknown run",
        TRAININGS + "/0123456789abcdef0123456789abcdef/predict",
        404,
        ("path", "run_id"),
        "no training run",
        body={"inputs": [[[0.0] * 20] * 10]},
    ),
    Hostile(
        "the model of an unknown run",
        TRAININGS + "/0123456789abcdef0123456789abcdef/model",
        404,
        ("path", "run_id"),
        "no training run",
        method="GET",
    ),
    Hostile(
        "the script of an unknown run",
        TRAININGS + "/0123456789abcdef0123456789abcdef/script",
        404,
        ("path", "run_id"),
        "no training run",
        method="GET",
    ),
    Hostile(
        "a TimeDistributed RNN that returns its states",
        SUMMARY,
        422,
        ("body", "layers", 0),
        "set return_state to false",
        body={
            "inputs": [{"name": "x", "shape": [None, 4, 1]}],
            "layers": [{"type": "TimeDistributed", "layer": {"type": "LSTM", "units": 1, "return_state": True}}],
            "outputs": ["time_distributed"],
        },
    ),
]
