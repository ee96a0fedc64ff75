"""A bounded cache of what workers answered for a model, keyed by the canonical spec and the Keras version.

Summaries are pure functions of the normalized spec and the Keras that builds it, so a spec seen before is
answered without a worker. The LRU itself is cachetools'; this module adds what a cache in front of a
process pool needs: concurrent requests for the same missing key share one build, and hits and misses are
counted for the metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from importlib.metadata import version
from typing import Any

from cachetools import LRUCache

from app.runtime.messages import failure_of

Result = Mapping[str, Any]

# Read from the installed distribution: the server process does not import Keras.
KERAS_VERSION = version("keras")


class ResultCache:
    """Least-recently-used results of worker tasks, at most ``maxsize`` of them (0 turns caching off).

    Only results a worker reports as ``ok`` are kept; a failure is answered again by a worker next time.
    """

    def __init__(self, maxsize: int) -> None:
        self._lru: LRUCache[str, Result] | None = LRUCache(maxsize) if maxsize > 0 else None
        self._building: dict[str, asyncio.Task[Result]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return 0 if self._lru is None else len(self._lru)

    def knows(self, key: str) -> bool:
        """True when ``key``'s result is cached or being computed: asking for it starts no new computation."""
        return key in self._building or (self._lru is not None and key in self._lru)

    @staticmethod
    def key(kind: str, canonical_spec: str) -> str:
        """The cache key of a task ``kind`` (``"summary"``, ``"keras_json"``) for a canonical spec (JSON)."""
        return f"{KERAS_VERSION}\x00{kind}\x00{canonical_spec}"

    async def get_or_compute(self, key: str, compute: Callable[[], Awaitable[Result]]) -> Result:
        """The cached result for ``key``, else ``compute()``'s (kept if ``ok``); both count as a hit or a miss.

        A request for a key already being computed waits for that computation (a hit) instead of starting
        another. The computation runs as a task of its own, so a requester that goes away cancels neither it
        nor the others waiting for it.

        Raises:
            whatever ``compute`` raises, to every request waiting on it.
        """
        if self._lru is None:
            self.misses += 1
            return await compute()
        cached = self._lru.get(key)
        if cached is not None:
            self.hits += 1
            return cached
        task = self._building.get(key)
        if task is None:
            self.misses += 1
            task = asyncio.ensure_future(compute())
            self._building[key] = task
            task.add_done_callback(lambda done: self._built(key, done))
        else:
            self.hits += 1
        return await asyncio.shield(task)

    def _built(self, key: str, task: asyncio.Task[Result]) -> None:
        del self._building[key]
        if task.cancelled() or task.exception() is not None:  # exception() also marks it retrieved
            return
        result = task.result()
        if failure_of(result) is None and self._lru is not None:  # a failure is asked again, not kept
            self._lru[key] = result
