"""How the cost of a summary and of a training grows with the work, the service beside plain Keras, drawn in one
figure (``make bench`` runs it after bench/bench.py; ``make bench QUICK=1`` in CI).

Four curves, each a median over repetitions, with its p10-p90 band, in seconds:
  layers    a summary of Input [10, 8] then N Dense(8) layers, N from 1 to 100 (the service's most): the plainest
            deep stack a Keras user writes; on a sequence input each Dense acts on every time step
  units     a summary of Input [10, 8], LSTM(units), Dense(1), units from 8 to 4,096
  samples   the seed's second model (bench.SEED_2) trained for 1 epoch on 100 to 10,000 samples
  epochs    the same model on 1,000 samples for 1 to 10 epochs

The service's line is ``POST /v1/models/summary`` or ``POST /v1/trainings?wait=300`` over loopback HTTP (the service
started as bench/bench.py starts it); each summary's spec has a model name not sent before, so the summary cache
never answers. The plain-Keras line is this process: bench.keras_build_seconds (build ``keras.Sequential``, read
each layer's output shape and parameter count; Keras's initializers run, where the service builds with zero
weights) and bench.keras_fit (build, compile, fit), each training timed right after the service's of the same seed.

The service runs with ``LAYERWISE_MAX_PARAMS=100000000``: LSTM(4096) has 67 M parameters, past the default 30 M. A
point's repetitions stop early once that point has taken ``BUDGET_S`` seconds on one side (at least one is timed):
plain Keras's LSTM(4096) takes about 40 s a build here.

Writes the raw medians to ``bench/curves-results.json`` and the figure to ``docs/cost.png`` (``--quick``: a few
points and repetitions, to ``artifacts/``, so that CI leaves the committed figure alone). Asserts nothing about
time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench import SEED_2, keras_build_seconds, keras_fit, service, service_train, stats

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 15.0
MAX_PARAMS = 100_000_000

FULL = {
    "layers": [1, 2, 5, 10, 20, 50, 100],
    "units": [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
    # 14 steps (448 samples at the default batch of 32) is the most the service runs eagerly (eager_max_steps)
    "samples": [100, 200, 400, 500, 1000, 2000, 5000, 10000],
    "epochs": [1, 2, 3, 5, 7, 10],
}
QUICK = {"layers": [1, 10, 100], "units": [8, 64, 512], "samples": [100, 1000], "epochs": [1, 3]}
SUMMARY_REPS = {"full": 7, "quick": 2}
TRAINING_REPS = {"full": 7, "quick": 1}
TRAINING_SAMPLES_FOR_EPOCHS = 1000


def dense_stack(n: int, name: str | None = None) -> dict[str, Any]:
    """The spec of Input [10, 8] then ``n`` Dense(8) layers (``name``: the model's, to keep the cache out)."""
    spec: dict[str, Any] = {"input_shape": [10, 8], "layers": [{"type": "Dense", "units": 8} for _ in range(n)]}
    if name is not None:
        spec["name"] = name
    return spec


def one_lstm(units: int, name: str | None = None) -> dict[str, Any]:
    """The spec of Input [10, 8], LSTM(``units``), Dense(1)."""
    spec: dict[str, Any] = {
        "input_shape": [10, 8],
        "layers": [{"type": "LSTM", "units": units}, {"type": "Dense", "units": 1}],
    }
    if name is not None:
        spec["name"] = name
    return spec


def keras_layers(spec: dict[str, Any]) -> Callable[[int], list[Any]]:
    """The Keras layers of a spec of Dense and LSTM layers, as bench.keras_build_seconds takes them."""
    import keras

    def layers(_: int) -> list[Any]:
        made: list[Any] = [keras.Input(shape=tuple(spec["input_shape"]))]
        for layer in spec["layers"]:
            made.append(getattr(keras.layers, layer["type"])(layer["units"]))
        return made

    return layers


def within_budget(once: Callable[[], float], reps: int) -> list[float]:
    """Up to ``reps`` results of ``once()`` (seconds each), stopping once they add up to :data:`BUDGET_S`."""
    out: list[float] = []
    while len(out) < reps and sum(out) < BUDGET_S:
        out.append(once())
    return out


def summary_curve(
    http: httpx.Client, make: Callable[..., dict[str, Any]], xs: list[int], reps: int, names: itertools.count[int]
) -> dict[str, Any]:
    """Seconds of a summary of ``make(x)`` for each ``x``, through the service (a new model name each time) and
    in plain Keras."""

    def over_http(x: int) -> float:
        spec = make(x, name=f"curves_{next(names)}")
        began = time.perf_counter()
        r = http.post("/v1/models/summary", json=spec)
        elapsed = time.perf_counter() - began
        if r.status_code != 200:
            raise RuntimeError(f"summary of {x} failed: {r.status_code} {r.text[:500]}")
        return elapsed

    def in_keras(layers: Callable[[int], list[Any]]) -> float:
        return keras_build_seconds([0], layers, warm=0)[0]

    service_s, keras_s = [], []
    for x in xs:
        service_s.append(stats(within_budget(partial(over_http, x), reps)))
        keras_s.append(stats(within_budget(partial(in_keras, keras_layers(make(x))), reps)))
        print(
            f"  {x:>6}: service {service_s[-1]['median'] * 1000:9.1f} ms, Keras {keras_s[-1]['median'] * 1000:9.1f} ms"
        )
    return {"x": xs, "service_s": service_s, "keras_s": keras_s}


def training_curves(http: httpx.Client, points: dict[str, list[int]], reps: int) -> dict[str, dict[str, Any]]:
    """Seconds of a training of the seed's model for each number of samples (1 epoch) and of epochs
    (:data:`TRAINING_SAMPLES_FOR_EPOCHS` samples), through the service and with plain ``fit``: each service run
    timed right before the plain one of the same seed, repetitions outermost so that a slow minute of this shared
    machine spreads over every point."""
    runs = {
        "samples": [(s, 1) for s in points["samples"]],
        "epochs": [(TRAINING_SAMPLES_FOR_EPOCHS, e) for e in points["epochs"]],
    }
    service_train(http, 100, 1, 99)  # warm both sides, an eager and a graph run each
    service_train(http, 1000, 1, 99)
    keras_fit(100, 1, 99)
    keras_fit(1000, 1, 99)
    seconds: dict[tuple[str, int], tuple[list[float], list[float]]] = {}
    identical: dict[tuple[str, int], bool] = {}
    for seed in range(reps):
        for curve, sizes in runs.items():
            for i, (samples, epochs) in enumerate(sizes):
                s, service_losses = service_train(http, samples, epochs, seed)
                k, keras_losses = keras_fit(samples, epochs, seed)
                service_s, keras_s = seconds.setdefault((curve, i), ([], []))
                service_s.append(s)
                keras_s.append(k)
                identical[curve, i] = identical.get((curve, i), True) and service_losses == keras_losses
        print(f"  repetition {seed + 1} of {reps} done")
    out = {}
    for curve, sizes in runs.items():
        xs = [samples if curve == "samples" else epochs for samples, epochs in sizes]
        out[curve] = {
            "x": xs,
            "service_s": [stats(seconds[curve, i][0]) for i in range(len(xs))],
            "keras_s": [stats(seconds[curve, i][1]) for i in range(len(xs))],
            "history_identical": [identical[curve, i] for i in range(len(xs))],
        }
    return out


PANELS = {
    "layers": ("summary: Input [10, 8] + N x Dense(8)", "layers (N)", True),
    "units": ("summary: Input [10, 8], LSTM(units), Dense(1)", "units", True),
    "samples": ("training the seed's LSTM model: 1 epoch", "samples", True),
    "epochs": (f"training the seed's LSTM model: {TRAINING_SAMPLES_FOR_EPOCHS:,} samples", "epochs", False),
}


def draw(curves: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """The four curves in one PNG at ``path``: medians with their p10-p90 bands, log axes for the sweeps over
    orders of magnitude."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def seconds_label(s: float, _: object) -> str:
        return f"{s * 1000:g} ms" if s < 1 else f"{s:g} s"

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    for ax, (name, (heading, xlabel, log)) in zip(axes.flat, PANELS.items(), strict=True):
        curve = curves[name]
        for key, label, colour in (
            ("service_s", "layerwise (HTTP)", "tab:blue"),
            ("keras_s", "plain Keras", "tab:orange"),
        ):
            med = [p["median"] for p in curve[key]]
            ax.fill_between(
                curve["x"],
                [p["p10"] for p in curve[key]],
                [p["p90"] for p in curve[key]],
                color=colour,
                alpha=0.2,
                lw=0,
            )
            ax.plot(curve["x"], med, "o-", color=colour, label=label, ms=4)
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
            ax.yaxis.set_major_formatter(FuncFormatter(seconds_label))
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
        else:
            ax.set_ylim(bottom=0)
        ax.set_title(heading, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("time (median, p10-p90 band)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few points and repetitions (CI), to artifacts/")
    parser.add_argument("--out", type=Path, help="the results' JSON (default bench/curves-results.json)")
    parser.add_argument("--png", type=Path, help="the figure (default docs/cost.png)")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    points = QUICK if args.quick else FULL
    out = args.out or (
        ROOT / "artifacts" / "curves-results-quick.json" if args.quick else ROOT / "bench" / "curves-results.json"
    )
    png = args.png or (ROOT / "artifacts" / "cost-quick.png" if args.quick else ROOT / "docs" / "cost.png")

    import keras

    keras_build_seconds([0])  # warm this process's Keras (five of the seed's builds, then one)
    results: dict[str, Any] = {"quick": args.quick, "keras": keras.__version__, "cpus": os.cpu_count()}
    curves: dict[str, dict[str, Any]] = {}
    names = itertools.count()
    began = time.perf_counter()
    with service(LAYERWISE_MAX_PARAMS=str(MAX_PARAMS)) as (base, _), httpx.Client(base_url=base, timeout=300) as http:
        for i in range(5):  # warm the HTTP path and the worker
            http.post("/v1/models/summary", json=SEED_2 | {"name": f"warm_{i}"}).raise_for_status()
        print("summary against layers")
        curves["layers"] = summary_curve(http, dense_stack, points["layers"], SUMMARY_REPS[mode], names)
        print("summary against units")
        curves["units"] = summary_curve(http, one_lstm, points["units"], SUMMARY_REPS[mode], names)
        print("training against samples and epochs")
        curves |= training_curves(http, points, TRAINING_REPS[mode])
    results["curves"] = curves
    results["seconds"] = time.perf_counter() - began
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    title = f"layerwise against plain Keras {keras.__version__} ({mode} run, {os.cpu_count()} CPUs)"
    draw(curves, png, title)
    for curve in ("samples", "epochs"):
        if not all(curves[curve]["history_identical"]):
            print(f"note: {curve}: some service loss histories differ from plain Keras's", file=sys.stderr)
    print(f"written to {out.relative_to(ROOT)} and {png.relative_to(ROOT)} in {results['seconds']:.0f} s")


if __name__ == "__main__":
    main()
