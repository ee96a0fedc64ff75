"""``GET /metrics``: the service's Prometheus metrics (text exposition format), and :class:`Metrics`, their registry.

- HTTP, per route (prometheus-fastapi-instrumentator, https://github.com/trallnag/prometheus-fastapi-instrumentator):
  ``layerwise_http_requests_total{handler,method,status}``, ``layerwise_http_request_duration_seconds{handler,method}``
  (histogram), ``layerwise_http_request_size_bytes``, ``layerwise_http_response_size_bytes``.
- Workers: ``layerwise_workers{pool}`` (configured; in the Celery mode the ``training`` pool is the children of
  every Celery worker that announced itself), ``layerwise_workers_ready{pool}``, ``layerwise_workers_busy{pool}``.
- Trainings: ``layerwise_trainings_queued``, ``layerwise_trainings_running`` and
  ``layerwise_trainings_ended_total{status}``, read from the run store at each scrape, so in the Celery mode
  every replica reports the same figures for all runs.
- Summary cache: ``layerwise_summary_cache_hits_total``, ``layerwise_summary_cache_misses_total`` (a request
  that waited for the same spec's build under way counts as a hit), and ``layerwise_summary_cache_entries``,
  read from :class:`app.summaries.cache.ResultCache` at each scrape.

Each app has a registry of its own (several apps live in one test process).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from app.runs.service import TrainingService
    from app.runtime.pool import WorkerPool
    from app.summaries.cache import ResultCache

NAMESPACE = "layerwise"

router = APIRouter(tags=["health"])


class _EndedTrainings(Collector):
    """``layerwise_trainings_ended_total{status}``: a counter whose values the run store keeps (it counts every
    run's end once), copied here at each scrape; a plain :class:`Counter` could only count this process's."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            f"{NAMESPACE}_trainings_ended", "Training runs that ended, by end status.", labels=["status"]
        )
        for status, count in sorted(self.totals.items()):
            family.add_metric([status], count)
        yield family


class _CopiedCounter(Collector):
    """A counter whose value another object keeps, copied at each scrape."""

    def __init__(self, name: str, documentation: str) -> None:
        self.name, self.documentation, self.value = name, documentation, 0

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily(f"{NAMESPACE}_{self.name}", self.documentation, value=self.value)


class Metrics:
    """The service's own metrics, in :attr:`registry` (the HTTP ones are added there by the instrumentator)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.workers = Gauge(
            "workers",
            "Worker processes per pool (training: trainings that can run at once).",
            ["pool"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.workers_ready = Gauge(
            "workers_ready", "Workers that have imported Keras.", ["pool"], namespace=NAMESPACE, registry=r
        )
        self.workers_busy = Gauge(
            "workers_busy", "Workers busy with a summary or a training now.", ["pool"], namespace=NAMESPACE, registry=r
        )
        self.trainings_queued = Gauge(
            "trainings_queued", "Training runs waiting for a worker.", namespace=NAMESPACE, registry=r
        )
        self.trainings_running = Gauge(
            "trainings_running", "Training runs on a worker now.", namespace=NAMESPACE, registry=r
        )
        self.summary_cache_entries = Gauge(
            "summary_cache_entries", "Results kept in the summary cache.", namespace=NAMESPACE, registry=r
        )
        self._cache_hits = _CopiedCounter(
            "summary_cache_hits", "Summaries (and Keras JSON exports) answered without a worker build."
        )
        self._cache_misses = _CopiedCounter("summary_cache_misses", "Summaries (and exports) a worker built.")
        self._ended = _EndedTrainings()
        for collector in (self._cache_hits, self._cache_misses, self._ended):
            r.register(collector)

    async def refresh(self, pools: Sequence[WorkerPool], trainings: TrainingService, cache: ResultCache) -> None:
        """Read the current values: the pools' sizes and busy workers, the summary cache's counts, and the run
        store's figures."""
        for pool in pools:
            self.workers.labels(pool.name).set(pool.size)
            self.workers_ready.labels(pool.name).set(pool.ready_workers)
            self.workers_busy.labels(pool.name).set(pool.busy_workers)
        self._cache_hits.value, self._cache_misses.value = cache.hits, cache.misses
        self.summary_cache_entries.set(len(cache))
        figures = await trainings.figures()
        if not any(pool.name == "training" for pool in pools):  # Celery mode: the workers' announced slots
            self.workers.labels("training").set(figures.slots)
            self.workers_ready.labels("training").set(figures.slots)
        self.workers_busy.labels("training").set(figures.busy)
        self.trainings_queued.set(figures.queued)
        self.trainings_running.set(figures.running)
        self._ended.totals = figures.ended


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Request counts and latencies per route, workers per pool (size, ready, busy), trainings queued,
    running and ended by status, summary cache hits and misses; Prometheus's text format."""
    state = request.app.state
    registry: Metrics = state.metrics
    await registry.refresh(state.pools, state.trainings, state.summaries.cache)
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
