"""The embedded run store faulted under a running server (issue 18), through ``python -m app`` on loopback: the
SQLite files made immutable (``chattr +i``: before, a SIGBUS killed the server) and deleted (before, not noticed,
and every run gone at the next start). The process lives, ``/readyz`` names the fault, writes are 503s that say
what to do, and a run accepted before the fault is told as such until its end can be recorded."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving import alive, served

LONG = {"data": {"samples": 10000}, "fit": {"epochs": 500}}  # far past the time limit below
TIME_LIMIT_S = 5  # the long run ends timed_out this long after it starts, while the store is faulted


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    """The store's file, in a directory of its own; its files made mutable again after the test."""
    path = tmp_path / "store" / "runs.sqlite3"
    path.parent.mkdir()
    yield path
    for file in path.parent.glob("*") if path.parent.exists() else ():
        subprocess.run(["chattr", "-i", str(file)], capture_output=True)


def _files(db: Path) -> list[str]:
    return sorted(str(path) for path in db.parent.glob(db.name + "*"))


def _wait_for(what: str, check: Any, within_s: float = 120.0) -> Any:
    """Poll ``check()`` until it returns something truthy; fail after ``within_s`` seconds (a bound, not a
    figure under test)."""
    deadline = time.monotonic() + within_s
    while not (value := check()):
        assert time.monotonic() < deadline, f"no {what} within {within_s:g} s"
        time.sleep(0.1)
    return value


def _assert_faulted(http: httpx.Client, pid: int, fault: str, seed: dict[str, Any]) -> dict[str, Any]:
    """The process alive and live, not ready with the fault named, and a POST refused by name; the 503's item."""
    assert alive(pid)
    assert http.get("/healthz").status_code == 200
    ready = http.get("/readyz")
    assert ready.status_code == 503 and ready.headers["retry-after"] == "1"
    assert ready.json()["run_store"] == fault and ready.json()["status"] == "starting"
    assert http.head("/readyz").status_code == 503
    r = http.post("/v1/trainings", json={"model": seed["seed_example_1"]})
    assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
    (item,) = r.json()["detail"]
    assert item["type"] == "store_unavailable" and item["loc"] == []
    assert alive(pid)
    return dict(item)


def test_a_store_made_immutable_under_the_server_is_named_refused_and_recovered(
    db: Path, tmp_path: Path, seed: dict[str, Any]
) -> None:
    log = tmp_path / "server.log"
    env = {"LAYERWISE_RUNS_DB": str(db), "LAYERWISE_TRAINING_TIME_LIMIT_S": str(TIME_LIMIT_S)}
    with (
        open(log, "wb") as stderr,
        served(env, stderr) as (base, proc),
        httpx.Client(base_url=base, timeout=70) as http,
    ):
        done = http.post("/v1/trainings?wait=60", json={"model": seed["seed_example_1"]}).json()
        assert done["status"] == "succeeded"
        running = http.post("/v1/trainings", json={"model": seed["seed_example_1"], **LONG}).json()
        _wait_for("running run", lambda: http.get(f"/v1/trainings/{running['id']}").json()["status"] == "running")
        # Written back, the mapped pages of a file are write-protected, so the next store into one faults (and a
        # fault on an immutable file is a SIGBUS); without the sync the crash waits for the kernel's writeback.
        os.sync()
        done_chattr = subprocess.run(["chattr", "+i", *_files(db)], capture_output=True, text=True)
        if done_chattr.returncode != 0:
            pytest.skip(f"chattr +i is refused here ({done_chattr.stderr.strip()}): needs root and ext4/xfs")

        item = _assert_faulted(http, proc.pid, "read_only", seed)
        assert "read-only" in item["msg"] and str(db) in item["msg"] and "chattr -i" in item["msg"]
        assert http.get(f"/v1/trainings/{done['id']}").json() == done  # what was stored still reads
        # The run accepted before the fault ends (its time limit) while nothing can be written: the server keeps
        # its end and says so, rather than show it running for ever.
        _wait_for("unrecorded end", lambda: f"run {running['id']}: its end (timed_out)" in log.read_text())
        r = http.get(f"/v1/trainings/{running['id']}")
        assert r.status_code == 503 and "read-only" in r.json()["detail"][0]["msg"]
        assert "timed_out" in r.json()["detail"][0]["msg"]
        assert alive(proc.pid)

        subprocess.run(["chattr", "-i", *_files(db)], check=True)
        _wait_for("ready again", lambda: http.get("/readyz").status_code == 200)
        assert http.get("/readyz").json()["run_store"] == "ok"
        ended = _wait_for(
            "the end recorded",
            lambda: (run := http.get(f"/v1/trainings/{running['id']}").json())["status"] == "timed_out" and run,
        )
        assert ended["error"]["kind"] == "time_limit" and ended["epochs_completed"] >= 0
        again = http.post("/v1/trainings?wait=60", json={"model": seed["seed_example_1"]})
        assert again.status_code == 201 and again.json()["history"] == done["history"]
    # The recorded end survives the server: a new one over the same file reads it as the old one answered.
    with served({"LAYERWISE_RUNS_DB": str(db)}) as (base, _), httpx.Client(base_url=base) as http:
        assert http.get(f"/v1/trainings/{running['id']}").json() == ended


@pytest.mark.parametrize("how", ["file unlinked", "directory removed"])
def test_a_store_deleted_under_the_server_is_named_and_refuses_writes(db: Path, how: str, seed: dict[str, Any]) -> None:
    with served({"LAYERWISE_RUNS_DB": str(db)}) as (base, proc), httpx.Client(base_url=base, timeout=70) as http:
        if how == "file unlinked":
            for path in _files(db):
                Path(path).unlink()
        else:
            shutil.rmtree(db.parent)
        item = _assert_faulted(http, proc.pid, "deleted", seed)
        assert "deleted" in item["msg"] and str(db) in item["msg"] and "restart" in item["msg"]
        assert http.get("/v1/trainings").status_code == 200  # reads of the open file still answer
