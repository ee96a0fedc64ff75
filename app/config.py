"""Settings: every limit and size of the service, read once from the environment.

Each field maps to an environment variable with the ``LAYERWISE_`` prefix, e.g. ``LAYERWISE_PORT=9000``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


@dataclass(frozen=True)
class Limits:
    """How large a model the service builds, checked by the analytic engine (:mod:`app.analysis.engine`) before any
    worker is involved. Each is a :class:`Settings` field too, where it is documented; these are the defaults."""

    max_layers: int = 100
    max_units: int = 8192
    max_params: int = 30_000_000
    max_training_params: int = 10_000_000
    max_timesteps: int = 4096
    max_memory_bytes: int = 4 * 2**30


class Settings(BaseSettings):
    """The service's configuration (pydantic-settings, env prefix ``LAYERWISE_``)."""

    model_config = SettingsConfigDict(env_prefix="LAYERWISE_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address uvicorn binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port uvicorn listens on.")
    log_level: str = Field("info", description="uvicorn / logging level.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins of other front-ends a browser may call the API from (CORS), e.g. "
        "'http://localhost:5173,https://app.example.org' or a JSON list; '*' allows any. Empty (the default): "
        "only the playground layerwise serves itself, which is same-origin and needs no CORS.",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        # From the environment: a JSON list, or comma-separated (NoDecode keeps pydantic-settings from insisting
        # on JSON). A browser's Origin header has no path and no trailing slash, so neither may an allowed one.
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else [part for part in text.split(",") if part.strip()]
        if isinstance(value, list):
            origins = [str(v).strip().rstrip("/") for v in value]
            for origin in origins:
                if origin != "*" and ("://" not in origin or "/" in origin.split("://", 1)[1]):
                    raise ValueError(
                        f"CORS origin {origin!r} is not an origin: give scheme://host[:port] with no path, "
                        "e.g. http://localhost:5173, or '*'"
                    )
            return origins
        return value

    # Model size limits, checked by the analytic engine before any worker builds anything (app/analysis/engine.py).
    max_layers: int = Field(
        Limits.max_layers,
        ge=1,
        le=1000,  # app.spec.types.SCHEMA_MAX_LAYERS: the request schema takes no more
        description="Layers a model may have; at most 1,000, the most the request schema takes.",
    )
    max_units: int = Field(
        Limits.max_units,
        ge=1,
        le=2**31 - 1,
        description="`units` of any one layer (also inside a wrapper); at most 2**31 - 1, the most Keras takes.",
    )
    max_params: int = Field(
        Limits.max_params,
        ge=1,
        description="Parameters a model may have for a summary or an export (120 MB of float32 weights): every "
        "model of keras-io's sequence examples fits, the largest being the DeepSpeech2-style ASR model (26.6 M). "
        "Summaries build with zero weights, so their cost grows with the count alone.",
    )
    max_training_params: int = Field(
        Limits.max_training_params,
        ge=1,
        description="Parameters a model may have for a training (40 MB of float32 weights). Initialising grows "
        "faster than the count: the largest LSTM this allows (about 1,570 units) takes about 3 s in the orthogonal "
        "initializer of its units x 4*units recurrent kernel (a QR decomposition; `make bench-insight` measures "
        "it), before the first step.",
    )
    max_timesteps: int = Field(
        Limits.max_timesteps,
        ge=1,
        description="Length of the time axis a recurrent or TimeDistributed layer steps over.",
    )
    max_memory_bytes: int = Field(
        Limits.max_memory_bytes,
        ge=1,
        description="Estimated training memory in bytes (weights, gradients, optimizer slots, activations, "
        "input batch) at the batch it is estimated for: the model's fixed batch or 1 for a summary, the "
        "batch_size for a training.",
    )

    # Training limits, checked before a run is queued (app/runs/service.py).
    max_samples: int = Field(1_000_000, ge=1, description="`data.samples` of a training.")
    max_epochs: int = Field(10_000, ge=1, description="`fit.epochs` of a training.")
    max_sample_epochs: int = Field(
        20_000_000,
        ge=1,
        description="Work of a training: samples x epochs. The seed's LSTM model runs about 15,000 sample-epochs "
        "a second here, so the default is far past the time limit: it refuses the absurd at once.",
    )
    max_data_bytes: int = Field(
        1 * 2**30,
        ge=1,
        description="Bytes of the synthetic data a training makes in its worker: samples x (input + label "
        "values) x 4 (float32).",
    )

    @property
    def limits(self) -> Limits:
        """The model size limits, for :class:`app.summaries.service.SummaryService`."""
        return Limits(
            max_layers=self.max_layers,
            max_units=self.max_units,
            max_params=self.max_params,
            max_training_params=self.max_training_params,
            max_timesteps=self.max_timesteps,
            max_memory_bytes=self.max_memory_bytes,
        )

    summary_workers: int = Field(
        default_factory=lambda: min(max(len(os.sched_getaffinity(0)) - 1, 1), 4),
        ge=1,
        le=32,
        description="Worker processes that build models for summaries: by default one per core this process may "
        "run on but one, left to the training worker, at least 1 and at most 4 (each holds Keras and "
        "TensorFlow, about 0.5 GB). For summaries alone, one per core: bench/bench.py's throughput, 16 clients' "
        "distinct summaries, kept both cores busy with 2 and one with 1. Each worker imports Keras at start, all "
        "at once: 3 workers on 2 cores made the first answer 1.6 x a bare `import keras` instead of 1.25.",
    )
    training_workers: int = Field(
        1, ge=1, le=32, description="Worker processes that run trainings (separate, so summaries never wait)."
    )
    training_worker_max_tasks: int = Field(
        50,
        ge=0,
        description="Trainings a training worker runs before it exits and a fresh one takes its place (0: never). "
        "A graph-mode training leaves about 9 MB in its worker that Keras's clear_session does not free (its "
        "traced tf.function graphs): bench/worker_memory.py measured a worker never recycled at 735 MiB after 10 "
        "runs and 2,510 MiB after 200; with 50, 651 MiB after 200 (1,109 MiB at most). A replacement imports "
        "Keras (a few seconds), during which trainings wait.",
    )
    summary_worker_max_tasks: int = Field(
        1000,
        ge=0,
        description="Summaries (and exports) a summary worker builds before a fresh one takes its place (0: never). "
        "Builds trace no functions, so they leave far less behind than trainings; this bounds what they do leave.",
    )
    training_worker_max_rss_bytes: int = Field(
        6 * 2**30,
        ge=0,
        description="Resident memory a training worker may use, in bytes (0: no cap): its pool's watcher reads "
        "every warm worker's RSS four times a second, and one over the cap is stopped; its run fails with error "
        "kind `memory`. The default is the largest training estimate the limits allow (LAYERWISE_MAX_MEMORY_BYTES, "
        "4 GiB) plus a warm worker's own ~0.6 GB and TensorFlow's workspace; set it below the machine's memory "
        "divided by LAYERWISE_TRAINING_WORKERS.",
    )
    worker_replace_grace_s: float = Field(
        60.0,
        gt=0,
        description="Seconds a pool that had a warm worker still counts as ready (/readyz) while a replacement "
        "starts (a recycle, a killed or stopped worker); requests meanwhile wait for it. A replacement "
        "imports Keras in a few seconds; past this the pool is not ready.",
    )
    summary_cache_size: int = Field(
        1024,
        ge=0,
        description="Summaries (and Keras JSON exports) kept by canonical spec and Keras version, least recently "
        "used out first; 0 turns the cache off.",
    )
    max_builds_per_client: int = Field(
        4,
        ge=1,
        description="Model builds one client may have waiting for or on a summary worker: summaries and Keras JSON "
        "exports of specs not in the cache, and a training's summary. One more is a 429 with Retry-After, so one "
        "client's queue of slow builds is at most this many places ahead of anyone else's. A cached spec costs none.",
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
    eager_max_steps: int = Field(
        14,
        ge=0,
        description="Trainings of at most this many steps (batches x epochs), no validation and no dropout run "
        "eagerly, skipping graph tracing, unless their compile.run_eagerly says otherwise; 0 always traces. "
        "Measured by bench/eager_threshold.py on the seed's model (2 cores): eager wins up to 14 steps (0.78 s "
        "against 0.86 s), graph from 16 (0.83 s against 0.87 s).",
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
    max_model_bytes: int = Field(
        16 * 2**20,
        ge=0,
        description="The largest trained model file (.keras, bytes) kept with a succeeded run for GET "
        "/v1/trainings/{id}/model and /predict; a larger one is not kept; 0 keeps none.",
    )
    max_predict_values: int = Field(
        100_000, ge=1, description="Input numbers (samples x one sample's size) one POST .../predict may send."
    )

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

    # Protection of the service itself (app/api/protection.py): what one request or one client may ask for.
    max_body_bytes: int = Field(
        1 * 2**20,
        ge=1024,
        description="Largest request body, in bytes; larger ones are refused with 413 before they are read "
        "whole. A 100-layer Keras JSON config takes about 100 KB.",
    )
    api_key: SecretStr | None = Field(
        None,
        description="When set, every request but /healthz, /readyz, the playground's files and the OpenAPI "
        "document must carry it, as `X-API-Key: <key>` or `Authorization: Bearer <key>` (else 401). Unset: off.",
    )
    rate_limit: str = Field(
        "600/minute",
        description="Requests one client may make to one endpoint, in the `limits` library's notation ('600/minute', "
        "'20/second;600/minute'); beyond it, 429 with Retry-After. A client is the API key when it sends "
        "LAYERWISE_API_KEY's, else its address (a key the service does not know names no client). Empty: off. "
        "Health, the page and its files are exempt.",
    )
    forwarded_allow_ips: str = Field(
        "",
        description="Addresses of reverse proxies trusted to say who the client is in X-Forwarded-For and "
        "X-Forwarded-Proto (uvicorn's forwarded_allow_ips: comma-separated addresses or networks, '*' for any). "
        "Empty: none, and a client is the address it connects from, so no header can make one client look like "
        "many to the per-client limits.",
    )
    # The HTTP server's own bounds (app/api/server.py): below the app, for every connection.
    max_header_bytes: int = Field(
        16 * 1024,
        ge=1024,
        description="Largest request head (request line and headers), in bytes; beyond it, 431 and the connection "
        "closed (h11's max_incomplete_event_size). 16 KiB, h11's default: a browser's heads are under 2 KB.",
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Seconds a request's head may take to arrive, from its first byte (from the connection, for "
        "its first request); beyond them, 408 and the connection closed: a connection that sends nothing holds "
        "a descriptor no longer.",
    )
    body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Seconds a request's body may take to arrive after its head (a 1 MiB body at 35 KB/s); "
        "beyond them, 408 and the connection closed.",
    )
    keep_alive_timeout_s: int = Field(
        5, ge=1, description="Seconds an idle kept-alive connection stays open between requests (uvicorn's)."
    )
    max_connections: int = Field(
        512,
        ge=1,
        description="Connections the server holds open at once; a new one beyond is answered 503 and closed at "
        "once, giving its descriptor back. Keep it under the process's descriptor limit (ulimit -n) less about "
        "100 for the workers' pipes and the stores: 1,024 on many systems.",
    )
    max_connections_per_client: int = Field(
        64,
        ge=0,
        description="Connections one client address may hold open at once; a new one beyond is answered 503 and "
        "closed at once, so that one address cannot hold the whole of max_connections. 0: no bound. Behind a "
        "reverse proxy every connection is the proxy's: set it to max_connections there, or 0.",
    )
    max_event_streams: int = Field(
        256,
        ge=1,
        description="Event streams (GET /v1/trainings/{id}/events) open at once, from all clients; one more is a "
        "429 with Retry-After. Each holds a connection, so keep it under max_connections.",
    )
    max_event_streams_per_client: int = Field(
        8, ge=1, description="Event streams one client may have open at once; one more is a 429 with Retry-After."
    )
    max_active_runs_per_client: int = Field(
        4,
        ge=1,
        description="Training runs one client may have queued or running at once; one more is a 429. In the "
        "Celery mode it is counted per API replica.",
    )
    request_id_header: str = Field(
        "X-Request-ID", description="Header that carries a request's id in (optional) and out (always)."
    )


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read from the environment on first call."""
    return Settings()
