"""Settings: every limit and size of the service, read once from the environment.

Each field maps to an environment variable with the ``LAYERWISE_`` prefix, e.g. ``LAYERWISE_PORT=9000``.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """The service's configuration (pydantic-settings, env prefix ``LAYERWISE_``)."""

    model_config = SettingsConfigDict(env_prefix="LAYERWISE_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address uvicorn binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port uvicorn listens on.")
    log_level: str = Field("info", description="uvicorn / logging level.")

    summary_workers: int = Field(1, ge=1, le=32, description="Worker processes that build models for summaries.")
    training_workers: int = Field(
        1, ge=1, le=32, description="Worker processes that run trainings (separate, so summaries never wait)."
    )
    summary_timeout_s: float = Field(
        30.0, gt=0, description="Hard limit in seconds for one model build; the worker is killed past it."
    )
    training_time_limit_s: float = Field(
        60.0, gt=0, description="Seconds a training may run; it then stops at its next batch as timed_out."
    )
    cancel_grace_s: float = Field(
        0.5,
        gt=0,
        description="Seconds a training asked to stop (cancel, time limit) has to stop at its next batch before "
        "its worker is killed and replaced.",
    )
    progress_interval_s: float = Field(
        0.25, gt=0, description="Least seconds between two batch progress events of a run."
    )
    max_queued_runs: int = Field(
        8, ge=0, description="Runs that may wait for a training worker; beyond that POST answers 429."
    )
    max_wait_s: float = Field(300.0, ge=0, description="Upper bound of POST /v1/trainings?wait=SECONDS.")
    runs_db: str = Field(
        "layerwise-runs.sqlite3",
        description="SQLite file that keeps runs and their events across restarts; ':memory:' keeps nothing.",
    )
    runs_max_age_s: float = Field(7 * 24 * 3600.0, gt=0, description="Finished runs older than this are pruned.")
    runs_max_count: int = Field(1000, ge=1, description="At most this many finished runs are kept (newest).")

    # Scale-out and operations (issue 7). Without broker_url nothing here changes the embedded default.
    broker_url: str | None = Field(
        None,
        description="Redis URL (redis://host:6379/0). When set, trainings run on Celery workers over this "
        "Redis and runs are kept there (runs_db is unused), so any API replica answers for any run; "
        "unset, trainings run on this process's own workers and runs are kept in runs_db.",
    )
    redis_key_prefix: str = Field(
        "layerwise", min_length=1, description="Prefix of every Redis key the run store writes."
    )
    celery_queue: str = Field("layerwise.trainings", min_length=1, description="Celery queue trainings go to.")
    stop_poll_interval_s: float = Field(
        0.1, gt=0, description="Celery mode: least seconds between two reads of a run's stop flag by its worker."
    )
    run_lease_s: float = Field(
        15.0,
        gt=0,
        description="Celery mode: a worker renews a lease on the run it trains every third of this; a running "
        "run whose lease has expired (its worker was killed whole, or cut off from Redis) is recorded failed.",
    )
    worker_heartbeat_s: float = Field(
        10.0, gt=0, description="Celery mode: seconds between two announcements of a worker's size in Redis."
    )
    log_json: bool = Field(False, description="Log JSON lines (one object per line) instead of plain text.")
    request_id_header: str = Field(
        "X-Request-ID", description="Header that carries a request's id in (optional) and out (always)."
    )


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read from the environment on first call."""
    return Settings()
