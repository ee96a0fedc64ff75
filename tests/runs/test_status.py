"""The one state machine (app.runs.status) and the places that take it: the recorder and the OpenAPI document
the page reads the final states from. The stores' SQL and Lua: tests/runs/test_store.py."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from app.main import create_app
from app.runs.models import Progress, TrainingRun
from app.runs.recorder import RunRecorder
from app.runs.status import FINAL_STATUSES, STATUSES, TRANSITIONS, UNFINISHED, RunStatus, can_move
from app.runs.store.sqlite import SqliteRunStore


def test_the_sets_partition_the_states() -> None:
    assert set(UNFINISHED) | FINAL_STATUSES == set(STATUSES)
    assert not set(UNFINISHED) & FINAL_STATUSES
    assert set(TRANSITIONS) == set(STATUSES)
    assert all(not TRANSITIONS[status] for status in FINAL_STATUSES)
    assert can_move("queued", "running") and not can_move("running", "queued")


def test_the_document_publishes_the_states_and_the_final_ones() -> None:
    schemas = create_app().openapi()["components"]["schemas"]
    assert schemas["RunStatus"]["enum"] == list(STATUSES)
    assert set(schemas["FinalRunStatus"]["enum"]) == FINAL_STATUSES
    assert schemas["TrainingRun"]["properties"]["status"]["enum"] == list(STATUSES)


@pytest.mark.parametrize("old", STATUSES)
@pytest.mark.parametrize("new", [s for s in STATUSES if s != "queued"])
def test_the_recorder_moves_only_as_status_py_allows(old: RunStatus, new: RunStatus) -> None:
    async def main() -> RunStatus:
        store = SqliteRunStore(":memory:")
        await store.open()
        try:
            run = TrainingRun(
                id=uuid.uuid4().hex,
                status=old,
                created_at=datetime.now(UTC),
                epochs=1,
                progress=Progress(epochs=1, batches=1),
                samples=10,
                batch_size=32,
                seed=0,
                request={},
            )
            recorder = RunRecorder(store, run)
            await (recorder.started() if new == "running" else recorder.finish(new))
            return recorder.run.status
        finally:
            await store.close()

    assert asyncio.run(main()) == (new if can_move(old, new) else old)
