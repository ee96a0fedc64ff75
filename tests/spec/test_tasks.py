"""The tasks' shapes and label encodings, and the 422s of a model that does not fit (pure: no numpy, no Keras)."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import SpecError
from app.spec.tasks import TASK_NAMES, TASKS, TaskLayout, check_metrics, task_layout
from app.spec.training import TrainingSpec


def test_every_task_is_defined_once_with_its_source() -> None:
    assert tuple(TASKS) == TASK_NAMES
    assert all(info.source and info.needs_input and info.needs_output for info in TASKS.values())
    assert "section 5.4" in TASKS["adding"].source and "arXiv:1504.00941" in TASKS["adding"].source
    assert "section 5.6" in TASKS["temporal_order"].source


@pytest.mark.parametrize(
    ("task", "inp", "out", "loss", "vocab", "encoding", "classes"),
    [
        ("random", (10, 20), (1,), "mse", None, "float", None),
        ("random", (10, 20), (1,), "binary_crossentropy", None, "binary", None),
        ("random", (10, 20), (3,), "categorical_crossentropy", None, "one_hot", 3),
        ("random", (10, 20), (3,), "sparse_categorical_crossentropy", None, "index", 3),
        ("adding", (20, 2), (1,), "mse", None, "float", None),
        ("sine", (20, 1), (1,), "huber", None, "float", None),
        ("sine", (20, 1), (5, 1), "mae", None, "float", None),
        ("temporal_order", (20, 8), (4,), "sparse_categorical_crossentropy", None, "index", 4),
        ("temporal_order", (20, 8), (4,), "categorical_crossentropy", None, "one_hot", 4),
        ("temporal_order", (20, 8), (4,), "mse", None, "one_hot", 4),
        ("running_parity", (10, 1), (10, 1), "binary_crossentropy", None, "binary", 2),
        ("running_parity", (10, 1), (10, 2), "sparse_categorical_crossentropy", None, "index", 2),
        ("tokens", (20,), (1,), "binary_crossentropy", 10, "binary", 2),
        ("tokens", (20,), (3,), "categorical_crossentropy", 10, "one_hot", 3),
    ],
)
def test_a_fitting_model_gets_its_layout(
    task: Any, inp: tuple[int, ...], out: tuple[int, ...], loss: str, vocab: int | None, encoding: str, classes: int
) -> None:
    assert task_layout(task, inp, out, loss, vocab) == TaskLayout(task, inp, out, encoding, classes, vocab)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("task", "inp", "out", "loss", "vocab", "loc", "type", "says"),
    [
        ("adding", (10, 20), (1,), "mse", None, "data", "task_input_shape", ["(T, 2)", "(10, 20)", "[10, 2]"]),
        ("adding", (20, 2), (20, 1), "mse", None, "layers", "task_output_shape", ["(1,)", "(20, 1)"]),
        ("adding", (20, 2), (1,), "binary_crossentropy", None, "compile", "loss_output", ["regression loss"]),
        ("sine", (20, 2), (1,), "mse", None, "data", "task_input_shape", ["(T, 1)", "(20, 2)"]),
        ("sine", (20,), (1,), "mse", 10, "data", "task_input_shape", ["Embedding"]),
        ("temporal_order", (5, 8), (4,), "mse", None, "data", "task_input_shape", ["T >= 10", "(5, 8)"]),
        ("temporal_order", (20, 8), (2,), "categorical_crossentropy", None, "layers", "task_output_shape", ["4 units"]),
        (
            "running_parity",
            (10, 1),
            (1,),
            "binary_crossentropy",
            None,
            "layers",
            "task_output_shape",
            ["return_sequences"],
        ),
        (
            "running_parity",
            (10, 1),
            (10, 1),
            "sparse_categorical_crossentropy",
            None,
            "compile",
            "loss_output",
            ["1 unit"],
        ),
        ("tokens", (20, 1), (2,), "mse", None, "data", "task_input_shape", ["Embedding"]),
        ("tokens", (20,), (3,), "mse", 4, "data", "task_input_shape", ["at least 5"]),
        # A sparse loss on a 1-unit sigmoid: the example of a loss that cannot fit the output.
        ("random", (10, 20), (1,), "sparse_categorical_crossentropy", None, "compile", "loss_output", ["Dense(n"]),
        ("random", (10, 20), (1,), "categorical_crossentropy", None, "compile", "loss_output", ["always 0"]),
    ],
)
def test_a_model_that_does_not_fit_is_a_422_naming_both_shapes(
    task: Any,
    inp: tuple[int, ...],
    out: tuple[int, ...],
    loss: str,
    vocab: int | None,
    loc: str,
    type: str,
    says: list[str],
) -> None:
    with pytest.raises(SpecError) as info:
        task_layout(task, inp, out, loss, vocab, ("body",), ("body", "model", "layers", 1))
    (item,) = info.value.items
    assert item["type"] == type and item["loc"][1] == {"data": "data", "layers": "model", "compile": "compile"}[loc]
    assert all(s in item["msg"] for s in says), item["msg"]


@pytest.mark.parametrize(
    ("metrics", "encoding", "refused"),
    [
        (["sparse_categorical_accuracy", "accuracy"], "index", None),
        (["categorical_accuracy", "mae", "binary_accuracy"], "one_hot", None),
        (["accuracy", "mae"], "index", 1),  # Keras fails inside fit: [n] against [n, units]
        (["categorical_accuracy"], "index", 0),  # the argmax of an index: a wrong number
        (["binary_accuracy"], "index", 0),
        (["mae", "sparse_categorical_accuracy"], "one_hot", 1),
        (["sparse_categorical_accuracy"], "binary", 0),
    ],
)
def test_metrics_must_be_able_to_score_the_labels(metrics: list[str], encoding: Any, refused: int | None) -> None:
    if refused is None:
        check_metrics(metrics, encoding)
        return
    with pytest.raises(SpecError) as info:
        check_metrics(metrics, encoding)
    (item,) = info.value.items
    assert item["loc"] == ["body", "compile", "metrics", refused] and item["type"] == "metric_labels"


def _training(**kw: Any) -> TrainingSpec:
    model = {"input_shape": [20, 2], "layers": [{"type": "LSTM", "units": 4}, {"type": "Dense", "units": 1}]}
    return TrainingSpec.model_validate({"model": model, "data": {"task": "adding"}, **kw})


def test_the_task_defaults_to_random_and_is_checked_with_the_training() -> None:
    assert TrainingSpec.model_validate({"model": _training().model.model_dump()}).data.task == "random"
    assert _training().normalized().task_layout((20, 2), (1,)).encoding == "float"
    with pytest.raises(SpecError) as info:
        _training(compile={"loss": "binary_crossentropy"}).normalized().task_layout((20, 2), (1,))
    assert info.value.items[0]["loc"] == ["body", "compile", "loss"]


@pytest.mark.parametrize(
    ("fit", "says"),
    [
        ({"early_stopping": {}}, "validation_split is 0"),  # monitor defaults to val_loss, as in Keras
        ({"early_stopping": {"monitor": "accuracy"}, "validation_split": 0.2}, "'loss', 'val_loss'"),
    ],
)
def test_early_stopping_monitors_a_key_of_the_logs(fit: dict[str, Any], says: str) -> None:
    with pytest.raises(SpecError) as info:
        _training(fit=fit).normalized()
    (item,) = info.value.items
    assert item["loc"] == ["body", "fit", "early_stopping", "monitor"] and says in item["msg"], item["msg"]
    ok = _training(fit={"early_stopping": {"monitor": "val_loss"}, "validation_split": 0.2}).normalized()
    assert ok.fit.early_stopping is not None and ok.fit.early_stopping.patience == 0
