"""Checks `make container-test` runs against containers over loopback (standard library only, so it needs
no virtual environment; not collected by pytest).

    python3 tests/container_smoke.py embedded http://127.0.0.1:PORT
    python3 tests/container_smoke.py scale http://127.0.0.1:PORT1 http://127.0.0.1:PORT2 WORKERS

Each prints what it checked and the run ids it made; any failed check raises (exit status 1).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from app.spec.examples import SEED_MODELS, SEQ2SEQ

# The seed notebook's figures (Keras 2 printed the same): each layer's params and output shape.
EXPECTED = {
    "seed_example_1": ([6120, 31], [[None, 30], [None, 1]]),
    "seed_example_1_batch": ([6120, 31], [[5, 30], [5, 1]]),
    "seed_example_2": ([6120, 0, 301], [[None, 10, 30], [None, 300], [None, 1]]),
    "seed_example_2_batch": ([6120, 0, 301], [[5, 10, 30], [5, 300], [5, 1]]),
}
LONG = {"data": {"samples": 10000}, "fit": {"epochs": 200}}


def call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    """(status, decoded body or text, headers) of one request; no exception for 4xx/5xx."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=300) as r:
            status, raw, hdrs = r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        status, raw, hdrs = e.code, e.read().decode(), e.headers
    try:
        return status, json.loads(raw), hdrs
    except json.JSONDecodeError:
        return status, raw, hdrs


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)
    print(f"  ok: {what}")


def until(base: str, run_id: str, statuses: set[str], timeout_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        _, run, _ = call("GET", f"{base}/v1/trainings/{run_id}")
        if run["status"] in statuses:
            return dict(run)
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run['status']} after {timeout_s} s")
        time.sleep(0.1)


def metric(base: str, name: str) -> float | None:
    _, text, _ = call("GET", f"{base}/metrics")
    for line in str(text).splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def embedded(base: str) -> None:
    """The image on its own: health, the seed's summaries, a training, metrics, request ids."""
    check(call("GET", f"{base}/healthz")[1] == {"status": "ok"}, "/healthz")
    check(call("GET", f"{base}/readyz")[0] == 200, "/readyz is 200")
    for name, model in SEED_MODELS.items():
        status, summary, _ = call("POST", f"{base}/v1/models/summary", model)
        params, shapes = EXPECTED[name]
        check(status == 200, f"{name}: summary 200")
        check([layer["params"] for layer in summary["layers"]] == params, f"{name}: params {params}")
        check([layer["output_shape"] for layer in summary["layers"]] == shapes, f"{name}: shapes {shapes}")
        check(f"Total params: {sum(params):,}" in summary["text"], f"{name}: Keras's table")
    status, summary, _ = call("POST", f"{base}/v1/models/summary", SEQ2SEQ)
    check(status == 200 and summary["total_params"] == 718_173, "a graph model (seq2seq): 718,173 params")
    status, svg, _ = call("POST", f"{base}/v1/models/diagram", SEQ2SEQ)
    check(status == 200 and "<svg" in str(svg) and "decoder_lstm" in str(svg), "its diagram, drawn by Graphviz")
    began = time.monotonic()
    status, run, headers = call(
        "POST",
        f"{base}/v1/trainings?wait=120",
        {"model": SEED_MODELS["seed_example_1"], "fit": {"epochs": 2}},
        {"X-Request-ID": "container-test-1"},
    )
    check(status == 201 and run["status"] == "succeeded", f"a training succeeded ({time.monotonic() - began:.2f} s)")
    check(len(run["history"]["loss"]) == 2, "two epochs of history")
    check(headers["x-request-id"] == "container-test-1", "the request id comes back")
    check((metric(base, 'layerwise_trainings_ended_total{status="succeeded"}') or 0) >= 1, "/metrics counts it")
    print(f"run {run['id']}")


def scale(base: str, other: str, workers: int) -> None:
    """Compose's scale profile: trainings on Celery workers, any API replica answering for any run."""
    deadline = time.monotonic() + 240
    while metric(other, 'layerwise_workers{pool="training"}') != workers:
        if time.monotonic() > deadline:
            raise AssertionError(f"/metrics never counted {workers} training workers")
        time.sleep(1)
    check(True, f"/metrics of the second replica counts {workers} training workers")
    # Warm every worker's child with one tiny training each, and time one as the Celery path's latency.
    tiny = {"model": {"input_shape": [4, 3], "layers": [{"type": "Dense", "units": 1}]}, "fit": {"epochs": 1}}
    began = time.monotonic()
    status, run, _ = call("POST", f"{base}/v1/trainings?wait=180", tiny)
    check(
        status == 201 and run["status"] == "succeeded",
        f"a tiny training through Celery ({time.monotonic() - began:.2f} s)",
    )
    # As many trainings at once as there are workers: each goes to a worker of its own.
    ids: list[str] = []
    for i in range(workers):
        body = {"model": SEED_MODELS["seed_example_2"], "data": {"samples": 3000}, "fit": {"epochs": 3}, "seed": i}
        status, run, _ = call("POST", f"{base}/v1/trainings", body)
        check(status == 202, f"training {i} queued")
        ids.append(run["id"])
    for run_id in ids:
        run = until(other, run_id, {"succeeded", "failed"})
        check(
            run["status"] == "succeeded" and len(run["history"]["loss"]) == 3, f"{run_id} succeeded (read on replica 2)"
        )
    # A long run started on one replica, cancelled on the other.
    status, run, _ = call("POST", f"{other}/v1/trainings", {"model": SEED_MODELS["seed_example_1"], **LONG})
    until(base, run["id"], {"running"})
    time.sleep(0.5)
    began = time.monotonic()
    status, cancelled, _ = call("DELETE", f"{base}/v1/trainings/{run['id']}")
    check(
        status == 200 and cancelled["status"] == "cancelled",
        f"cancelled on the other replica ({time.monotonic() - began:.2f} s)",
    )
    for run_id in ids:
        print(f"run {run_id}")


if __name__ == "__main__":
    if sys.argv[1] == "embedded":
        embedded(sys.argv[2])
    elif sys.argv[1] == "scale":
        scale(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        raise SystemExit(__doc__)
