"""Each client has a bounded number of builds of unseen models waiting (LAYERWISE_MAX_BUILDS_PER_CLIENT): one
more is a 429 with Retry-After, another client is not held back by it, and a spec cached or being built costs
no place. The worker pool is a stand-in that builds when told to, so that "waiting" is exact."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from app.errors import BuildsBusyError
from app.runtime.pool import WorkerPool
from app.spec.model import ModelSpec
from app.summaries.service import SummaryService


class HeldPool:
    """A pool whose builds end when :attr:`release` is set; answers as the summary task answers, for any spec."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.calls = 0

    async def call(self, fn: Any, spec: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        self.calls += 1
        await self.release.wait()
        return {"ok": False, "error": {"kind": "other", "msg": "a stand-in builds nothing"}}


def model(units: int) -> ModelSpec:
    return ModelSpec.model_validate({"input_shape": [10, 20], "layers": [{"type": "Dense", "units": units}]})


def test_a_client_past_its_builds_gets_429_and_another_client_does_not() -> None:
    async def scenario() -> None:
        pool = HeldPool()
        service = SummaryService(cast(WorkerPool, pool), 30.0, max_builds_per_client=2)
        waiting = [asyncio.ensure_future(service.summarize(model(u), client="addr:a")) for u in (1, 2)]
        await asyncio.sleep(0)
        assert service.builds("addr:a") == 2
        with pytest.raises(BuildsBusyError) as info:
            await service.summarize(model(3), client="addr:a")
        assert info.value.status_code == 429 and info.value.headers == {"Retry-After": "1"}
        assert "LAYERWISE_MAX_BUILDS_PER_CLIENT=2" in str(info.value)
        # The same spec again is no new build: it waits for the one under way, at no place.
        again = asyncio.ensure_future(service.summarize(model(1), client="addr:a"))
        other = asyncio.ensure_future(service.summarize(model(4), client="addr:b"))
        await asyncio.sleep(0.01)
        assert pool.calls == 3 and service.builds("addr:b") == 1
        pool.release.set()
        for task in (*waiting, again, other):
            with pytest.raises(Exception, match="stand-in"):
                await task
        # Once its builds have ended, the client has its places back.
        assert service.builds("addr:a") == 0 and service.builds("addr:b") == 0
        with pytest.raises(Exception, match="stand-in"):
            await service.summarize(model(3), client="addr:a")

    asyncio.run(scenario())


def test_a_requester_that_goes_away_keeps_its_place_until_the_build_ends() -> None:
    async def scenario() -> None:
        pool = HeldPool()
        service = SummaryService(cast(WorkerPool, pool), 30.0, max_builds_per_client=1)
        task = asyncio.ensure_future(service.summarize(model(1), client="addr:a"))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.sleep(0)
        assert service.builds("addr:a") == 1  # the worker is still busy with it
        with pytest.raises(BuildsBusyError):
            await service.summarize(model(2), client="addr:a")
        pool.release.set()
        await asyncio.sleep(0.01)
        assert service.builds("addr:a") == 0

    asyncio.run(scenario())
