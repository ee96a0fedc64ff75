"""A run's time limit, as both run channels check it at every batch (the pebble worker's connection channel in
:mod:`app.runtime.tasks`, the Celery child's Redis channel in :mod:`app.scaleout.worker`)."""

from __future__ import annotations

import time


class Deadline:
    """The moment a run's time limit passes, counted on the monotonic clock from when it is made."""

    def __init__(self, time_limit_s: float) -> None:
        self.at = time.monotonic() + time_limit_s

    def stop_reason(self, requested: str | None) -> str | None:
        """Why the run must stop: ``requested`` (a stop request) if any, else ``"timed_out"`` once the limit has
        passed, else None."""
        if requested is None and time.monotonic() > self.at:
            return "timed_out"
        return requested
