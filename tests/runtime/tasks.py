"""Top-level task functions for pool tests; spawned workers import them by module name."""

from __future__ import annotations

import os
import time


def sleep_then_pid(seconds: float) -> int:
    """Sleep, then return this worker's pid."""
    time.sleep(seconds)
    return os.getpid()


def hold_bytes(n: int, seconds: float) -> int:
    """Fill ``n`` bytes of memory (resident, not lazily mapped zeros), hold them ``seconds``, return the pid."""
    block = bytearray(b"\x01") * n
    time.sleep(seconds)
    del block
    return os.getpid()
