"""The load test's users: clients of layerwise that mix summaries, trainings and reads of runs.

Run by ``bench/load.py`` (``make load``), which starts the service and calls locust twice: one user with no
think time and only the ``summary`` tasks (the idle latency), then the load. It also runs on its own against
a running service::

    .venv/bin/locust -f bench/locustfile.py --host http://127.0.0.1:8000 --headless -u 50 -r 10 -t 60s

Each user, between 0.5 and 2 s of think time (``--think-min`` / ``--think-max``, seconds), as the playground
does while someone edits a model, picks one task by weight:

=====  ==================  ===========================================================================
 4     summary (repeat)    one of 16 fixed specs (the seed's four models and variants): a cache hit
 3     summary (new)       a seed model varied, under a name never sent before: a Keras build in a worker
 1     training            a small training of a seed model (64-128 samples, 1-2 epochs); half of them
                           with ``?wait=2``. Not retried after a 429: the user carries on with other work
 2     run                 ``GET /v1/trainings/{id}`` of a run this user started
 1     runs                ``GET /v1/trainings?limit=20``
=====  ==================  ===========================================================================

A response is a failure (in locust's statistics, and in the JSON written with ``--results-json``) when it is
a 5xx, a 429 without a positive integer ``Retry-After``, or any status outside what the API documents for
that valid request (a training: 201, 202 or 429, with ``Location``, and the run's status agreeing).
"""

from __future__ import annotations

import json
import random
import time
from argparse import ArgumentParser
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from locust import FastHttpUser, events, tag, task
from locust.contrib.fasthttp import ResponseContextManager
from locust.env import Environment
from workload import REPEATED, new_spec, training_body

from app.runs.status import FINAL_STATUSES

SUMMARY = "/v1/models/summary"
TRAININGS = "/v1/trainings"


# ------------------------------------------------------------------------------------------------- the tally
@dataclass
class Kind:
    """What was seen of one kind of request: latencies in ms, statuses, failures by message, Retry-After (s)."""

    ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    retry_after_s: list[int] = field(default_factory=list)


@dataclass
class Tally:
    """Every request of the run by kind (locust's ``name``), and the run's wall-clock window (epoch seconds)."""

    kinds: dict[str, Kind] = field(default_factory=dict)
    began: float = field(default_factory=time.time)
    ended: float | None = None

    def reset(self) -> None:
        """Forget everything so far: the measured window starts now (after the users are spawned)."""
        self.kinds.clear()
        self.began = time.time()
        self.ended = None

    def record(self, name: str, response_time_ms: float, status: int, retry_after: str | None, failure: str) -> None:
        """One finished request; ``status`` 0 when no response came, ``failure`` empty when it succeeded."""
        kind = self.kinds.setdefault(name, Kind())
        kind.ms.append(response_time_ms)
        kind.statuses[status] += 1
        if failure:
            kind.failures[failure[:300]] += 1
        if status == 429 and retry_after is not None and retry_after.isdigit():
            kind.retry_after_s.append(int(retry_after))

    def as_json(self) -> dict[str, Any]:
        """Plain data: the window in seconds and each kind's raw figures."""
        return {
            "began": self.began,
            "ended": self.ended if self.ended is not None else time.time(),
            "kinds": {
                name: {
                    "ms": kind.ms,
                    "statuses": {str(s): n for s, n in sorted(kind.statuses.items())},
                    "failures": dict(kind.failures),
                    "retry_after_s": kind.retry_after_s,
                }
                for name, kind in self.kinds.items()
            },
        }


TALLY = Tally()


def _options(parser: ArgumentParser) -> None:
    parser.add_argument("--think-min", type=float, default=0.5, help="Least think time between tasks, seconds.")
    parser.add_argument("--think-max", type=float, default=2.0, help="Most think time between tasks, seconds.")
    parser.add_argument("--results-json", default="", help="Write every request's figures here at the end.")


def _on_request(name: str, response_time: float, response: Any, exception: BaseException | None, **_: Any) -> None:
    status = int(getattr(response, "status_code", 0) or 0)
    retry_after = header(response, "Retry-After") if status else None
    TALLY.record(name, response_time, status, retry_after, "" if exception is None else str(exception))


def _on_test_start(environment: Environment, **_: Any) -> None:
    TALLY.reset()


def _on_spawned(user_count: int, **_: Any) -> None:
    # Locust's own statistics restart here with --reset-stats; so do these.
    if _option("reset_stats", False):
        TALLY.reset()


def _on_test_stop(environment: Environment, **_: Any) -> None:
    TALLY.ended = time.time()


def _on_quitting(environment: Environment, **_: Any) -> None:
    path = _option("results_json", "")
    if path:
        Path(path).write_text(json.dumps(TALLY.as_json()) + "\n")


