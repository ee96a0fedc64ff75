"""RunRecorder against a real SQLite store that refuses writes for a while: a run's end is written again until the
store takes it, whole and once (issue 18)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.errors import StoreUnavailableError
from app.runs.models import Progress, TrainingRun
from app.runs.recorder import RunRecorder
from app.runs.store.sqlite import SqliteRunStore


def _run() -> TrainingRun:
    return TrainingRun(
        id=uuid.uuid4().hex,
        status="queued",
        created_at=datetime.now(UTC),
        epochs=3,
        progress=Progress(epochs=3, batches=4),
        samples=100,
        batch_size=32,
        seed=0,
        request={},
    )


def test_an_end_the_store_refused_is_written_again_whole_and_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = SqliteRunStore(str(tmp_path / "runs.sqlite3"))
        await store.open()
        try:
            recorder = RunRecorder(store, _run())
            await store.save(recorder.run)
            await recorder.started()
            await recorder.epoch({"epoch": 1, "epochs": 3, "logs": {"loss": 0.5}})
            await store.db.execute("PRAGMA query_only=ON")  # the store stops taking writes
            with pytest.raises(StoreUnavailableError):
                await recorder.epoch({"epoch": 2, "epochs": 3, "logs": {"loss": 0.4}})
            result = {
                "history": {"loss": [0.5, 0.4, 0.3]},
                "epochs_completed": 3,
                "diverged": None,
                "execution": "eager",
                "model_file": b"PK\x03\x04 a .keras zip",
            }
            with pytest.raises(StoreUnavailableError):
                await recorder.finish("succeeded", result=result)
            assert recorder.finished and not recorder.end_recorded
            with pytest.raises(StoreUnavailableError):
                await recorder.record_end()  # still refused: nothing half-written
            stored = await store.get(recorder.run.id)
            assert stored is not None and stored.status == "running" and stored.epochs_completed == 1
            await store.db.execute("PRAGMA query_only=OFF")
            await recorder.record_end()
            assert recorder.end_recorded
            assert await store.get(recorder.run.id) == recorder.run
            assert await store.get_model(recorder.run.id) == result["model_file"]
            events = [(e.kind, e.data.get("epoch"), e.data.get("logs")) async for e in store.follow(recorder.run.id)]
            assert events == [
                ("status", None, None),
                ("epoch", 1, {"loss": 0.5}),
                ("epoch", 2, {"loss": 0.4}),
                ("epoch", 3, {"loss": 0.3}),
                ("end", None, None),
            ]
            assert await store.ended_totals() == {"succeeded": 1}
        finally:
            await store.close()

    asyncio.run(scenario())
