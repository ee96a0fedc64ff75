"""The worker pool on its own: real spawned processes dying, timing out and being replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.errors import WorkerError, WorkerTimeoutError
from app.runtime.pool import ChannelHub, WorkerPool
from tests.runtime.tasks import sleep_then_pid


async def _until(predicate: Any, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_dead_worker_fails_its_task_only_and_is_replaced() -> None:
    async def scenario() -> None:
        messages: list[dict[str, Any]] = []
        hub = ChannelHub(messages.append)
        hub.start()
        pool = WorkerPool("test", 2, hub)
        pool.start()
        try:
            await _until(lambda: pool.ready_workers == 2)
            victim_task = asyncio.ensure_future(pool.call(sleep_then_pid, 30.0))
            survivor = await pool.call(sleep_then_pid, 1.0)  # runs on the other worker
            (victim,) = set(hub.ready["test"]) - {survivor}
            os.kill(victim, signal.SIGKILL)
            with pytest.raises(WorkerError, match="died"):
                await victim_task
            await _until(lambda: any(m == {"kind": "gone", "pid": victim} for m in messages))
            await _until(lambda: pool.ready_workers == 2)  # replaced, warm again
            assert victim not in hub.ready["test"]
            assert await pool.call(sleep_then_pid, 0.0) in hub.ready["test"]
        finally:
            pool.close()
            hub.close()

    asyncio.run(scenario())


def test_task_over_its_timeout_is_killed_and_the_pool_goes_on() -> None:
    async def scenario() -> None:
        hub = ChannelHub(lambda m: None)
        hub.start()
        pool = WorkerPool("test", 1, hub)
        pool.start()
        try:
            await _until(lambda: pool.ready_workers == 1)
            with pytest.raises(WorkerTimeoutError):
                await pool.call(sleep_then_pid, 30.0, timeout=0.5)
            assert isinstance(await pool.call(sleep_then_pid, 0.0), int)
        finally:
            pool.close()
            hub.close()

    asyncio.run(scenario())


def test_training_worker_killed_mid_run_fails_the_run_and_is_replaced(client: TestClient, seed: dict[str, Any]) -> None:
    body = {"model": seed["seed_example_1"], "data": {"samples": 20000}, "fit": {"epochs": 50}}
    run = client.post("/v1/trainings", json=body).json()
    deadline = time.monotonic() + 60
    while client.get(f"/v1/trainings/{run['id']}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pool = client.app.state.pools[1]  # type: ignore[attr-defined]
    (pid,) = client.app.state.hub.ready["training"]  # type: ignore[attr-defined]
    os.kill(pid, signal.SIGKILL)
    run = client.get(f"/v1/trainings/{run['id']}").json()
    while run["status"] == "running":
        time.sleep(0.05)
        run = client.get(f"/v1/trainings/{run['id']}").json()
    assert run["status"] == "failed"
    assert run["error"]["kind"] == "worker" and "died" in run["error"]["msg"] and "exit code -9" in run["error"]["msg"]
    # The pool is back at full size with a warm worker, and the next training succeeds.
    while pool.ready_workers < pool.size:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert pid not in client.app.state.hub.ready["training"]  # type: ignore[attr-defined]
    r = client.post("/v1/trainings?wait=60", json={"model": seed["seed_example_1"]})
    assert r.status_code == 201 and r.json()["status"] == "succeeded"
