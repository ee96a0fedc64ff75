"""The FastAPI application: ``create_app()`` wires settings, worker pools, services and routers."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import Depends, FastAPI
from prometheus_fastapi_instrumentator import Instrumentator

from app import __version__
from app.api import health, metrics, models, trainings
from app.api.deps import reject_unknown_query_parameters
from app.api.error_handlers import UnhandledErrorMiddleware, install_error_handlers
from app.api.json_body import document_json_bodies, require_json_body
from app.api.metrics import NAMESPACE, Metrics
from app.api.openapi import install_openapi
from app.api.protection import (
    install_body_limit,
    install_rate_limits,
    install_stream_limits,
    rate_limit,
    require_api_key,
)
from app.api.responses import INVALID_REQUEST, RATE_LIMITED, UNAUTHORIZED, Responses
from app.api.web import install_web
from app.config import Settings, get_settings
from app.runs.executors.base import Executor
from app.runs.executors.local import LocalExecutor
from app.runs.service import TrainingService
from app.runs.store.base import RunStore
from app.runs.store.sqlite import SqliteRunStore
from app.runtime.messages import Message
from app.runtime.pool import ChannelHub, WorkerPool
from app.summaries.service import SummaryService

logger = logging.getLogger(__name__)

# A request id a client or proxy sends is kept if it is a plain token (it goes into log lines), else replaced.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _valid_request_id(value: str) -> bool:
    return _REQUEST_ID.fullmatch(value) is not None


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application. Worker pools start in the lifespan, so use ``with TestClient(app)`` in tests.

    Args:
        settings: overrides the environment's settings (tests pass their own).
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store: RunStore
        executor: Executor
        if settings.broker_url:
            # Scale-out: trainings on Celery workers, runs in Redis (imported here: the embedded default
            # needs neither).
            from app.runs.executors.celery import CeleryExecutor
            from app.runs.store.redis import RedisRunStore

            store = redis_store = RedisRunStore(settings.broker_url, settings.redis_key_prefix)
        else:
            store = SqliteRunStore(settings.runs_db)
        await store.open()
        executors: list[LocalExecutor] = []

        def on_message(message: Message) -> None:
            for executor in executors:
                executor.on_message(message)

        hub = ChannelHub(on_message)
        hub.start()
        summary_pool = WorkerPool(
            "summary",
            settings.summary_workers,
            hub,
            max_tasks=settings.summary_worker_max_tasks,
            replace_grace_s=settings.worker_replace_grace_s,
        )
        summary_pool.start()
        pools = [summary_pool]
        summaries = SummaryService(
            summary_pool,
            settings.summary_timeout_s,
            settings.limits,
            cache_size=settings.summary_cache_size,
            max_builds_per_client=settings.max_builds_per_client,
        )
        if settings.broker_url:
            executor = CeleryExecutor(redis_store, settings)
        else:
            training_pool = WorkerPool(
                "training",
                settings.training_workers,
                hub,
                max_tasks=settings.training_worker_max_tasks,
                max_rss_bytes=settings.training_worker_max_rss_bytes,
                replace_grace_s=settings.worker_replace_grace_s,
            )
            training_pool.start()
            pools.append(training_pool)
            local = LocalExecutor(training_pool, hub, store, settings)
            executors.append(local)
            executor = local
        trainings = TrainingService(store, executor, summaries, settings)
        if not settings.broker_url:  # only this process runs the embedded store's runs; other replicas' live on
            interrupted = await trainings.recover()
            if interrupted:
                logger.warning("%d runs left unfinished by the last server were marked interrupted", interrupted)
        app.state.store = store
        app.state.pools = pools
        app.state.hub = hub
        app.state.summaries = summaries
        app.state.trainings = trainings
        try:
            yield
        finally:
            await trainings.close()
            for pool in pools:
                pool.close()
            hub.close()
            await store.close()

    app = FastAPI(
        title="layerwise",
        version=__version__,
        summary="Keras Sequential model summaries and short trainings over HTTP.",
        lifespan=lifespan,
        # Every route: a body not sent as JSON is a 415 (a route without a body skips it), as the document says.
        dependencies=[Depends(require_json_body)],
        docs_url=None,  # /docs is served by app.api.web with Swagger UI's files from the package, not from a CDN
        redoc_url=None,
        # Starlette's slash redirect builds its Location from the client's Host header; the 404 handler
        # redirects a documented path's trailing slash itself, with the path alone (app.api.error_handlers).
        redirect_slashes=False,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_web(app, settings)
    # The key's dependency (and its security schemes in the OpenAPI document) only when a key is set: a schema
    # that says "needs a key" of a service that needs none is a lie clients and schemathesis would believe.
    protected = [Depends(rate_limit)] + ([Depends(require_api_key)] if settings.api_key else [])
    checked = [*protected, Depends(reject_unknown_query_parameters)]
    # What the protection answers, documented where it applies (and only then: as for the key's schemes).
    guarded: Responses = {
        **({401: UNAUTHORIZED} if settings.api_key else {}),
        **({429: RATE_LIMITED} if settings.rate_limit else {}),
    }
    app.include_router(models.router, dependencies=checked, responses={**guarded, 422: INVALID_REQUEST})
    app.include_router(trainings.router, dependencies=checked, responses={**guarded, 422: INVALID_REQUEST})
    app.include_router(health.router)
    app.include_router(metrics.router, dependencies=protected, responses=guarded)
    document_json_bodies(app)
    trainings.document_run_statuses(app)
    install_openapi(app, trainings.EVENT_PAYLOADS)  # outermost: it caches the whole document
    install_rate_limits(app, settings)
    install_stream_limits(app, settings)
    install_body_limit(app, settings)
    # Inside the metrics and request-id middlewares below: a bug's 500 is counted and carries the request id.
    app.add_middleware(UnhandledErrorMiddleware)
    app.state.metrics = Metrics()
    Instrumentator(
        should_group_status_codes=False,  # 422, 429 and 503 tell different stories
        excluded_handlers=["/metrics"],
        registry=app.state.metrics.registry,
    ).instrument(app, metric_namespace=NAMESPACE)
    # Added last, so outermost: every other middleware and every log line of the request sees its id.
    app.add_middleware(CorrelationIdMiddleware, header_name=settings.request_id_header, validator=_valid_request_id)
    return app
