"""Prometheus metrics: ``GET /metrics`` (text exposition format).

- HTTP, per route (prometheus-fastapi-instrumentator, https://github.com/trallnag/prometheus-fastapi-instrumentator):
  ``layerwise_http_requests_total{handler,method,status}``, ``layerwise_http_request_duration_seconds{handler,method}``
  (histogram), ``layerwise_http_request_size_bytes``, ``layerwise_http_response_size_bytes``.
- Workers: ``layerwise_workers{pool}`` (configured; in the Celery mode the ``training`` pool is the children of
  every Celery worker that announced itself), ``layerwise_workers_ready{pool}``, ``layerwise_workers_busy{pool}``.
- Trainings: ``layerwise_trainings_queued``, ``layerwise_trainings_running`` and
  ``layerwise_trainings_ended_total{status}``, read from the run store at each scrape, so in the Celery mode
  every replica reports the same figures for all runs.
- Summary cache: ``layerwise_summary_cache_hits_total``, ``layerwise_summary_cache_misses_total``, counted by
  :meth:`Metrics.summary_cache_lookup`, the hook the summary cache calls on each lookup.

Each app has a registry of its own (several apps live in one test process).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from app.jobs import TrainingService
    from app.pool import WorkerPool

NAMESPACE = "layerwise"


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
        self.summary_cache_hits = Counter(
            "summary_cache_hits", "Summaries answered from the summary cache.", namespace=NAMESPACE, registry=r
        )
        self.summary_cache_misses = Counter(
            "summary_cache_misses", "Summaries not in the cache (built by a worker).", namespace=NAMESPACE, registry=r
        )
        self._ended = _EndedTrainings()
        r.register(self._ended)

    def summary_cache_lookup(self, hit: bool) -> None:
        """The summary cache's hook: call once per lookup, ``hit`` when the summary came from the cache."""
        (self.summary_cache_hits if hit else self.summary_cache_misses).inc()

    async def refresh(self, pools: Sequence[WorkerPool], trainings: TrainingService) -> None:
        """Read the gauges' current values: the pools' sizes and busy workers, and the run store's figures."""
        for pool in pools:
            self.workers.labels(pool.name).set(pool.size)
            self.workers_ready.labels(pool.name).set(pool.ready_workers)
            self.workers_busy.labels(pool.name).set(min(pool.busy, pool.size))
        figures = await trainings.figures()
        if not any(pool.name == "training" for pool in pools):  # Celery mode: the workers' announced slots
            self.workers.labels("training").set(figures.slots)
            self.workers_ready.labels("training").set(figures.slots)
        self.workers_busy.labels("training").set(figures.busy)
        self.trainings_queued.set(figures.queued)
        self.trainings_running.set(figures.running)
        self._ended.totals = figures.ended
