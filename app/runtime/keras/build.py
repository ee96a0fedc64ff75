"""Spec -> ``keras.Sequential``: build, describe (as ``model.summary()`` does), export, and manage the heap.

It runs inside worker processes (:mod:`app.runtime.tasks`); the server process never imports it.
"""

from __future__ import annotations

import functools
import gc
import inspect
import math
import re
from typing import Any

import keras
from keras.src.layers import input_spec
from keras.src.utils import naming

from app.analysis.engine import failure_message, graph_failure_message
from app.spec.graph import GraphSpec, Reference
from app.spec.layers import KerasLayer, keras_objects, refusals
from app.spec.layers.base import KerasRefusal, ShapeError
from app.spec.model import ModelSpec

KERAS_VERSION: str = keras.__version__


class BuildError(Exception):
    """Keras refused to build the model at layer ``index`` (0-based, into ``spec.layers``).

    ``str(error)`` is a message for a person: the layer by index, name and type, the shape it received,
    what Keras expected, and how to fix the spec.
    """

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


# What Keras says when it refuses an input's rank: its InputSpec check ("expected ndim=3, found ndim=2";
# keras/src/layers/input_spec.py) and TimeDistributed's own ("with at least 3 dimensions, received: (None, 30)";
# keras/src/layers/rnn/time_distributed.py).
_INPUT_SPEC = re.compile(r"expected (ndim=\d+|min_ndim=\d+|axis [^,]+), found (ndim=\d+|[^.]+)")
_AT_LEAST = re.compile(r"with at least (\d+) dimensions, received: \(([^)]*)\)")


def _what_keras_said(exc: Exception, layer: keras.layers.Layer, received: tuple[int | None, ...]) -> str:
    """The clause for a refusal: Keras's InputSpec words, one of :mod:`app.spec.layers.refusals` (the engine's
    wording) read from Keras's own message, or Keras's message as it is."""
    raw = " ".join(str(exc).split())
    raw = re.sub(r"\x1b\[[0-9;]*m", "", raw)  # Keras colours some messages for terminals
    if isinstance(layer, keras.layers.TimeDistributed) and len(received) >= 3:
        # TimeDistributed builds and calls the wrapped layer without its InputSpec check, so what fails then is
        # some later, accidental error; the wrapped layer's InputSpec says what is wrong with one timestep.
        child = keras.KerasTensor(shape=(received[0], *received[2:]))
        try:
            input_spec.assert_input_compatibility(layer.layer.input_spec, [child], layer.layer.name)
        except ValueError as spec_exc:
            raw = " ".join(str(spec_exc).split())
    if m := _INPUT_SPEC.search(raw):
        return f"Keras expected {m.group(1)}, found {m.group(2)}"
    if m := _AT_LEAST.search(raw):
        return f"Keras expected min_ndim={m.group(1)}, found ndim={len(m.group(2).rstrip(',').split(','))}"
    if (clause := refusals.translate(raw, received)) is not None:
        return clause
    if isinstance(exc, IndexError | TypeError) and (clause := _python_error(exc, layer, received)) is not None:
        return clause
    return f"Keras said: {raw}"


def _python_error(exc: Exception, layer: keras.layers.Layer, received: tuple[int | None, ...]) -> str | None:
    """What a bare IndexError or TypeError from a layer's ``build`` means (Keras raises no message of its own
    for these): an axis the input lacks, a convolution's input rank, an unknown number of channels."""
    if isinstance(layer, keras.layers.TimeDistributed):  # the wrapped layer got one timestep's shape
        layer, received = layer.layer, (received[0], *received[2:])
    ndim = len(received)
    if isinstance(exc, IndexError):
        axis = getattr(layer, "axis", None)
        if isinstance(axis, int):
            return refusals.axis_out_of_range(axis, ndim).what
        if isinstance(axis, list | tuple):  # LayerNormalization's list of axes: the first the input lacks
            missing = next((a for a in sorted(axis) if not -ndim <= a < ndim), None)
            if missing is not None:
                return refusals.axis_out_of_range(missing, ndim).what
        if isinstance(layer, keras.layers.PReLU):
            axis = next(a for a in layer.shared_axes if not -(ndim - 1) <= a - 1 < ndim - 1)
            return refusals.axis_out_of_range(axis, ndim).what
        if hasattr(layer, "rank"):  # a transposed convolution on an input of another rank
            return ShapeError(f"ndim={layer.rank + 2}", f"ndim={ndim}").what
        return None
    if "NoneType" in str(exc) and hasattr(layer, "kernel_size") and received[-1] is None:
        if hasattr(layer, "depth_multiplier"):
            return refusals.unknown_weight("depthwise_kernel", (*layer.kernel_size, None, layer.depth_multiplier)).what
        return refusals.unknown_weight("kernel", (*layer.kernel_size, None, layer.filters)).what
    return None


