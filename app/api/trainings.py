"""``/v1/trainings``: training runs as resources. Create (at once, or waiting), read, list, follow, cancel."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Query, Request, Response, status
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from app.api.deps import Trainings
from app.api.protection import StreamLimiter, client_key
from app.api.responses import BODY_TOO_LARGE, LOCATION, STORE_FAILED, Responses, error
from app.errors import ErrorItem, SpecError
from app.runs.models import (
    PredictResponse,
    TrainingBatchEvent,
    TrainingEndEvent,
    TrainingEpochEvent,
    TrainingRun,
    TrainingRunPage,
    TrainingStatusEvent,
)
from app.runs.status import FINAL_STATUSES, STATUSES
from app.spec.predict import PredictRequest
from app.spec.training import TrainingSpec

router = APIRouter(prefix="/v1/trainings", tags=["trainings"], responses={503: STORE_FAILED})


def _event(kind: str, payload: str, description: str, *, stored: bool = True) -> dict[str, Any]:
    """One server-sent event as its fields: the event name, its JSON data (of a component), its id."""
    properties: dict[str, Any] = {
        "event": {"const": kind},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": f"#/components/schemas/{payload}"},
        },
    }
    if stored:
        properties["id"] = {"type": "string", "description": "The event's place in the run's log."}
    return {"type": "object", "description": description, "required": ["event", "data"], "properties": properties}


# The stream as OpenAPI 3.1 describes a media type: its `schema` is the whole content, text (what a generated
# client hands over once the stream has ended). One event's schema, each event's data a named component, is
# `x-itemSchema`: OpenAPI 3.2's `itemSchema`, which 3.1 validators and generators refuse (schemathesis reads it
# as 3.1 tools read a stream's `schema`: tests/e2e/test_schemathesis.py).
EVENT_STREAM: dict[str, Any] = {
    "schema": {"type": "string"},
    "x-itemSchema": {
        "oneOf": [
            _event("status", "TrainingStatusEvent", "queued, then running."),
            _event("batch", "TrainingBatchEvent", "Throttled progress, live only.", stored=False),
            _event("epoch", "TrainingEpochEvent", "One per epoch, with its logs."),
            _event("end", "TrainingEndEvent", "The run, ended; the last event."),
        ]
    },
}
EVENT_PAYLOADS: list[type[BaseModel]] = [TrainingStatusEvent, TrainingBatchEvent, TrainingEpochEvent, TrainingEndEvent]

# The run's states as components of the OpenAPI document: the page reads which statuses are final from
# FinalRunStatus rather than keeping a copy (app.runs.status is the one place they are written).
RUN_STATUS_SCHEMAS: dict[str, dict[str, Any]] = {
    "RunStatus": {"title": "RunStatus", "type": "string", "enum": list(STATUSES), "description": "A run's state."},
    "FinalRunStatus": {
        "title": "FinalRunStatus",
        "type": "string",
        "enum": [s for s in STATUSES if s in FINAL_STATUSES],
        "description": "The states a run ends in: nothing changes a run in one of them.",
    },
}


def document_run_statuses(app: FastAPI) -> None:
    """Add :data:`RUN_STATUS_SCHEMAS` to the app's OpenAPI document (FastAPI's way of extending it)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        schema.setdefault("components", {}).setdefault("schemas", {}).update(RUN_STATUS_SCHEMAS)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


RUN_NOT_FOUND: Responses = {404: error("No run has this id.")}


# The run a POST answered with, for the operations that take its id (OpenAPI links: clients and schemathesis's
# stateful tests follow them from a created run to reading, following and cancelling it).
RUN_LINKS = {
    name: {"operationId": operation, "parameters": {"run_id": "$response.body#/id"}}
    for name, operation in (
        ("GetTraining", "getTraining"),
        ("FollowTraining", "followTraining"),
        ("CancelTraining", "cancelTraining"),
        ("GetTrainingModel", "getTrainingModel"),
        ("PredictTraining", "predictTraining"),
    )
}


