"""End to end: the real server started as a user starts it (uvicorn in a subprocess), over loopback HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "LAYERWISE_HOST": "127.0.0.1",
        "LAYERWISE_PORT": str(port),
        "LAYERWISE_LOG_LEVEL": "warning",
    }
    proc = subprocess.Popen([sys.executable, "-m", "app"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, "server exited"
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server not ready in 180 s"
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_health_summary_and_training_over_http(server: str, seed: dict[str, Any]) -> None:
    with httpx.Client(base_url=server, timeout=120) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        r = http.post("/v1/models/summary", json=seed["seed_example_2"])
        assert r.status_code == 200
        assert [x["params"] for x in r.json()["layers"]] == [6120, 0, 301]

        r = http.post("/v1/models/summary", json=seed["seed_example_1_batch"], headers={"Accept": "text/plain"})
        assert "(5, 30)" in r.text and "Total params: 6,151" in r.text

        r = http.post("/v1/trainings?wait=60", json={"model": seed["seed_example_1"], "fit": {"epochs": 2}})
        assert r.status_code == 201
        run = r.json()
        assert len(run["history"]["loss"]) == 2
        assert http.get(r.headers["location"]).json()["id"] == run["id"]

        r = http.post(
            "/v1/models/summary",
            json={"input_shape": [10, 20], "layers": [{"type": "Flatten"}, {"type": "LSTM", "units": 3}]},
        )
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "layers", 1]


def _worker_pids(pid: int) -> set[int]:
    """Child processes of ``pid`` started by multiprocessing's spawn (not its resource tracker)."""
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found.update(int(p) for p in f.read().split())
    return {p for p in found if b"spawn_main" in open(f"/proc/{p}/cmdline", "rb").read()}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_sigterm_shuts_down_gracefully_and_stops_the_workers() -> None:
    port = free_port()
    env = {**os.environ, "LAYERWISE_PORT": str(port), "LAYERWISE_LOG_LEVEL": "info"}
    proc = subprocess.Popen([sys.executable, "-m", "app"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        workers = _worker_pids(proc.pid)
        assert len(workers) == 2  # a summary and a training worker
        proc.terminate()
        _, stderr = proc.communicate(timeout=60)
        # uvicorn re-raises the signal after a graceful shutdown, so the exit status is -SIGTERM.
        assert proc.returncode in (0, -15)
        assert "Application shutdown complete" in stderr
        assert not [pid for pid in workers if _alive(pid)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
