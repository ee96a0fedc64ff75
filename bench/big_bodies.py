"""How fast, and how large, the answers to bodies made to cost the most are, against a real server on loopback.

    .venv/bin/python bench/big_bodies.py [--rounds 5]

Each body is within the default body limit (1 MiB). Prints, per body, its size, the status, the median and the
worst answer time of ``--rounds`` requests and the answer's size. Bounded (seconds a body); asserts only that each
answer is a 4xx.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/serving.py starts the server as a user does

from tests.serving import running_server  # noqa: E402

LSTM_ALL_WRONG = {
    "type": "LSTM",
    **{field: "x" for field in ("units", "activation", "use_bias", "return_sequences", "stateful", "dropout")},
}
BODIES: dict[str, tuple[str, Any]] = {
    "500,000 layers of 1": ("/v1/models/summary", {"input_shape": [10, 20], "layers": [1] * 500_000}),
    "1,000 LSTMs with every field wrong": (
        "/v1/models/summary",
        {"input_shape": [10, 20], "layers": [LSTM_ALL_WRONG] * 1000},
    ),
    "one layer with 90,000 unknown keys": (
        "/v1/models/summary",
        {"input_shape": [10, 20], "layers": [{"type": "Dense", "units": 1, **{f"k{i}": 0 for i in range(90_000)}}]},
    ),
    "Keras JSON of 40,000 Lambda layers": (
        "/v1/models/summary",
        {"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda"}] * 40_000}},
    ),
    "training of 500,000 layers": ("/v1/trainings", {"model": {"input_shape": [10, 20], "layers": [1] * 500_000}}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    env = {"LAYERWISE_RUNS_DB": ":memory:", "LAYERWISE_RATE_LIMIT": ""}
    with running_server(env, inherit_settings=False) as base, httpx.Client(base_url=base, timeout=120) as client:
        for name, (path, body) in BODIES.items():
            raw = json.dumps(body, separators=(",", ":")).encode()
            times, sizes, statuses = [], [], set()
            for _ in range(args.rounds):
                start = time.perf_counter()
                r = client.post(path, content=raw, headers={"Content-Type": "application/json"})
                times.append(time.perf_counter() - start)
                sizes.append(len(r.content))
                statuses.add(r.status_code)
            assert all(400 <= s < 500 for s in statuses), statuses
            median = statistics.median(times) * 1000
            print(
                f"{name}: {len(raw) / 1024:,.0f} KiB -> {sorted(statuses)}, median {median:,.1f} ms, "
                f"worst {max(times) * 1000:,.1f} ms, answer {max(sizes):,} bytes"
            )


if __name__ == "__main__":
    main()
