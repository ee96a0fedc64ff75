"""The embedded run store: :class:`SqliteRunStore`, one SQLite file through aiosqlite (the default, one server).

Runs and their events as :class:`app.runs.store.base.RunStore` describes them; ``sqlite3.Error`` leaves every
method as :class:`app.errors.StoreUnavailableError`. The file may be faulted under the running server (made
immutable, remounted read-only, deleted): :meth:`SqliteRunStore.health` names the fault, and every write is refused
with :class:`app.errors.StoreFaultError` before SQLite tries it, so nothing half-written is left and the process
lives on (it recovers by itself once the file is writable again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import aiosqlite

from app.errors import StoreFault, StoreFaultError, StoreUnavailableError
from app.runs.models import TrainingRun
from app.runs.status import UNFINISHED
from app.runs.store.base import EventKind, RunEvent, StoreHealth, store_errors, stream_errors

_guarded = store_errors(sqlite3.Error)
# One placeholder per unfinished status: the queries take the statuses from app.runs.status as parameters.
_UNFINISHED_MARKS = ", ".join("?" * len(UNFINISHED))


# No page of any file is memory-mapped: a store into a mapped page of a file made immutable (chattr +i) is a SIGBUS
# that kills the whole server, where a write() is an error SQLite returns. WAL maps its wal-index (the -shm file)
# unless the connection holds the database exclusively, set before WAL is first used: the index is then kept in
# the process's own memory and no -shm file exists. This process is the file's only user (python -m app checks it,
# closed, before the server opens it), and the lock keeps a second server off the same file. mmap_size=0 keeps
# SQLite from mapping the database itself, whatever a build's default.
SQLITE_SCHEMA = """
PRAGMA locking_mode=EXCLUSIVE;
PRAGMA mmap_size=0;
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
# The write health() tries while the last write failed, so that the store is seen to heal without a request.
SQLITE_HEAL_PROBE = "INSERT OR REPLACE INTO meta (key, value) VALUES ('probed_at', ?)"


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


