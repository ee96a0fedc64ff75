"""``POST /v1/models/summary``: a model's layers, output shapes and parameter counts, as Keras computes them,
with Mult-Adds, memory and warnings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Query
from fastapi.openapi.models import Example
from fastapi.responses import PlainTextResponse, Response

from app.api.deps import Summaries
from app.schemas import ErrorBody, ModelSummary
from app.seed_examples import SEED_DESCRIPTIONS, SEED_MODELS
from app.spec import ModelSpec

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


ModelBody = Annotated[ModelSpec, Body(openapi_examples=SUMMARY_EXAMPLES)]
BatchSize = Annotated[
    int | None,
    Query(
        ge=1,
        le=2**31 - 1,
        description="The batch for mult_adds_batch and training_memory; default the model's fixed batch, else 32.",
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
            "description": "The spec is invalid, Keras refused to build the model, or the model is over a size limit.",
        },
        503: {"model": ErrorBody, "description": "The worker building the model died or timed out."},
    },
)
async def summarize_model(
    body: ModelBody,
    summaries: Summaries,
    batch_size: BatchSize = None,
    accept: Annotated[str | None, Header()] = None,
) -> ModelSummary | Response:
    """Build the model with Keras in a worker process and answer with each layer's `output_shape` and
    `params`, the totals and Keras's own summary table (`text`); with each layer's and the model's Mult-Adds and
    activation bytes, an estimate of training memory, and warnings about what likely surprises.

    The analytic engine checks the model first: a stack Keras would refuse, or a model over a size limit, is a
    422 before any worker is involved."""
    summary = await summaries.summarize(body, batch_size=batch_size)
    if prefers_text(accept):
        return PlainTextResponse(summary.text)
    return summary
