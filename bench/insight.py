"""How fast the analytic engine answers, and how fast abusive models are refused, against real workers.

    make bench-insight        # or: .venv/bin/python bench/insight.py

Prints the engine's time alone on the seed's models; then, for each request of the hostile catalogue
(tests/hostile_requests.py), the median and the worst of ``ROUNDS`` requests to the real server over loopback
HTTP, and whether the summary worker's resident memory moved; then the time Keras takes to build and
initialise the largest LSTM the default limits let a training have, which is what ``max_training_params`` is sized
against.
Bounded; asserts only the answers' statuses.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import httpx

from app.analysis.engine import analyze
from app.config import Limits
from app.spec.examples import SEED_MODELS
from app.spec.model import ModelSpec

ROUNDS = 20
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the catalogue lives with the tests

from tests.hostile_requests import CATALOGUE, OK_MODEL  # noqa: E402
from tests.serving import free_port, start_server, stop_server  # noqa: E402


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def ms(seconds: list[float]) -> str:
    return f"median {statistics.median(seconds) * 1e3:6.2f} ms, worst {max(seconds) * 1e3:6.2f} ms"


def refusals() -> None:
    """Each request of the hostile catalogue ``ROUNDS`` times over real HTTP (uvicorn on loopback), its answer
    time, and whether the summary worker's memory moved."""
    port = free_port()
    proc = start_server(port, {"LAYERWISE_RUNS_DB": ":memory:", "LAYERWISE_RATE_LIMIT": ""})
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=60) as http:
            workers = http.get("/readyz").json()["pools"]["summary"]["pids"]
            before = sum(rss_kib(pid) for pid in workers)
            worst_median = 0.0
            for case in CATALOGUE:
                kwargs = case.request_kwargs()
                times = []
                for _ in range(ROUNDS):
                    started = time.perf_counter()
                    r = http.request(case.method, case.path, **kwargs)
                    times.append(time.perf_counter() - started)
                    assert r.status_code == case.status, (case.name, r.status_code, r.text[:200])
                worst_median = max(worst_median, statistics.median(times))
                print(f"{case.name:44} {case.status} in {ms(times)}")
            moved = sum(rss_kib(pid) for pid in workers) - before
            print(
                f"{len(CATALOGUE)} hostile requests x {ROUNDS}: the slowest median {worst_median * 1e3:.2f} ms; "
                f"summary worker RSS change {moved} KiB"
            )
            times = []
            for _ in range(10):
                started = time.perf_counter()
                assert http.post("/v1/models/summary", json=OK_MODEL).status_code == 200
                times.append(time.perf_counter() - started)
            print(f"{'a valid summary afterwards (cached)':44} 200 in {ms(times)}")
    finally:
        stop_server(proc)


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
    from app.runtime.keras import build as keras_build

    units = 1
    while 4 * (units + 1) * (20 + units + 2) <= Limits.max_training_params:  # 4u(i+u+1) on 20 features
        units += 1
    spec = ModelSpec.model_validate({"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": units}]})
    started = time.perf_counter()
    params = keras_build.build_model(spec.normalized()).count_params()  # Keras's initializers, as a training
    print(
        f"Keras builds and initialises the largest LSTM max_training_params allows ({units} units, {params:,} "
        f"params) in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    engine()
    refusals()
    largest_lstm()
