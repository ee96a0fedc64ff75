"""Who a client is, behind a proxy or not: the real server (uvicorn's proxy-headers handling) on loopback."""

from __future__ import annotations

import httpx
import pytest

from tests.serving import running_server

LIMITED = {"LAYERWISE_RATE_LIMIT": "3/minute", "LAYERWISE_RUNS_DB": ":memory:"}


def statuses_with_four_forwarded_addresses(base: str) -> list[int]:
    """Four requests that each claim another client address in X-Forwarded-For."""
    return [
        httpx.get(f"{base}/v1/trainings", headers={"X-Forwarded-For": f"203.0.113.{i}"}, timeout=30).status_code
        for i in range(4)
    ]


@pytest.mark.timeout(400)
def test_x_forwarded_for_is_ignored_unless_its_proxy_is_trusted() -> None:
    # By default a client is the address it connects from: a header cannot make it look like four clients.
    with running_server(LIMITED) as base:
        assert statuses_with_four_forwarded_addresses(base) == [200, 200, 200, 429]
    # Behind a proxy the operator names, each forwarded address is a client of its own.
    with running_server({**LIMITED, "LAYERWISE_FORWARDED_ALLOW_IPS": "127.0.0.1"}) as base:
        assert statuses_with_four_forwarded_addresses(base) == [200, 200, 200, 200]
