"""The time limit both run channels check (app.runtime.deadline)."""

from __future__ import annotations

from app.runtime.deadline import Deadline


def test_a_stop_request_wins_and_the_limit_stops_the_rest() -> None:
    assert Deadline(60).stop_reason(None) is None
    assert Deadline(60).stop_reason("cancelled") == "cancelled"
    assert Deadline(-1).stop_reason(None) == "timed_out"
    assert Deadline(-1).stop_reason("cancelled") == "cancelled"
