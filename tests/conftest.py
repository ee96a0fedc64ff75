"""Fixtures: one real app (real worker processes) per test session, and the seed's models."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.seed_examples import SEED_MODELS


def wait_ready(client: TestClient, timeout_s: float = 180.0) -> None:
    """Poll /readyz until every pool has a warm worker."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.1)
    raise TimeoutError(f"workers not ready after {timeout_s} s: {client.get('/readyz').json()}")


@pytest.fixture(scope="session")
def client() -> Iterator[TestClient]:
    """A TestClient whose lifespan has started real worker pools, warm before the first test."""
    app = create_app(Settings(summary_workers=1, training_workers=1, training_time_limit_s=60, runs_db=":memory:"))
    with TestClient(app) as c:
        wait_ready(c)
        yield c


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
