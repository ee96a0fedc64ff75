"""Where a worker's time goes: pyinstrument profiles of the hot paths (``make profile``; asserts nothing).

Runs in one process warmed up exactly as a worker is (:func:`app.runtime.tasks.warm_up`: Keras imported, a model
built, the heap frozen) and profiles, with pyinstrument's statistical sampler:

  summary_keras_init    100 distinct summaries of the seed's second model, weights from Keras's initializers
                        (what a summary did before the speed work)
  summary               the same 100 as the service builds them now (:func:`app.runtime.keras.build.summarize`: zero
                        weights, Keras's session state released every 50 builds)
  summary_lstm1024      5 summaries of a 1,024-unit LSTM, Keras's initializers (``..._keras_init``), then zeros
  train_graph           3 trainings of the seed's model on 100 samples x 1 epoch in Keras's default graph mode
  train_eager           the same 3 run eagerly (what ``LAYERWISE_EAGER_MAX_STEPS`` chooses for 4 steps)

For each it prints the wall time per call and the share of it spent in a few named places (the outermost
frames that match, so a share never counts a frame twice; places may nest in each other), and writes
pyinstrument's interactive HTML to ``artifacts/profile/<name>.html``. It also times
``keras.backend.clear_session(free_memory=True)`` with and without ``gc.freeze()`` (milliseconds; median of 5).

    make profile        # or .venv/bin/python bench/profile.py
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
from pyinstrument import Profiler  # noqa: E402
from pyinstrument.frame import Frame  # noqa: E402

from app.runtime import tasks as worker  # noqa: E402
from app.runtime.keras import build as keras_build  # noqa: E402
from app.runtime.keras import train as keras_train  # noqa: E402
from app.spec.model import ModelSpec  # noqa: E402
from app.spec.training import TrainingSpec  # noqa: E402

OUT = ROOT / "artifacts" / "profile"

# (label, predicate on (function name, file path)): the places a share is reported for.
TRACING = "graph tracing (tf.function)"
PLACES: list[tuple[str, Callable[[str, str], bool]]] = [
    ("Keras initializers (Orthogonal's QR, Glorot)", lambda fn, path: "keras/src/initializers/" in path),
    ("weight variables created (TensorFlow)", lambda fn, path: fn == "add_weight" and "keras/src/layers/" in path),
    ("layer objects constructed", lambda fn, path: fn == "make_layer"),
    ("Sequential shape inference and build", lambda fn, path: fn == "build" and path.endswith("sequential.py")),
    ("Keras's summary table (rich)", lambda fn, path: fn == "summary_text"),
    ("clear_session", lambda fn, path: fn == "clear_session"),
    ("compile", lambda fn, path: fn == "compile" and "keras/src/" in path),
    (TRACING, lambda fn, path: fn == "trace_function"),
    ("traced train steps run", lambda fn, path: fn == "call_function" and "tracing_compilation" in path),
    ("eager train steps run", lambda fn, path: fn == "train_step" and "trainer.py" in path),
]
# A traced train step is Python run once to make the graph: counted as tracing, not as an eager step.
NOT_INSIDE = {"eager train steps run": TRACING}


class _NoChannel:
    """A training's channel that nobody listens to and that never asks to stop."""

    def emit(self, event: str, data: dict[str, Any]) -> None:
        pass

    def stop_requested(self) -> str | None:
        return None


def seed_spec(features: int = 20, units: int = 30) -> ModelSpec:
    """The seed's second model (LSTM -> Flatten -> Dense) on ``features`` input features, normalized."""
    return ModelSpec.model_validate(
        {
            "input_shape": [10, features],
            "layers": [
                {"type": "LSTM", "units": units, "return_sequences": True},
                {"type": "Flatten"},
                {"type": "Dense", "units": 1},
            ],
        }
    ).normalized()


def training_spec() -> TrainingSpec:
    """The seed's second model on 100 samples x 1 epoch (4 steps of 32), as ``make bench``'s train_small."""
    return TrainingSpec.model_validate(
        {
            "model": seed_spec().model_dump(exclude_none=True),
            "compile": {"loss": "mse", "optimizer": "adam"},
            "data": {"samples": 100},
            "fit": {"epochs": 1},
            "seed": 0,
        }
    ).normalized()


def places(root: Frame) -> dict[str, float]:
    """Seconds spent under the outermost frames matching each of :data:`PLACES`."""
    found = dict.fromkeys((label for label, _ in PLACES), 0.0)

    def walk(frame: Frame, inside: frozenset[str]) -> None:
        fn, path = frame.function or "", frame.file_path or ""
        now = set(inside)
        for label, matches in PLACES:
            if label not in inside and NOT_INSIDE.get(label) not in inside and matches(fn, path):
                found[label] += frame.time
                now.add(label)
        for child in frame.children:
            walk(child, frozenset(now))

    walk(root, frozenset())
    return found


def profile(name: str, calls: int, call: Callable[[int], object]) -> None:
    """Profile ``call(0)`` ... ``call(calls - 1)``; print the time per call and the places; write the HTML."""
    profiler = Profiler(interval=0.001)
    began = time.perf_counter()
    profiler.start()
    for i in range(calls):
        call(i)
    profiler.stop()
    wall = time.perf_counter() - began
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.html").write_text(profiler.output_html())
    session = profiler.last_session
    assert session is not None
    root = session.root_frame()
    print(f"\n{name}: {wall / calls * 1000:.1f} ms per call ({calls} calls, {wall:.2f} s)")
    if root is None:  # no sample taken
        return
    for label, seconds in places(root).items():
        if seconds / root.time >= 0.01:
            print(f"  {seconds / root.time:6.1%}  {label}")


def main() -> None:
    worker.warm_up()
    specs = [seed_spec(features=21 + i) for i in range(100)]
    keras_build.describe(keras_build.build_model(specs[0]))  # the initializers' path warm too
    print(f"layerwise profile (Keras {keras_build.KERAS_VERSION}, {os.cpu_count()} CPUs); HTML in {OUT}")

    profile("summary_keras_init", 100, lambda i: keras_build.describe(keras_build.build_model(specs[i])))
    profile("summary", 100, lambda i: keras_build.summarize(specs[i]))
    wide = seed_spec(units=1024)
    profile("summary_lstm1024_keras_init", 5, lambda i: keras_build.describe(keras_build.build_model(wide)))
    profile("summary_lstm1024", 5, lambda i: keras_build.summarize(wide))

    train = training_spec()
    for mode_steps in (0, 100):  # warm both execution modes
        keras_train.train(train, _NoChannel(), eager_max_steps=mode_steps)
    profile("train_graph", 3, lambda i: keras_train.train(train, _NoChannel(), eager_max_steps=0))
    profile("train_eager", 3, lambda i: keras_train.train(train, _NoChannel(), eager_max_steps=100))

    def clear_session_s() -> float:
        for spec in specs[:20]:
            keras_build.build_model(spec)
        began = time.perf_counter()
        keras.backend.clear_session(free_memory=True)
        return time.perf_counter() - began

    gc.unfreeze()
    unfrozen = statistics.median(clear_session_s() for _ in range(5))
    keras_build.freeze_heap()
    frozen = statistics.median(clear_session_s() for _ in range(5))
    print(
        f"\nclear_session(free_memory=True) after 20 builds: {unfrozen * 1000:.0f} ms, "
        f"{frozen * 1000:.0f} ms after gc.freeze() (median of 5)"
    )


if __name__ == "__main__":
    main()
