"""The RunStore contract, on both stores: SQLite (embedded) and Redis (scale-out, a real redis-server)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from app.errors import StoreFaultError, StoreUnavailableError
from app.runs.models import Progress, TrainingRun
from app.runs.status import FINAL_STATUSES, STATUSES, UNFINISHED
from app.runs.store.base import RunEvent, RunStore
from app.runs.store.redis import RedisRunStore
from app.runs.store.sqlite import SqliteRunStore

Scenario = Callable[[RunStore], Awaitable[None]]
S = TypeVar("S", bound=RunStore)


@pytest.fixture(params=["sqlite", "redis"])
def run_on_store(request: pytest.FixtureRequest) -> Callable[[Scenario], None]:
    """Runs an async scenario against a fresh store of each kind."""

    def run(scenario: Scenario) -> None:
        store: RunStore
        if request.param == "sqlite":
            store = SqliteRunStore(":memory:")
        else:
            store = RedisRunStore(request.getfixturevalue("redis_url"), prefix=f"store-{uuid.uuid4().hex[:8]}")
        _opened(store, scenario)

    return run


def _opened(store: S, scenario: Callable[[S], Awaitable[None]]) -> None:
    """Open ``store``, run ``scenario`` on it, close it (also when the scenario fails)."""

    async def main() -> None:
        await store.open()
        try:
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(main())


def _run(status: Any = "queued", **kw: Any) -> TrainingRun:
    return TrainingRun(
        id=uuid.uuid4().hex,
        status=status,
        created_at=datetime.now(UTC),
        epochs=2,
        progress=Progress(epochs=2, batches=4),
        samples=100,
        batch_size=32,
        seed=0,
        request={},
        **kw,
    )


async def _collect(events: AsyncIterator[RunEvent]) -> list[RunEvent]:
    return [event async for event in events]


def test_a_bogus_last_event_id_still_ends_with_the_run(run_on_store: Callable[[Scenario], None]) -> None:
    async def scenario(store: RunStore) -> None:
        run = _run()
        await store.save(run)
        await store.append_event(run.id, "status", {"status": "queued"})
        follower = asyncio.create_task(_collect(store.follow(run.id, after=50)))
        await asyncio.sleep(0.2)
        run.status = "cancelled"
        await store.save(run)
        await store.append_event(run.id, "end", {"run": run.model_dump(mode="json")})
        assert [(e.kind, e.seq) for e in await asyncio.wait_for(follower, 10)] == [("end", 2)]

    run_on_store(scenario)


def test_save_get_page_and_counts(run_on_store: Callable[[Scenario], None]) -> None:
    async def scenario(store: RunStore) -> None:
        assert await store.health() == "ok"
        runs = [_run() for _ in range(5)]
        for run in runs:
            await store.save(run)
        runs[0].status = "running"
        await store.save(runs[0])  # an update keeps the run's place
        assert (await store.get(runs[0].id)) == runs[0]
        assert await store.get("nope") is None
        assert await store.count_unfinished() == {"queued": 4, "running": 1}
        assert {r.id for r in await store.unfinished()} == {r.id for r in runs}
        first, cursor = await store.page(2)
        assert [r.id for r in first] == [runs[4].id, runs[3].id] and cursor
        second, cursor = await store.page(2, cursor)
        assert [r.id for r in second] == [runs[2].id, runs[1].id] and cursor
        last, cursor = await store.page(2, cursor)
        assert [r.id for r in last] == [runs[0].id] and cursor is None

    run_on_store(scenario)


def test_follow_replays_then_goes_live_until_the_end(run_on_store: Callable[[Scenario], None]) -> None:
    async def scenario(store: RunStore) -> None:
        run = _run()
        await store.save(run)
        assert (await store.append_event(run.id, "status", {"status": "queued"})).seq == 1
        await store.publish(run.id, "batch", {"batch": 1})  # live only: a late follower does not see it
        seen: list[RunEvent] = []

        async def follow() -> None:
            async for event in store.follow(run.id):
                seen.append(event)

        follower = asyncio.create_task(follow())
        while not seen:
            await asyncio.sleep(0.01)
        await store.publish(run.id, "batch", {"batch": 2})
        await store.append_event(run.id, "epoch", {"epoch": 1})
        run.status = "succeeded"
        await store.save(run)
        await store.append_event(run.id, "end", {"run": run.model_dump(mode="json")})
        await asyncio.wait_for(follower, 10)
        assert [(e.kind, e.seq) for e in seen] == [("status", 1), ("batch", 0), ("epoch", 2), ("end", 3)]
        assert [e.seq async for e in store.follow(run.id, after=1)] == [2, 3]
        # A client that has seen the end (a reconnecting EventSource, a Last-Event-ID from the future) is told
        # the end again at once rather than left waiting for events that will never come.
        for after in (3, 99):
            again = await asyncio.wait_for(_collect(store.follow(run.id, after=after)), 5)
            assert [(e.kind, e.seq) for e in again] == [("end", 3)]
        assert await store.ended_totals() == {"succeeded": 1}
        assert await store.count_unfinished() == {}

    run_on_store(scenario)


def test_prune_deletes_old_finished_runs_only(run_on_store: Callable[[Scenario], None]) -> None:
    async def scenario(store: RunStore) -> None:
        finished = [_run("succeeded") for _ in range(3)]
        queued = _run()
        for run in (*finished, queued):
            await store.save(run)
            await store.append_event(run.id, "status", {"status": run.status})
        assert await store.prune(max_age_s=3600, max_count=2) == 2  # the two oldest finished; queued stays
        assert [r.id for r in (await store.page(10))[0]] == [queued.id, finished[2].id]
        assert await store.get(finished[0].id) is None
        assert await store.prune(max_age_s=1e-9, max_count=100) == 1  # age: the finished one left
        assert [r.id for r in (await store.page(10))[0]] == [queued.id]

    run_on_store(scenario)


def test_redis_keeps_the_first_end_of_a_run(redis_url: str) -> None:
    """Several processes may end one run in the Celery mode (its worker, the worker's main process, a cancel,
    a replica reaping a lost run): the first end stands, later saves and events of that run are refused."""

    async def scenario() -> None:
        store = RedisRunStore(redis_url, prefix=f"store-{uuid.uuid4().hex[:8]}")
        await store.open()
        try:
            run = _run("running")
            await store.save(run)
            first = run.model_copy(update={"status": "cancelled"})
            await store.save(first)
            await store.append_event(run.id, "end", {"run": first.model_dump(mode="json")})
            late = run.model_copy(update={"status": "succeeded"})
            await store.save(late)
            assert (await store.append_event(run.id, "epoch", {"epoch": 1})).seq == 0
            assert (await store.append_event(run.id, "end", {"run": late.model_dump(mode="json")})).seq == 0
            stored = await store.get(run.id)
            assert stored is not None and stored.status == "cancelled"
            assert [(e.kind, e.data["run"]["status"]) async for e in store.follow(run.id)] == [("end", "cancelled")]
            assert await store.ended_totals() == {"cancelled": 1}
        finally:
            await store.close()

    asyncio.run(scenario())


def test_every_store_takes_its_unfinished_states_from_status_py(run_on_store: Callable[[Scenario], None]) -> None:
    """A run in each state of app.runs.status: the SQL and the Lua count, list, refuse to reopen and prune by
    UNFINISHED and FINAL_STATUSES, so a new state is one edit there."""

    async def scenario(store: RunStore) -> None:
        runs = {status: _run(status) for status in STATUSES}
        for run in runs.values():
            await store.save(run)
        assert await store.count_unfinished() == dict.fromkeys(UNFINISHED, 1)
        assert sorted(run.status for run in await store.unfinished()) == sorted(UNFINISHED)
        for status, run in runs.items():  # Redis's Lua: a final run is not reopened; an unfinished one moves
            if not isinstance(store, RedisRunStore):
                break
            await store.save(run.model_copy(update={"status": "running"}))
            stored = await store.get(run.id)
            assert stored is not None
            assert stored.status == (status if status in FINAL_STATUSES else "running")
        assert await store.prune(max_age_s=0, max_count=0) == len(FINAL_STATUSES)
        assert {run.id for run in await store.unfinished()} == {runs[status].id for status in UNFINISHED}
        assert [await store.get(runs[status].id) for status in FINAL_STATUSES] == [None] * len(FINAL_STATUSES)

    run_on_store(scenario)


def test_a_model_file_is_kept_byte_for_byte_and_pruned_with_its_run(run_on_store: Callable[[Scenario], None]) -> None:
    async def scenario(store: RunStore) -> None:
        old, new = _run("succeeded"), _run("succeeded")
        data = bytes(range(256)) * 4  # every byte value: a .keras file is a zip
        for run in (old, new):
            await store.save(run)
            await store.save_model(run.id, data)
        assert await store.get_model(old.id) == data
        assert await store.get_model("nope") is None
        assert await store.prune(max_age_s=3600, max_count=1) == 1
        assert await store.get_model(old.id) is None and await store.get_model(new.id) == data

    run_on_store(scenario)


# Faults of the SQLite file under a running store (issue 18). chattr needs root and a filesystem with inode flags
# (ext4, xfs, btrfs); tmpfs and overlayfs on some kernels refuse it, and then the chattr tests skip, saying so.


def _sqlite_files(db: Path) -> list[Path]:
    return sorted(db.parent.glob(db.name + "*"))


@contextlib.contextmanager
def _immutable(paths: list[Path]) -> Iterator[None]:
    """``chattr +i`` on ``paths`` for the ``with`` block, ``chattr -i`` after (else pytest cannot remove them)."""
    done = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True, text=True)
    if done.returncode != 0:
        subprocess.run(["chattr", "-i", *map(str, paths)], capture_output=True)
        pytest.skip(f"chattr +i is refused here ({done.stderr.strip()}): needs root and ext4/xfs-like inode flags")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)


def _on_sqlite_file(db: Path, scenario: Callable[[SqliteRunStore], Awaitable[None]]) -> None:
    _opened(SqliteRunStore(str(db)), scenario)


def test_the_sqlite_store_maps_no_file_into_memory(tmp_path: Path) -> None:
    """A write to a memory-mapped page of a file made immutable (``chattr +i``) is a SIGBUS that kills the
    process: WAL's wal-index (the ``-shm`` file) is mapped unless the connection holds the file exclusively, and
    ``mmap_size`` maps the database itself. Neither may be mapped."""
    db = tmp_path / "runs.sqlite3"

    async def scenario(store: SqliteRunStore) -> None:
        await store.save(_run())
        assert [path.name for path in _sqlite_files(db)] == ["runs.sqlite3", "runs.sqlite3-wal"]  # no -shm
        for pragma, value in (("journal_mode", "wal"), ("locking_mode", "exclusive"), ("mmap_size", 0)):
            async with store.db.execute(f"PRAGMA {pragma}") as cursor:
                assert await cursor.fetchone() == (value,)

    _on_sqlite_file(db, scenario)


def test_a_store_file_made_immutable_refuses_writes_by_name_and_recovers(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite3"

    async def scenario(store: SqliteRunStore) -> None:
        kept, refused, later = _run(), _run(), _run()
        await store.save(kept)
        assert await store.health() == "ok"
        with _immutable(_sqlite_files(db)):
            assert await store.health() == "read_only"
            for write in (
                store.save(refused),
                store.append_event(kept.id, "status", {"status": "queued"}),
                store.save_model(kept.id, b"model"),
                store.prune(0, 0),
            ):
                with pytest.raises(StoreFaultError) as caught:
                    await write
                assert caught.value.fault == "read_only" and caught.value.status_code == 503
                assert str(db) in str(caught.value) and "chattr -i" in str(caught.value)
            assert await store.get(kept.id) == kept  # reads still answer
            assert await store.get(refused.id) is None
        assert await store.health() == "ok"  # writable again: no restart needed
        await store.save(later)
        assert [r.id for r in (await store.page(10))[0]] == [later.id, kept.id]

    _on_sqlite_file(db, scenario)
    _on_sqlite_file(db, lambda store: _assert_ids(store, 2))  # both kept on disk


async def _assert_ids(store: SqliteRunStore, count: int) -> None:
    assert len((await store.page(10))[0]) == count


@pytest.mark.parametrize("how", ["file unlinked", "directory removed"])
def test_a_deleted_store_file_is_noticed_and_refuses_writes(tmp_path: Path, how: str) -> None:
    """SQLite keeps writing to a file unlinked under it (its open descriptor), and every run written so is gone at
    the next start: the store compares the file at its path with the one it opened."""
    db = tmp_path / "store" / "runs.sqlite3"
    db.parent.mkdir()

    async def scenario(store: SqliteRunStore) -> None:
        kept = _run()
        await store.save(kept)
        if how == "file unlinked":
            for path in _sqlite_files(db):
                path.unlink()
        else:
            shutil.rmtree(db.parent)
        assert await store.health() == "deleted"
        with pytest.raises(StoreFaultError) as caught:
            await store.save(_run())
        assert caught.value.fault == "deleted" and str(db) in str(caught.value)
        assert "deleted" in str(caught.value) and "restart" in str(caught.value)

    _on_sqlite_file(db, scenario)


def test_a_store_file_replaced_under_the_store_is_noticed(tmp_path: Path) -> None:
    db = tmp_path / "runs.sqlite3"

    async def scenario(store: SqliteRunStore) -> None:
        other = tmp_path / "other.sqlite3"
        other.write_bytes(db.read_bytes())
        other.replace(db)  # a restore from a backup under the running server: the store's file is not this one
        assert await store.health() == "deleted"

    _on_sqlite_file(db, scenario)


def test_a_write_that_fails_in_sqlite_marks_the_store_until_a_write_succeeds(tmp_path: Path) -> None:
    """A fault the filesystem does not show (a full disk, an I/O error; here ``query_only``) is ``write_failed``
    from the first failed write until a write succeeds again: ``health()`` tries one, so the probe sees it heal."""
    db = tmp_path / "runs.sqlite3"

    async def scenario(store: SqliteRunStore) -> None:
        run = _run()
        await store.db.execute("PRAGMA query_only=ON")
        with pytest.raises(StoreUnavailableError, match="readonly"):
            await store.save(run)
        assert await store.health() == "write_failed"
        assert await store.get(run.id) is None  # the failed write was rolled back, not left pending
        await store.db.execute("PRAGMA query_only=OFF")
        assert await store.health() == "ok"
        await store.save(run)
        assert await store.get(run.id) == run

    _on_sqlite_file(db, scenario)


def test_an_in_memory_store_and_redis_are_ok_when_they_answer(run_on_store: Callable[[Scenario], None]) -> None:
    async def scenario(store: RunStore) -> None:
        assert await store.health() == "ok"

    run_on_store(scenario)