def fault_message(path: str, fault: StoreFault, detail: str) -> str:
    """A person's sentence for a faulted store: what is wrong with ``path`` (``detail`` names the file or the
    error), that nothing was stored, and what to do."""
    where = f"LAYERWISE_RUNS_DB={path!r}"
    if fault == "read_only":
        return (
            f"the run store is read-only: {detail} cannot be written (chattr +i, a read-only mount or its "
            f"permissions), so nothing was stored; make it writable again (chattr -i, chmod u+w, remount "
            f"read-write) and retry: the server takes writes again by itself, no restart needed ({where})"
        )
    if fault == "deleted":
        return (
            f"the run store's file {where} was {detail} under the running server: the runs it holds are still read "
            "from the open file but would be gone at the next start, so nothing more is stored; put the file back "
            "from a backup if there is one, then restart the server (it starts an empty store if no file is there)"
        )
    if fault == "write_failed":
        return (
            f"the run store's last write failed ({detail}) and none has succeeded since, so nothing was stored; "
            f"free disk space or fix the disk under {where} and retry: the server takes writes again by itself"
        )
    return f"the run store does not answer ({detail}); check the disk under {where} and restart the server"


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
        # One write transaction at a time: a failed one is rolled back whole, and must not take another
        # coroutine's uncommitted statements with it (they share the connection). Also keeps seq = last + 1 of two
        # appends from interleaving.
        self._write_lock = asyncio.Lock()
        self._followers: dict[str, list[asyncio.Queue[RunEvent]]] = {}
        # (st_dev, st_ino) of the file opened, to tell it from whatever is at the path later; None in memory.
        self._opened: tuple[int, int] | None = None
        self._write_error: str | None = None  # the last write's error, until a write succeeds

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
            if self.path != ":memory:" and not self.path.startswith("file:"):
                opened = os.stat(self.path)
                self._opened = (opened.st_dev, opened.st_ino)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailableError(sqlite_problem(self.path, exc)) from exc

    async def close(self) -> None:
        """Close the connection (SQLite checkpoints the WAL into the file and removes it)."""
        if self._db is not None:
            await self._db.close()
            self._db = None

    def _fault(self) -> tuple[StoreFault, str] | None:
        """The file's fault as the filesystem shows it, and a sentence of it; None when it can take writes. A few
        ``stat`` and ``access`` calls (microseconds): it runs before every write."""
        if self._opened is None:  # in memory: no file to lose
            return None
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            gone = (
                "deleted"
                if os.path.isdir(os.path.dirname(os.path.abspath(self.path)))
                else "deleted (its directory too)"
            )
            return "deleted", fault_message(self.path, "deleted", gone)
        except OSError as exc:
            return "unreachable", fault_message(self.path, "unreachable", f"stat: {exc}")
        if (now.st_dev, now.st_ino) != self._opened:
            return "deleted", fault_message(self.path, "deleted", "deleted or replaced by another file")
        # access() says what this process may do: an immutable file or a read-only mount refuse even root (EPERM,
        # EROFS), which plain permission bits do not. The WAL file holds the latest writes; the directory is where
        # SQLite makes it again at the next start.
        for path in (self.path, f"{self.path}-wal", os.path.dirname(os.path.abspath(self.path))):
            if os.path.exists(path) and not os.access(path, os.W_OK):
                what = f"the directory {path!r}" if os.path.isdir(path) else repr(path)
                return "read_only", fault_message(self.path, "read_only", what)
        return None

    async def health(self) -> StoreHealth:
        """``ok``; or ``deleted`` / ``read_only`` as the filesystem shows the file (:meth:`_fault`); or
        ``write_failed`` while the last write failed and a write tried now fails too; or ``unreachable`` when
        SQLite does not answer a query. Never raises."""
        fault = self._fault()
        if fault is not None:
            return fault[0]
        if self._write_error is not None:
            try:
                async with self._writing() as db:
                    await db.execute(SQLITE_HEAL_PROBE, (time.time(),))
            except (sqlite3.Error, StoreUnavailableError):
                return "write_failed"
            return "ok"
        try:
            await self.db.execute("SELECT 1")
        except sqlite3.Error:
            return "unreachable"
        return "ok"

    def check_writable(self) -> None:
        """Raise :class:`StoreFaultError` (503) if the file is faulted (:meth:`_fault`), else nothing."""
        fault = self._fault()
        if fault is not None:
            raise StoreFaultError(fault[1], fault[0])

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction, alone (the write lock), refused before it starts on a faulted file, committed
        at the end of the block, rolled back whole if anything in it fails.

        Raises:
            StoreFaultError: the file is read-only or deleted (:meth:`_fault`); nothing was tried.
            sqlite3.Error: SQLite failed (the store is then ``write_failed`` until a write succeeds).
        """
        async with self._write_lock:
            self.check_writable()
            try:
                yield self.db
                await self.db.commit()
            except BaseException as exc:
                if isinstance(exc, sqlite3.Error):
                    self._write_error = f"{type(exc).__name__}: {exc}"
                # A failed COMMIT may leave the transaction open (SQLite rolls back only some errors by itself):
                # its statements would then be read back as if stored, and committed by the next write.
                with contextlib.suppress(sqlite3.Error):
                    await self.db.rollback()
                raise
            self._write_error = None

    @_guarded
    async def save(self, run: TrainingRun) -> None:
        async with self._writing() as db:
            await db.execute(
                "INSERT INTO runs (id, status, created_at, run) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET status = excluded.status, run = excluded.run",
                (run.id, run.status, run.created_at.timestamp(), run.model_dump_json()),
            )

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
        async with self._writing() as db:  # alone: seq = last + 1 must not interleave between two writers
            async with db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE run_id = ?", (run_id,)) as cursor:
                row = await cursor.fetchone()
            assert row is not None
            event = RunEvent(run_id=run_id, seq=int(row[0]), kind=kind, data=data)
            await db.execute(
                "INSERT INTO events (run_id, seq, kind, data) VALUES (?, ?, ?, ?)",
                (run_id, event.seq, kind, json.dumps(data)),
            )
            if kind == "end":  # in the same transaction: a run is counted once, when its end is stored
                await db.execute(
                    "INSERT INTO ended_totals (status, count) VALUES (?, 1) "
                    "ON CONFLICT (status) DO UPDATE SET count = count + 1",
                    (data["run"]["status"],),
                )
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
        async with self._writing() as db:
            async with db.execute(
                f"SELECT id FROM runs WHERE status NOT IN ({_UNFINISHED_MARKS}) AND (created_at < ? OR seq NOT IN "
                "(SELECT seq FROM runs ORDER BY seq DESC LIMIT ?))",
                (*UNFINISHED, cutoff, max_count),
            ) as cursor:
                ids = [run_id for (run_id,) in await cursor.fetchall()]
            if ids:
                marks = ",".join("?" * len(ids))
                await db.execute(f"DELETE FROM events WHERE run_id IN ({marks})", ids)
                await db.execute(f"DELETE FROM models WHERE run_id IN ({marks})", ids)
                await db.execute(f"DELETE FROM runs WHERE id IN ({marks})", ids)
        return len(ids)

    @_guarded
    async def save_model(self, run_id: str, data: bytes) -> None:
        async with self._writing() as db:
            await db.execute("INSERT OR REPLACE INTO models (run_id, data) VALUES (?, ?)", (run_id, data))

    @_guarded
    async def get_model(self, run_id: str) -> bytes | None:
        async with self.db.execute("SELECT data FROM models WHERE run_id = ?", (run_id,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else bytes(row[0])
