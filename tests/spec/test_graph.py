"""The graph spec: references, Keras's names, and a 422 that names the layer and the reference for each way a
graph can be wrong; and the engine's figures of the three graph models of tests/summaries/test_graph_models.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from app.analysis.engine import analyze
from app.errors import SpecError
from app.spec.examples import BABI, RESIDUAL, SEQ2SEQ
from app.spec.graph import GraphSpec
from app.spec.model import ModelSpec


def refusal(body: dict[str, Any]) -> list[tuple[list[Any], str, str]]:
    with pytest.raises(SpecError) as info:
        GraphSpec.model_validate(body).normalized()
    return [(item["loc"], item["type"], item["msg"]) for item in info.value.items]


def chain(*layers: dict[str, Any], outputs: list[str] | None = None) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [5, 3]}], "layers": list(layers), "outputs": outputs or ["out"]}


def test_the_engine_gives_the_three_models_keras_counts() -> None:
    figures = {
        name: analyze(GraphSpec.model_validate(body).normalized())
        for name, body in (("seq2seq", SEQ2SEQ), ("babi", BABI), ("residual", RESIDUAL))
    }
    assert [row.params for row in figures["seq2seq"].layers] == [335_872, 358_400, 23_901]
    assert figures["seq2seq"].total_params == 718_173
    assert figures["babi"].total_params == 127_422
    assert figures["residual"].total_params == 2_066
    encoder = figures["seq2seq"].layers[0]
    assert encoder.output_shapes == ((None, 256), (None, 256), (None, 256))


def test_canonical_form_names_layers_and_writes_every_reference() -> None:
    spec = GraphSpec.model_validate(
        chain({"type": "LSTM", "units": 4, "return_state": True}, {"type": "Dense", "units": 2, "name": "out"})
    ).normalized()
    assert spec.name == "functional"
    assert [layer.name for layer in spec.layers] == ["lstm", "out"]
    # A layer without inputs takes the one before: output 0 of an LSTM of three outputs, written as such.
    assert [layer.inputs for layer in spec.layers] == [["x"], ["lstm:0"]]


def test_unknown_name_and_index_are_named() -> None:
    body = chain({"type": "Dense", "units": 2, "name": "out", "inputs": ["y"]})
    ((loc, kind, msg),) = refusal(body)
    assert (loc, kind) == (["body", "layers", 0, "inputs", 0], "unknown_reference")
    assert "'y'" in msg and "known: out, x" in msg
    body = chain({"type": "LSTM", "units": 2, "name": "out", "inputs": ["x:1"]})
    ((loc, kind, msg),) = refusal(body)
    assert kind == "unknown_reference" and "x has one output" in msg and "return_state" in msg


def test_a_cycle_and_a_forward_reference_are_told_apart() -> None:
    cycle = chain(
        {"type": "Dense", "units": 3, "name": "a", "inputs": ["b"]},
        {"type": "Dense", "units": 3, "name": "b", "inputs": ["a"]},
        {"type": "Dense", "units": 3, "name": "out", "inputs": ["b"]},
    )
    assert [kind for _, kind, _ in refusal(cycle)] == ["graph_cycle"]
    forward = chain(
        {"type": "Dense", "units": 3, "name": "a", "inputs": ["b"]},
        {"type": "Dense", "units": 3, "name": "b", "inputs": ["x"]},
        {"type": "Add", "name": "out", "inputs": ["a", "b"]},
    )
    ((loc, kind, msg),) = refusal(forward)
    assert (loc, kind) == (["body", "layers", 0, "inputs", 0], "reference_order")
    assert "move layer 1 before layer 0" in msg


def test_unused_inputs_and_layers_and_duplicate_names() -> None:
    body = {
        "inputs": [{"name": "x", "shape": [3]}, {"name": "z", "shape": [3]}],
        "layers": [
            {"type": "Dense", "units": 2, "name": "out", "inputs": ["x"]},
            {"type": "Dense", "units": 2, "name": "spare", "inputs": ["x"]},
        ],
        "outputs": ["out"],
    }
    kinds = {(tuple(loc), kind) for loc, kind, _ in refusal(body)}
    assert kinds == {(("body", "inputs", 1), "unused_input"), (("body", "layers", 1), "unused_layer")}
    twice = chain({"type": "Dense", "units": 2, "name": "x"}, outputs=["x"])
    ((loc, kind, msg),) = refusal(twice)
    assert (loc, kind) == (["body", "layers", 0, "name"], "duplicate_name") and "input 0" in msg


def test_a_merge_needs_two_inputs_and_shapes_that_match() -> None:
    ((loc, kind, msg),) = refusal(chain({"type": "Add", "name": "out", "inputs": ["x"]}))
    assert (loc, kind) == (["body", "layers", 0, "inputs"], "wrong_input_count") and "2 or more" in msg
    body = chain(
        {"type": "Dense", "units": 4, "name": "d", "inputs": ["x"]},
        {"type": "Concatenate", "name": "out", "axis": 1, "inputs": ["x", "d"]},
    )
    spec = GraphSpec.model_validate(body).normalized()
    with pytest.raises(SpecError) as info:
        analyze(spec)
    (item,) = info.value.items
    assert item["loc"] == ["body", "layers", 1]
    assert "x (None, 5, 3) and d (None, 5, 4)" in item["msg"] and "except on axis 1" in item["msg"]


def test_initial_state_of_the_wrong_size_is_refused_before_keras() -> None:
    body = copy.deepcopy(SEQ2SEQ)
    body["layers"][1]["initial_state"] = ["encoder:1"]
    spec = GraphSpec.model_validate(body).normalized()
    with pytest.raises(SpecError) as info:
        analyze(spec)
    assert (
        "LSTM takes 2 states of shape (batch, 256) as initial_state, but it was given 1" in info.value.items[0]["msg"]
    )


@pytest.mark.parametrize("wrapped", [False, True])
def test_a_mask_of_another_length_than_the_input_is_refused_before_keras(wrapped: bool) -> None:
    # Keras builds it, and its training fails inside fit ("Cannot unstack 6 tensors into a TensorArray of
    # static size 5"), which the service once recorded as an internal failure.
    rnn: dict[str, Any] = {"type": "LSTM", "units": 2}
    layer = {"type": "Bidirectional", "layer": rnn} if wrapped else rnn
    mask_input: dict[str, Any] = {"name": "m", "shape": [6], "dtype": "bool"}
    body = {
        "inputs": [{"name": "x", "shape": [5, 3]}, mask_input],
        "layers": [{**layer, "name": "out", "inputs": ["x"], "mask": "m"}],
        "outputs": ["out"],
    }
    spec = GraphSpec.model_validate(body).normalized()
    with pytest.raises(SpecError) as info:
        analyze(spec)
    (item,) = info.value.items
    assert item["loc"] == ["body", "layers", 0]
    assert "the mask must be (batch, timesteps) with the input's 5 timesteps, but it has shape (None, 6)" in item["msg"]
    mask_input["shape"] = [5]
    analyze(GraphSpec.model_validate(body).normalized())


def test_a_sequential_refuses_what_only_a_graph_has() -> None:
    for layer, field in (
        ({"type": "Add"}, "type"),
        ({"type": "LSTM", "units": 3, "return_state": True}, "return_state"),
        ({"type": "Dense", "units": 3, "inputs": ["x"]}, "inputs"),
    ):
        with pytest.raises(SpecError) as info:
            ModelSpec.model_validate({"input_shape": [5, 3], "layers": [layer]}).normalized()
        (item,) = info.value.items
        assert item["loc"] == ["body", "layers", 0, field] and item["type"] == "graph_only"
        assert "top-level inputs" in item["msg"]


def test_time_distributed_refuses_a_layer_that_returns_its_states() -> None:
    """Keras 3.15 fails inside TimeDistributed's call ("Cannot convert ... to a shape") on an RNN with
    return_state; the property test against Keras found the engine letting it through."""
    body = {
        "inputs": [{"name": "x", "shape": [None, 4, 1]}],
        "layers": [{"type": "TimeDistributed", "layer": {"type": "LSTM", "units": 1, "return_state": True}}],
        "outputs": ["time_distributed"],
    }
    with pytest.raises(ValidationError) as info:
        GraphSpec.model_validate(body)
    (error,) = info.value.errors()
    assert error["loc"] == ("layers", 0, "TimeDistributed") and error["type"] == "value_error"
    assert "LSTM with return_state=True returns 3" in error["msg"] and "set return_state to false" in error["msg"]