_ENVIRONMENT: list[Environment] = []


def _on_init(environment: Environment, **_: Any) -> None:
    _ENVIRONMENT[:] = [environment]


def _option(name: str, default: Any) -> Any:
    """A command-line option of this run (``default`` when locust runs as a library without them)."""
    options = _ENVIRONMENT[0].parsed_options if _ENVIRONMENT else None
    return getattr(options, name, default) if options is not None else default


events.init_command_line_parser.add_listener(_options)
events.init.add_listener(_on_init)
events.test_start.add_listener(_on_test_start)
events.spawning_complete.add_listener(_on_spawned)
events.request.add_listener(_on_request)
events.test_stop.add_listener(_on_test_stop)
events.quitting.add_listener(_on_quitting)


# ------------------------------------------------------------------------------------------------- the checks
def header(response: Any, name: str) -> str | None:
    """A response header's value (case-insensitive name), ``None`` when it is absent."""
    headers = getattr(response, "headers", None)
    value = headers.get(name) if headers is not None else None
    return value if isinstance(value, str) else None


def check(response: ResponseContextManager, expected: set[int]) -> dict[str, Any] | None:
    """Mark ``response`` a success or a failure by the rules in the module's docstring; return its JSON body
    when it succeeded with one."""
    status = response.status_code
    if status == 0:
        response.failure(f"no response: {getattr(response, 'error', None)!r}")
        return None
    if status >= 500:
        response.failure(f"{status} (a server error): {(response.text or '')[:200]}")
        return None
    if status == 429:
        retry_after = header(response, "Retry-After")
        if retry_after is None or not retry_after.isdigit() or int(retry_after) < 1:
            response.failure(f"429 without a positive integer Retry-After (got {retry_after!r})")
        else:
            response.success()
        return None
    if status not in expected:
        response.failure(f"{status} where the API documents {sorted(expected)}: {(response.text or '')[:200]}")
        return None
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        response.failure(f"{status} with a body that is not JSON: {(response.text or '')[:200]}")
        return None
    response.success()
    return body


class LayerwiseUser(FastHttpUser):
    """One client of layerwise (see the module's docstring for the tasks and their weights)."""

    network_timeout = 60.0  # seconds; a request that takes longer is a failure
    connection_timeout = 10.0

    def wait_time(self) -> float:
        """Think time before the next task, seconds (uniform between --think-min and --think-max)."""
        return self.rng.uniform(_option("think_min", 0.5), _option("think_max", 2.0))

    def on_start(self) -> None:
        self.rng = random.Random()
        self.runs: list[str] = []

    @tag("summary")
    @task(4)
    def summary_repeat(self) -> None:
        with self.client.post(
            SUMMARY, json=self.rng.choice(REPEATED), name="summary (repeat)", catch_response=True
        ) as response:
            self._check_summary(response)

    @tag("summary")
    @task(3)
    def summary_new(self) -> None:
        with self.client.post(SUMMARY, json=new_spec(self.rng), name="summary (new)", catch_response=True) as response:
            self._check_summary(response)

    def _check_summary(self, response: ResponseContextManager) -> None:
        body = check(response, {200})
        if body is not None and not (body.get("total_params", 0) > 0 and body.get("layers")):
            response.failure(f"a summary without layers or parameters: {str(body)[:200]}")

    @task(1)
    def training(self) -> None:
        wait = self.rng.random() < 0.5
        with self.client.post(
            f"{TRAININGS}?wait=2" if wait else TRAININGS,
            json=training_body(self.rng),
            name="training ?wait=2" if wait else "training",
            catch_response=True,
        ) as response:
            run = check(response, {201, 202})
            if run is None:
                return
            location = header(response, "Location")
            if location != f"{TRAININGS}/{run.get('id')}":
                response.failure(f"{response.status_code} with Location {location!r} for run {run.get('id')!r}")
            elif (response.status_code == 201) != (run.get("status") in FINAL_STATUSES):
                response.failure(f"{response.status_code} with a run that is {run.get('status')!r}")
            else:
                self.runs = [*self.runs[-9:], str(run["id"])]

    @task(2)
    def read_run(self) -> None:
        if not self.runs:
            return
        run_id = self.rng.choice(self.runs)
        with self.client.get(f"{TRAININGS}/{run_id}", name="run", catch_response=True) as response:
            run = check(response, {200})
            if run is not None and run.get("status") not in {*FINAL_STATUSES, "queued", "running"}:
                response.failure(f"a run whose status is {run.get('status')!r}")

    @task(1)
    def list_runs(self) -> None:
        with self.client.get(f"{TRAININGS}?limit=20", name="runs", catch_response=True) as response:
            page = check(response, {200})
            if page is not None and not isinstance(page.get("items"), list):
                response.failure("a page of runs without items")
