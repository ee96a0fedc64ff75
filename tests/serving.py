"""The real server, started as a user starts it (``python -m app``) on a free loopback port, for tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

import httpx


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


Stream = IO[Any] | int | None


def start_server(port: int, env: Mapping[str, str] = {}, stderr: Stream = None) -> subprocess.Popen[bytes]:
    """Start ``python -m app`` on ``port`` with ``env`` over this environment; return once ``/readyz`` is 200.

    Raises:
        AssertionError: the server exited, or was not ready within 180 s.
    """
    environ = {**os.environ, "LAYERWISE_HOST": "127.0.0.1", "LAYERWISE_PORT": str(port)}
    environ.setdefault("LAYERWISE_LOG_LEVEL", "warning")
    environ.update(env)
    proc = subprocess.Popen([sys.executable, "-m", "app"], env=environ, stderr=stderr)
    deadline = time.monotonic() + 180
    while True:
        assert proc.poll() is None, "server exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server not ready in 180 s"
        time.sleep(0.2)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL after 30 s."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def running_server(env: Mapping[str, str] = {}, stderr: Stream = None) -> Iterator[str]:
    """A ready server on a free port for the ``with`` block; yields its base URL, stops it afterwards."""
    port = free_port()
    proc = start_server(port, env, stderr)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(proc)


def worker_pids(pid: int) -> set[int]:
    """Child processes of ``pid`` started by multiprocessing's spawn (its workers, not its resource tracker)."""
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found.update(int(p) for p in f.read().split())
    return {p for p in found if b"spawn_main" in open(f"/proc/{p}/cmdline", "rb").read()}


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
