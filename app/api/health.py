"""``/healthz`` (the process answers) and ``/readyz`` (workers started and Keras imported), each on GET and HEAD.

Probes often send HEAD; FastAPI's routes answer only the methods they declare (unlike Starlette's, which add
HEAD to GET), so both are declared. The server (uvicorn) drops the body of a HEAD answer and keeps its status and
headers, ``Content-Length`` included.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the server process answers")
@router.head("/healthz", summary="Liveness, headers only (for probes)")
async def healthz() -> dict[str, str]:
    """Always ``{"status": "ok"}`` while the process serves requests."""
    return {"status": "ok"}


NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"description": "Not ready yet: some pool has no worker that has imported Keras."}
}


@router.get("/readyz", summary="Readiness: every pool has a warm worker", responses=NOT_READY)
@router.head("/readyz", summary="Readiness, headers only (for probes)", responses=NOT_READY)
async def readyz(request: Request) -> JSONResponse:
    """200 when every worker pool has at least one worker that imported Keras and built a model (and, in the
    Celery mode, Redis answers), else 503. The body gives each pool's ready and configured workers and the
    ready workers' process ids. Trainings in the Celery mode wait in the queue for a Celery worker; `/metrics`
    tells how many workers there are."""
    pools: dict[str, Any] = {
        pool.name: {"ready": pool.ready_workers, "size": pool.size, "pids": pool.ready_pids}
        for pool in request.app.state.pools
    }
    body: dict[str, Any] = {"pools": pools}
    ready = all(p["ready"] > 0 for p in pools.values())
    # The run store (Redis in the Celery mode): without it no run can be started or read.
    body["run_store"] = "ok" if await request.app.state.store.ping() else "unreachable"
    ready = ready and body["run_store"] == "ok"
    body = {"status": "ready" if ready else "starting", **body}
    return JSONResponse(body, status_code=200 if ready else 503)
