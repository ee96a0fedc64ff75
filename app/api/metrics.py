"""``GET /metrics``: the service's Prometheus metrics (see :mod:`app.metrics`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.metrics import Metrics

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    operation_id="getMetrics",
    response_class=Response,
    # Prometheus's text exposition format: text/plain with a version parameter (the media type's parameters
    # are not part of the document's key).
    responses={
        200: {"description": "Prometheus's text format.", "content": {"text/plain": {"schema": {"type": "string"}}}}
    },
)
async def metrics(request: Request) -> Response:
    """Request counts and latencies per route, workers per pool (size, ready, busy), trainings queued,
    running and ended by status, summary cache hits and misses; Prometheus's text format."""
    state = request.app.state
    registry: Metrics = state.metrics
    await registry.refresh(state.pools, state.trainings, state.summaries.cache)
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
