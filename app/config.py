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
        60.0, gt=0, description="Hard limit in seconds for one training; the worker is killed past it."
    )


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read from the environment on first call."""
    return Settings()
