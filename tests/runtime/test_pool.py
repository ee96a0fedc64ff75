"""The worker pool on its own: real spawned processes dying, timing out and being replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient

from app.errors import WorkerError, WorkerTimeoutError
from app.runtime.messages import Message
from app.runtime.pool import ChannelHub, WorkerPool
from tests.runtime.tasks import hold_bytes, sleep_then_pid
from tests.serving import served


async def _until(predicate: Any, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_dead_worker_fails_its_task_only_and_is_replaced() -> None:
    async def scenario() -> None:
        messages: list[Message] = []
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


def test_idle_worker_killed_is_replaced_without_any_task() -> None:
    """pebble gives up on a pool whose worker dies with no task running; the pool's watcher restores it."""

    async def scenario() -> None:
        hub = ChannelHub(lambda m: None)
        hub.start()
        pool = WorkerPool("test", 1, hub)
        pool.start()
        try:
            await _until(lambda: pool.ready_workers == 1)
            (victim,) = pool.ready_pids
            os.kill(victim, signal.SIGKILL)
            answering = []
            deadline = time.monotonic() + 60
            while pool.ready_pids in ([], [victim]):  # no task is submitted meanwhile
                answering.append(pool.answering)
                assert time.monotonic() < deadline, "the killed idle worker was not replaced in 60 s"
                await asyncio.sleep(0.05)
            assert all(answering), "the pool said it could not answer while its worker was being replaced"
            assert await pool.call(sleep_then_pid, 0.0) in pool.ready_pids
        finally:
            pool.close()
            hub.close()

    asyncio.run(scenario())


def test_a_worker_is_recycled_after_max_tasks() -> None:
    async def scenario() -> None:
        hub = ChannelHub(lambda m: None)
        hub.start()
        pool = WorkerPool("test", 1, hub, max_tasks=3)  # the start-up ping is the first task
        pool.start()
        try:
            await _until(lambda: pool.ready_workers == 1)
            pids = [await pool.call(sleep_then_pid, 0.0) for _ in range(6)]
            assert len(set(pids)) == 3, pids  # 2 + 3 + 1: a fresh worker after every third task
            assert pids[0] == pids[1] and pids[2] == pids[3] == pids[4] and len({pids[0], pids[2], pids[5]}) == 3
        finally:
            pool.close()
            hub.close()

    asyncio.run(scenario())


def test_a_worker_over_the_memory_cap_is_stopped_and_said_so() -> None:
    async def scenario() -> None:
        hub = ChannelHub(lambda m: None)
        hub.start()
        pool = WorkerPool("test", 1, hub)
        pool.start()
        try:
            await _until(lambda: pool.ready_workers == 1)
            (pid,) = pool.ready_pids
            pool.max_rss_bytes = psutil.Process(pid).memory_info().rss + 200 * 2**20
            with pytest.raises(WorkerError, match="died"):
                await pool.call(hold_bytes, 400 * 2**20, 60.0)
            rss = pool.memory_exceeded(pid)
            assert rss is not None and rss > pool.max_rss_bytes
            assert pool.memory_exceeded(pid) is None  # told once
            await _until(lambda: pool.ready_workers == 1)
            assert await pool.call(hold_bytes, 2**20, 0.0) != pid  # under the cap: answered by the new worker
        finally:
            pool.close()
            hub.close()

    asyncio.run(scenario())


def test_a_killed_idle_worker_of_a_real_server_comes_back_and_readyz_stays_200() -> None:
    with served({"LAYERWISE_RUNS_DB": ":memory:"}) as (base, _), httpx.Client(base_url=base, timeout=30) as http:
        before = http.get("/readyz").json()["pools"]["training"]["pids"]
        (victim,) = before
        os.kill(victim, signal.SIGKILL)
        statuses = []
        deadline = time.monotonic() + 60
        while True:  # /readyz only: no request for the pool
            r = http.get("/readyz")
            statuses.append(r.status_code)
            pids = r.json()["pools"]["training"]["pids"]
            if pids and victim not in pids:
                break
            assert time.monotonic() < deadline, "no new training worker within 60 s"
            time.sleep(0.1)
        assert set(statuses) == {200}, statuses
