"""Fixtures: one real app (real worker processes) per test session, the seed's models, and for the Celery mode a
real redis-server and a real Celery worker process.

``make test-fast`` (``LAYERWISE_TEST_FAST=1``) runs the pure tests only: a test there that asks for workers or
Redis fails with a message saying so, and so does the run if anything imported Keras."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.spec.examples import SEED_MODELS
from tests.serving import free_port

# The test apps: one warm worker per pool, runs in memory, and no per-client limits (the whole suite is one
# client, polling fast); tests/api/test_protection.py has an app of its own with them on.
TEST_SETTINGS: dict[str, Any] = {
    "summary_workers": 1,
    "training_workers": 1,
    "training_time_limit_s": 60,
    "runs_db": ":memory:",
    "rate_limit": "",
    "max_active_runs_per_client": 1000,
    "max_builds_per_client": 1000,
    "max_event_streams_per_client": 1000,
}


# make test-fast: pure tests only (no workers, no server, no browser, no Redis, no Keras).
FAST = os.environ.get("LAYERWISE_TEST_FAST") == "1"


def pure_tests_only(what: str) -> None:
    """Fail a test that needs ``what`` when only the pure tests run (``make test-fast``)."""
    if FAST:
        pytest.fail(
            f"make test-fast runs the pure tests only, and this test needs {what}: move it out of its directory"
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under ``make test-fast``, fail the run if any test imported Keras or TensorFlow (they are not pure)."""
    imported = sorted({"keras", "tensorflow"} & set(sys.modules))
    if FAST and imported:
        print(f"\nmake test-fast: {', '.join(imported)} imported by a pure test; move it to tests/runtime/")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def wait_ready(client: TestClient, timeout_s: float = 180.0) -> None:
    """Poll /readyz until every pool has a warm worker."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.1)
    raise TimeoutError(f"workers not ready after {timeout_s} s: {client.get('/readyz').json()}")


@pytest.fixture(scope="session")
def local_client() -> Iterator[TestClient]:
    """A TestClient whose lifespan has started real worker pools, warm before the first test."""
    pure_tests_only("worker processes (the session app)")
    app = create_app(Settings(**TEST_SETTINGS))
    with TestClient(app) as c:
        wait_ready(c)
        yield c


@pytest.fixture(scope="session")
def client(local_client: TestClient) -> TestClient:
    """The app tests use: the embedded default (a module may override this to run on the Celery mode too)."""
    return local_client


@pytest.fixture
def seed() -> dict[str, dict[str, Any]]:
    """The seed notebook's four model specs (fresh copies a test may change)."""
    return copy.deepcopy(SEED_MODELS)


@pytest.fixture
def settings(client: TestClient) -> Iterator[Settings]:
    """The running app's settings; a test may change them, they are restored afterwards."""
    live: Settings = client.app.state.settings  # type: ignore[attr-defined]
    saved = live.model_dump()
    yield live
    for key, value in saved.items():
        setattr(live, key, value)


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Parse a text/event-stream into ``{"event", "id", "data"}`` dicts (data JSON-decoded)."""
    event: dict[str, Any] = {}
    for line in lines:
        if not line:
            if "data" in event:
                event["data"] = json.loads(event["data"])
                yield event
            event = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            event[key] = event[key] + "\n" + value if key == "data" and key in event else value


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (Debian's package) on a free loopback port, with nothing persisted; stopped at
    the end of the session."""
    pure_tests_only("a redis-server")
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("the Celery tests need redis-server: apt-get install redis-server (make test does it)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "redis-server exited"
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not answer in 30 s"
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@dataclass
class CeleryWorker:
    """A real Celery worker process (``layerwise-worker``) and the settings that reach it."""

    proc: subprocess.Popen[bytes]
    settings: Settings
    log: Path

    def children(self) -> list[int]:
        """Pids of the worker's pool processes (the ones that train)."""
        found: list[int] = []
        for task in os.listdir(f"/proc/{self.proc.pid}/task"):
            with open(f"/proc/{self.proc.pid}/task/{task}/children") as f:
                found.extend(int(p) for p in f.read().split())
        return found


def start_celery_worker(settings: Settings, log: Path) -> CeleryWorker:
    """Start ``layerwise-worker`` with ``settings`` in its environment (one training at a time); wait until it
    has announced itself in Redis."""
    env = {
        **os.environ,
        "LAYERWISE_BROKER_URL": str(settings.broker_url),
        "LAYERWISE_REDIS_KEY_PREFIX": settings.redis_key_prefix,
        "LAYERWISE_CELERY_QUEUE": settings.celery_queue,
        "LAYERWISE_TRAINING_WORKERS": "1",
        "LAYERWISE_TRAINING_WORKER_MAX_TASKS": str(settings.training_worker_max_tasks),
        "LAYERWISE_RUN_LEASE_S": str(settings.run_lease_s),
        "LAYERWISE_LOG_JSON": "true",
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from app.scaleout.worker import main; main()"], env=env, stdout=out, stderr=out
        )
    client = redis.Redis.from_url(str(settings.broker_url))
    deadline = time.monotonic() + 180
    while not list(client.scan_iter(f"{settings.redis_key_prefix}:worker:*")):
        assert proc.poll() is None, f"the Celery worker exited: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, "the Celery worker did not start in 180 s"
        time.sleep(0.1)
    client.close()
    return CeleryWorker(proc, settings, log)


def stop_celery_worker(worker: CeleryWorker) -> None:
    """Warm shutdown (SIGTERM), then kill whatever is left."""
    worker.proc.terminate()
    try:
        worker.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        worker.proc.kill()
        worker.proc.wait()


def celery_settings(redis_url: str, **kw: Any) -> Settings:
    """Settings of the Celery mode, with a key prefix and queue of their own."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    return Settings(**{**TEST_SETTINGS, "broker_url": redis_url, "redis_key_prefix": name, "celery_queue": name, **kw})


@pytest.fixture(scope="session")
def celery_worker(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryWorker]:
    """One Celery worker for the session, training one run at a time."""
    # Never recycled: tests find its one child (celery_worker.children()); recycling has a test of its own.
    settings = celery_settings(redis_url, training_worker_max_tasks=0)
    worker = start_celery_worker(settings, tmp_path_factory.mktemp("celery") / "worker.log")
    try:
        yield worker
    finally:
        stop_celery_worker(worker)


@pytest.fixture(scope="session")
def celery_client(celery_worker: CeleryWorker) -> Iterator[TestClient]:
    """A TestClient of the app in the Celery mode (trainings on ``celery_worker``, runs in its Redis), with one
    training done, so the worker's child is warm."""
    app = create_app(celery_worker.settings.model_copy())
    with TestClient(app) as c:
        wait_ready(c)
        r = c.post("/v1/trainings?wait=180", json={"model": SEED_MODELS["seed_example_1"], "fit": {"epochs": 1}})
        assert r.status_code == 201, r.text
        yield c
