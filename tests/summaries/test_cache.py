"""The summary cache: canonical keys, hits without a worker, coalesced concurrent misses, bounded size."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from fastapi.testclient import TestClient

from app.summaries.cache import KERAS_VERSION, ResultCache


def test_a_spec_seen_before_is_answered_from_the_cache(client: TestClient, seed: dict[str, Any]) -> None:
    cache: ResultCache = client.app.state.summaries.cache  # type: ignore[attr-defined]
    spec = copy.deepcopy(seed["seed_example_2"])
    spec["name"] = "cache_probe"
    hits, misses = cache.hits, cache.misses
    first = client.post("/v1/models/summary", json=spec)
    assert (cache.hits, cache.misses) == (hits, misses + 1)
    # The same model written the other way (input on the first layer, Keras 2 style; defaults spelled out).
    spec_again = copy.deepcopy(spec)
    spec_again["layers"][0]["input_shape"] = spec_again.pop("input_shape")
    spec_again["layers"][2]["use_bias"] = True
    second = client.post("/v1/models/summary", json=spec_again)
    assert (cache.hits, cache.misses) == (hits + 1, misses + 1)
    assert second.json() == first.json()
    # Another batch size changes the batch figures (computed per request), not the Keras part.
    third = client.post("/v1/models/summary", params={"batch_size": 8}, json=spec)
    assert cache.hits == hits + 2
    assert third.json()["layers"][0]["params"] == 6120
    assert third.json()["batch_size"] == 8 and first.json()["batch_size"] == 32
    # Another name is another model for Keras (its summary's title).
    spec["name"] = "cache_probe_2"
    assert client.post("/v1/models/summary", json=spec).json()["text"].startswith('Model: "cache_probe_2"')
    assert cache.misses == misses + 2


def test_keys_hold_the_keras_version_and_the_kind() -> None:
    assert ResultCache.key("summary", "{}") != ResultCache.key("keras_json", "{}")
    assert KERAS_VERSION in ResultCache.key("summary", "{}")


def test_concurrent_misses_share_one_computation_and_failures_are_not_kept() -> None:
    async def scenario() -> None:
        cache = ResultCache(2)
        calls: list[str] = []

        async def compute(value: str, ok: bool = True) -> dict[str, Any]:
            calls.append(value)
            await asyncio.sleep(0.05)
            return {"ok": ok, "value": value}

        results = await asyncio.gather(*(cache.get_or_compute("a", lambda: compute("a")) for _ in range(5)))
        assert calls == ["a"] and all(r["value"] == "a" for r in results)
        assert (cache.hits, cache.misses) == (4, 1)

        await cache.get_or_compute("bad", lambda: compute("bad", ok=False))
        await cache.get_or_compute("bad", lambda: compute("bad", ok=False))
        assert calls.count("bad") == 2  # a failure is asked again

        await cache.get_or_compute("b", lambda: compute("b"))
        await cache.get_or_compute("c", lambda: compute("c"))  # maxsize 2: "a" is evicted (least recent)
        assert len(cache) == 2
        await cache.get_or_compute("a", lambda: compute("a"))
        assert calls.count("a") == 2

    asyncio.run(scenario())


def test_a_requester_that_goes_away_does_not_cancel_the_shared_build() -> None:
    async def scenario() -> None:
        cache = ResultCache(4)

        async def compute() -> dict[str, Any]:
            await asyncio.sleep(0.1)
            return {"ok": True}

        leader = asyncio.ensure_future(cache.get_or_compute("k", compute))
        await asyncio.sleep(0.01)
        follower = asyncio.ensure_future(cache.get_or_compute("k", compute))
        await asyncio.sleep(0.01)
        leader.cancel()
        assert await follower == {"ok": True}
        assert len(cache) == 1

    asyncio.run(scenario())
