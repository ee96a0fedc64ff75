"""How a real server's pools recover, and what /readyz says meanwhile.

    .venv/bin/python bench/worker_recovery.py

1. Kills the idle training worker (SIGKILL) ``KILLS`` times, with no request but /readyz: the seconds until a new
   worker is warm, and the /readyz answers meanwhile.
2. For ``LOOP_S`` seconds, starts a training and cancels it at once, over and over (each cancel that lands
   while the model is built or traced outlasts the cancel grace and costs a worker), polling /readyz ten
   times a second in another thread: the share of 503s.

Bounded: about a minute and a half of loopback traffic against a server of its own.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.serving import served  # noqa: E402

KILLS = 3
LOOP_S = 60.0
MODEL = {"input_shape": [10, 20], "layers": [{"type": "LSTM", "units": 30}, {"type": "Dense", "units": 1}]}


def killed_idle_worker(http: httpx.Client) -> tuple[float, Counter[int]]:
    """Kill the idle training worker; seconds until another is warm, and the /readyz statuses meanwhile."""
    (victim,) = http.get("/readyz").json()["pools"]["training"]["pids"]
    os.kill(victim, signal.SIGKILL)
    began, statuses = time.monotonic(), Counter[int]()
    while True:
        r = http.get("/readyz")
        statuses[r.status_code] += 1
        pids = r.json()["pools"]["training"]["pids"]
        if pids and victim not in pids:
            return time.monotonic() - began, statuses
        if time.monotonic() - began > 120:
            raise TimeoutError("no new training worker in 120 s")
        time.sleep(0.05)


def start_cancel_loop(base: str, http: httpx.Client) -> tuple[Counter[int], int]:
    """Start-then-cancel for ``LOOP_S`` seconds; /readyz statuses polled meanwhile, and the runs started."""
    statuses, stop = Counter[int](), threading.Event()

    def probe() -> None:
        with httpx.Client(base_url=base, timeout=30) as prober:
            while not stop.is_set():
                statuses[prober.get("/readyz").status_code] += 1
                time.sleep(0.1)

    thread = threading.Thread(target=probe)
    thread.start()
    runs, deadline = 0, time.monotonic() + LOOP_S
    body = {"model": MODEL, "data": {"samples": 10000}, "fit": {"epochs": 200}}
    while time.monotonic() < deadline:
        r = http.post("/v1/trainings", json=body)
        if r.status_code == 202:
            runs += 1
            http.delete(f"/v1/trainings/{r.json()['id']}")
        else:
            time.sleep(0.2)
    stop.set()
    thread.join()
    return statuses, runs


def main() -> None:
    env = {"LAYERWISE_RUNS_DB": ":memory:", "LAYERWISE_RATE_LIMIT": "", "LAYERWISE_MAX_ACTIVE_RUNS_PER_CLIENT": "1000"}
    with served(env, inherit_settings=False) as (base, _), httpx.Client(base_url=base, timeout=60) as http:
        for i in range(KILLS):
            seconds, statuses = killed_idle_worker(http)
            print(f"kill {i + 1}: a new warm worker after {seconds:.1f} s; /readyz answered {dict(statuses)}")
        statuses, runs = start_cancel_loop(base, http)
        share = statuses[503] / max(1, sum(statuses.values()))
        print(f"start-then-cancel for {LOOP_S:g} s: {runs} runs; /readyz answered {dict(statuses)} ({share:.0%} 503)")


if __name__ == "__main__":
    main()