@router.post(
    "",
    response_model=TrainingRun,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start a training run",
    operation_id="createTraining",
    responses={
        201: {
            "model": TrainingRun,
            "description": "With ?wait=: the run finished within the wait.",
            "headers": LOCATION,
            "links": RUN_LINKS,
        },
        202: {"description": "The run is queued or running; follow Location.", "headers": LOCATION, "links": RUN_LINKS},
        413: BODY_TOO_LARGE,
        422: error("The request is invalid or Keras refused to build the model."),
        429: error(
            "Too many runs are waiting (LAYERWISE_MAX_QUEUED_RUNS), this client has too many runs queued or running "
            "(LAYERWISE_MAX_ACTIVE_RUNS_PER_CLIENT) or model builds waiting (LAYERWISE_MAX_BUILDS_PER_CLIENT), or it "
            "sent too many requests (LAYERWISE_RATE_LIMIT); retry after Retry-After seconds.",
            retry_after=True,
        ),
        503: error(
            "The summary worker died or timed out, or the run store failed; nothing was queued. Retry after "
            "Retry-After seconds.",
            retry_after=True,
        ),
    },
)
async def create_training(
    spec: TrainingSpec,
    trainings: Trainings,
    request: Request,
    response: Response,
    wait: Annotated[
        float | None,
        Query(ge=0, description="Seconds to hold the request until the run ends (at most LAYERWISE_MAX_WAIT_S)."),
    ] = None,
) -> TrainingRun:
    """Queue a training of the model on the synthetic data of `data.task` (the seed's random data by default,
    or a task with something to learn: adding, sine, temporal_order, running_parity, tokens) and answer at once
    with the queued run (202), or with `?wait=SECONDS` when it has ended (201) or the wait
    has run out (202)."""
    wait_s = trainings.check_wait(wait)
    run = await trainings.create(spec, client=client_key(request))
    if wait_s:
        run = await trainings.wait(run.id, wait_s)
    # Behind a proxy that serves the API under a prefix (uvicorn --root-path), the prefix belongs in it.
    response.headers["Location"] = f"{request.scope.get('root_path', '')}/v1/trainings/{run.id}"
    if run.status in FINAL_STATUSES:
        response.status_code = status.HTTP_201_CREATED
    return run


@router.get(
    "", response_model=TrainingRunPage, summary="List training runs, newest first", operation_id="listTrainings"
)
async def list_trainings(
    trainings: Trainings,
    limit: Annotated[int, Query(ge=1, le=100, description="Runs per page.")] = 20,
    cursor: Annotated[str | None, Query(max_length=32, description="next_cursor of the previous page.")] = None,
) -> TrainingRunPage:
    """Runs newest first, `limit` per page; pass `next_cursor` back as `cursor` for the next page."""
    if cursor is not None and _event_or_cursor_number(cursor) is None:
        raise SpecError(
            [
                ErrorItem(
                    ("query", "cursor"),
                    f"cursor {cursor!r} is not a page's next_cursor: pass back the next_cursor of the previous page "
                    "as it came, or leave cursor out for the first page",
                    "cursor_invalid",
                )
            ]
        )
    return await trainings.page(limit, cursor)


MAX_SEQ = 2**63 - 1  # run and event sequence numbers are SQLite INTEGERs (and Redis scores): 64-bit signed


def _event_or_cursor_number(text: str) -> int | None:
    """The sequence number a cursor or Last-Event-ID stands for; None if it is not one (not digits, or past
    :data:`MAX_SEQ`)."""
    return int(text) if text.isascii() and text.isdigit() and int(text) <= MAX_SEQ else None


@router.get(
    "/{run_id}",
    response_model=TrainingRun,
    summary="Read a training run",
    operation_id="getTraining",
    responses=RUN_NOT_FOUND,
)
async def get_training(run_id: str, trainings: Trainings) -> TrainingRun:
    """The run as it is now: status, progress, history so far."""
    return await trainings.get(run_id)


