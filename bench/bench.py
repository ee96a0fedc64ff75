"""layerwise against plain Keras, in one run on one machine (``make bench``; ``make bench QUICK=1`` in CI).

Starts the service as a user would (``python -m app`` on a free loopback port), and measures in the same run
each figure below against its in-process Keras baseline, reporting medians, spread (p10-p90) and the ratio.
Writes ``bench/results.json`` and prints a table. It is a benchmark, not a test: it asserts nothing about time
(only that the service's training history equals plain Keras's for the same seed).

Figures (target ratio in brackets):
  summary_new        summary over HTTP of a spec not seen before / in-process Keras build        [<= 0.7]
  summary_repeat     the same spec again / in-process Keras build                                 [<= 0.1]
  train_small        the seed's model, 100 samples x 1 epoch, through the service / plain warm fit [<= 0.25]
  train_large        the same model, 10,000 samples x 5 epochs, the same                          [<= 0.7]
  train_new          100 x 1 of a model the service has not trained before (a new input width     [none]
                     each time), the same
  train_small_graph  train_small with compile.run_eagerly=false: the worker's compiled model reused [none]
                     (trainings: each service run timed right after its plain one; histories compared)
  start              process start to first answered summary / bare `import keras`                [<= 1.0]
  worker_rss         the most a summary worker's RSS grew from 10 to 1,000 distinct summaries, MB [<= 50]
  throughput         summaries/s with 16 concurrent clients / (cores / build time)                [>= 0.8]
  throughput_p99     p99 of one summary under that load / summary_new's median                    [<= 5]
  two_users          the slower of two trainings started at once: alone / together                [>= 0.45]

The service runs with one summary worker per core (LAYERWISE_SUMMARY_WORKERS), never recycled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests/serving.py starts the service
from tests.serving import free_port, served  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SEED_2 = {
    "input_shape": [10, 20],
    "layers": [
        {"type": "LSTM", "units": 30, "return_sequences": True, "name": "lstm_layer"},
        {"type": "Flatten", "name": "flatten_layer"},
        {"type": "Dense", "units": 1, "name": "dense_layer"},
    ],
}


def distinct_spec(i: int) -> dict[str, Any]:
    """The seed's second model on ``20 + i`` input features: a spec the service has not seen, of about the
    seed's cost (the kernel grows by 120 weights per feature; the recurrent kernel and its orthogonal
    initialisation, O(units^3), stay the seed's)."""
    spec: dict[str, Any] = json.loads(json.dumps(SEED_2))
    spec["input_shape"] = [10, 20 + i]
    return spec


def stats(samples: list[float]) -> dict[str, float]:
    """Median and p10/p90 of a list of seconds (or any unit)."""
    ordered = sorted(samples)

    def q(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * (len(ordered) - 1) + 0.5))]

    return {"median": statistics.median(ordered), "p10": q(0.1), "p90": q(0.9), "n": len(ordered)}