def _build_error(spec: ModelSpec, layers: list[keras.layers.Layer], exc: Exception) -> BuildError:
    # A layer gets an inbound node only once a call on it succeeded, so the first layer without one is the
    # layer Keras refused; what each layer received is the previous layer's output.
    index = next((i for i, layer in enumerate(layers) if not layer._inbound_nodes), len(layers) - 1)
    try:  # a TimeDistributed before it that Keras let through is the first refusal (see below)
        _check_time_distributed(spec, layers[:index])
    except BuildError as earlier:
        return earlier
    shapes = [tuple(spec.batch_shape), *(tuple(layer.output.shape) for layer in layers[:index])]
    return BuildError(index, failure_message(spec, index, shapes, _what_keras_said(exc, layers[index], shapes[index])))


@functools.cache
def _initializer_arguments(cls: type) -> tuple[str, ...]:
    """The ``*_initializer`` arguments of a Keras layer class's constructor."""
    return tuple(name for name in inspect.signature(cls).parameters if name.endswith("_initializer"))


def _argument(key: str, value: Any, initialize: bool) -> Any:
    """A constructor argument: a wrapped layer built, a built-in initializer, regularizer or constraint given as
    ``{"class_name", "config"}`` made from its class (one of :mod:`app.spec.layers.keras_objects`'s lists, which the
    spec's schema checked: nothing is resolved by a name from the request beyond those)."""
    if isinstance(value, KerasLayer):
        return make_layer(value, initialize)
    module = keras_objects.module_of(key)
    if module is not None and isinstance(value, dict):
        return getattr(getattr(keras, module), value["class_name"])(**value.get("config", {}))
    return value


def make_layer(layer: KerasLayer, initialize: bool = True) -> keras.layers.Layer:
    """Instantiate ``keras.layers.<layer.type>`` with the spec's Keras arguments; a wrapped layer first.

    With ``initialize=False`` every weight starts at zeros instead of its Keras initializer (see
    :func:`build_model`).
    """
    cls = getattr(keras.layers, layer.type)
    config = {k: _argument(k, v, initialize) for k, v in layer.keras_config().items()}
    if not initialize:
        config.update(dict.fromkeys(_initializer_arguments(cls), "zeros"))
    trainable = config.pop("trainable", True)
    built = cls(**config)
    built.trainable = trainable  # after construction: not every constructor takes it (SpatialDropout1D)
    return built


def build_graph(spec: GraphSpec, initialize: bool = True) -> keras.Model:
    """Build the Keras 3 functional ``Model`` of a normalized graph spec: a ``keras.Input`` per input, each layer
    called on the tensors its references name (a list for a merge or ``Attention``; query, value, key for
    ``MultiHeadAttention``; ``initial_state`` and ``mask`` as keywords), outputs as listed.

    Args:
        initialize: as :func:`build_model`'s.

    Raises:
        BuildError: Keras refused a layer's call, or would fail to run it (:attr:`KerasLayer.CHECKED_ON_CALL`:
            the check is the spec layer's own, on the shapes Keras computed).
    """
    tensors: dict[str, list[Any]] = {
        x.name: [keras.Input(batch_shape=x.batch_shape, name=x.name, dtype=x.dtype)] for x in spec.inputs
    }

    def tensor(ref: str) -> Any:
        parsed = Reference.parse(ref)
        return tensors[parsed.name][parsed.index]

    for i, layer in enumerate(spec.layers):
        calls = layer.call_refs()
        args = [tensor(ref) for ref in calls[0][1]]
        kwargs: dict[str, Any] = {
            field: tensor(refs[0]) if field == "mask" else [tensor(ref) for ref in refs] for field, refs in calls[1:]
        } | layer.call_options()
        shown = [(ref, tuple(tensor(ref).shape)) for _, refs in calls for ref in refs]
        built = make_layer(layer, initialize)
        try:
            if layer.CHECKED_ON_CALL:  # what Keras builds but cannot run (see the docstring)
                received = {field: [tuple(tensor(ref).shape) for ref in refs] for field, refs in calls[1:]}
                layer.call_output_shapes([tuple(t.shape) for t in args], received)
            if layer.CALL_STYLE == "list":
                out = built(args, **kwargs)
            elif layer.CALL_STYLE == "positional":
                out = built(*args, **kwargs)
            else:
                out = built(args[0], **kwargs)
        except KerasRefusal as exc:
            raise BuildError(i, graph_failure_message(spec, i, shown, exc.what)) from None
        except (ValueError, TypeError, IndexError) as exc:
            what = _what_keras_said(exc, built, shown[0][1])
            raise BuildError(i, graph_failure_message(spec, i, shown, what)) from None
        if (refused := _time_distributed_refusal(built, shown[0][1])) is not None:
            raise BuildError(i, graph_failure_message(spec, i, shown, refused))
        tensors[layer.name or ""] = list(out) if isinstance(out, list | tuple) else [out]
    outputs = [tensor(ref) for ref in spec.outputs]
    return keras.Model(
        inputs=[tensors[x.name][0] for x in spec.inputs],
        outputs=outputs[0] if len(outputs) == 1 else outputs,
        name=spec.name,
    )


