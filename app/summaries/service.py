"""Model summaries and exports: normalize the spec, check it with the analytic engine and the limits, have a
worker build it with Keras, answer with Keras's figures plus the engine's Mult-Adds, bytes and warnings."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.analysis.engine import FLOAT32_BYTES, ModelFigures, analyze, length_figures, per_timestep
from app.analysis.limits import check_layer_count, check_limits
from app.analysis.warnings import ModelWarning, batch_warnings, model_warnings, training_warnings
from app.config import Limits
from app.errors import BuildsBusyError, DiagramUnavailableError, LayerwiseError, Loc, SpecError
from app.runtime import tasks
from app.runtime.messages import failure_of
from app.runtime.pool import WorkerPool
from app.spec.graph import GraphSpec
from app.spec.layers.base import prod
from app.spec.model import ModelSpec
from app.spec.python_export import graph_python_snippet, python_snippet
from app.spec.training import KERAS_DEFAULT_BATCH_SIZE, Optimizer, TrainingSpec
from app.summaries.cache import ResultCache
from app.summaries.models import LayerSummary, ModelSummary

logger = logging.getLogger(__name__)


def raise_for_failure(out: Mapping[str, Any], loc: Loc) -> None:
    """Turn a worker's failed reply (:func:`app.runtime.messages.failure_of`) into the matching domain error.

    Raises:
        SpecError: (422) Keras refused the model; ``loc`` is ``(*loc, "layers", index)``.
        DiagramUnavailableError: (503) a program the task needs (Graphviz's ``dot``) is not installed.
        LayerwiseError: (500) anything else the worker reported; a bug, not a bad request.
    """
    error = failure_of(out)
    if error is None:
        return
    if error["kind"] == "build":
        index = error.get("index")
        where = (*loc, "layers") if index is None else (*loc, "layers", index)
        raise SpecError.one(where, error["msg"], "keras_build_error")
    if error["kind"] == "unavailable":
        raise DiagramUnavailableError(error["msg"])
    raise LayerwiseError(f"the worker failed unexpectedly: {error['msg']}")


@dataclass(frozen=True)
class CheckedModel:
    """A spec that passed the analytic engine and the limits, with what the engine computed.

    ``figures`` has Keras's shapes and counts (None for a variable length); ``length`` the figures that depend
    on the length: ``figures`` itself for an input of known lengths, those at ``timesteps`` for a
    variable-length one, ``None`` when no length was given (then ``per_timestep`` has what each step adds).
    """

    spec: ModelSpec | GraphSpec
    figures: ModelFigures
    batch_size: int
    optimizer: Optimizer
    length: ModelFigures | None = None
    timesteps: int | None = None
    per_timestep: tuple[float, float] | None = None


class SummaryService:
    """Answers summary and export requests: the analytic engine first, then the summary worker pool.

    Each client may have at most ``max_builds_per_client`` builds of models the cache does not know waiting for or
    on a worker (a summary, a Keras JSON export, a training's summary): one client's queue of slow builds then
    holds at most that many places ahead of every other client's. A spec cached, or being built for anyone, costs
    no place.
    """

    def __init__(
        self,
        pool: WorkerPool,
        timeout_s: float,
        limits: Limits | None = None,
        cache_size: int = 1024,
        max_builds_per_client: int | None = None,
    ) -> None:
        self._pool = pool
        self._timeout_s = timeout_s
        self.limits = limits or Limits()
        self.cache = ResultCache(cache_size)
        self.max_builds_per_client = max_builds_per_client
        self._builds: dict[str, int] = {}

    def check(
        self,
        spec: ModelSpec | GraphSpec,
        loc: Loc = ("body",),
        *,
        batch_size: int | None = None,
        timesteps: int | None = None,
    ) -> CheckedModel:
        """Normalize the spec and check it without any worker: the analytic engine, then the limits.

        The figures are for ``batch_size``, else the model's fixed batch, else Keras's default
        (``KERAS_DEFAULT_BATCH_SIZE``). The memory limit applies to a training step with Adam at the model's fixed
        batch, or at a single sample for an open batch: a summary allocates no batch, but a model that no batch fits
        is refused.

        Raises:
            SpecError: (422) the spec is invalid, Keras would refuse a layer (``keras_build_error``), or the
                model is over a limit (``limit_exceeded``, giving the computed figure and the limit).
        """
        check_layer_count(spec, self.limits, loc)
        normalized = spec.normalized(loc)
        fixed = normalized.batch_shape[0]
        batch = batch_size or fixed or KERAS_DEFAULT_BATCH_SIZE
        return self._check(
            normalized, loc, batch, fixed or 1, "adam", timesteps=timesteps, where=("query", "timesteps")
        )

    def check_training(self, training: TrainingSpec, loc: Loc = ("body",)) -> CheckedModel:
        """:meth:`check` for the model of a normalized training request (``TrainingSpec.normalized()``, which
        normalized its model: it is not normalized again), with the memory limit at its ``batch_size`` and
        optimizer. Pure: a training path can call it before queueing anything.

        Raises:
            SpecError: as :meth:`check`, with ``loc`` into ``(*loc, "model")``.
        """
        check_layer_count(training.model, self.limits, (*loc, "model"))
        model = training.model
        batch = training.fit.batch_size or model.batch_shape[0] or KERAS_DEFAULT_BATCH_SIZE
        return self._check(
            model,
            (*loc, "model"),
            batch,
            batch,
            training.compile.optimizer,
            training=True,
            timesteps=training.data.timesteps,
            where=(*loc, "data", "timesteps"),
        )

    def _check(
        self,
        spec: ModelSpec | GraphSpec,
        loc: Loc,
        batch_size: int,
        memory_batch: int,
        optimizer: Optimizer,
        *,
        training: bool = False,
        timesteps: int | None = None,
        where: Loc = ("query", "timesteps"),
    ) -> CheckedModel:
        """The engine and the limits. For a variable-length input the limits are checked at ``timesteps`` when
        given, else on the figures with every unknown length counted as 1 (a lower bound: what no length can
        go below)."""
        figures = analyze(spec, loc)
        if not spec.variable_axes:
            length: ModelFigures | None = figures
            timesteps, steps = None, None
        elif timesteps is not None:
            length, steps = length_figures(spec, timesteps, where, loc), None
        else:
            length, steps = None, per_timestep(spec)
        limited = spec.at_length(timesteps) if length is not None and timesteps is not None else spec
        check_limits(limited, length or figures, self.limits, memory_batch, optimizer, loc, training=training)
        return CheckedModel(spec, figures, batch_size, optimizer, length, timesteps, steps)

    async def summarize(
        self,
        spec: ModelSpec | GraphSpec,
        loc: Loc = ("body",),
        *,
        batch_size: int | None = None,
        timesteps: int | None = None,
        client: str | None = None,
    ) -> ModelSummary:
        """Describe the model as Keras builds it, with the engine's Mult-Adds, bytes and warnings.

        Args:
            spec: the model as requested (normalized here).
            loc: where the spec sits in the request body, for error locations.
            batch_size: the batch for the ``*_batch`` figures and ``training_memory`` (see :meth:`check`).
            timesteps: the length of a variable-length input's null axes for the length-dependent figures;
                without it they are null and ``*_per_timestep`` given (a refusal at that length is a 422 at
                ``("query", "timesteps")``).
            client: who asks (:func:`app.api.protection.client_key`), for ``max_builds_per_client``; None: nobody's.

        Raises:
            SpecError: (422) see :meth:`check`; or Keras refused to build the model.
            BuildsBusyError: (429) ``client`` has ``max_builds_per_client`` builds waiting already.
            WorkerError, WorkerTimeoutError: (503) the worker died or ran past ``timeout_s`` seconds.
        """
        checked = self.check(spec, loc, batch_size=batch_size, timesteps=timesteps)
        # The warnings read a stack; a graph's are not written yet (its figures and limits are all checked).
        warnings = [] if checked.spec.is_graph else model_warnings(checked.spec, checked.figures, loc)  # type: ignore[arg-type]
        if batch_size is not None:
            warnings += batch_warnings(checked.spec, batch_size, None, loc)
        return await self._summarize(checked, loc, warnings, client)

    async def summarize_training(
        self,
        training: TrainingSpec,
        loc: Loc = ("body",),
        client: str | None = None,
        checked: CheckedModel | None = None,
    ) -> ModelSummary:
        """:meth:`summarize` for the model of a normalized training request: figures at its ``batch_size``,
        memory with its optimizer, and :func:`app.analysis.warnings.training_warnings` (batch against a fixed
        batch, labels shape, loss against the output's activation, stateful with shuffling).

        Args:
            checked: what :meth:`check_training` gave for ``training``, if the caller has it (the engine then
                does not run again); else it is computed here.

        Raises:
            SpecError, BuildsBusyError, WorkerError, WorkerTimeoutError: as :meth:`summarize`, ``loc`` into
                ``(*loc, "model")``.
        """
        checked = checked or self.check_training(training, loc)
        warnings = training_warnings(training.model_copy(update={"model": checked.spec}), loc)
        return await self._summarize(checked, (*loc, "model"), warnings, client)

    async def _in_worker(
        self,
        kind: str,
        task: Callable[[dict[str, Any]], Mapping[str, Any]],
        spec: ModelSpec | GraphSpec,
        client: str | None,
    ) -> Any:
        """``task(spec)`` on the summary pool, through the cache (keyed by the canonical spec), counted against
        ``client``'s builds while it runs when the cache does not know the spec.

        Raises:
            BuildsBusyError: (429) ``client`` has ``max_builds_per_client`` builds waiting or running already.
        """
        key = ResultCache.key(kind, spec.model_dump_json())
        counted = client is not None and self.max_builds_per_client is not None and not self.cache.knows(key)
        if not counted:
            return await self.cache.get_or_compute(
                key, lambda: self._pool.call(task, spec.model_dump(), timeout=self._timeout_s)
            )
        assert client is not None and self.max_builds_per_client is not None
        if self._builds.get(client, 0) >= self.max_builds_per_client:
            raise BuildsBusyError(
                f"this client has {self.max_builds_per_client} model builds waiting for a worker or being built "
                f"already, the most it may have (LAYERWISE_MAX_BUILDS_PER_CLIENT={self.max_builds_per_client}); "
                "wait for their answers, then retry in 1 s (specs answered before cost no build)"
            )
        self._builds[client] = self._builds.get(client, 0) + 1

        async def build() -> dict[str, Any]:
            # Held until the build ends, not until the requester goes away: the worker is busy until then.
            try:
                out: dict[str, Any] = await self._pool.call(task, spec.model_dump(), timeout=self._timeout_s)
                return out
            finally:
                left = self._builds[client] - 1
                if left:
                    self._builds[client] = left
                else:
                    del self._builds[client]

        return await self.cache.get_or_compute(key, build)

    def builds(self, client: str) -> int:
        """The builds ``client`` has waiting for or on a worker now."""
        return self._builds.get(client, 0)

    async def _summarize(
        self, checked: CheckedModel, loc: Loc, warnings: list[ModelWarning], client: str | None = None
    ) -> ModelSummary:
        out = await self._in_worker("summary", tasks.summary_task, checked.spec, client)
        raise_for_failure(out, loc)
        return _summary(out["summary"], checked, warnings)

    async def keras_json(self, spec: ModelSpec | GraphSpec, loc: Loc = ("body",), client: str | None = None) -> str:
        """Keras's own JSON config of the model (``model.to_json()``), built in a worker.

        Raises:
            SpecError, BuildsBusyError, WorkerError, WorkerTimeoutError: as :meth:`summarize`.
        """
        checked = self.check(spec, loc)
        out = await self._in_worker("keras_json", tasks.keras_json_task, checked.spec, client)
        raise_for_failure(out, loc)
        return str(out["keras_json"])

    async def diagram(self, spec: ModelSpec | GraphSpec, loc: Loc = ("body",), client: str | None = None) -> str:
        """The model drawn as Keras's ``plot_model`` draws it (shapes and layer names), as SVG, by a worker.

        Raises:
            SpecError, WorkerError, WorkerTimeoutError, BuildsBusyError: as :meth:`summarize`.
            DiagramUnavailableError: (503) Graphviz's ``dot`` is not installed where the workers run.
        """
        checked = self.check(spec, loc)
        out = await self._in_worker("diagram", tasks.diagram_task, checked.spec, client)
        raise_for_failure(out, loc)
        return str(out["svg"])

    async def predict(self, model_file: bytes, inputs: list[Any], dtype: str) -> list[Any]:
        """A trained model's outputs (:func:`app.runtime.tasks.predict_task`) on the summary pool; inputs
        checked by the caller.

        Raises:
            WorkerError, WorkerTimeoutError: (503) the worker died or timed out.
            LayerwiseError: (500) the worker failed otherwise (a bug).
        """
        out = await self._pool.call(tasks.predict_task, model_file, inputs, dtype, timeout=self._timeout_s)
        raise_for_failure(out, ("body",))
        outputs: list[Any] = out["outputs"]
        return outputs

    async def training_script(
        self, spec: dict[str, Any], execution: str | None, eager_max_steps: int, run_id: str
    ) -> str:
        """A training's runnable Keras 3 script (:func:`app.runtime.tasks.script_task`) from the summary pool.

        Args:
            spec: a normalized training spec as a run keeps it (``TrainingRun.request``).
            execution: ``"eager"`` or ``"graph"`` as the run ran; None: as it will (``eager_max_steps``).

        Raises:
            WorkerError, WorkerTimeoutError: (503) the worker died or timed out.
            LayerwiseError: (500) the worker failed otherwise (a bug).
        """
        task = tasks.script_task
        out = await self._pool.call(task, spec, execution, eager_max_steps, run_id, timeout=self._timeout_s)
        raise_for_failure(out, ("body",))
        script: str = out["script"]
        return script

    def spec(self, spec: ModelSpec | GraphSpec, loc: Loc = ("body",)) -> dict[str, Any]:
        """The normalized spec as a request body, arguments at Keras's default left out (as JSON data), the
        input as ``input_shape`` when the batch is open.

        Raises:
            SpecError: (422) the spec is invalid, or Keras would refuse a layer.
        """
        normalized = spec.normalized(loc)
        analyze(normalized, loc)
        body = normalized.model_dump(mode="json", exclude_defaults=True)
        if normalized.is_graph:
            return {
                "name": body["name"],
                "inputs": body["inputs"],
                "layers": body["layers"],
                "outputs": body["outputs"],
            }
        batch, *sample = body["batch_input_shape"]
        shape = {"input_shape": sample} if batch is None else {"batch_input_shape": [batch, *sample]}
        return {"name": body["name"], **shape, "layers": body["layers"]}

    def python(self, spec: ModelSpec | GraphSpec, loc: Loc = ("body",)) -> str:
        """A Keras 3 script that builds the model (:func:`app.spec.python_export.python_snippet`). No limits
        apply: nothing is built here, and the script may well be meant for a larger machine.

        Raises:
            SpecError: (422) the spec is invalid, or Keras would refuse a layer.
        """
        normalized = spec.normalized(loc)
        analyze(normalized, loc)
        if isinstance(normalized, GraphSpec):
            return graph_python_snippet(normalized)
        return python_snippet(normalized)


def _summary(keras: dict[str, Any], checked: CheckedModel, warnings: list[ModelWarning]) -> ModelSummary:
    """Keras's summary (a worker's plain dict) with the engine's figures added to every row and in total."""
    figures, batch, length = checked.figures, checked.batch_size, checked.length
    rows: list[LayerSummary] = []
    # Keras's rows, matched to the engine's by name: a functional model's table has its InputLayer rows, which
    # the engine has as inputs, and Keras orders the layers of a graph its own way.
    by_name = {fig.name: i for i, fig in enumerate(figures.layers)}
    inputs = dict(length.inputs if length is not None else ())
    for row in keras["layers"]:
        if row["name"] not in by_name:  # an InputLayer: no weights, no work, its output the input itself
            shape = inputs.get(row["name"])
            rows.append(
                LayerSummary(
                    **row,
                    mult_adds=None if length is None else 0,
                    mult_adds_batch=None if length is None else 0,
                    activation_bytes=None if shape is None else prod(shape[1:]) * FLOAT32_BYTES,
                )
            )
            continue
        i = by_name[row["name"]]
        fig = figures.layers[i]
        engine = (list(fig.output_shape), fig.params, fig.trainable_params, fig.non_trainable_params)
        if (row["output_shape"], row["params"], row["trainable_params"], row["non_trainable_params"]) != engine:
            # Keras is the source of truth for what is returned; the property test keeps this from happening.
            logger.error(
                "analytic engine disagrees with Keras on layer %d (%s): %s / %d (%d non-trainable) vs %s / %d (%d)",
                fig.index,
                fig.type,
                list(fig.output_shape),
                fig.params,
                fig.non_trainable_params,
                row["output_shape"],
                row["params"],
                row["non_trainable_params"],
            )
        at = None if length is None else length.layers[i]
        rows.append(
            LayerSummary(
                **row,
                mult_adds=None if at is None else at.mult_adds,
                mult_adds_batch=None if at is None else at.mult_adds * batch,
                activation_bytes=None if at is None else at.activation_bytes,
            )
        )
    steps = checked.per_timestep
    common = {
        **keras,
        "layers": rows,
        "weights_bytes": keras["total_params"] * 4,
        "batch_size": batch,
        "warnings": warnings,
        "timesteps": checked.timesteps,
        "mult_adds_per_timestep": None if steps is None else steps[0],
        "activation_bytes_per_timestep": None if steps is None else steps[1],
    }
    if length is None:  # a variable length and none given: nothing that depends on it is given
        return ModelSummary(**common)
    return ModelSummary(
        **common,
        mult_adds=length.mult_adds,
        mult_adds_batch=length.mult_adds * batch,
        activation_bytes=length.activation_bytes,
        input_bytes=length.input_bytes,
        training_memory=length.training_memory(batch, checked.optimizer),
    )
