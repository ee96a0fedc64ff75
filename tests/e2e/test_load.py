"""The load test's checks (``bench/locustfile.py``) fail when they should: locust, in a process of its own (it
monkey-patches the standard library for gevent), against a stub on loopback that answers what layerwise must
not -- a 500, a 429 without Retry-After, a status the API does not document."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


class MisbehavingLayerwise(BaseHTTPRequestHandler):
    """Summaries of repeated specs answer well; new ones 500. A training answers 429 without Retry-After, or
    200 (undocumented) with ?wait=. The list of runs is empty."""

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        spec = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/v1/models/summary":
            if str(spec.get("name", "")).startswith("load_"):
                self._answer(500, {"detail": [{"loc": [], "msg": "boom", "type": "internal"}]})
            else:
                self._answer(200, {"total_params": 6421, "layers": [{"index": 0}]})
        elif "wait=" in self.path:
            self._answer(200, {"id": "r1", "status": "succeeded"})
        else:
            self._answer(429, {"detail": [{"loc": [], "msg": "queue full", "type": "queue_full"}]})

    def do_GET(self) -> None:
        self._answer(200, {"items": [], "next_cursor": None})

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), MisbehavingLayerwise)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_locustfile_fails_on_5xx_429_without_retry_after_and_undocumented_status(stub: str, tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(ROOT / "bench" / "locustfile.py"),
            "--headless",
            "--host",
            stub,
            "--users",
            "2",
            "--spawn-rate",
            "2",
            "--run-time",
            "3s",
            "--think-min",
            "0",
            "--think-max",
            "0.01",
            "--only-summary",
            "--results-json",
            str(results),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr[-3000:]  # locust's own verdict: there were failures
    kinds = json.loads(results.read_text())["kinds"]
    assert kinds["summary (repeat)"]["failures"] == {}
    assert kinds["summary (repeat)"]["statuses"].keys() == {"200"}
    assert set(kinds["summary (new)"]["failures"]) == {
        "500 (a server error): " + json.dumps({"detail": [{"loc": [], "msg": "boom", "type": "internal"}]})
    }
    assert set(kinds["training"]["failures"]) == {"429 without a positive integer Retry-After (got None)"}
    assert kinds["training"]["retry_after_s"] == []
    (message,) = kinds["training ?wait=2"]["failures"]
    assert message.startswith("200 where the API documents [201, 202]")
    assert kinds["runs"]["failures"] == {}
