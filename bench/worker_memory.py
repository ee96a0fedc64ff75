"""A training worker's resident memory over many graph-mode trainings, with and without recycling.

    .venv/bin/python bench/worker_memory.py --runs 200 --max-tasks 50   # the default recycling
    .venv/bin/python bench/worker_memory.py --runs 200 --max-tasks 0    # never recycled: the leak

Starts one real training pool (spawned workers, as the server's), runs the seed's first model for one graph-mode
epoch ``--runs`` times, one after another, and after each run reads the resident memory (VmRSS) of the pool's
warm worker: the one the next run goes to (a fresh one after a recycle). Prints the figure after run 10, after
the last run, and the largest seen. Bounded: ``--runs`` trainings of about a second each.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.runtime import tasks  # noqa: E402
from app.runtime.pool import ChannelHub, WorkerPool  # noqa: E402
from app.spec.examples import SEED_MODELS  # noqa: E402
from app.spec.training import TrainingSpec  # noqa: E402

MIB = 2**20


def rss_bytes(pid: int) -> int | None:
    """VmRSS of ``pid`` in bytes; None if it has gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    except (FileNotFoundError, ProcessLookupError):
        return None


async def warm_rss(pool: WorkerPool, timeout_s: float = 120.0) -> int:
    """The resident bytes of the pool's warm worker, waiting (up to ``timeout_s``) for one after a recycle."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for pid in pool.ready_pids:
            if (rss := rss_bytes(pid)) is not None:
                return rss
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no warm worker in {timeout_s:g} s")


async def measure(runs: int, max_tasks: int) -> dict[int, int]:
    """Resident bytes of the warm worker after each of ``runs`` graph-mode trainings, by run number."""
    spec: dict[str, Any] = (
        TrainingSpec.model_validate(
            {
                "model": SEED_MODELS["seed_example_1"],
                "compile": {"run_eagerly": False},
                "data": {"samples": 256},
                "fit": {"epochs": 1},
            }
        )
        .normalized()
        .model_dump()
    )
    hub = ChannelHub(lambda message: None)
    hub.start()
    pool = WorkerPool("training", 1, hub, max_tasks=max_tasks)
    pool.start()
    figures: dict[int, int] = {}
    try:
        await warm_rss(pool)
        for run in range(1, runs + 1):
            out = await pool.call(tasks.training_task, f"bench-{run}", spec, 60.0, 0.25, 0)
            assert out["ok"] and out["result"]["execution"] == "graph", out
            figures[run] = await warm_rss(pool)
            if run % 10 == 0:
                print(f"  after run {run:4d}: {figures[run] / MIB:7.1f} MiB", flush=True)
    finally:
        pool.close()
        hub.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--max-tasks", type=int, default=50, help="pebble's max_tasks per worker; 0: never recycle")
    args = parser.parse_args()
    print(f"{args.runs} graph-mode trainings, max_tasks={args.max_tasks}")
    figures = asyncio.run(measure(args.runs, args.max_tasks))
    tenth, last = figures[min(10, args.runs)], figures[args.runs]
    print(
        f"after run 10: {tenth / MIB:.1f} MiB; after run {args.runs}: {last / MIB:.1f} MiB "
        f"({(last - tenth) / MIB:+.1f} MiB); largest: {max(figures.values()) / MIB:.1f} MiB"
    )


if __name__ == "__main__":
    main()
