"""Runs survive restarts: a server started again over the same SQLite file keeps finished runs and marks the
ones it was running ``interrupted`` (after a graceful stop and after SIGKILL)."""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
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


def _start_refused(env: dict[str, str], limit_file_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if limit_file_bytes is not None:  # a full disk: writes past this size fail (EFBIG; Python ignores SIGXFSZ)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_bytes, limit_file_bytes))

    environ = {**os.environ, "LAYERWISE_PORT": str(free_port()), **env}
    return subprocess.run(
        [sys.executable, "-m", "app"], env=environ, capture_output=True, text=True, timeout=60, preexec_fn=limit
    )


@pytest.mark.parametrize(
    ("where", "needle"),
    [
        ("/proc/layerwise/runs.sqlite3", "unable to open database file"),  # a path nothing may create
        ("{tmp}", "unable to open database file"),  # a directory
    ],
)
def test_an_unusable_store_path_is_one_clear_line_at_start(tmp_path: Path, where: str, needle: str) -> None:
    done = _start_refused({"LAYERWISE_RUNS_DB": where.format(tmp=tmp_path)})
    assert done.returncode == 2
    assert done.stderr.startswith("layerwise: cannot use the run store LAYERWISE_RUNS_DB=")
    assert needle in done.stderr and "writable directory" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_full_disk_at_start_is_one_clear_line(tmp_path: Path) -> None:
    done = _start_refused({"LAYERWISE_RUNS_DB": str(tmp_path / "runs.sqlite3")}, limit_file_bytes=1024)
    assert done.returncode == 2, done.stderr
    assert "cannot use the run store" in done.stderr and "Traceback" not in done.stderr