def build_any(spec: ModelSpec | GraphSpec, initialize: bool = True) -> keras.Model:
    """:func:`build_graph` for a graph spec, :func:`build_model` for a Sequential.

    Keras's name counters start afresh, as in a new process: the operations Keras adds to a graph itself, and
    names by a session-wide count (a ``Masking`` on an input adds ``not_equal`` and ``any``, which its table
    shows), are then named as a hand-built model names them, whatever this worker built before.
    """
    naming.reset_uids()
    if isinstance(spec, GraphSpec):
        return build_graph(spec, initialize)
    return build_model(spec, initialize)


def build_model(spec: ModelSpec, initialize: bool = True) -> keras.Sequential:
    """Build the Keras 3 model for a normalized spec.

    Keras 2's ``batch_input_shape`` becomes ``keras.Input(batch_shape=...)``, the Keras 3 way.

    Args:
        initialize: give the weights their Keras initializers. Summaries pass False and get zeros: shapes and
            counts do not depend on initial values, and the orthogonal initializer of a recurrent kernel is a
            QR decomposition, O(units^3): a 1,024-unit LSTM builds in ~12 ms instead of ~700 ms.

    Raises:
        BuildError: Keras refused a layer (e.g. "expected ndim=3, found ndim=2" for an LSTM after Flatten).
    """
    layers = [make_layer(layer, initialize) for layer in spec.layers]
    # Named, so that Keras's session-wide name counter does not make to_json() differ between builds.
    inputs = keras.Input(batch_shape=tuple(spec.batch_shape), name=spec.input_layer_name, dtype=spec.input_dtype)
    try:
        model = keras.Sequential([inputs, *layers], name=spec.name)
    except (ValueError, TypeError, IndexError) as exc:
        raise _build_error(spec, layers, exc) from None
    if not all(layer._inbound_nodes for layer in layers):  # Sequential.build gives up quietly on some errors
        raise _build_error(spec, layers, ValueError("the layer's output shape cannot be inferred"))
    _check_time_distributed(spec, layers)
    return model


def _check_time_distributed(spec: ModelSpec, layers: list[keras.layers.Layer]) -> None:
    """Refuse a TimeDistributed whose wrapped layer's InputSpec does not take one timestep's shape.

    TimeDistributed builds and calls the wrapped layer without that check (keras/src/layers/rnn/
    time_distributed.py), so a MaxPooling1D over a 2-D timestep builds quietly and fails only in ``fit``; the
    check is Keras's own (``assert_input_compatibility``), made here where Keras skips it.

    Raises:
        BuildError: at the first such TimeDistributed.
    """
    shapes = [tuple(spec.batch_shape), *(tuple(layer.output.shape) for layer in layers)]
    for i, layer in enumerate(layers):
        if (what := _time_distributed_refusal(layer, shapes[i])) is not None:
            raise BuildError(i, failure_message(spec, i, shapes[: i + 1], what))


def _time_distributed_refusal(layer: keras.layers.Layer, received: tuple[int | None, ...]) -> str | None:
    """What Keras's InputSpec of a TimeDistributed's wrapped layer says of one timestep of ``received``, or None
    (also for any other layer)."""
    if not isinstance(layer, keras.layers.TimeDistributed):
        return None
    child = keras.KerasTensor(shape=(received[0], *received[2:]))
    try:
        input_spec.assert_input_compatibility(layer.layer.input_spec, [child], layer.layer.name)
    except ValueError as exc:
        return _what_keras_said(exc, layer, received)
    return None


def _count(weights: list[Any]) -> int:
    return int(sum(math.prod(w.shape) for w in weights))


def summary_text(model: keras.Model) -> str:
    """Keras's own ``model.summary()`` table, as a string."""
    parts: list[str] = []
    model.summary(print_fn=lambda text, line_break=True: parts.append(text))
    return "".join(parts).rstrip("\n") + "\n"


# Keras keeps per-session state that only clear_session() drops, and cycles between Keras objects wait for a
# full collection. Measured over 1,000 distinct summaries in one worker: +149 MB without releasing, +15 MB
# releasing every 50 builds (bench/bench.py's worker_rss). After freeze_heap(), a release takes ~8 ms.
RELEASE_EVERY_BUILDS = 50
_builds = 0


