"""The FastAPI application: ``create_app()`` wires settings, worker pools, services and routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import __version__
from app.api import health, summary, trainings
from app.config import Settings, get_settings
from app.errors import install_error_handlers
from app.jobs import LocalExecutor, TrainingService
from app.pool import ChannelHub, Message, WorkerPool
from app.store import SqliteRunStore
from app.summaries import SummaryService
from app.web import install_web

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application. Worker pools start in the lifespan, so use ``with TestClient(app)`` in tests.

    Args:
        settings: overrides the environment's settings (tests pass their own).
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = SqliteRunStore(settings.runs_db)
        await store.open()
        executors: list[LocalExecutor] = []

        def on_message(message: Message) -> None:
            for executor in executors:
                executor.on_message(message)

        hub = ChannelHub(on_message)
        hub.start()
        summary_pool = WorkerPool("summary", settings.summary_workers, hub)
        training_pool = WorkerPool("training", settings.training_workers, hub)
        summary_pool.start()
        training_pool.start()
        summaries = SummaryService(
            summary_pool, settings.summary_timeout_s, settings.limits, cache_size=settings.summary_cache_size
        )
        executor = LocalExecutor(training_pool, hub, store, settings)
        executors.append(executor)
        trainings = TrainingService(store, executor, summaries, settings)
        interrupted = await trainings.recover()
        if interrupted:
            logger.warning("%d runs left unfinished by the last server process were marked interrupted", interrupted)
        app.state.settings = settings
        app.state.pools = [summary_pool, training_pool]
        app.state.hub = hub
        app.state.summaries = summaries
        app.state.trainings = trainings
        try:
            yield
        finally:
            await trainings.close()
            training_pool.close()
            summary_pool.close()
            hub.close()
            await store.close()

    app = FastAPI(
        title="layerwise",
        version=__version__,
        summary="Keras Sequential model summaries and short trainings over HTTP.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_web(app, settings)
    app.include_router(summary.router)
    app.include_router(trainings.router)
    app.include_router(health.router)
    return app
