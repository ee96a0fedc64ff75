"""A training run's states: the one state machine every store, executor, the recorder and the page follow.

A run moves ``queued -> running -> succeeded | failed | cancelled | timed_out``; ``interrupted`` marks a run
the server stopped under. A queued run may also end unstarted (cancelled before a worker took it, failed to
be handed to one, interrupted). The stores build their SQL and Lua from :data:`UNFINISHED`, the recorder checks
:func:`can_move`, and the page reads :data:`FINAL_STATUSES` from the OpenAPI document's ``FinalRunStatus``: a new
state is one edit here (and its tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, get_args

RunStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "timed_out", "interrupted"]
# Every state, in the order of the Literal (the OpenAPI enum's order).
STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)
# The states of a run not yet ended, in the order a run passes them.
UNFINISHED: tuple[RunStatus, ...] = ("queued", "running")
# The states a run ends in: nothing changes a run in one of them.
FINAL_STATUSES: frozenset[RunStatus] = frozenset(STATUSES) - frozenset(UNFINISHED)
# Where a run may go from each state; a final state goes nowhere.
TRANSITIONS: Mapping[RunStatus, frozenset[RunStatus]] = {
    "queued": frozenset[RunStatus]({"running"}) | FINAL_STATUSES,
    "running": FINAL_STATUSES,
    **{status: frozenset() for status in FINAL_STATUSES},
}


def can_move(old: RunStatus, new: RunStatus) -> bool:
    """Whether a run in ``old`` may move to ``new``."""
    return new in TRANSITIONS[old]
