"""Training runs as resources, against real workers: events, wait, cancel, time limit, queue bound, listing.

Every test runs twice: on the local worker pool (the embedded default) and on a real Celery worker over a real
Redis (the scale-out mode), through the same API: the two must not be told apart.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from tests.conftest import sse_events

LONG = {"data": {"samples": 10000}, "fit": {"epochs": 200}}


@pytest.fixture(params=["local", "celery"])
def client(request: pytest.FixtureRequest) -> TestClient:
    """The session's app on the local pool, or the one in the Celery mode."""
    app: TestClient = request.getfixturevalue(f"{request.param}_client")
    return app


def start(client: TestClient, model: dict[str, Any], **kw: Any) -> dict[str, Any]:
    r = client.post("/v1/trainings", json={"model": model, **kw})
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/v1/trainings/{r.json()['id']}"
    run: dict[str, Any] = r.json()
    return run


def until_status(client: TestClient, run_id: str, statuses: set[str], timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        run: dict[str, Any] = client.get(f"/v1/trainings/{run_id}").json()
        if run["status"] in statuses:
            return run
        assert time.monotonic() < deadline, f"run still {run['status']}"
        time.sleep(0.05)


def events_of(client: TestClient, run_id: str, **params: Any) -> list[dict[str, Any]]:
    with client.stream("GET", f"/v1/trainings/{run_id}/events", params=params) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        return list(sse_events(r.iter_lines()))


def test_post_answers_202_queued_at_once(client: TestClient, seed: dict[str, Any]) -> None:
    run = start(client, seed["seed_example_1"], fit={"epochs": 2})
    assert run["status"] in ("queued", "running")
    assert run["progress"] == {"epoch": 0, "epochs": 2, "batch": 0, "batches": 4}
    assert run["summary"]["total_params"] == 6151
    until_status(client, run["id"], {"succeeded"})


def test_events_arrive_in_order_one_per_epoch_then_the_end(client: TestClient, seed: dict[str, Any]) -> None:
    run = start(client, seed["seed_example_2"], data={"samples": 2000}, fit={"epochs": 4, "validation_split": 0.25})
    events = events_of(client, run["id"])
    kinds = [e["event"] for e in events]
    assert kinds[0] == "status" and events[0]["data"] == {"status": "queued"}
    assert kinds[-1] == "end"
    stored = [e for e in events if e["event"] != "batch"]
    assert [e["event"] for e in stored] == ["status", "status", "epoch", "epoch", "epoch", "epoch", "end"]
    assert stored[1]["data"]["status"] == "running"
    assert [e["data"]["epoch"] for e in stored if e["event"] == "epoch"] == [1, 2, 3, 4]
    assert [int(e["id"]) for e in stored] == list(range(1, 8))
    final = events[-1]["data"]["run"]
    assert final["status"] == "succeeded"
    # The epoch events carry the same numbers as the final history.
    epoch_losses = [e["data"]["logs"]["loss"] for e in stored if e["event"] == "epoch"]
    assert epoch_losses == final["history"]["loss"]
    assert [e["data"]["logs"]["val_loss"] for e in stored if e["event"] == "epoch"] == final["history"]["val_loss"]
    # Batch events are throttled progress within an epoch.
    for e in events:
        if e["event"] == "batch":
            assert 1 <= e["data"]["batch"] <= e["data"]["batches"] == 47 and "id" not in e
    # A late client replays what it missed; Last-Event-ID resumes after an id.
    assert [e["event"] for e in events_of(client, run["id"])] == [e["event"] for e in stored]
    with client.stream("GET", f"/v1/trainings/{run['id']}/events", headers={"Last-Event-ID": "5"}) as r:
        assert [e["id"] for e in sse_events(r.iter_lines())] == ["6", "7"]
    assert [e["id"] for e in events_of(client, run["id"], after=4)] == ["5", "6", "7"]
    # An EventSource reconnects to the same URL with Last-Event-ID: the header wins over ?after=.
    url = f"/v1/trainings/{run['id']}/events?after=1"
    with client.stream("GET", url, headers={"Last-Event-ID": "5"}) as r:
        assert [e["id"] for e in sse_events(r.iter_lines())] == ["6", "7"]


def test_wait_answers_201_with_the_finished_run(client: TestClient, seed: dict[str, Any]) -> None:
    r = client.post("/v1/trainings?wait=60", json={"model": seed["seed_example_1"], "fit": {"epochs": 2}})
    assert r.status_code == 201
    run = r.json()
    assert run["status"] == "succeeded" and len(run["history"]["loss"]) == 2
    assert run["progress"] == {"epoch": 2, "epochs": 2, "batch": 4, "batches": 4}
    assert run["started_at"] <= run["finished_at"] and run["duration_s"] > 0


def test_wait_that_runs_out_answers_202(client: TestClient, seed: dict[str, Any]) -> None:
    r = client.post("/v1/trainings?wait=0.5", json={"model": seed["seed_example_1"], **LONG})
    assert r.status_code == 202
    assert r.json()["status"] in ("queued", "running")
    assert client.delete(f"/v1/trainings/{r.json()['id']}").json()["status"] == "cancelled"


def test_wait_over_the_limit_is_422(client: TestClient, seed: dict[str, Any]) -> None:
    r = client.post("/v1/trainings?wait=100000", json={"model": seed["seed_example_1"]})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "wait"]


