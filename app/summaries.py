"""Model summaries: normalize the spec, have a worker build it with Keras, answer with Keras's figures."""

from __future__ import annotations

from typing import Any

from app import worker
from app.errors import LayerwiseError, Loc, SpecError
from app.pool import WorkerPool
from app.schemas import ModelSummary
from app.spec import ModelSpec


def raise_for_failure(out: dict[str, Any], loc: Loc) -> None:
    """Turn a worker's ``{"ok": False, "error": ...}`` into the matching domain error.

    Raises:
        SpecError: (422) Keras refused the model; ``loc`` is ``(*loc, "layers", index)``.
        LayerwiseError: (500) anything else the worker reported; a bug, not a bad request.
    """
    if out["ok"]:
        return
    error = out["error"]
    if error["kind"] == "build":
        raise SpecError.one((*loc, "layers", error["index"]), error["msg"], "keras_build_error")
    raise LayerwiseError(f"the worker failed unexpectedly: {error['msg']}")


class SummaryService:
    """Answers summary requests from the summary worker pool."""

    def __init__(self, pool: WorkerPool, timeout_s: float) -> None:
        self._pool = pool
        self._timeout_s = timeout_s

    async def summarize(self, spec: ModelSpec, loc: Loc = ("body",)) -> ModelSummary:
        """Describe the model as Keras builds it.

        Args:
            spec: the model as requested (normalized here).
            loc: where the spec sits in the request body, for error locations.

        Raises:
            SpecError: (422) the spec is invalid, or Keras refused to build it.
            WorkerError, WorkerTimeoutError: (503) the worker died or ran past ``timeout_s`` seconds.
        """
        normalized = spec.normalized(loc)
        out = await self._pool.call(worker.summary_task, normalized.model_dump(), timeout=self._timeout_s)
        raise_for_failure(out, loc)
        summary = out["summary"]
        return ModelSummary(**summary, weights_bytes=summary["total_params"] * 4)