def timed(fn: Callable[[], Any], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        began = time.perf_counter()
        fn()
        out.append(time.perf_counter() - began)
    return out


@contextmanager
def service(**env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``python -m app`` on a free loopback port (runs in memory, ``env`` on top); yields its base URL and process
    once /readyz answers 200. The per-client rate limit is off: the benchmark is one client sending over a
    thousand summaries a minute, and measures the service, not the limiter."""
    base_env = {"LAYERWISE_RUNS_DB": ":memory:", "LAYERWISE_RATE_LIMIT": ""}
    with served({**base_env, **env}, subprocess.DEVNULL, ready_within_s=300) as running:
        yield running


# ---------------------------------------------------------------------------------------------- baselines
def seed_layers(i: int) -> list[Any]:
    """The Keras layers of :func:`distinct_spec`'s model ``i``, its ``keras.Input`` first."""
    import keras

    return [
        keras.Input(shape=(10, 20 + i)),
        keras.layers.LSTM(30, return_sequences=True, name="lstm_layer"),
        keras.layers.Flatten(name="flatten_layer"),
        keras.layers.Dense(1, name="dense_layer"),
    ]


def keras_build_seconds(
    offsets: list[int], layers: Callable[[int], list[Any]] = seed_layers, warm: int = 5
) -> list[float]:
    """In-process Keras: for each of ``offsets``, construct ``layers(i)`` (a ``keras.Input`` then layers),
    build ``keras.Sequential`` of them and read every layer's output shape and parameter count, as a summary
    does; seconds for each, after ``warm`` builds untimed. ``layers`` is :func:`distinct_spec`'s models
    unless given. Keras's initializers run, as they do for any Keras user."""
    import keras

    def build(i: int) -> None:
        model = keras.Sequential(layers(i))
        [(layer.output.shape, layer.count_params()) for layer in model.layers]

    for i in range(warm):
        build(i)
    out = []
    for i in offsets:
        began = time.perf_counter()
        build(i)
        out.append(time.perf_counter() - began)
    return out


def keras_fit(samples: int, epochs: int, seed: int, features: int = 20) -> tuple[float, list[float]]:
    """Plain Keras in a warm process, as the notebook does it: build, compile, fit (default graph mode), for the
    seed's second model on ``features`` input features.

    Data and seeding as the service makes them, so the histories must be equal. Returns (seconds, losses).
    """
    import keras
    import numpy as np

    began = time.perf_counter()
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input(shape=(10, features)),
            keras.layers.LSTM(30, return_sequences=True, name="lstm_layer"),
            keras.layers.Flatten(name="flatten_layer"),
            keras.layers.Dense(1, name="dense_layer"),
        ]
    )
    model.compile(loss="mse", optimizer="adam")
    rng = np.random.default_rng(seed)
    x = rng.random((samples, 10, features), dtype=np.float32)
    y = rng.integers(0, 2, size=(samples, 1)).astype(np.float32)
    history = model.fit(x, y, epochs=epochs, verbose=0)
    return time.perf_counter() - began, [float(v) for v in history.history["loss"]]


def import_keras_seconds(reps: int) -> list[float]:
    code = "import keras"
    out = []
    for _ in range(reps):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        out.append(time.perf_counter() - began)
    return out


# ---------------------------------------------------------------------------------------------- service side
def start_to_first_summary(reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        port = free_port()
        env = {**os.environ, "LAYERWISE_PORT": str(port), "LAYERWISE_LOG_LEVEL": "warning"}
        env["LAYERWISE_RUNS_DB"] = ":memory:"
        began = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "app"], env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    r = httpx.post(f"http://127.0.0.1:{port}/v1/models/summary", json=SEED_2, timeout=60)
                    if r.status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.01)
            out.append(time.perf_counter() - began)
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    return out


def summary_pids(base: str) -> list[int]:
    pools = httpx.get(f"{base}/readyz").json()["pools"]
    return list(pools["summary"].get("pids", []))


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


async def concurrent_summaries(base: str, clients: int, total: int, first: int) -> tuple[float, list[float]]:
    """Summaries/s for ``total`` distinct specs sent by ``clients`` concurrent clients, and each one's seconds.

    Each client sends from its own loopback address (127.0.0.2, 127.0.0.3, ...: Linux routes all of 127/8 to
    ``lo``), so the service sees ``clients`` clients, as it would in a deployment, and its per-client build cap
    (``LAYERWISE_MAX_BUILDS_PER_CLIENT``) applies to each one, not to all of them as one.
    """
    counter = iter(range(first, first + total))
    latencies: list[float] = []

    async def client(n: int) -> None:
        transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{2 + n}")
        async with httpx.AsyncClient(base_url=base, timeout=120, transport=transport) as http:
            for i in counter:
                sent = time.perf_counter()
                r = await http.post("/v1/models/summary", json=distinct_spec(i))
                r.raise_for_status()
                latencies.append(time.perf_counter() - sent)

    began = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    return total / (time.perf_counter() - began), latencies