def test_cancel_a_running_run_within_one_second_and_train_again(client: TestClient, seed: dict[str, Any]) -> None:
    run = start(client, seed["seed_example_1"], **LONG)
    running = until_status(client, run["id"], {"running"})
    time.sleep(0.5)  # inside fit
    began = time.monotonic()
    r = client.delete(f"/v1/trainings/{run['id']}")
    elapsed = time.monotonic() - began
    assert r.status_code == 200
    cancelled = r.json()
    assert cancelled["status"] == "cancelled" and cancelled["error"] is None
    assert elapsed < 1.0, f"cancel took {elapsed:.2f} s"
    assert cancelled["epochs_completed"] < 200 and running["started_at"] == cancelled["started_at"]
    # The worker stopped at a batch and stays warm: the next training succeeds at once.
    r = client.post("/v1/trainings?wait=60", json={"model": seed["seed_example_1"]})
    assert r.status_code == 201 and r.json()["status"] == "succeeded"
    events = events_of(client, run["id"])
    assert events[-1]["event"] == "end" and events[-1]["data"]["run"]["status"] == "cancelled"


def test_cancel_a_queued_run_never_starts_it(client: TestClient, seed: dict[str, Any], settings: Settings) -> None:
    # The first run must stop at its next batch even on a loaded machine: a kill after the grace period would
    # replace the very worker this test checks was never disturbed.
    settings.cancel_grace_s = 10.0
    first = start(client, seed["seed_example_1"], **LONG)
    queued = [start(client, seed["seed_example_1"]) for _ in range(3)]
    until_status(client, first["id"], {"running"})
    local = not client.app.state.settings.broker_url  # type: ignore[attr-defined]
    pool = client.app.state.pools[1] if local else None  # type: ignore[attr-defined]
    pids_training = set(pool.ready_pids) if pool else set()
    for run in queued:
        assert client.get(f"/v1/trainings/{run['id']}").json()["status"] == "queued"
        cancelled = client.delete(f"/v1/trainings/{run['id']}").json()
        assert cancelled["status"] == "cancelled" and cancelled["started_at"] is None
    # The first run was not disturbed (no worker was killed under it), and trains on until it is stopped.
    time.sleep(1.0)
    assert client.get(f"/v1/trainings/{first['id']}").json()["status"] == "running"
    client.delete(f"/v1/trainings/{first['id']}")
    for run in queued:
        assert [e["event"] for e in events_of(client, run["id"])] == ["status", "end"]
    if pool is not None:
        # No cancelled run ever reached a worker (pebble kills a worker that picks up a cancelled task): the
        # worker that trained the first run is still the pool's.
        time.sleep(1.5)
        assert set(pool.ready_pids) == pids_training and pool.ready_workers == pool.size
    r = client.post("/v1/trainings?wait=60", json={"model": seed["seed_example_1"]})
    assert r.status_code == 201 and r.json()["status"] == "succeeded"


