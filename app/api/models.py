"""``/v1/models``: a model's summary (layers, output shapes and parameter counts, as Keras computes them, with
Mult-Adds, memory and warnings), and its export as Keras JSON or Python."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Header, Query
from fastapi.openapi.models import Example
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import SkipValidation

from app.api.deps import Summaries
from app.api.error_handlers import ErrorBody
from app.spec.examples import SEED_DESCRIPTIONS, SEED_MODELS
from app.spec.keras_import import KerasModelConfig, parse_model
from app.spec.model import ModelSpec
from app.summaries.models import ModelSummary

router = APIRouter(prefix="/v1/models", tags=["models"])

SUMMARY_EXAMPLES = {key: Example(summary=SEED_DESCRIPTIONS[key], value=value) for key, value in SEED_MODELS.items()}


def prefers_text(accept: str | None) -> bool:
    """True when an ``Accept`` header ranks ``text/plain`` above ``application/json``.

    Each media type takes the quality of the most specific range that matches it (RFC 9110 §12.5.1);
    a missing header, ``*/*`` or a tie answers JSON.
    """
    ranges: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, *params = (p.strip().lower() for p in part.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        ranges[media] = q

    def quality(media: str) -> float:
        for pattern in (media, media.split("/")[0] + "/*", "*/*"):
            if pattern in ranges:
                return ranges[pattern]
        return 0.0

    return quality("text/plain") > quality("application/json")


# The body is a spec or Keras's to_json() config, told apart by parse_model; the schema documents both.
ModelBody = Annotated[
    SkipValidation[ModelSpec | KerasModelConfig],
    Body(
        openapi_examples=SUMMARY_EXAMPLES,
        description="A model spec, or Keras's own `model.to_json()` of a Sequential of the supported layers.",
    ),
]
BatchSize = Annotated[
    int | None,
    Query(
        ge=1,
        le=2**31 - 1,
        description="The batch for mult_adds_batch and training_memory; default the model's fixed batch, else 32.",
    ),
]
Timesteps = Annotated[
    int | None,
    Query(
        ge=1,
        le=2**31 - 1,
        description="For an input with a null (variable-length) axis: the length every null axis after the batch "
        "takes for mult_adds, activation bytes and training_memory; without it those are null and the summary "
        "gives them per timestep. Ignored for an input of known lengths.",
    ),
]


@router.post(
    "/summary",
    response_model=ModelSummary,
    summary="Summarize a Keras Sequential model",
    responses={
        200: {
            "description": "The summary as JSON, or with `Accept: text/plain` Keras's own table alone.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        422: {
            "model": ErrorBody,
            "description": "The spec is invalid, Keras refused to build the model, the model is over a size limit, "
            "or a Keras config has what the import does not accept.",
        },
        503: {"model": ErrorBody, "description": "The worker building the model died or timed out."},
    },
)
async def summarize_model(
    body: ModelBody,
    summaries: Summaries,
    batch_size: BatchSize = None,
    timesteps: Timesteps = None,
    accept: Annotated[str | None, Header()] = None,
) -> ModelSummary | Response:
    """Build the model with Keras in a worker process and answer with each layer's `output_shape` and
    `params`, the totals and Keras's own summary table (`text`); with each layer's and the model's Mult-Adds and
    activation bytes, an estimate of training memory, and warnings about what likely surprises.

    The analytic engine checks the model first: a stack Keras would refuse, or a model over a size limit, is a
    422 before any worker is involved."""
    summary = await summaries.summarize(
        parse_model(body, limits=summaries.limits), batch_size=batch_size, timesteps=timesteps
    )
    if prefers_text(accept):
        return PlainTextResponse(summary.text)
    return summary


@router.post(
    "/export",
    summary="Export a model as Keras JSON, Keras 3 Python, or a layerwise spec",
    responses={
        200: {
            "description": "`keras_json`: Keras's own `model.to_json()`, as JSON. `python`: a Keras 3 script that "
            "builds the same model and prints its summary. `spec`: the model as this service's request body "
            "(arguments at Keras's default left out): send a Keras config, get the spec to edit.",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/x-python": {"schema": {"type": "string"}},
            },
        },
        422: {"model": ErrorBody, "description": "As for /v1/models/summary."},
        503: {"model": ErrorBody, "description": "The worker building the model died or timed out."},
    },
)
async def export_model(
    body: ModelBody,
    summaries: Summaries,
    format: Annotated[Literal["keras_json", "python", "spec"], Query(description="What to export.")] = "keras_json",
) -> Response:
    """Export the model: Keras's own JSON config (built by Keras in a worker, so it loads back with
    `keras.models.model_from_json`), a runnable Keras 3 Python snippet (written without Keras; the size
    limits do not apply to it), or the layerwise spec (which turns an imported Keras config into the
    request body that describes it)."""
    spec = parse_model(body, limits=summaries.limits)
    if format == "python":
        return Response(summaries.python(spec), media_type="text/x-python; charset=utf-8")
    if format == "spec":
        return JSONResponse(summaries.spec(spec))
    return Response(await summaries.keras_json(spec), media_type="application/json")
