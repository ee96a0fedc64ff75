"""Top-level task functions for pool tests; spawned workers import them by module name."""

from __future__ import annotations

import os
import time


def sleep_then_pid(seconds: float) -> int:
    """Sleep, then return this worker's pid."""
    time.sleep(seconds)
    return os.getpid()
