"""The embedded run store: :class:`SqliteRunStore`, one SQLite file through aiosqlite (the default, one server).

Runs and their events as :class:`app.runs.store.base.RunStore` describes them; ``sqlite3.Error`` leaves every
method as :class:`app.errors.StoreUnavailableError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncGenerator
from typing import Any

import aiosqlite

from app.errors import StoreUnavailableError
from app.runs.models import TrainingRun
from app.runs.status import UNFINISHED
from app.runs.store.base import EventKind, RunEvent, store_errors, stream_errors

_guarded = store_errors(sqlite3.Error)
# One placeholder per unfinished status: the queries take the statuses from app.runs.status as parameters.
_UNFINISHED_MARKS = ", ".join("?" * len(UNFINISHED))


SQLITE_SCHEMA = """
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    run TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ended_totals (
    status TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS models (run_id TEXT PRIMARY KEY, data BLOB NOT NULL);
"""
# A write at every start: a file that opens but cannot be written (a full disk) is found then, not mid-run.
SQLITE_WRITE_PROBE = "INSERT OR REPLACE INTO meta (key, value) VALUES ('opened_at', ?)"


def sqlite_problem(path: str, exc: BaseException) -> str:
    """A person's sentence for an SQLite file that cannot be used."""
    return (
        f"cannot use the run store LAYERWISE_RUNS_DB={path!r}: {exc}; give it a file in a writable directory "
        "with free space (or ':memory:' to keep no runs)"
    )


def check_sqlite_store(path: str) -> None:
    """Open (creating if needed) the SQLite run store and write to it, synchronously: for a clear error before
    the server starts.

    Raises:
        StoreUnavailableError: the file cannot be created, opened or written (a read-only or full disk, a
            directory, a file that is not SQLite).
    """
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.executescript(SQLITE_SCHEMA)
            db.execute(SQLITE_WRITE_PROBE, (time.time(),))
            db.commit()
    except (sqlite3.Error, OSError) as exc:
        raise StoreUnavailableError(sqlite_problem(path, exc)) from exc


class SqliteRunStore:
    """:class:`RunStore` in one SQLite file (``":memory:"`` for tests), through aiosqlite's thread.

    Runs are stored whole as JSON beside the columns that are queried (status, creation order); events in
    their own table keyed by (run_id, seq). WAL journaling keeps readers and the writer apart, and every
    write is one transaction, so a crash leaves either the old or the new state, never a torn one.
    Followers in this process get events through a queue each.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._append_lock = asyncio.Lock()
        self._followers: dict[str, list[asyncio.Queue[RunEvent]]] = {}

    @property
    def db(self) -> aiosqlite.Connection:
        assert self._db is not None, "store not open"
        return self._db

    async def open(self) -> None:
        """Connect and create the tables.

        Raises:
            StoreUnavailableError: the file cannot be opened or written (a read-only or full disk).
        """
        try:
            self._db = await aiosqlite.connect(self.path)
            await self.db.executescript(SQLITE_SCHEMA)
            await self.db.execute(SQLITE_WRITE_PROBE, (time.time(),))
            await self.db.commit()
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailableError(sqlite_problem(self.path, exc)) from exc

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def ping(self) -> bool:
        try:
            await self.db.execute("SELECT 1")
        except sqlite3.Error:
            return False
        return True

    @_guarded
    async def save(self, run: TrainingRun) -> None:
        await self.db.execute(
            "INSERT INTO runs (id, status, created_at, run) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET status = excluded.status, run = excluded.run",
            (run.id, run.status, run.created_at.timestamp(), run.model_dump_json()),
        )
        await self.db.commit()

    @_guarded
    async def get(self, run_id: str) -> TrainingRun | None:
        async with self.db.execute("SELECT run FROM runs WHERE id = ?", (run_id,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else TrainingRun.model_validate_json(row[0])

    @_guarded
    async def page(self, limit: int, before: str | None = None) -> tuple[list[TrainingRun], str | None]:
        start = int(before) if before and before.isdigit() else 2**63 - 1
        async with self.db.execute(
            "SELECT seq, run FROM runs WHERE seq < ? ORDER BY seq DESC LIMIT ?", (start, limit + 1)
        ) as cursor:
            rows = list(await cursor.fetchall())
        runs = [TrainingRun.model_validate_json(run) for _, run in rows[:limit]]
        return runs, (str(rows[limit - 1][0]) if len(rows) > limit else None)

    @_guarded
    async def count_unfinished(self) -> dict[str, int]:
        async with self.db.execute(
            f"SELECT status, COUNT(*) FROM runs WHERE status IN ({_UNFINISHED_MARKS}) GROUP BY status", UNFINISHED
        ) as cursor:
            rows = await cursor.fetchall()
        return {status: count for status, count in rows}

    @_guarded
    async def unfinished(self) -> list[TrainingRun]:
        async with self.db.execute(f"SELECT run FROM runs WHERE status IN ({_UNFINISHED_MARKS})", UNFINISHED) as cursor:
            rows = await cursor.fetchall()
        return [TrainingRun.model_validate_json(run) for (run,) in rows]

    @_guarded
    async def ended_totals(self) -> dict[str, int]:
        async with self.db.execute("SELECT status, count FROM ended_totals") as cursor:
            rows = await cursor.fetchall()
        return {status: count for status, count in rows}

    @_guarded
    async def append_event(self, run_id: str, kind: EventKind, data: dict[str, Any]) -> RunEvent:
        async with self._append_lock:  # seq = last + 1 must not interleave between two writers
            async with self.db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE run_id = ?", (run_id,)
            ) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            event = RunEvent(run_id=run_id, seq=int(row[0]), kind=kind, data=data)
            await self.db.execute(
                "INSERT INTO events (run_id, seq, kind, data) VALUES (?, ?, ?, ?)",
                (run_id, event.seq, kind, json.dumps(data)),
            )
            if kind == "end":  # in the same transaction: a run is counted once, when its end is stored
                await self.db.execute(
                    "INSERT INTO ended_totals (status, count) VALUES (?, 1) "
                    "ON CONFLICT (status) DO UPDATE SET count = count + 1",
                    (data["run"]["status"],),
                )
            await self.db.commit()
        self._tell(event)
        return event

    async def publish(self, run_id: str, kind: EventKind, data: dict[str, Any]) -> None:
        self._tell(RunEvent(run_id=run_id, seq=0, kind=kind, data=data))

    def _tell(self, event: RunEvent) -> None:
        for queue in self._followers.get(event.run_id, ()):
            queue.put_nowait(event)

    async def _stored(self, run_id: str, after: int) -> list[RunEvent]:
        async with self.db.execute(
            "SELECT seq, kind, data FROM events WHERE run_id = ? AND seq > ? ORDER BY seq", (run_id, after)
        ) as cursor:
            rows = await cursor.fetchall()
        return [RunEvent(run_id=run_id, seq=seq, kind=kind, data=json.loads(data)) for seq, kind, data in rows]

    @stream_errors(sqlite3.Error)
    async def follow(self, run_id: str, after: int = 0) -> AsyncGenerator[RunEvent, None]:
        # Subscribe before reading the log, so an event appended meanwhile is in the queue (and maybe in the
        # log too: seq tells the duplicates apart). The queue keeps stored and live events in their order.
        queue: asyncio.Queue[RunEvent] = asyncio.Queue()
        self._followers.setdefault(run_id, []).append(queue)
        try:
            ended = await self._end_at_or_before(run_id, after)
            if ended is not None:  # the client has seen the end already: say it again, and stop
                yield ended
                return
            for event in await self._stored(run_id, after):
                yield event
                after = event.seq
                if event.kind == "end":
                    return
            while True:
                event = await queue.get()
                if event.seq and event.seq <= after and event.kind != "end":  # an end always ends the stream
                    continue
                yield event
                after = event.seq or after
                if event.kind == "end":
                    return
        finally:
            followers = self._followers[run_id]
            followers.remove(queue)
            if not followers:
                del self._followers[run_id]

    async def _end_at_or_before(self, run_id: str, after: int) -> RunEvent | None:
        async with self.db.execute(
            "SELECT seq, data FROM events WHERE run_id = ? AND kind = 'end' AND seq <= ?", (run_id, after)
        ) as cursor:
            row = await cursor.fetchone()
        return None if row is None else RunEvent(run_id=run_id, seq=row[0], kind="end", data=json.loads(row[1]))

    @_guarded
    async def prune(self, max_age_s: float, max_count: int) -> int:
        cutoff = time.time() - max_age_s
        async with self.db.execute(
            f"SELECT id FROM runs WHERE status NOT IN ({_UNFINISHED_MARKS}) AND (created_at < ? OR seq NOT IN "
            "(SELECT seq FROM runs ORDER BY seq DESC LIMIT ?))",
            (*UNFINISHED, cutoff, max_count),
        ) as cursor:
            ids = [run_id for (run_id,) in await cursor.fetchall()]
        if ids:
            marks = ",".join("?" * len(ids))
            await self.db.execute(f"DELETE FROM events WHERE run_id IN ({marks})", ids)
            await self.db.execute(f"DELETE FROM models WHERE run_id IN ({marks})", ids)
            await self.db.execute(f"DELETE FROM runs WHERE id IN ({marks})", ids)
            await self.db.commit()
        return len(ids)

    @_guarded
    async def save_model(self, run_id: str, data: bytes) -> None:
        await self.db.execute("INSERT OR REPLACE INTO models (run_id, data) VALUES (?, ?)", (run_id, data))
        await self.db.commit()

    @_guarded
    async def get_model(self, run_id: str) -> bytes | None:
        async with self.db.execute("SELECT data FROM models WHERE run_id = ?", (run_id,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else bytes(row[0])
