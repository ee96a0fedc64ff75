"""``/healthz`` (the process answers) and ``/readyz`` (workers started and Keras imported), each on GET and HEAD.

Probes often send HEAD; FastAPI's routes answer only the methods they declare (unlike Starlette's, which add
HEAD to GET), so both are declared, HEAD as an operation of its own whose answers have no body in the document.
The server (uvicorn) drops the body of a HEAD answer and keeps its status and headers, ``Content-Length``
included.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.api.responses import RETRY_AFTER, Responses
from app.runs.store.base import StoreHealth

router = APIRouter(tags=["health"])

# Seconds a client or probe should wait before asking a server that is not ready again (workers take seconds).
NOT_READY_RETRY_AFTER_S = 1


class Health(BaseModel):
    """The process serves requests."""

    status: Literal["ok"]


class PoolReadiness(BaseModel):
    """One worker pool: workers ready (Keras imported, a model built) of those configured, their pids, and
    whether the pool answers."""

    ready: int
    size: int
    pids: list[int]
    answering: bool = Field(
        description="A worker is ready, or one is being replaced (recycled, killed) in a pool that had one, for "
        "less than LAYERWISE_WORKER_REPLACE_GRACE_S: requests wait for it."
    )


class Readiness(BaseModel):
    """Whether the service can answer summaries and trainings: every pool answers (a ready worker, or one
    being replaced) and the run store answers."""

    status: Literal["ready", "starting"]
    pools: dict[str, PoolReadiness] = Field(description="By pool name: summary, and training when embedded.")
    run_store: StoreHealth = Field(
        description="`ok`; `unreachable` (the store does not answer); `read_only` (the SQLite file, its WAL or its "
        "directory cannot be written: `chattr +i`, a read-only mount, permissions); `deleted` (the file at "
        "LAYERWISE_RUNS_DB is no longer the one the server opened: unlinked, its directory removed, replaced); "
        "`write_failed` (the last write failed, a full disk or an I/O error, and a write tried now fails too). "
        "While it is not `ok`, every write (a new training, a run's progress and end) is a 503 that names it."
    )


NOT_READY = (
    "Not ready: some pool has no worker that has imported Keras (and is not replacing one it had), or the run "
    "store does not answer or cannot be written (`run_store` names its fault)."
)
HEAD_RESPONSES: Responses = {
    200: {"description": "As GET, headers only."},
    503: {"description": NOT_READY + " Headers only.", "headers": RETRY_AFTER},
}


@router.get("/healthz", summary="Liveness: the server process answers", operation_id="getHealth")
async def get_health() -> Health:
    """Always ``{"status": "ok"}`` while the process serves requests."""
    return Health(status="ok")


@router.head(
    "/healthz",
    summary="Liveness, headers only (for probes)",
    operation_id="headHealth",
    response_class=Response,
    responses={200: HEAD_RESPONSES[200]},
)
async def head_health() -> Response:
    """GET's answer, whose body the server drops."""
    return JSONResponse({"status": "ok"})


async def readiness(request: Request) -> JSONResponse:
    """The readiness answer: 200 when every worker pool answers (:attr:`app.runtime.pool.WorkerPool.answering`: a
    worker that imported Keras and built a model, or a replacement starting in a pool that had one) and the run
    store (Redis in the Celery mode) answers and takes writes, else 503 with ``Retry-After`` and the store's fault
    in ``run_store``. A worker being recycled or replaced
    does not make the service unready: requests wait seconds for it."""
    pools: dict[str, Any] = {
        pool.name: {
            "ready": pool.ready_workers,
            "size": pool.size,
            "pids": pool.ready_pids,
            "answering": pool.answering,
        }
        for pool in request.app.state.pools
    }
    run_store: StoreHealth = await request.app.state.store.health()
    ready = all(p["answering"] for p in pools.values()) and run_store == "ok"
    body = {"status": "ready" if ready else "starting", "pools": pools, "run_store": run_store}
    if ready:
        return JSONResponse(body)
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(NOT_READY_RETRY_AFTER_S)})


@router.get(
    "/readyz",
    summary="Readiness: every pool has a warm worker",
    operation_id="getReadiness",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": NOT_READY, "headers": RETRY_AFTER}},
)
async def get_readiness(request: Request) -> JSONResponse:
    """200 when every worker pool has a worker that imported Keras and built a model, or is replacing one it had
    (recycled after its tasks, killed) for less than LAYERWISE_WORKER_REPLACE_GRACE_S, and the run store (Redis in
    the Celery mode) answers and takes writes; else 503, `run_store` naming the store's fault. The body gives each
    pool's ready and configured workers and the ready workers' process ids. Trainings in the Celery mode wait in
    the queue for a Celery worker; `/metrics` tells how many workers there are."""
    return await readiness(request)


@router.head(
    "/readyz",
    summary="Readiness, headers only (for probes)",
    operation_id="headReadiness",
    response_class=Response,
    responses=HEAD_RESPONSES,
)
async def head_readiness(request: Request) -> Response:
    """GET's answer, whose body the server drops."""
    return await readiness(request)