def test_runs_cancelled_while_a_killed_worker_is_replaced_never_reach_one(local_client: TestClient) -> None:
    # One batch of a wide LSTM outlasts the cancel grace: cancelling it kills the worker. The next run is then
    # handed to pebble before the replacement worker is up; cancelling it there must not kill that one too
    # (found by a tester: each such cancel cost a worker restart and seconds of /readyz 503).
    client = local_client
    pool = client.app.state.pools[1]  # type: ignore[attr-defined]
    # Wide rather than long: a batch of 1,000 x 20 steps of LSTM(1024) is seconds of work, and its estimated
    # training memory (about 1.6 GB, most of it what backpropagation through time keeps) is under the limit.
    stuck = {"input_shape": [20, 20], "layers": [{"type": "LSTM", "units": 1024}, {"type": "Dense", "units": 1}]}
    first = start(client, stuck, data={"samples": 1000}, fit={"epochs": 5, "batch_size": 1000})
    queued = [start(client, {"input_shape": [10, 20], "layers": [{"type": "Dense", "units": 1}]}) for _ in range(2)]
    until_status(client, first["id"], {"running"})
    # Into its first batch (building, making the data and tracing come first; a cancel before fit stops it
    # cooperatively, with no kill): 6 s is ample even on a loaded machine, and tracing and the one batch last
    # far longer (about 5 + 16 s on 2 shared cores).
    time.sleep(6.0)
    with ThreadPoolExecutor(1) as background:
        deleting = background.submit(client.delete, f"/v1/trainings/{first['id']}")
        deadline = time.monotonic() + 30
        while pool.ready_workers == pool.size:  # until the stuck worker has been killed
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # Now the first queued run is in pebble's hands, waiting for a worker that is still starting; the second
        # still in the executor's queue. The second is cancelled first: cancelling the first waits for its end,
        # and the second would meanwhile start for real.
        for run in reversed(queued):
            assert client.delete(f"/v1/trainings/{run['id']}").status_code == 200
            # The one in pebble's hands ends when the replacement worker says it started: DELETE answers
            # within cancel_grace_s + 5 s, which a Keras import on a loaded machine can outlast.
            cancelled = until_status(client, run["id"], {"cancelled", "succeeded", "failed"})
            assert cancelled["status"] == "cancelled" and cancelled["started_at"] is None, cancelled
            assert [e["event"] for e in events_of(client, run["id"])] == ["status", "end"]
        assert deleting.result().json()["status"] == "cancelled"
    deadline = time.monotonic() + 60
    while pool.ready_workers < pool.size:  # the one replacement
        assert time.monotonic() < deadline
        time.sleep(0.1)
    replacement = set(pool.ready_pids)
    time.sleep(4.0)  # longer than a worker's start: a second kill would show as another pid, or none ready
    assert set(pool.ready_pids) == replacement and pool.ready_workers == pool.size
    r = client.post(
        "/v1/trainings?wait=60", json={"model": {"input_shape": [3], "layers": [{"type": "Dense", "units": 1}]}}
    )
    assert r.status_code == 201 and r.json()["status"] == "succeeded"


def test_cancel_a_finished_run_is_409(client: TestClient, seed: dict[str, Any]) -> None:
    run = client.post("/v1/trainings?wait=60", json={"model": seed["seed_example_1"]}).json()
    r = client.delete(f"/v1/trainings/{run['id']}")
    assert r.status_code == 409
    assert "already finished (succeeded)" in r.json()["detail"][0]["msg"]


def test_a_stuck_worker_is_killed_after_the_grace_period(
    client: TestClient, seed: dict[str, Any], settings: Settings
) -> None:
    # One batch of 1,000 samples of a wide LSTM takes seconds (~16 s here): the stop request is read too late.
    # (Wide rather than a huge batch, whose backpropagation through time would be over the memory limit.)
    model = {"input_shape": [20, 20], "layers": [{"type": "LSTM", "units": 1024}, {"type": "Dense", "units": 1}]}
    run = start(client, model, data={"samples": 1000}, fit={"epochs": 5, "batch_size": 1000})
    until_status(client, run["id"], {"running"})
    time.sleep(0.3)
    began = time.monotonic()
    cancelled = client.delete(f"/v1/trainings/{run['id']}").json()
    assert cancelled["status"] == "cancelled"
    assert time.monotonic() - began < settings.cancel_grace_s + 1.0
    if settings.broker_url:  # Celery killed its child and started another: the next training runs on it
        r = client.post("/v1/trainings?wait=120", json={"model": seed["seed_example_1"]})
        assert r.status_code == 201 and r.json()["status"] == "succeeded"
        return
    pool = client.app.state.pools[1]  # type: ignore[attr-defined]
    deadline = time.monotonic() + 60
    while pool.ready_workers < pool.size:  # replaced
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_run_over_its_time_limit_ends_timed_out(client: TestClient, seed: dict[str, Any], settings: Settings) -> None:
    settings.training_time_limit_s = 2.0
    run = start(client, seed["seed_example_1"], **LONG)
    ended = until_status(client, run["id"], {"timed_out", "succeeded", "failed"}, timeout_s=30)
    assert ended["status"] == "timed_out", ended
    assert ended["error"]["kind"] == "time_limit" and "2 s" in ended["error"]["msg"]
    # Ends at the limit, or at most a grace period later (killed); a loaded machine's scheduling on top.
    assert 1.5 < ended["duration_s"] < 2.0 + settings.cancel_grace_s + 2.0, ended
    # Stopped at a batch, the history holds the epochs it ran; on a machine so loaded that the first step
    # (tracing) outlasts limit + grace, the worker was killed instead and the history is empty.
    assert len(ended["history"].get("loss", [])) == ended["epochs_completed"]