def freeze_heap() -> None:
    """Move everything alive now (TensorFlow, Keras, the warm-up's caches) out of the garbage collector's reach
    (``gc.freeze``), so a full collection walks only what later requests create: ``clear_session`` with
    ``free_memory=True`` then costs ~8 ms instead of ~200 ms. Call once, after warming up."""
    gc.collect()
    gc.freeze()


def _release_memory_now_and_then() -> None:
    global _builds
    _builds += 1
    if _builds % RELEASE_EVERY_BUILDS == 0:
        keras.backend.clear_session(free_memory=True)


def summarize(spec: ModelSpec | GraphSpec) -> dict[str, Any]:
    """Build the model (weights left at zeros: see :func:`build_model`) and describe it as Keras does.

    Returns:
        ``{"name", "layers": [{"index", "name", "type", "output_shape", "params", "trainable_params",
        "non_trainable_params"}], "total_params", "trainable_params", "non_trainable_params", "text",
        "keras_version"}``; ``output_shape`` is a list with ``None`` for an open batch, counts are numbers of
        scalars.

    Raises:
        BuildError: see :func:`build_model`.
    """
    _release_memory_now_and_then()
    return describe(build_any(spec, initialize=False))


def to_json(spec: ModelSpec | GraphSpec) -> str:
    """Keras's own JSON config of the model (``model.to_json()``), for export.

    Raises:
        BuildError: see :func:`build_model`.
    """
    _release_memory_now_and_then()
    return str(build_any(spec).to_json())


def _connected_to(layer: keras.layers.Layer) -> list[str]:
    """The tensors a functional model's layer was called on, as the spec's references: ``"x"`` for the output of
    a layer of one output, ``"x:k"`` for output ``k`` of one of several (Keras's table writes ``x[0][k]``)."""
    if not layer._inbound_nodes:
        return []
    refs = []
    for t in layer._inbound_nodes[0].arguments.keras_tensors:
        operation, node_index, tensor_index = t._keras_history
        if isinstance(operation, keras.layers.InputLayer):
            refs.append(operation.name)
            continue
        count = len(operation._inbound_nodes[node_index].outputs)
        refs.append(operation.name if count == 1 else f"{operation.name}:{tensor_index}")
    return refs


def describe(model: keras.Model) -> dict[str, Any]:
    """Keras's summary of a built model as data (see :func:`summarize`); a functional model's rows include its
    ``InputLayer`` rows, what each layer is connected to, and every output's shape for a layer of several."""
    graph = not isinstance(model, keras.Sequential)
    rows = []
    for i, layer in enumerate(model.layers):
        trainable = _count(layer.trainable_weights)
        non_trainable = _count(layer.non_trainable_weights)
        output = layer.output
        several = isinstance(output, list | tuple)
        row: dict[str, Any] = {
            "index": i,
            "name": layer.name,
            "type": type(layer).__name__,
            "output_shape": list((output[0] if several else output).shape),
            "params": layer.count_params(),
            "trainable_params": trainable,
            "non_trainable_params": non_trainable,
        }
        if graph:
            row["output_shapes"] = [list(t.shape) for t in output] if several else None
            row["connected_to"] = _connected_to(layer)
        rows.append(row)
    trainable = _count(model.trainable_weights)
    non_trainable = _count(model.non_trainable_weights)
    return {
        "name": model.name,
        "layers": rows,
        "total_params": trainable + non_trainable,
        "trainable_params": trainable,
        "non_trainable_params": non_trainable,
        "text": summary_text(model),
        "keras_version": KERAS_VERSION,
    }


class DiagramUnavailable(Exception):
    """Drawing needs pydot and Graphviz's ``dot`` program, and one of them is missing where the worker runs."""


def diagram(spec: ModelSpec | GraphSpec) -> str:
    """The model drawn as Keras's ``plot_model`` draws it (``keras.utils.model_to_dot`` with shapes and layer
    names, top to bottom), rendered to SVG by Graphviz's ``dot``.

    Returns:
        The SVG document, as text.

    Raises:
        BuildError: see :func:`build_model`.
        DiagramUnavailable: pydot or Graphviz is not installed (``apt-get install graphviz``; pydot is a
            dependency of the service).
    """
    from keras.src.utils import model_visualization

    if not model_visualization.check_graphviz():
        raise DiagramUnavailable(
            "drawing a model needs Graphviz's dot program, which is not installed where the service runs: install "
            "it (Debian: apt-get install graphviz)"
        )
    _release_memory_now_and_then()
    model = build_any(spec, initialize=False)
    dot = keras.utils.model_to_dot(model, show_shapes=True, show_layer_names=True, dpi=None)
    # model_to_dot sets dpi even when None, and pydot writes that as a bare ``dpi;`` statement, which dot reads
    # as a node named "dpi": an ellipse in every diagram. Without the attribute, the SVG is plot_model's at 72 dpi.
    dot.get_attributes().pop("dpi", None)
    return bytes(dot.create(format="svg")).decode("utf-8")