def service_train(
    http: httpx.Client, samples: int, epochs: int, seed: int, features: int = 20, run_eagerly: bool | None = None
) -> tuple[float, list[float]]:
    """The seed's second model (on ``features`` input features) trained through the service,
    ``POST /v1/trainings?wait=300``, as :func:`keras_fit` trains it in process: (seconds to the answer, losses).

    Raises:
        RuntimeError: the run did not succeed.
    """
    model = {**SEED_2, "input_shape": [10, features]}
    body = {
        "model": model,
        "data": {"samples": samples},
        "fit": {"epochs": epochs},
        "compile": {"run_eagerly": run_eagerly},
        "seed": seed,
    }
    began = time.perf_counter()
    r = http.post("/v1/trainings", params={"wait": 300}, json=body)
    elapsed = time.perf_counter() - began
    run = r.json()
    if r.status_code != 201 or run["status"] != "succeeded":
        raise RuntimeError(f"training failed: {r.status_code} {r.text[:500]}")
    losses: list[float] = run["history"]["loss"]
    return elapsed, losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few repetitions and small sizes (CI)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    args = parser.parse_args()
    quick = args.quick
    reps = 3 if quick else 25
    results: dict[str, Any] = {"quick": quick, "python": sys.version.split()[0], "cpus": os.cpu_count()}
    figures: dict[str, dict[str, Any]] = {}

    # Process start, before anything else warms the page cache differently for one side.
    keras_import = import_keras_seconds(2 if quick else 5)
    first_summary = start_to_first_summary(1 if quick else 5)
    figures["start"] = {
        "service_s": stats(first_summary),
        "baseline_s": stats(keras_import),
        "ratio": statistics.median(first_summary) / statistics.median(keras_import),
        "target": "<= 1.0",
    }

    import keras

    results["keras"] = keras.__version__
    build = keras_build_seconds(list(range(200, 200 + reps)))
    build_median = statistics.median(build)

    cores = os.cpu_count() or 1
    # Workers never recycled: worker_rss measures the growth that LAYERWISE_SUMMARY_WORKER_MAX_TASKS bounds.
    with service(LAYERWISE_SUMMARY_WORKERS=str(cores), LAYERWISE_SUMMARY_WORKER_MAX_TASKS="0") as (base, _):
        with httpx.Client(base_url=base, timeout=120) as http:
            for i in range(7, 12):  # warm the HTTP path and the worker
                http.post("/v1/models/summary", json=distinct_spec(i)).raise_for_status()
            fresh = iter(range(1000, 1000 + reps))

            def summary(spec: dict[str, Any]) -> None:
                http.post("/v1/models/summary", json=spec).raise_for_status()

            new = timed(lambda: summary(distinct_spec(next(fresh))), reps)
            repeat = timed(lambda: summary(SEED_2), reps * 4)
            figures["summary_new"] = {
                "service_s": stats(new),
                "baseline_s": stats(build),
                "ratio": statistics.median(new) / build_median,
                "target": "<= 0.7",
            }
            figures["summary_repeat"] = {
                "service_s": stats(repeat),
                "baseline_s": stats(build),
                "ratio": statistics.median(repeat) / build_median,
                "target": "<= 0.1",
            }

            # train_new: a new input width each run, so the service's worker has never trained that model.
            # train_small_graph: compile.run_eagerly=false, so that the worker's compiled model is reused.
            for name, samples, epochs, n, target, new_model, eager in (
                ("train_small", 100, 1, 3 if quick else 7, "<= 0.25", False, None),
                ("train_large", 1000 if quick else 10000, 1 if quick else 5, 1 if quick else 9, "<= 0.7", False, None),
                ("train_new", 100, 1, 3 if quick else 7, "none", True, None),
                ("train_small_graph", 100, 1, 3 if quick else 7, "none", False, False),
            ):
                keras_fit(samples, epochs, 99)  # warm the baseline's process
                service_s, baseline_s, equal = [], [], True
                for seed in range(n):
                    features = 21 + seed if new_model else 20
                    s, service_losses = service_train(http, samples, epochs, seed, features, eager)
                    b, keras_losses = keras_fit(samples, epochs, seed, features)
                    service_s.append(s)
                    baseline_s.append(b)
                    equal = equal and service_losses == keras_losses
                figures[name] = {
                    "service_s": stats(service_s),
                    "baseline_s": stats(baseline_s),
                    "ratio": statistics.median(service_s) / statistics.median(baseline_s),
                    "target": target,
                    "history_identical": equal,
                }

            # Two users at once: each one's speed (alone / together) with the service's one training worker.
            samples, epochs = (500, 1) if quick else (2000, 3)
            alone = statistics.median(service_train(http, samples, epochs, seed)[0] for seed in range(3))
            with ThreadPoolExecutor(2) as both:
                together = list(both.map(lambda seed: service_train(http, samples, epochs, seed)[0], (10, 11)))
            figures["two_users"] = {
                "alone_s": alone,
                "together_s": together,
                "ratio": min(alone / t for t in together),
                "target": ">= 0.45",
            }

        pids = summary_pids(base)
        if pids:
            with httpx.Client(base_url=base, timeout=120) as http:
                for i in range(2000, 2010):
                    http.post("/v1/models/summary", json=distinct_spec(i)).raise_for_status()
                after_10 = {p: rss_mb(p) for p in pids}
                count = 100 if quick else 1000
                # Each worker builds its share: about count / workers of the distinct summaries.
                for i in range(2010, 2010 + count * len(pids) - 10):
                    http.post("/v1/models/summary", json=distinct_spec(i)).raise_for_status()
                after_n = {p: rss_mb(p) for p in pids}
            figures["worker_rss"] = {
                "after_10_mb": sum(after_10.values()),
                f"after_{count}_mb": sum(after_n.values()),
                "growth_mb": max(after_n[p] - after_10[p] for p in pids),
                "target": "<= 50 (MB, after 1,000)",
            }
        total = 64 if quick else 400
        rate, latencies = asyncio.run(concurrent_summaries(base, 16, total, 5000))
        idle = statistics.median(new)
        p99 = sorted(latencies)[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        figures["throughput"] = {
            "summaries_per_s": rate,
            "workers": len(pids),
            "cores": cores,
            "build_s": build_median,
            "ratio": rate / (cores / build_median),
            "target": ">= 0.8",
        }
        figures["throughput_p99"] = {"p99_s": p99, "idle_s": idle, "ratio": p99 / idle, "target": "<= 5"}

    results["figures"] = figures
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nlayerwise bench ({'quick' if quick else 'full'}; Keras {results['keras']}, {results['cpus']} CPUs)")
    print(f"{'figure':<16}{'service (median)':>20}{'baseline (median)':>20}{'ratio':>10}  target")
    for name, f in figures.items():
        if "service_s" in f:
            line = f"{name:<16}{f['service_s']['median'] * 1000:>17.1f} ms{f['baseline_s']['median'] * 1000:>17.1f} ms"
            print(f"{line}{f['ratio']:>10.3f}  {f['target']}")
        elif name == "worker_rss":
            print(f"{name:<16}{'':>20}{'':>20}{f['growth_mb']:>7.1f} MB  {f['target']}")
        elif name == "two_users":
            line = f"{name:<16}{max(f['together_s']) * 1000:>17.1f} ms{f['alone_s'] * 1000:>17.1f} ms"
            print(f"{line}{f['ratio']:>10.3f}  {f['target']}")
        elif name == "throughput_p99":
            line = f"{name:<16}{f['p99_s'] * 1000:>17.1f} ms{f['idle_s'] * 1000:>17.1f} ms"
            print(f"{line}{f['ratio']:>10.3f}  {f['target']}")
        else:
            print(f"{name:<16}{f['summaries_per_s']:>15.1f} /s{'':>20}{f['ratio']:>10.3f}  {f['target']}")
    for name in ("train_small", "train_large", "train_new", "train_small_graph"):
        if not figures[name]["history_identical"]:
            print(f"WARNING: {name}: the service's loss history differs from plain Keras's", file=sys.stderr)
    print(f"written to {args.out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