def test_queue_overflow_is_429_with_retry_after(client: TestClient, seed: dict[str, Any], settings: Settings) -> None:
    settings.max_queued_runs = 1
    running = start(client, seed["seed_example_1"], **LONG)
    until_status(client, running["id"], {"running"})
    queued = start(client, seed["seed_example_1"])
    r = client.post("/v1/trainings", json={"model": seed["seed_example_1"]})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["detail"][0]["type"] == "queue_full"
    # Summaries are not stuck behind trainings.
    began = time.monotonic()
    assert client.post("/v1/models/summary", json=seed["seed_example_2"]).status_code == 200
    assert time.monotonic() - began < 5
    for run in (queued, running):
        client.delete(f"/v1/trainings/{run['id']}")


def test_listing_is_newest_first_and_paginated(client: TestClient, seed: dict[str, Any]) -> None:
    ids = [client.post("/v1/trainings?wait=60", json={"model": seed["seed_example_1"]}).json()["id"] for _ in range(3)]
    page = client.get("/v1/trainings", params={"limit": 2}).json()
    assert [run["id"] for run in page["items"]] == ids[::-1][:2]
    assert page["next_cursor"]
    rest = client.get("/v1/trainings", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert rest["items"][0]["id"] == ids[0]


@pytest.mark.parametrize("path", ["/v1/trainings/nope", "/v1/trainings/nope/events"])
def test_unknown_run_is_404(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.json()["detail"][0]["loc"] == ["path", "run_id"]
    assert client.delete("/v1/trainings/nope").status_code == 404


def test_a_cancel_after_the_last_batch_leaves_the_trained_run_succeeded(local_client: TestClient) -> None:
    # The last batch is followed by the validation of 190,000 samples (several seconds): a cancel then has
    # nothing left to cut, so the run must end as it trained, and its worker must not be killed for it.
    client = local_client
    model = {"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": 30}, {"type": "Dense", "units": 1}]}
    fit = {"epochs": 1, "batch_size": 1000, "validation_split": 0.95}
    run = start(client, model, data={"samples": 200_000}, fit=fit)
    (pid,) = client.app.state.hub.ready["training"]  # type: ignore[attr-defined]
    with client.stream("GET", f"/v1/trainings/{run['id']}/events") as r:
        for event in sse_events(r.iter_lines()):
            data = event["data"]
            if event["event"] == "batch" and (data["epoch"], data["batch"]) == (data["epochs"], data["batches"]):
                cancelled = client.delete(f"/v1/trainings/{run['id']}")
                break
    assert cancelled.status_code == 200
    ended = until_status(client, run["id"], {"succeeded", "cancelled", "failed"})
    assert ended["status"] == "succeeded" and ended["epochs_completed"] == 1, ended
    assert set(ended["history"]) == {"loss", "val_loss"}
    assert pid in client.app.state.hub.ready["training"]  # type: ignore[attr-defined]  # the same warm worker


def test_the_store_never_holds_more_finished_runs_than_the_limit(
    client: TestClient, seed: dict[str, Any], settings: Settings
) -> None:
    """Pruned at every creation (it was every 50th: up to 49 over LAYERWISE_RUNS_MAX_COUNT, issue 18)."""
    settings.runs_max_count = 3
    ids = []
    for _ in range(5):
        r = client.post("/v1/trainings?wait=60", json={"model": seed["seed_example_1"]})
        assert r.status_code == 201 and r.json()["status"] == "succeeded"
        ids.append(r.json()["id"])
    # At the 5th creation the prune keeps the 3 newest (the new run among them); every older finished run goes,
    # those of the tests before this one too.
    kept = [run["id"] for run in client.get("/v1/trainings?limit=100").json()["items"]]
    assert kept == ids[:1:-1]  # newest first: the 5th, 4th and 3rd
    assert client.get(f"/v1/trainings/{ids[0]}").status_code == 404


def test_a_running_run_s_progress_is_the_stream_s(client: TestClient, seed: dict[str, Any]) -> None:
    """GET showed batch 0 while the event stream was at batch 1,563 (issue 18): the run is stored with its
    progress at most RunRecorder.PROGRESS_SAVE_EVERY_S after a batch event."""
    run = start(client, seed["seed_example_1"], **LONG)
    try:
        with client.stream("GET", f"/v1/trainings/{run['id']}/events") as r:
            batches = (e["data"] for e in sse_events(r.iter_lines()) if e["event"] == "batch")
            streamed = next(batches)
            for streamed in batches:  # a few batch events in: the run has been stored with progress since
                if streamed["batch"] >= 20 or streamed["epoch"] > 1:
                    break
        # Mid-epoch, as the stream is: only the epoch's end stored progress before (batch 0, then 313 of 313).
        deadline = time.monotonic() + 30
        while not 0 < (got := client.get(f"/v1/trainings/{run['id']}").json()["progress"])["batch"] < 313:
            assert time.monotonic() < deadline, got
            time.sleep(0.05)
        assert got["epoch"] >= 1 and got["batches"] == streamed["batches"] == 313
    finally:
        client.delete(f"/v1/trainings/{run['id']}")
