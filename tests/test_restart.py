"""Runs survive restarts: a server started again over the same SQLite file keeps finished runs and marks the
ones it was running ``interrupted`` (after a graceful stop and after SIGKILL)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.conftest import sse_events, wait_ready
from tests.serving import alive, free_port, start_server, stop_server, worker_pids

LONG = {"data": {"samples": 10000}, "fit": {"epochs": 500}}


def test_graceful_restart_keeps_finished_runs_and_interrupts_running_ones(tmp_path: Path, seed: dict[str, Any]) -> None:
    settings = Settings(runs_db=str(tmp_path / "runs.sqlite3"))
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        done = client.post("/v1/trainings?wait=60", json={"model": seed["seed_example_1"], "fit": {"epochs": 2}})
        assert done.status_code == 201
        running = client.post("/v1/trainings", json={"model": seed["seed_example_1"], **LONG}).json()
        queued = client.post("/v1/trainings", json={"model": seed["seed_example_1"], **LONG}).json()
        while client.get(f"/v1/trainings/{running['id']}").json()["status"] != "running":
            time.sleep(0.05)

    with TestClient(create_app(settings)) as client:
        assert client.get(f"/v1/trainings/{done.json()['id']}").json() == done.json()
        for run in (running, queued):
            again = client.get(f"/v1/trainings/{run['id']}").json()
            assert again["status"] == "interrupted"
            assert "server stopped" in again["error"]["msg"]
            with client.stream("GET", f"/v1/trainings/{run['id']}/events") as r:
                events = list(sse_events(r.iter_lines()))
            assert events[-1]["event"] == "end" and events[-1]["data"]["run"]["status"] == "interrupted"
        assert [r["id"] for r in client.get("/v1/trainings").json()["items"]] == [
            queued["id"],
            running["id"],
            done.json()["id"],
        ]


def _serve(port: int, db: Path) -> subprocess.Popen[bytes]:
    return start_server(port, {"LAYERWISE_RUNS_DB": str(db)})


def test_server_killed_mid_run_restarts_with_the_run_interrupted(tmp_path: Path, seed: dict[str, Any]) -> None:
    db = tmp_path / "runs.sqlite3"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _serve(port, db)
    try:
        done = httpx.post(f"{base}/v1/trainings?wait=60", json={"model": seed["seed_example_1"]}, timeout=70).json()
        run = httpx.post(f"{base}/v1/trainings", json={"model": seed["seed_example_1"], **LONG}).json()
        while httpx.get(f"{base}/v1/trainings/{run['id']}").json()["status"] != "running":
            time.sleep(0.05)
        time.sleep(1.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc = _serve(port, db)
        assert httpx.get(f"{base}/v1/trainings/{done['id']}").json() == done
        again = httpx.get(f"{base}/v1/trainings/{run['id']}").json()
        assert again["status"] == "interrupted" and again["started_at"] is not None
        assert again["error"]["kind"] == "interrupted"
        # The new server trains as before.
        r = httpx.post(f"{base}/v1/trainings?wait=60", json={"model": seed["seed_example_1"]}, timeout=70)
        assert r.status_code == 201 and r.json()["history"] == done["history"]
    finally:
        stop_server(proc)


def test_sigterm_with_runs_in_flight_ends_them_interrupted_and_leaves_the_store_whole(
    tmp_path: Path, seed: dict[str, Any]
) -> None:
    db, log = tmp_path / "runs.sqlite3", tmp_path / "server.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(log, "wb") as stderr:
        proc = start_server(port, {"LAYERWISE_RUNS_DB": str(db), "LAYERWISE_LOG_LEVEL": "info"}, stderr=stderr)
    try:
        workers = worker_pids(proc.pid)
        assert len(workers) == 2  # a summary and a training worker
        running = httpx.post(f"{base}/v1/trainings", json={"model": seed["seed_example_1"], **LONG}).json()
        queued = httpx.post(f"{base}/v1/trainings", json={"model": seed["seed_example_1"], **LONG}).json()
        while httpx.get(f"{base}/v1/trainings/{running['id']}").json()["status"] != "running":
            time.sleep(0.05)
        proc.terminate()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            stop_server(proc)
    # uvicorn re-raises the signal after a graceful shutdown, so the exit status is -SIGTERM.
    assert proc.returncode in (0, -signal.SIGTERM)
    assert "Application shutdown complete" in log.read_text()
    assert not [pid for pid in workers if alive(pid)]
    with sqlite3.connect(db) as store:
        assert store.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        statuses = dict(store.execute("SELECT id, status FROM runs").fetchall())
    assert statuses == {running["id"]: "interrupted", queued["id"]: "interrupted"}
