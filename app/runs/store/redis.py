""":class:`app.runs.store.base.RunStore` in Redis, shared by every API replica and Celery worker (scale-out mode).

Keys, under a prefix (``LAYERWISE_REDIS_KEY_PREFIX``, default ``layerwise``):

- ``{p}:run:{id}``            the run as JSON (a string)
- ``{p}:runs``                sorted set of run ids, scored by creation order (newest-first paging)
- ``{p}:runs:created``        sorted set of run ids, scored by creation time in epoch seconds (age pruning)
- ``{p}:runs:{status}``       set of ids per unfinished status (``UNFINISHED``: counts, 429)
- ``{p}:runs:status``         hash id -> status, so a save knows the status it replaces
- ``{p}:runs:ended``          hash end status -> runs that ever ended so (monotonic, for the metrics)
- ``{p}:run:{id}:events``     a Redis Stream: the run's event log, stored and live-only events in one order
- ``{p}:run:{id}:seq``        the last stored event's ``seq``
- ``{p}:run:{id}:claim``      who took the queued run first: a worker that starts it or a cancel that ends it
- ``{p}:run:{id}:stop``       why a running run must stop (``cancelled``), read by its worker
- ``{p}:run:{id}:lease``      present while the worker running the run is alive (it renews it)
- ``{p}:run:{id}:ended``      set with the run's ``end`` event
- ``{p}:run:{id}:reaped``     an API replica took the run whose lease expired, to end it

Every multi-key write is one Lua script, so replicas and workers never see half a save or two events with
the same ``seq``. Several processes may try to end one run (its worker, the worker's main process when the
child died, a cancel, a replica that found its lease expired): the first end wins, and the store refuses to
change a finished run or to add events after its ``end``.

Stored events carry ``seq`` 1, 2, ...; live-only ``batch`` events go into the same stream with ``seq`` 0,
so a follower reading the stream live (``XREAD BLOCK``) gets them in order with the rest, and a late one
replaying it (``XRANGE``) skips them, as :class:`app.runs.store.sqlite.SqliteRunStore` does. ``RedisError``
leaves every method as :class:`app.errors.StoreUnavailableError`.
Redis Streams: https://redis.io/docs/latest/develop/data-types/streams/ ; redis-py's asyncio client:
https://redis.readthedocs.io/en/stable/examples/asyncio_examples.html
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import AsyncGenerator
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from app.runs.models import TrainingRun
from app.runs.status import FINAL_STATUSES, UNFINISHED
from app.runs.store.base import EventKind, RunEvent, StoreHealth, store_errors, stream_errors

_guarded = store_errors(RedisError)
RUN_KEYS = ("", ":events", ":seq", ":claim", ":stop", ":lease", ":ended", ":reaped", ":model")  # after {p}:run:{id}

# KEYS: run, runs, runs:created, runs:status, runs:order, then runs:{status} for each of UNFINISHED
# ARGV: id, json, status, created_at (epoch s), then the UNFINISHED statuses (in the order of their KEYS)
_SAVE = """
local n = #ARGV - 4
local function unfinished(status)
  for i = 1, n do if status == ARGV[4 + i] then return true end end
  return false
end
local old = redis.call('HGET', KEYS[4], ARGV[1])
if old and not unfinished(old) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[5]), ARGV[1])
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
end
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
for i = 1, n do
  redis.call('SREM', KEYS[5 + i], ARGV[1])
  if ARGV[3] == ARGV[4 + i] then redis.call('SADD', KEYS[5 + i], ARGV[1]) end
end
return 1
"""

# KEYS: events stream, seq counter, runs:ended, run's ended flag
# ARGV: kind, data json, end status ('' unless kind is end). Returns the event's seq, 0 if refused.
_APPEND = """
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
local seq = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], '*', 'seq', seq, 'kind', ARGV[1], 'data', ARGV[2])
if ARGV[3] ~= '' then
  redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
  redis.call('SET', KEYS[4], ARGV[3])
