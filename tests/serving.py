"""The real server, started as a user starts it (``python -m app``) on a free loopback port: for the tests,
and for the benchmarks in bench/ (which put the repository on ``sys.path`` to import this)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
Stream = IO[Any] | int | None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(
    port: int,
    env: Mapping[str, str] = {},
    stderr: Stream = None,
    *,
    stdout: Stream = None,
    inherit_settings: bool = True,
    ready_within_s: float = 180.0,
) -> subprocess.Popen[bytes]:
    """Start ``python -m app`` on ``port`` with ``env`` over this process's environment; return it once
    ``/readyz`` answers 200.

    Args:
        inherit_settings: keep the ``LAYERWISE_`` variables of this process's environment (a benchmark drops
            them, so that its figures depend on its own settings only).

    Raises:
        RuntimeError: the server exited during start-up, or was not ready within ``ready_within_s`` seconds.
    """
    environ = {k: v for k, v in os.environ.items() if inherit_settings or not k.startswith("LAYERWISE_")}
    environ.update(LAYERWISE_HOST="127.0.0.1", LAYERWISE_PORT=str(port))
    environ.setdefault("LAYERWISE_LOG_LEVEL", "warning")
    environ.update(env)
    proc = subprocess.Popen([sys.executable, "-m", "app"], env=environ, cwd=ROOT, stdout=stdout, stderr=stderr)
    deadline = time.monotonic() + ready_within_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited during start-up (status {proc.returncode})")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            stop_server(proc)
            raise RuntimeError(f"the server was not ready within {ready_within_s:g} s")
        time.sleep(0.1)


def stop_server(proc: subprocess.Popen[bytes], grace_s: float = 60.0) -> None:
    """SIGTERM (a graceful shutdown), then SIGKILL after ``grace_s`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def served(
    env: Mapping[str, str] = {}, stderr: Stream = None, **kw: Any
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A ready server on a free port for the ``with`` block: yields its base URL and process; stops it after.
    Keyword arguments as :func:`start_server`'s."""
    port = free_port()
    proc = start_server(port, env, stderr, **kw)
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        stop_server(proc)


@contextmanager
def running_server(env: Mapping[str, str] = {}, stderr: Stream = None, **kw: Any) -> Iterator[str]:
    """:func:`served`, yielding the base URL alone."""
    with served(env, stderr, **kw) as (base, _):
        yield base


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
