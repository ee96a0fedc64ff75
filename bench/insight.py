"""How fast the analytic engine answers, and how fast abusive models are refused, against real workers.

    make bench-insight        # or: .venv/bin/python bench/insight.py

Prints, for each case, the median and the worst of ``ROUNDS`` requests through the real app (``TestClient``
with its lifespan, so real summary and training workers), the summary worker's resident memory before and
after, and the engine's time alone on the seed's models. Then the Keras build time of the largest LSTM the
default limits let through, which is what ``max_params`` is sized against. Loopback only; bounded.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from fastapi.testclient import TestClient

from app.config import Limits, Settings
from app.engine import analyze
from app.main import create_app
from app.seed_examples import SEED_MODELS
from app.spec import ModelSpec

ROUNDS = 50

ABUSIVE: dict[str, dict[str, Any]] = {
    "LSTM of 200,000 units": {"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": 200_000}]},
    "500-layer stack": {"input_shape": [8], "layers": [{"type": "Dense", "units": 8}] * 500},
    "Dense of 10^9 parameters": {"input_shape": [122_070], "layers": [{"type": "Dense", "units": 8192}]},
}


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def ms(seconds: list[float]) -> str:
    return f"median {statistics.median(seconds) * 1e3:.2f} ms, worst {max(seconds) * 1e3:.2f} ms"


def refusals() -> None:
    with TestClient(create_app(Settings(runs_db=":memory:"))) as client:
        deadline = time.monotonic() + 180
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "workers not ready"
            time.sleep(0.1)
        workers = sorted(client.app.state.pools[0]._hub.ready["summary"])  # type: ignore[attr-defined]
        for name, body in ABUSIVE.items():
            before = {pid: rss_kib(pid) for pid in workers}
            times = []
            for _ in range(ROUNDS):
                started = time.perf_counter()
                r = client.post("/v1/models/summary", json=body)
                times.append(time.perf_counter() - started)
                assert r.status_code == 422, r.text
            after = {pid: rss_kib(pid) for pid in workers}
            moved = {pid: after[pid] - before[pid] for pid in workers}
            print(f"{name:26} 422 in {ms(times)} (HTTP, in-process); summary worker RSS change KiB: {moved}")
        times = []
        for _ in range(10):
            started = time.perf_counter()
            assert client.post("/v1/models/summary", json=SEED_MODELS["seed_example_2"]).status_code == 200
            times.append(time.perf_counter() - started)
        print(f"{'seed_example_2 summary':26} 200 in {ms(times)} (a Keras build in the worker)")


def engine() -> None:
    for name, body in SEED_MODELS.items():
        spec = ModelSpec.model_validate(body).normalized()
        times = []
        for _ in range(1000):
            started = time.perf_counter()
            analyze(spec)
            times.append(time.perf_counter() - started)
        print(f"engine on {name:22} median {statistics.median(times) * 1e6:.1f} us")


def largest_lstm() -> None:
    from app import keras_build

    units = 1
    while 4 * (units + 1) * (20 + units + 2) <= Limits.max_params:  # 4u(i+u+1) on 20 features
        units += 1
    spec = ModelSpec.model_validate({"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": units}]})
    started = time.perf_counter()
    params = keras_build.summarize(spec.normalized())["total_params"]
    print(
        f"Keras builds the largest LSTM max_params allows ({units} units, {params:,} params) in "
        f"{time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    engine()
    refusals()
    largest_lstm()
