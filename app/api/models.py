"""``/v1/models``: a model's summary (layers, output shapes and parameter counts, as Keras computes them, with
Mult-Adds, memory and warnings), and its export as Keras JSON or Python.

Each answer a generated client can ask for has an operation whose 200 has one media type (issue 19): the
summary as JSON, its table as text, and each export format. The content-negotiated forms curl users know
(``Accept: text/plain``, ``/export?format=``) stay, documented with every media type they answer.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request
from fastapi.openapi.models import Example
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import ConfigDict, RootModel, SkipValidation

from app.api.deps import Summaries
from app.api.protection import client_key
from app.api.responses import BODY_TOO_LARGE, WORKER_FAILED, Responses, error
from app.spec.examples import GRAPH_DESCRIPTIONS, GRAPH_MODELS, SEED_DESCRIPTIONS, SEED_MODELS
from app.spec.graph import GraphSpec
from app.spec.keras_import import KerasModelConfig, parse_model
from app.spec.model import ModelSpec
from app.summaries.models import ModelSummary

router = APIRouter(prefix="/v1/models", tags=["models"])

SUMMARY_EXAMPLES = {
    **{key: Example(summary=SEED_DESCRIPTIONS[key], value=value) for key, value in SEED_MODELS.items()},
    **{key: Example(summary=GRAPH_DESCRIPTIONS[key], value=value) for key, value in GRAPH_MODELS.items()},
}


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


def _one_of(schema: dict[str, Any]) -> None:
    # pydantic writes a plain union as anyOf; the two members exclude each other (a spec has no class_name, which
    # a Keras config requires), which oneOf says, and generators then make a union type of the two.
    schema["oneOf"] = schema.pop("anyOf")


class ModelRequest(RootModel[SkipValidation[ModelSpec | GraphSpec | KerasModelConfig]]):
    """A model spec (a Sequential; a graph model when it has a top-level `inputs`), or Keras's own
    `model.to_json()` of either, of the supported layers."""

    # Validation is parse_model's (it tells the two apart and puts errors in the service's words), so the root
    # is the body as it came.
    model_config = ConfigDict(json_schema_extra=_one_of)


ModelBody = Annotated[
    ModelRequest,
    Body(
        ...,
        openapi_examples=SUMMARY_EXAMPLES,
        description="A model spec: a Sequential (input_shape and layers) or a graph model (Keras's functional "
        "Model: inputs, layers called on references, outputs); or Keras's own `model.to_json()` of either, of the "
        "supported layers.",
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

REFUSED = (
    "The spec is invalid, Keras refused to build the model, the model is over a size limit, or a Keras config "
    "has what the import does not accept."
)
BUSY = error(
    "This client has `LAYERWISE_MAX_BUILDS_PER_CLIENT` builds of models not seen before waiting already, or it sent "
    "too many requests to this operation (`LAYERWISE_RATE_LIMIT`); retry after `Retry-After` seconds.",
    retry_after=True,
)
MODEL_ERRORS: Responses = {413: BODY_TOO_LARGE, 422: error(REFUSED), 429: BUSY, 503: WORKER_FAILED}
SVG = {"image/svg+xml": {"schema": {"type": "string"}}}
DIAGRAM_ERRORS: Responses = {
    **MODEL_ERRORS,
    503: error(
        "A worker failed (retry after `Retry-After` seconds), or Graphviz's dot, which draws the diagram, is not "
        "installed where the service runs.",
        retry_after=True,
    ),
}
# The Python export and the spec build nothing in a worker (no 503), and the size limits do not apply to them.
UNBUILT_ERRORS: Responses = {413: BODY_TOO_LARGE, 422: error("The spec is invalid or Keras would refuse a layer.")}
TABLE = {"text/plain": {"schema": {"type": "string"}}}
PYTHON = {"text/x-python": {"schema": {"type": "string"}}}
KERAS_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/KerasModelConfig"}}}
SPEC = {
    "application/json": {
        "schema": {"oneOf": [{"$ref": "#/components/schemas/ModelSpec"}, {"$ref": "#/components/schemas/GraphSpec"}]}
    }
}


@router.post(
    "/summary",
    response_model=ModelSummary,
    summary="Summarize a Keras Sequential model",
    operation_id="summarizeModel",
    responses={
        200: {
            "description": "The summary as JSON; with `Accept: text/plain` (curl), Keras's own table alone, as "
            "summarizeModelText answers it.",
            "content": TABLE,
        },
        **MODEL_ERRORS,
    },
)
async def summarize_model(
    body: ModelBody,
    summaries: Summaries,
    request: Request,
    batch_size: BatchSize = None,
    timesteps: Timesteps = None,
) -> ModelSummary | Response:
    """Build the model with Keras in a worker process and answer with each layer's `output_shape` and
    `params`, the totals and Keras's own summary table (`text`); with each layer's and the model's Mult-Adds and
    activation bytes, an estimate of training memory, and warnings about what likely surprises.

    The analytic engine checks the model first: a stack Keras would refuse, or a model over a size limit, is a
    422 before any worker is involved."""
    summary = await summaries.summarize(
        parse_model(body.root, limits=summaries.limits),
        batch_size=batch_size,
        timesteps=timesteps,
        client=client_key(request),
    )
    # Read from the request, not declared as a parameter: OpenAPI ignores an Accept parameter, and a generated
    # client that exposed it anyway asked for text it then parsed as JSON.
    if prefers_text(request.headers.get("accept")):
        return PlainTextResponse(summary.text)
    return summary


@router.post(
    "/summary/text",
    response_class=PlainTextResponse,
    summary="Keras's summary table of a model, as text",
    operation_id="summarizeModelText",
    responses={
        200: {"description": "Keras's own table, as `model.summary()` prints it.", "content": TABLE},
        **MODEL_ERRORS,
    },
)
async def summarize_model_text(body: ModelBody, summaries: Summaries, request: Request) -> PlainTextResponse:
    """The `text` of summarizeModel alone: what `Accept: text/plain` answers there."""
    summary = await summaries.summarize(parse_model(body.root, limits=summaries.limits), client=client_key(request))
    return PlainTextResponse(summary.text)


@router.post(
    "/export",
    summary="Export a model as Keras JSON, Keras 3 Python, or a layerwise spec",
    operation_id="exportModel",
    response_class=Response,
    responses={
        200: {
            "description": "`keras_json`: Keras's own `model.to_json()`, as JSON. `python`: a Keras 3 script that "
            "builds the same model and prints its summary. `spec`: the model as this service's request body "
            "(arguments at Keras's default left out): send a Keras config, get the spec to edit. The media type "
            "depends on `format`: generated clients call exportKerasJson, exportPython and exportSpec instead.",
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/KerasModelConfig"},
                            {"$ref": "#/components/schemas/ModelSpec"},
                            {"$ref": "#/components/schemas/GraphSpec"},
                        ]
                    }
                },
                **PYTHON,
            },
        },
        **MODEL_ERRORS,
    },
)
async def export_model(
    body: ModelBody,
    summaries: Summaries,
    request: Request,
    format: Annotated[Literal["keras_json", "python", "spec"], Query(description="What to export.")] = "keras_json",
) -> Response:
    """Export the model: Keras's own JSON config (built by Keras in a worker, so it loads back with
    `keras.models.model_from_json`), a runnable Keras 3 Python snippet (written without Keras; the size
    limits do not apply to it), or the layerwise spec (which turns an imported Keras config into the
    request body that describes it)."""
    spec = parse_model(body.root, limits=summaries.limits)
    if format == "python":
        return Response(summaries.python(spec), media_type="text/x-python; charset=utf-8")
    if format == "spec":
        return JSONResponse(summaries.spec(spec))
    return Response(await summaries.keras_json(spec, client=client_key(request)), media_type="application/json")


@router.post(
    "/export/keras_json",
    summary="Export a model as Keras's own JSON",
    operation_id="exportKerasJson",
    response_class=Response,
    responses={
        200: {"description": "Keras's own `model.to_json()`, built by Keras in a worker.", "content": KERAS_JSON},
        **MODEL_ERRORS,
    },
)
async def export_keras_json(body: ModelBody, summaries: Summaries, request: Request) -> Response:
    """Keras's own JSON config of the model, which loads back with `keras.models.model_from_json` and is a
    body of every operation here."""
    spec = parse_model(body.root, limits=summaries.limits)
    return Response(await summaries.keras_json(spec, client=client_key(request)), media_type="application/json")


@router.post(
    "/export/python",
    summary="Export a model as a Keras 3 script",
    operation_id="exportPython",
    response_class=Response,
    responses={
        200: {"description": "A Keras 3 script that builds the model and prints its summary.", "content": PYTHON},
        **UNBUILT_ERRORS,
    },
)
async def export_python(body: ModelBody, summaries: Summaries) -> Response:
    """A runnable Keras 3 script (the arguments that differ from Keras's defaults, and the names), written
    without Keras: the size limits do not apply to it."""
    spec = parse_model(body.root, limits=summaries.limits)
    return Response(summaries.python(spec), media_type="text/x-python; charset=utf-8")


@router.post(
    "/export/spec",
    summary="Export a model as a layerwise spec",
    operation_id="exportSpec",
    response_class=JSONResponse,
    responses={
        200: {
            "description": "The model as this service's request body, arguments at Keras's default left out.",
            "content": SPEC,
        },
        **UNBUILT_ERRORS,
    },
)
async def export_spec(body: ModelBody, summaries: Summaries) -> JSONResponse:
    """The spec of a model: send a Keras config, get the request body that describes it, to edit or train."""
    return JSONResponse(summaries.spec(parse_model(body.root, limits=summaries.limits)))


@router.post(
    "/diagram",
    summary="Draw a model as Keras's plot_model does, as SVG",
    operation_id="drawModel",
    response_class=Response,
    responses={
        200: {"description": "The model's graph with each layer's name, type and shapes, as SVG.", "content": SVG},
        **DIAGRAM_ERRORS,
    },
)
async def draw_model(body: ModelBody, summaries: Summaries, request: Request) -> Response:
    """Build the model with Keras in a worker and draw it as `keras.utils.plot_model(model, show_shapes=True,
    show_layer_names=True)` does: a box per layer (inputs included) with its name, type, input and output shapes,
    and an arrow per connection, laid out by Graphviz's `dot`. The same checks and limits as summarizeModel apply
    first."""
    spec = parse_model(body.root, limits=summaries.limits)
    return Response(await summaries.diagram(spec, client=client_key(request)), media_type="image/svg+xml")