@router.get(
    "/{run_id}/events",
    summary="Follow a training run (server-sent events)",
    operation_id="followTraining",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "text/event-stream: `status` (queued, running), `epoch` (one per epoch, with its "
            "logs), `batch` (throttled progress, live only), then `end` with the whole run. Each stored event "
            "has an `id`; reconnecting with `Last-Event-ID` (or `?after=`) resumes after it.",
            "content": {"text/event-stream": EVENT_STREAM},
        },
        **RUN_NOT_FOUND,
        429: error(
            "Too many event streams are open: this client's (LAYERWISE_MAX_EVENT_STREAMS_PER_CLIENT) or everyone's "
            "(LAYERWISE_MAX_EVENT_STREAMS); or this client sent too many requests (LAYERWISE_RATE_LIMIT). Retry "
            "after Retry-After seconds, or read the run with getTraining.",
            retry_after=True,
        ),
    },
)
async def follow_training(
    run_id: str,
    trainings: Trainings,
    request: Request,
    after: Annotated[
        int | None,
        Query(ge=0, le=MAX_SEQ, description="Replay stored events after this id (`Last-Event-ID`, if sent, wins)."),
    ] = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> EventSourceResponse:
    """A browser's EventSource or `curl -N` follows the run to its end; a late client first gets what it
    missed. A reconnecting EventSource sends `Last-Event-ID` on the same URL, so the header wins over
    `?after=`."""
    start = after or 0
    if last_event_id:
        seq = _event_or_cursor_number(last_event_id)
        if seq is None:
            raise SpecError(
                [
                    ErrorItem(
                        ("header", "last-event-id"),
                        f"Last-Event-ID {last_event_id!r} is not an event id of this stream: send the id of the "
                        "last event received, or no Last-Event-ID to start from the beginning",
                        "last_event_id_invalid",
                    )
                ]
            )
        start = seq
    events = await trainings.events(run_id, start)
    limiter: StreamLimiter = request.app.state.streams
    release = limiter.acquire(client_key(request))

    async def stream() -> AsyncIterator[ServerSentEvent]:
        async for event in events:
            yield ServerSentEvent(
                data=json.dumps(event.data), event=event.kind, id=str(event.seq) if event.seq else None
            )

    return CountedEventSource(stream(), release, ping=15)


class CountedEventSource(EventSourceResponse):
    """An event stream that ends its place in the :class:`StreamLimiter` when the response ends, however it ends
    (the run's end, the client gone, an error): the response is always called once it is returned."""

    def __init__(self, content: AsyncIterator[ServerSentEvent], release: Callable[[], None], **kw: Any) -> None:
        super().__init__(content, **kw)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


@router.delete(
    "/{run_id}",
    response_model=TrainingRun,
    summary="Cancel a training run",
    operation_id="cancelTraining",
    responses={**RUN_NOT_FOUND, 409: error("The run has already finished.")},
)
async def cancel_training(run_id: str, trainings: Trainings) -> TrainingRun:
    """A queued run never starts; a running one stops at its next batch. Answers with the run once ended."""
    return await trainings.cancel(run_id)


RUN_HAS_NO_MODEL: Responses = {
    409: error("The run has no trained model: it has not succeeded, or its file was over LAYERWISE_MAX_MODEL_BYTES.")
}


@router.get(
    "/{run_id}/model",
    summary="Download a run's trained model (.keras)",
    operation_id="getTrainingModel",
    response_class=Response,
    responses={
        200: {
            "description": "The trained model as a Keras 3 `.keras` file (a zip), which `keras.saving.load_model` "
            "loads.",
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        },
        **RUN_NOT_FOUND,
        **RUN_HAS_NO_MODEL,
    },
)
async def get_training_model(run_id: str, trainings: Trainings) -> Response:
    """The model a succeeded run trained, kept with the run (pruned with it) up to LAYERWISE_MAX_MODEL_BYTES."""
    run, data = await trainings.model_file(run_id)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{_file_stem(run)}-{run_id}.keras"'},
    )


def _file_stem(run: TrainingRun) -> str:
    """The model's name as a file name's stem: ASCII letters, digits, ``-`` and ``_``, at most 64 of them."""
    name = str(run.request.get("model", {}).get("name") or "model")
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in name)[:64] or "model"


@router.get(
    "/{run_id}/script",
    summary="A run as a runnable Keras 3 script",
    operation_id="getTrainingScript",
    response_class=Response,
    responses={
        200: {
            "description": "A Python script that makes the run's data, builds, compiles and fits its model with its "
            "seed and prints `history.history` as JSON: run with the Keras and TensorFlow it names, the run's "
            "history.",
            "content": {"text/x-python": {"schema": {"type": "string"}}},
        },
        **RUN_NOT_FOUND,
        503: error("The worker died or timed out. Retry after Retry-After seconds.", retry_after=True),
    },
)
async def get_training_script(run_id: str, trainings: Trainings) -> Response:
    """Any run's script, whatever its status: it is written from the run's request. It runs eagerly or in graph
    mode as the run did (the docstring at its top says which, and what the other mode changes)."""
    run, script = await trainings.script(run_id)
    return Response(
        script,
        media_type="text/x-python; charset=utf-8",
        headers={"Content-Disposition": f'inline; filename="{_file_stem(run)}-{run_id}.py"'},
    )


@router.post(
    "/{run_id}/predict",
    response_model=PredictResponse,
    summary="Predict with a run's trained model",
    operation_id="predictTraining",
    responses={
        **RUN_NOT_FOUND,
        **RUN_HAS_NO_MODEL,
        413: BODY_TOO_LARGE,
        422: error("The inputs do not have the model's input shape, or are not numbers (token ids for an Embedding)."),
        503: error("The worker died or timed out. Retry after Retry-After seconds.", retry_after=True),
    },
)
async def predict_training(run_id: str, body: PredictRequest, trainings: Trainings) -> PredictResponse:
    """The trained model's outputs (`model.predict`) for a small batch of inputs, at most
    LAYERWISE_MAX_PREDICT_VALUES numbers."""
    return await trainings.predict(run_id, body)
