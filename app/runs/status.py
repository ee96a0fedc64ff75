"""A training run's states, gathered: what exists today in one place.

A run moves ``queued -> running -> succeeded | failed | cancelled | timed_out``; ``interrupted`` marks a run
the server stopped under. The stores' SQL and Lua, the recorder and the page still spell some of these out.
"""

from __future__ import annotations

from typing import Literal

RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "timed_out", "interrupted"]
# The states a run ends in: nothing changes a run in one of them.
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "timed_out", "interrupted"})
# The states of a run not yet ended, in the order a run passes them.
UNFINISHED = ("queued", "running")