end
return seq
"""


def _event(run_id: str, fields: dict[str, str]) -> RunEvent:
    kind: Any = fields["kind"]
    return RunEvent(run_id=run_id, seq=int(fields["seq"]), kind=kind, data=json.loads(fields["data"]))


class RedisRunStore:
    """:class:`app.runs.store.base.RunStore` over one Redis database, safe to share between processes and machines.

    Args:
        url: a redis-py URL, e.g. ``redis://127.0.0.1:6379/0``.
        prefix: prefix of every key.
        block_ms: how long one ``XREAD BLOCK`` of :meth:`follow` waits before checking that the run still
            exists (milliseconds); well below the client's socket timeout of ``block_ms / 1000 + 10`` seconds,
            which would otherwise end a quiet follow with a read timeout.
    """

    def __init__(self, url: str, prefix: str = "layerwise", block_ms: int = 2000) -> None:
        self.url = url
        self.prefix = prefix
        self.block_ms = block_ms
        self._redis: aioredis.Redis | None = None

    @property
    def redis(self) -> aioredis.Redis:
        assert self._redis is not None, "store not open"
        return self._redis

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def open(self, wait_s: float = 30.0) -> None:
        """Connect and check that Redis answers, trying again for up to ``wait_s`` seconds (a Redis started
        beside this process, as compose does, may take a moment).

        Raises:
            redis.exceptions.ConnectionError: Redis cannot be reached at ``url`` within ``wait_s`` seconds.
        """
        self._redis = aioredis.Redis.from_url(
            self.url, decode_responses=True, socket_timeout=self.block_ms / 1000 + 10, health_check_interval=30
        )
        deadline = time.monotonic() + wait_s
        while True:
            try:
                await self._redis.ping()
                return
            except aioredis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def health(self) -> StoreHealth:
        """``ok`` when Redis answers its ping, else ``unreachable`` (for ``/readyz``); never raises. Redis keeps
        its own files: their faults (a full disk, ``MISCONF``) reach the API as its errors, 503s."""
        try:
            return "ok" if await self.redis.ping() else "unreachable"
        except (OSError, aioredis.RedisError):
            return "unreachable"

    @_guarded
    async def save(self, run: TrainingRun) -> None:
        k = self._key
        keys = [k("run", run.id), k("runs"), k("runs", "created"), k("runs", "status"), k("runs", "order")]
        keys += [k("runs", status) for status in UNFINISHED]
        args = [run.id, run.model_dump_json(), run.status, str(run.created_at.timestamp()), *UNFINISHED]
        await self.redis.eval(_SAVE, len(keys), *keys, *args)

    @_guarded
    async def save_model(self, run_id: str, data: bytes) -> None:
        # Base64: the connection decodes replies as text (decode_responses), and a .keras file is a zip.
        await self.redis.set(self._key("run", run_id, "model"), base64.b64encode(data).decode("ascii"))

    @_guarded
    async def get_model(self, run_id: str) -> bytes | None:
        raw = cast(str | None, await self.redis.get(self._key("run", run_id, "model")))
        return None if raw is None else base64.b64decode(raw)

    @_guarded
    async def get(self, run_id: str) -> TrainingRun | None:
        raw = cast(str | None, await self.redis.get(self._key("run", run_id)))
        return None if raw is None else TrainingRun.model_validate_json(raw)

    @_guarded
    async def page(self, limit: int, before: str | None = None) -> tuple[list[TrainingRun], str | None]:
        top = f"({before}" if before and before.isdigit() else "+inf"
        rows = cast(
            list[tuple[str, float]],
            await self.redis.zrevrangebyscore(self._key("runs"), top, "-inf", start=0, num=limit + 1, withscores=True),
        )
        ids = [member for member, _ in rows[:limit]]
        raws = cast(list[str | None], await self.redis.mget([self._key("run", i) for i in ids]) if ids else [])
        runs = [TrainingRun.model_validate_json(raw) for raw in raws if raw is not None]
        return runs, (str(int(rows[limit - 1][1])) if len(rows) > limit else None)

    @_guarded
    async def count_unfinished(self) -> dict[str, int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for status in UNFINISHED:
                pipe.scard(self._key("runs", status))
            counts = await pipe.execute()
        return {status: int(n) for status, n in zip(UNFINISHED, counts, strict=True) if n}

    @_guarded
    async def unfinished(self) -> list[TrainingRun]:
        ids = cast(set[str], await self.redis.sunion([self._key("runs", status) for status in UNFINISHED]))
        runs = [await self.get(i) for i in ids]
        return [run for run in runs if run is not None]

    @_guarded
    async def ended_totals(self) -> dict[str, int]:
        """Runs that ever ended, per end status (counts survive pruning)."""
        raw = cast(dict[str, str], await self.redis.hgetall(self._key("runs", "ended")))
        return {status: int(n) for status, n in raw.items()}

    @_guarded
    async def append_event(self, run_id: str, kind: EventKind, data: dict[str, Any]) -> RunEvent:
        end_status = str(data["run"]["status"]) if kind == "end" else ""
        seq: int = await self.redis.eval(
            _APPEND,
            4,
            self._key("run", run_id, "events"),
            self._key("run", run_id, "seq"),
            self._key("runs", "ended"),
            self._key("run", run_id, "ended"),
            kind,
            json.dumps(data),
            end_status,
        )
        return RunEvent(run_id=run_id, seq=int(seq), kind=kind, data=data)

    @_guarded
    async def publish(self, run_id: str, kind: EventKind, data: dict[str, Any]) -> None:
        await self.redis.xadd(self._key("run", run_id, "events"), {"seq": 0, "kind": kind, "data": json.dumps(data)})

    @stream_errors(RedisError)
    async def follow(self, run_id: str, after: int = 0) -> AsyncGenerator[RunEvent, None]:
        stream = self._key("run", run_id, "events")
        last_id = "0-0"
        # The log so far: stored events only (a late client does not get past batch progress).
        stored = cast(list[tuple[str, dict[str, str]]], await self.redis.xrange(stream))
        for entry_id, fields in stored:
            last_id = entry_id
            event = _event(run_id, fields)
            if event.seq <= after:
                if event.kind == "end":  # the client has seen the end already: say it again, and stop
                    yield event
                    return
                continue
            yield event
            after = event.seq
            if event.kind == "end":
                return
        # Then whatever comes after the last entry read, live events included, in the stream's order.
        while True:
            reply = cast(
                list[tuple[str, list[tuple[str, dict[str, str]]]]],
                await self.redis.xread({stream: last_id}, block=self.block_ms),
            )
            if not reply:
                if not await self.redis.exists(self._key("run", run_id)):
                    return  # pruned while followed: no end will come
                continue
            for entry_id, fields in reply[0][1]:
                last_id = entry_id
                event = _event(run_id, fields)
                if event.seq and event.seq <= after and event.kind != "end":  # an end always ends the stream
                    continue
                yield event
                after = event.seq or after
                if event.kind == "end":
                    return

    @_guarded
    async def prune(self, max_age_s: float, max_count: int) -> int:
        old = cast(list[str], await self.redis.zrange(self._key("runs"), 0, -(max_count + 1)))
        stale = cast(
            list[str], await self.redis.zrangebyscore(self._key("runs", "created"), "-inf", time.time() - max_age_s)
        )
        candidates = sorted({*old, *stale})
        if not candidates:
            return 0
        statuses = cast(list[str | None], await self.redis.hmget(self._key("runs", "status"), candidates))
        ids = [i for i, s in zip(candidates, statuses, strict=True) if s is None or s in FINAL_STATUSES]
        if ids:
            async with self.redis.pipeline(transaction=True) as pipe:
                for i in ids:
                    pipe.delete(*(self._key("run", i) + suffix for suffix in RUN_KEYS))
                pipe.zrem(self._key("runs"), *ids)
                pipe.zrem(self._key("runs", "created"), *ids)
                pipe.hdel(self._key("runs", "status"), *ids)
                await pipe.execute()
        return len(ids)

    # Scale-out only: who runs a queued run, and stop requests to a worker.

    @_guarded
    async def claim(self, run_id: str, owner: str) -> bool:
        """Take a queued run for ``owner`` (``"worker"`` to start it, ``"cancel"`` to end it unstarted);
        False if someone took it first. The claim expires with the run's other keys on prune."""
        return bool(await self.redis.set(self._key("run", run_id, "claim"), owner, nx=True))

    @_guarded
    async def request_stop(self, run_id: str, reason: str, ttl_s: float = 24 * 3600) -> None:
        """Ask the worker running ``run_id`` to stop (``reason``: ``cancelled``); it reads this at its next
        batch. The flag expires after ``ttl_s`` seconds."""
        await self.redis.set(self._key("run", run_id, "stop"), reason, ex=max(1, int(ttl_s)))

    @_guarded
    async def stop_reason(self, run_id: str) -> str | None:
        """Why the run was asked to stop, or None."""
        reason = cast(str | None, await self.redis.get(self._key("run", run_id, "stop")))
        return reason

    @_guarded
    async def renew_lease(self, run_id: str, ttl_s: float) -> None:
        """Say that the worker running ``run_id`` is alive, for ``ttl_s`` more seconds."""
        await self.redis.set(self._key("run", run_id, "lease"), os.getpid(), px=max(1, int(ttl_s * 1000)))

    @_guarded
    async def lost_runs(self) -> list[str]:
        """Ids of ``running`` runs whose worker has let its lease expire."""
        ids = sorted(cast(set[str], await self.redis.smembers(self._key("runs", "running"))))
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.exists(self._key("run", i, "lease"))
            alive = await pipe.execute()
        return [i for i, live in zip(ids, alive, strict=True) if not live]

    @_guarded
    async def claim_lost(self, run_id: str) -> bool:
        """Take the lost run ``run_id`` to end it; False if another replica took it first."""
        return bool(await self.redis.set(self._key("run", run_id, "reaped"), os.getpid(), nx=True))

    @_guarded
    async def announce_worker(self, name: str, slots: int, ttl_s: float) -> None:
        """Record that Celery worker ``name`` runs ``slots`` trainings at once, for ``ttl_s`` seconds."""
        await self.redis.set(self._key("worker", name), slots, ex=max(1, int(ttl_s)))

    @_guarded
    async def worker_slots(self) -> dict[str, int]:
        """Celery workers that announced themselves recently: name -> trainings they run at once."""
        names: list[str] = [key async for key in self.redis.scan_iter(match=self._key("worker", "*"), count=100)]
        values = cast(list[str | None], await self.redis.mget(names) if names else [])
        head = len(self._key("worker", ""))
        return {n[head:]: int(v) for n, v in zip(names, values, strict=True) if v is not None}
