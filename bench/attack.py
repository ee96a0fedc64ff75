"""The attack of issue 18: 20 hostile clients for 60 s against the service with its protections on (``make attack``;
``make attack QUICK=1``, 10 s, in CI), while one normal user works.

Starts the service as a user would (``python -m app`` on a free loopback port, every ``LAYERWISE_`` setting
explicit: :func:`service_env`; the protections at their defaults, read from :class:`app.config.Settings`), warms
it, then for ``--duration`` seconds runs, in one asyncio loop, the hostile clients of :func:`kinds`, each from a
loopback address of its own (127.0.0.2 and up: Linux routes all of 127/8 to ``lo``, so each is a client to the
per-client limits), while a normal user in a process of its own (127.0.0.200) asks for summaries (a cached seed
model and an unseen one, alternately) and ``/healthz``, four of each a second. Meanwhile a thread reads the
resident memory of every worker process four times a second (``/readyz`` names the pools' pids).

After the attack it waits for requests still in flight (a slowloris body takes ``LAYERWISE_BODY_TIMEOUT_S``),
cancels the runs the attack got accepted that have not ended, kills the idle training worker with SIGKILL and
times its replacement (:func:`worker_recovery.killed_idle_worker`), then reads every accepted run back. Writes
``bench/attack-results.json`` and prints a table; stops everything it started (also on an error or Ctrl-C).

Bounded: loopback only; ``--duration`` seconds of attack (60; quick 10), then at most
``LAYERWISE_BODY_TIMEOUT_S`` + 15 s for requests in flight and two minutes for runs to end; at most
``LAYERWISE_MAX_CONNECTIONS`` + 64 sockets a client; the memory-hostile trainings are sized by the service's
own estimate to ``--memory-fraction`` of ``LAYERWISE_MAX_MEMORY_BYTES`` (0.9; quick 0.25), and the training
worker's memory cap stays at its default.

It fails (exit status 1) on a bug: any 5xx but a documented 503 (``too_many_connections``, ``worker_error``,
``worker_timeout``, ``store_unavailable``, each with ``Retry-After``), a 429 without a positive ``Retry-After``,
a normal user's request with no answer (a reset, a timeout), a service that exited or no longer answers the
seed's summary correctly, or an accepted run that cannot be read afterwards. The normal user's latencies are
reported against the issue's goals (summary p99 < 1 s, ``/healthz`` p99 < 100 ms), never asserted: this
machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from load import check_alive, drain_and_read_runs, quantile, still_correct
from worker_recovery import killed_idle_worker
from workload import new_spec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ holds the server's starter, the catalogue
from app.analysis.engine import analyze
from app.config import Settings
from app.spec.examples import SEED_MODELS
from app.spec.training import TrainingSpec
from tests.hostile_requests import CATALOGUE
from tests.serving import served

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "attack"
SUMMARY = "/v1/models/summary"
TRAININGS = "/v1/trainings"
NORMAL_USER_ADDRESS = "127.0.0.200"
#: The 503s the API documents, each with Retry-After: the server's connection bound, a worker that died or timed
#: out, a run store that failed. Any other 5xx is a bug.
DOCUMENTED_503 = {"too_many_connections", "worker_error", "worker_timeout", "store_unavailable"}
GOAL_SUMMARY_P99_MS = 1000.0
GOAL_HEALTHZ_P99_MS = 100.0
MIB = 2**20

#: The protections, at their defaults (read from the settings, so that the bench follows a changed default).
PROTECTIONS = (
    "max_body_bytes",
    "max_header_bytes",
    "header_timeout_s",
    "body_timeout_s",
    "keep_alive_timeout_s",
    "max_connections",
    "max_connections_per_client",
    "max_event_streams",
    "max_event_streams_per_client",
    "rate_limit",
    "max_active_runs_per_client",
    "max_builds_per_client",
    "forwarded_allow_ips",
    "max_queued_runs",
    "max_memory_bytes",
    "training_worker_max_rss_bytes",
    "training_worker_max_tasks",
    "training_time_limit_s",
    "cancel_grace_s",
)


def default(name: str) -> Any:
    """The default of the :class:`app.config.Settings` field ``name``."""
    return Settings.model_fields[name].default


def service_env(runs_db: Path) -> dict[str, str]:
    """Every ``LAYERWISE_`` setting of the service under attack: :data:`PROTECTIONS` at their defaults, one worker
    a pool, runs kept in ``runs_db`` (a file, as by default, so the runs-lost check reads a real store)."""
    env = {f"LAYERWISE_{name.upper()}": str(default(name)) for name in PROTECTIONS}
    env.update(
        LAYERWISE_RUNS_DB=str(runs_db),
        LAYERWISE_LOG_LEVEL="warning",
        LAYERWISE_SUMMARY_WORKERS="1",
        LAYERWISE_TRAINING_WORKERS="1",
        LAYERWISE_SUMMARY_CACHE_SIZE="1024",
        LAYERWISE_MAX_WAIT_S="300",
    )
    return env


# ---------------------------------------------------------------------------------------------------- answers
@dataclass
class Answer:
    """One request's outcome: its HTTP status as text (``"200"``) or what happened instead (``"reset"``,
    ``"timeout"``, ``"no answer"``, an httpx error's name), the seconds it took, its body's bytes, its headers
    (lower-case names), the ``type`` of its first error item, if any, and the id of the run it created, if any."""

    status: str
    seconds: float
    body_bytes: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    error_type: str = ""
    run_id: str = ""


def error_type_of(body: bytes) -> str:
    """The ``type`` of the first item of an error body in the service's shape, or ``""``."""
    try:
        detail = json.loads(body).get("detail")
        return str(detail[0]["type"]) if isinstance(detail, list) and detail else ""
    except (ValueError, AttributeError, KeyError, TypeError):
        return ""


def parse_raw(data: bytes, seconds: float) -> Answer:
    """An :class:`Answer` from the bytes a server wrote on a socket (one HTTP/1.1 answer, read to the close)."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split()
    if len(parts) < 2 or not parts[1].isdigit():
        return Answer("no answer" if not data else "garbled", seconds, len(body))
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return Answer(parts[1], seconds, len(body), headers, error_type_of(body))


@dataclass
class Tally:
    """What one kind of attack tried and got: requests, statuses, the slowest answer (s), the largest body
    (bytes), error types; ``bugs`` are answers that make the run fail (see the module's docstring)."""

    kind: str
    clients: int = 0
    tried: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    error_types: Counter[str] = field(default_factory=Counter)
    slowest_s: float = 0.0
    largest_body_bytes: int = 0
    bugs: list[str] = field(default_factory=list)

    def record(self, a: Answer) -> None:
        """Count ``a``, and note it as a bug if it is an undocumented 5xx, or a 429 or 503 without a positive
        integer ``Retry-After``."""
        self.tried += 1
        self.statuses[a.status] += 1
        if a.error_type:
            self.error_types[a.error_type] += 1
        self.slowest_s = max(self.slowest_s, a.seconds)
        self.largest_body_bytes = max(self.largest_body_bytes, a.body_bytes)
        if not a.status.isdigit():
            return
        status, retry_after = int(a.status), a.headers.get("retry-after", "")
        if status >= 500 and not (status == 503 and a.error_type in DOCUMENTED_503):
            self.bugs.append(f"{self.kind}: {status} {a.error_type or '(no error type)'}")
        elif status in (429, 503) and not (retry_after.isdigit() and int(retry_after) > 0):
            self.bugs.append(f"{self.kind}: {status} {a.error_type} without a positive Retry-After")

    def as_dict(self) -> dict[str, Any]:
        """The tally as JSON: times in ms."""
        return {
            "clients": self.clients,
            "tried": self.tried,
            "statuses": dict(sorted(self.statuses.items())),
            "error_types": dict(sorted(self.error_types.items())),
            "slowest_ms": round(self.slowest_s * 1000, 1),
            "largest_body_bytes": self.largest_body_bytes,
            "bugs": sorted(set(self.bugs)),
        }


# ---------------------------------------------------------------------------------------------------- clients
class Client:
    """One hostile client: its loopback ``source`` address, an httpx client bound to it, the kind's tally, the
    attack's deadline (``time.monotonic()``), and where accepted run ids go."""

    def __init__(self, base: str, source: str, tally: Tally, deadline: float, accepted: list[str], connections: int):
        self.base, self.source, self.tally, self.deadline, self.accepted = base, source, tally, deadline, accepted
        host_port = base.split("//", 1)[1]
        self.host, port = host_port.split(":")
        self.port = int(port)
        transport = httpx.AsyncHTTPTransport(
            local_address=source, limits=httpx.Limits(max_connections=connections, max_keepalive_connections=4)
        )
        self.http = httpx.AsyncClient(base_url=base, transport=transport, timeout=httpx.Timeout(60.0))

    def running(self) -> bool:
        """Whether the attack's time is not up."""
        return time.monotonic() < self.deadline

    async def send(self, method: str, path: str, **kw: Any) -> Answer:
        """One request over httpx, recorded; a transport error is an answer named after it."""
        began = time.perf_counter()
        try:
            r = await self.http.request(method, path, **kw)
        except httpx.TimeoutException:
            answer = Answer("timeout", time.perf_counter() - began)
        except httpx.TransportError as exc:
            answer = Answer(type(exc).__name__, time.perf_counter() - began)
        else:
            answer = Answer(
                str(r.status_code),
                time.perf_counter() - began,
                len(r.content),
                dict(r.headers),
                error_type_of(r.content),
            )
            if r.status_code in (201, 202):
                answer.run_id = r.json()["id"]
                self.accepted.append(answer.run_id)
        self.tally.record(answer)
        return answer

    async def raw(self, parts: list[bytes], gap_s: float = 0.0, wait_s: float = 90.0) -> Answer:
        """Open a socket from :attr:`source`, write ``parts`` ``gap_s`` seconds apart (stopping when the server
        closes), and read the answer to the server's close, within ``wait_s`` seconds; recorded."""
        began = time.perf_counter()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, local_addr=(self.source, 0)), 10
            )
        except (OSError, TimeoutError) as exc:
            answer = Answer(f"connect: {type(exc).__name__}", time.perf_counter() - began)
            self.tally.record(answer)
            return answer

        async def write() -> None:
            for i, part in enumerate(parts):
                if i and gap_s:
                    await asyncio.sleep(gap_s)
                if writer.is_closing() or reader.at_eof():
                    return
                writer.write(part)
                await writer.drain()

        sender = asyncio.create_task(write())
        try:
            data = await asyncio.wait_for(reader.read(), wait_s)
            answer = parse_raw(data, time.perf_counter() - began)
        except TimeoutError:
            answer = Answer("timeout", time.perf_counter() - began)
        except OSError:  # the server reset the connection (it closed with our bytes unread)
            answer = Answer("reset", time.perf_counter() - began)
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            writer.close()
        self.tally.record(answer)
        return answer


def many(n: int, loop: Callable[[Client], Awaitable[None]]) -> Callable[[Client], Awaitable[None]]:
    """A client that runs ``n`` copies of ``loop`` at once (concurrent requests from one address)."""

    async def run(c: Client) -> None:
        await asyncio.gather(*(loop(c) for _ in range(n)))

    return run


def json_bytes(body: Any) -> bytes:
    """``body`` as compact JSON bytes (encoded once, not per request: the attacker's time is not the server's)."""
    return json.dumps(body, separators=(",", ":")).encode()


def post_head(path: str, length: int, host: str, extra: str = "") -> bytes:
    """The head of a JSON POST of ``length`` bytes to ``path``."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
        f"{extra}\r\n"
    ).encode()


JSON = {"Content-Type": "application/json"}
BIG_LAYERS = json_bytes({"input_shape": [10, 20], "layers": [1] * 500_000})
BIG_KEYS = json_bytes(
    {"input_shape": [10, 20], "layers": [{"type": "Dense", "units": 1, **{f"k{i}": 0 for i in range(90_000)}}]}
)
LAMBDAS = json_bytes({"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda"}] * 40_000}})
TRAINING_OF_BIG_LAYERS = json_bytes({"model": {"input_shape": [10, 20], "layers": [1] * 500_000}})
DEEP = b"[" * 100_000 + b"]" * 100_000
MALFORMED: list[tuple[bytes, str]] = [
    (b'{"input_shape": [10, 20], "layers": [', "application/json"),
    (b'{"input_shape": [10, NaN], "layers": []}', "application/json"),
    (b"\xff\xfe{not json at all", "application/json"),
    (b"input_shape=10&layers=1", "application/x-www-form-urlencoded"),
    (b'{"input_shape": [10, 20], "layers": [{"type": "Dense", "units": 1e999}]}', "application/json"),
    (b'{"a": 1, "a": 2, "a": 3}', "application/json"),
]
CACHED = [SEED_MODELS[name] for name in sorted(SEED_MODELS)]
SMALL_TRAINING = {"model": SEED_MODELS["seed_example_2"], "data": {"samples": 64}, "fit": {"epochs": 1}}
LONG_TRAINING = {"model": SEED_MODELS["seed_example_2"], "data": {"samples": 1000}, "fit": {"epochs": 1000}}


def lstm_training(batch: int, timesteps: int = 4096, units: int = 256) -> dict[str, Any]:
    """A long-sequence LSTM training of one graph-mode step at ``batch``: the activations of every timestep of
    every sample are kept for the backward pass, so its memory grows with batch x timesteps x units."""
    return {
        "model": {
            "input_shape": [timesteps, 32],
            "layers": [{"type": "LSTM", "units": units, "return_sequences": True}, {"type": "Dense", "units": 1}],
        },
        "compile": {"run_eagerly": False},
        "data": {"samples": batch},
        "fit": {"epochs": 1, "batch_size": batch},
    }


def estimated_bytes(body: dict[str, Any]) -> int:
    """The engine's training-memory estimate of a training body, in bytes (what the service compares with
    ``LAYERWISE_MAX_MEMORY_BYTES``)."""
    spec = TrainingSpec.model_validate(body).normalized()
    assert spec.fit.batch_size is not None
    return analyze(spec.model).training_memory(spec.fit.batch_size, spec.compile.optimizer).total_bytes


def largest_batch_within(budget_bytes: float) -> int:
    """The largest batch (1 to 4,096) of :func:`lstm_training` whose estimate is within ``budget_bytes``."""
    low, high = 1, 4096
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if estimated_bytes(lstm_training(mid)) <= budget_bytes else (low, mid - 1)
    return low


# ------------------------------------------------------------------------------------------------- the kinds
async def big_layers(c: Client) -> None:
    """500,000 layers of ``1`` (977 KiB, within the body limit) to the summary: a 422 from the schema's bound."""
    while c.running():
        await c.send("POST", SUMMARY, content=BIG_LAYERS, headers=JSON)


async def big_keys(c: Client) -> None:
    """One layer of 90,000 unknown keys (956 KiB): a 422 ``too_many_keys``."""
    while c.running():
        await c.send("POST", SUMMARY, content=BIG_KEYS, headers=JSON)


async def big_configs(c: Client) -> None:
    """A Keras config of 40,000 ``Lambda`` layers, and a training of 500,000 layers, alternately: 422s."""
    while c.running():
        await c.send("POST", SUMMARY, content=LAMBDAS, headers=JSON)
        await c.send("POST", TRAININGS, content=TRAINING_OF_BIG_LAYERS, headers=JSON)


async def over_limit(c: Client) -> None:
    """Bodies over ``LAYERWISE_MAX_BODY_BYTES``: a declared 2 MiB (413 before it is sent) and a chunked one with no
    length, sent in 64 KiB pieces until the server answers (413 once it passes the limit)."""
    size = 2 * int(default("max_body_bytes"))
    piece = b"1," * 32768
    chunked = [
        f"POST {SUMMARY} HTTP/1.1\r\nHost: {c.host}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode(),
        *[f"{len(piece):x}\r\n".encode() + piece + b"\r\n"] * (size // len(piece)),
    ]
    while c.running():
        await c.raw([post_head(SUMMARY, size, c.host)])
        await c.raw(chunked)


async def huge_headers(c: Client) -> None:
    """A 64 KiB header, whole in one write and in 1 KiB pieces: a 431 and the connection closed."""
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
    while c.running():
        await c.raw([big])
        await c.raw([big[i : i + 1024] for i in range(0, len(big), 1024)])


def slow_head(c: Client) -> Awaitable[None]:
    """20 slowloris connections at once, each sending its head a byte a second: a 408 after
    ``LAYERWISE_HEADER_TIMEOUT_S``."""

    async def one(c: Client) -> None:
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
        while c.running():
            await c.raw([head[i : i + 1] for i in range(len(head))], gap_s=1.0)

    return many(20, one)(c)


def slow_body(c: Client) -> Awaitable[None]:
    """10 slowloris connections at once, each sending a summary's head whole, then its 1,000-byte body a byte a
    second: a 408 after ``LAYERWISE_BODY_TIMEOUT_S``. A new one starts only while the attack runs."""

    async def one(c: Client) -> None:
        while c.running():
            await c.raw([post_head(SUMMARY, 1000, c.host), *([b" "] * 1000)], gap_s=1.0)

    return many(10, one)(c)


async def connection_flood(c: Client) -> None:
    """``LAYERWISE_MAX_CONNECTIONS`` + 64 connections opened at once from one address that send nothing: those
    beyond ``LAYERWISE_MAX_CONNECTIONS_PER_CLIENT`` a 503 ``too_many_connections`` at once, the rest a 408 after
    ``LAYERWISE_HEADER_TIMEOUT_S``. (Before the per-client bound, one flood held the server's whole bound and
    every new connection of anyone was refused.) Floods alternate with rests of ``LAYERWISE_HEADER_TIMEOUT_S``
    (half the attack, if shorter), a rest first."""
    n = int(default("max_connections")) + 64
    rest_s = min(float(default("header_timeout_s")), (c.deadline - time.monotonic()) / 2)
    while c.running():
        await asyncio.sleep(min(rest_s, max(0.0, c.deadline - time.monotonic())))
        if c.running():
            await asyncio.gather(*(c.raw([]) for _ in range(n)))


async def event_streams(c: Client) -> None:
    """Event streams of a live run (the latest run the attack got accepted that is still queued or running, else a
    small training of its own), 12 at once, each held for up to 3 s: at most
    ``LAYERWISE_MAX_EVENT_STREAMS_PER_CLIENT`` (8) a 200, the rest a 429 ``streams_busy``. (A long training of its
    own would hold the one training worker for the whole attack.)"""
    run_id: str | None = None

    async def follow(run: str) -> None:
        began = time.perf_counter()
        try:
            async with c.http.stream("GET", f"{TRAININGS}/{run}/events") as r:
                if r.status_code != 200:
                    body = await r.aread()
                    answer = Answer(
                        str(r.status_code), time.perf_counter() - began, len(body), dict(r.headers), error_type_of(body)
                    )
                else:
                    # The stream is held open for 3 s (or to its end): the answer's time is its head's.
                    answer = Answer("200", time.perf_counter() - began, 0, dict(r.headers))
                    try:
                        async with asyncio.timeout(3.0):
                            async for chunk in r.aiter_bytes():
                                answer.body_bytes += len(chunk)
                    except TimeoutError:
                        pass
        except httpx.TransportError as exc:
            answer = Answer(type(exc).__name__, time.perf_counter() - began)
        c.tally.record(answer)

    async def live(run: str | None) -> bool:
        if run is None:
            return False
        try:
            return (await c.http.get(f"{TRAININGS}/{run}")).json().get("status") in ("queued", "running")
        except (httpx.TransportError, ValueError):
            return False

    while c.running():
        if not await live(run_id):
            run_id = None
            for run in reversed(c.accepted[-5:]):
                if await live(run):
                    run_id = run
                    break
        if run_id is None:
            a = await c.send("POST", TRAININGS, json=SMALL_TRAINING)
            if not a.run_id:  # refused (the queue or its limits): wait before asking again
                await asyncio.sleep(1.0)
                continue
            run_id = a.run_id
        await asyncio.gather(*(follow(run_id) for _ in range(12)))


async def made_up_keys(c: Client) -> None:
    """A cached summary with a new made-up ``X-API-Key`` or ``Bearer`` each time: they name no client, so the
    address's ``LAYERWISE_RATE_LIMIT`` applies to them all (429 ``rate_limited`` past it)."""
    i = 0
    while c.running():
        i += 1
        header = {"X-API-Key": f"made-up-{i}"} if i % 2 else {"Authorization": f"Bearer made-up-{i}"}
        await c.send("POST", SUMMARY, json=CACHED[i % len(CACHED)], headers=header)


def unseen_summaries(c: Client) -> Awaitable[None]:
    """8 summaries of never-seen specs at once, over and over: at most ``LAYERWISE_MAX_BUILDS_PER_CLIENT`` (4)
    wait for the summary worker, the rest a 429 ``builds_busy``."""
    rng = random.Random(c.source)

    async def one(c: Client) -> None:
        while c.running():
            await c.send("POST", SUMMARY, json=new_spec(rng))

    return many(8, one)(c)


def training_flood(c: Client) -> Awaitable[None]:
    """6 small trainings at once, over and over: 202 for at most ``LAYERWISE_MAX_ACTIVE_RUNS_PER_CLIENT`` (4) and
    while ``LAYERWISE_MAX_QUEUED_RUNS`` (8) wait, else a 429 ``queue_full`` or ``rate_limited``. It starts after
    2 s, so that the near-limit training (:func:`memory_near_limit`) finds the queue empty and is trained."""

    async def one(c: Client) -> None:
        await asyncio.sleep(2.0)
        while c.running():
            await c.send("POST", TRAININGS, json=SMALL_TRAINING)

    return many(6, one)(c)


async def memory_over_estimate(c: Client) -> None:
    """Trainings made to exhaust memory that the limits refuse before any worker (422): the long-sequence LSTM at
    four times the batch the estimate allows, the same over ``LAYERWISE_MAX_TIMESTEPS``, and with units over
    ``LAYERWISE_MAX_UNITS``."""
    batch = largest_batch_within(int(default("max_memory_bytes")))
    bodies = [lstm_training(batch * 4), lstm_training(8, timesteps=100_000), lstm_training(8, units=100_000)]
    i = 0
    while c.running():
        await c.send("POST", TRAININGS, json=bodies[i % len(bodies)])
        i += 1


def memory_near_limit(fraction: float) -> Callable[[Client], Awaitable[None]]:
    """Trainings sized by the service's own estimate to ``fraction`` of ``LAYERWISE_MAX_MEMORY_BYTES``: accepted
    (202) and trained, so the worker's real memory meets the estimate; the memory cap must stop it if it is far
    above. Sent once a second (a client has at most 4 active runs)."""

    async def run(c: Client) -> None:
        body = lstm_training(largest_batch_within(fraction * int(default("max_memory_bytes"))))
        while c.running():
            await c.send("POST", TRAININGS, json=body)
            await asyncio.sleep(1.0)

    return run


async def deep_json(c: Client) -> None:
    """JSON nested 100,000 deep (200 KB): a 4xx, not a RecursionError."""
    while c.running():
        await c.send("POST", SUMMARY, content=DEEP, headers=JSON)


async def malformed(c: Client) -> None:
    """Bodies that are not the JSON asked for: truncated, NaN, not UTF-8, a form, 1e999, duplicate keys (4xx)."""
    i = 0
    while c.running():
        raw, content_type = MALFORMED[i % len(MALFORMED)]
        await c.send("POST", SUMMARY, content=raw, headers={"Content-Type": content_type})
        i += 1


async def catalogue(c: Client) -> None:
    """tests/hostile_requests.py's catalogue of hostile requests, one after another, round and round."""
    i = 0
    while c.running():
        h = CATALOGUE[i % len(CATALOGUE)]
        await c.send(h.method, h.path, **h.request_kwargs())
        i += 1


def kinds(memory_fraction: float) -> list[tuple[str, int, Callable[[Client], Awaitable[None]]]]:
    """The attack's kinds: (name, clients, what each client does), 20 clients in all, each from its own address;
    ``memory_fraction`` as :func:`memory_near_limit`'s."""
    return [
        ("500,000-item layers list", 1, big_layers),
        ("90,000 unknown keys", 1, big_keys),
        ("40,000 Lambdas / 500,000-layer training", 1, big_configs),
        ("body over the limit (413)", 1, over_limit),
        ("64 KiB header (431)", 1, huge_headers),
        ("slowloris head (408)", 1, slow_head),
        ("slowloris body (408)", 1, slow_body),
        ("connection flood", 1, connection_flood),
        ("event-stream flood", 1, event_streams),
        ("made-up API keys", 1, made_up_keys),
        ("unseen-spec summaries", 2, unseen_summaries),
        ("training flood", 2, training_flood),
        ("training over the memory limits", 1, memory_over_estimate),
        ("training near the memory limit", 1, memory_near_limit(memory_fraction)),
        ("JSON nested 100,000 deep", 1, deep_json),
        ("malformed JSON", 1, malformed),
        ("hostile catalogue", 2, catalogue),
    ]


async def attack(
    base: str, seconds: float, grace_s: float, memory_fraction: float
) -> tuple[list[Tally], list[str], float]:
    """Run every kind's clients for ``seconds``, then wait up to ``grace_s`` for requests in flight; the tallies,
    the ids of the runs accepted (201/202), and the attackers' own loop's longest lag (s: how late a 0.1 s sleep
    woke), which every time measured here includes."""
    accepted: list[str] = []
    lag = 0.0

    async def watch() -> None:
        nonlocal lag
        while True:
            began = time.monotonic()
            await asyncio.sleep(0.1)
            lag = max(lag, time.monotonic() - began - 0.1)

    watcher = asyncio.ensure_future(watch())
    tallies, clients, loops = [], [], []
    deadline = time.monotonic() + seconds
    address = 2
    for kind, n, loop in kinds(memory_fraction):
        tally = Tally(kind, clients=n)
        tallies.append(tally)
        for _ in range(n):
            client = Client(base, f"127.0.0.{address}", tally, deadline, accepted, connections=32)
            address += 1
            clients.append(client)
            loops.append(asyncio.ensure_future(loop(client)))
    done, pending = await asyncio.wait(loops, timeout=seconds + grace_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        if task.exception() is not None:
            raise RuntimeError(f"an attacking client failed: {task.exception()!r}")
    for client in clients:
        await client.http.aclose()
    watcher.cancel()
    return tallies, accepted, lag


# ------------------------------------------------------------------------------------------------ normal user
def normal_user(base: str, seconds: float, out: Path) -> None:
    """The normal user (run in a process of its own, so the attackers' loop does not delay its clock): from
    :data:`NORMAL_USER_ADDRESS`, four times a second, a summary (a cached seed model and an unseen spec,
    alternately) and ``GET /healthz``, on one kept-alive connection, for ``seconds``; writes each request's
    kind, status (or error) and milliseconds to ``out`` as JSON. Prints ``ready`` once its connection is up."""
    rng = random.Random(200)
    transport = httpx.HTTPTransport(local_address=NORMAL_USER_ADDRESS)
    records: list[tuple[str, str, float]] = []
    with httpx.Client(base_url=base, transport=transport, timeout=60) as http:
        http.get("/healthz").raise_for_status()
        print("ready", flush=True)
        ends, i = time.monotonic() + seconds, 0
        while time.monotonic() < ends:
            tick = time.monotonic()
            summary = ("summary (cached)", CACHED[i % 4]) if i % 2 == 0 else ("summary (unseen)", new_spec(rng))
            for kind, method, path, body in (
                (*summary[:1], "POST", SUMMARY, summary[1]),
                ("healthz", "GET", "/healthz", None),
            ):
                began = time.perf_counter()
                try:
                    status = str(http.request(method, path, json=body).status_code)
                except httpx.TransportError as exc:
                    status = type(exc).__name__
                records.append((kind, status, (time.perf_counter() - began) * 1000))
            i += 1
            time.sleep(max(0.0, 0.25 - (time.monotonic() - tick)))
    out.write_text(json.dumps(records))


def user_figures(records: list[tuple[str, str, float]]) -> dict[str, Any]:
    """Per kind of the normal user's requests (and the summaries together): count, p50/p99/max in ms, statuses."""
    groups = {
        "summary (cached)": ["summary (cached)"],
        "summary (unseen)": ["summary (unseen)"],
        "summary (all)": ["summary (cached)", "summary (unseen)"],
        "healthz": ["healthz"],
    }
    out = {}
    for group, names in groups.items():
        ms = sorted(m for k, _, m in records if k in names)
        out[group] = {
            "requests": len(ms),
            "p50_ms": quantile(ms, 0.5),
            "p99_ms": quantile(ms, 0.99),
            "max_ms": ms[-1] if ms else math.nan,
            "statuses": dict(sorted(Counter(s for k, s, _ in records if k in names).items())),
        }
    return out


# ----------------------------------------------------------------------------------------------------- memory
class MemorySampler(threading.Thread):
    """Reads the resident memory (psutil's RSS) of every process of the service four times a second, naming each
    worker by the pool ``/readyz`` lists it in (a pid never listed, a worker still warming, is ``unlisted``);
    keeps the largest per pool, and the pids seen per pool."""

    def __init__(self, base: str, server_pid: int) -> None:
        super().__init__(daemon=True)
        self.base, self.server = base, psutil.Process(server_pid)
        self.stop = threading.Event()
        self.pool_of: dict[int, str] = {}
        self.largest: Counter[str] = Counter()

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=5) as http:
            tick = 0
            while not self.stop.is_set():
                if tick % 4 == 0:
                    try:
                        for name, pool in http.get("/readyz").json()["pools"].items():
                            self.pool_of.update({pid: name for pid in pool["pids"]})
                    except (httpx.HTTPError, ValueError, KeyError):
                        pass  # a refused probe (the connection flood) skips a naming, not a reading
                tick += 1
                for proc in self.server.children(recursive=True):
                    try:
                        rss = proc.memory_info().rss
                    except psutil.Error:
                        continue
                    role = self.pool_of.get(proc.pid, "unlisted")
                    self.largest[role] = max(self.largest[role], rss)
                self.stop.wait(0.25)

    def figures(self) -> dict[str, Any]:
        """The largest RSS by pool (bytes), and how many worker pids each pool had."""
        pids = Counter(self.pool_of.values())
        return {"largest_rss_bytes": dict(self.largest), "worker_pids_seen": dict(pids)}


# ------------------------------------------------------------------------------------------------ afterwards
def request_until_answered(http: httpx.Client, method: str, path: str, tries: int = 20) -> httpx.Response:
    """A request from the harness, waiting out a 429's ``Retry-After`` (the harness is a client too)."""
    for _ in range(tries):
        r = http.request(method, path)
        if r.status_code != 429:
            return r
        time.sleep(float(r.headers.get("retry-after", "1")))
    return r


def end_runs(base: str, accepted: list[str]) -> dict[str, int]:
    """Cancel every accepted run not yet ended, wait (two minutes at most) for all to end; runs by status."""
    with httpx.Client(base_url=base, timeout=60) as http:
        for run_id in accepted:
            if request_until_answered(http, "GET", f"{TRAININGS}/{run_id}").json().get("status") in (
                "queued",
                "running",
            ):
                request_until_answered(http, "DELETE", f"{TRAININGS}/{run_id}")
    return drain_and_read_runs(base, 120)


def read_back(base: str, accepted: list[str]) -> tuple[int, Counter[str], Counter[str]]:
    """GET every accepted run: how many answered 200, by their status, and by error kind (of failed runs)."""
    read, statuses, errors = 0, Counter[str](), Counter[str]()
    with httpx.Client(base_url=base, timeout=60) as http:
        for run_id in accepted:
            r = request_until_answered(http, "GET", f"{TRAININGS}/{run_id}")
            if r.status_code == 200:
                read += 1
                run = r.json()
                statuses[run["status"]] += 1
                if run.get("error"):
                    errors[run["error"]["kind"]] += 1
    return read, statuses, errors


def recovery_s(base: str) -> float:
    """Seconds from a SIGKILL of the idle training worker to a replacement listed ready in ``/readyz`` (after
    waiting, two minutes at most, for a warm one to kill)."""
    with httpx.Client(base_url=base, timeout=60) as http:
        deadline = time.monotonic() + 120
        while len(http.get("/readyz").json()["pools"]["training"]["pids"]) != 1:
            if time.monotonic() > deadline:
                raise RuntimeError("no warm training worker to kill within 120 s of the attack")
            time.sleep(0.2)
        seconds, _ = killed_idle_worker(http)
        return seconds


def warm(base: str) -> None:
    """Every cached spec once (so the normal user's are cache hits) and a small training of each mode.

    Raises:
        httpx.HTTPStatusError: the service answered any of them with an error.
    """
    with httpx.Client(base_url=base, timeout=120) as http:
        for spec in CACHED:
            http.post(SUMMARY, json=spec).raise_for_status()
        for epochs in (1, 10):
            body = {**SMALL_TRAINING, "fit": {"epochs": epochs}}
            http.post(TRAININGS, params={"wait": 120}, json=body).raise_for_status()


def print_table(results: dict[str, Any]) -> None:
    """The figures as tables on stdout."""
    print(
        f"\nlayerwise under attack ({'quick' if results['quick'] else 'full'}: 20 hostile clients for "
        f"{results['duration_s']:g} s, {results['cpus']} CPUs, load average {results['load_average']['during']})"
    )
    print(f"{'kind':<42}{'clients':>8}{'tried':>8}{'slowest ms':>12}{'largest B':>11}  statuses")
    for kind, t in results["kinds"].items():
        statuses = " ".join(f"{s}:{n}" for s, n in t["statuses"].items())
        figures = f"{t['clients']:>8}{t['tried']:>8}{t['slowest_ms']:>12,.0f}{t['largest_body_bytes']:>11,}"
        print(f"{kind:<42}{figures}  {statuses}")
    print("normal user (127.0.0.200), four summaries and four /healthz a second:")
    for kind, u in results["normal_user"].items():
        statuses = " ".join(f"{s}:{n}" for s, n in u["statuses"].items())
        print(
            f"  {kind:<18}{u['requests']:>6} requests  p50 {u['p50_ms']:8.1f} ms  p99 {u['p99_ms']:8.1f} ms  "
            f"max {u['max_ms']:8.1f} ms  {statuses}"
        )
    goals = results["goals"]
    for name, goal in goals.items():
        print(
            f"  {name}: {goal['p99_ms']:.1f} ms against {goal['goal_ms']:g} ms: {'met' if goal['met'] else 'NOT met'}"
        )
    memory = results["memory"]
    largest = {pool: f"{b / MIB:,.0f} MiB" for pool, b in memory["largest_rss_bytes"].items()}
    print(
        f"largest worker RSS by pool: {largest}; training worker cap {memory['training_cap_bytes'] / MIB:,.0f} MiB "
        f"(LAYERWISE_TRAINING_WORKER_MAX_RSS_BYTES); near-limit training batch {memory['near_limit_batch']}, "
        f"estimated {memory['near_limit_estimate_bytes'] / MIB:,.0f} MiB"
    )
    runs = results["runs"]
    print(
        f"runs accepted {runs['accepted']}, read back {runs['read_back']}, lost {runs['lost']}; by status "
        f"{runs['statuses']}; failures by kind {runs['error_kinds']}"
    )
    print(f"a killed idle training worker was back (listed ready) after {results['recovery_s']:.1f} s")
    print(
        f"the attacking process (its 20 clients): {results['attacker_cpu_s']:.1f} s of CPU, its loop late by up to "
        f"{results['attacker_loop_lag_max_s']:.2f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 s of attack, trainings near a quarter of the limit")
    parser.add_argument("--duration", type=float, help="seconds of attack (60; quick 10)")
    parser.add_argument(
        "--memory-fraction", type=float, help="near-limit trainings' estimate / limit (0.9; quick 0.25)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "attack-results.json")
    parser.add_argument("--normal-user", nargs=3, metavar=("BASE", "SECONDS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.normal_user:
        normal_user(args.normal_user[0], float(args.normal_user[1]), Path(args.normal_user[2]))
        return 0
    duration = args.duration or (10.0 if args.quick else 60.0)
    fraction = args.memory_fraction or (0.25 if args.quick else 0.9)
    grace_s = float(default("body_timeout_s")) + 15
    # The connection flood holds MAX_CONNECTIONS + 64 sockets and the slowloris clients 30 more: raise this
    # process's descriptor limit to its hard limit.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    runs_db = ARTIFACTS / "runs.sqlite3"
    for stale in ARTIFACTS.glob("runs.sqlite3*"):
        stale.unlink()
    log, user_out = ARTIFACTS / "service.log", ARTIFACTS / "normal-user.json"
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", **service_env(runs_db)}
    load_before = os.getloadavg()
    with (
        log.open("wb") as out,
        served(env, out, stdout=out, inherit_settings=False, ready_within_s=300) as (base, proc),
    ):
        warm(base)
        sampler = MemorySampler(base, proc.pid)
        sampler.start()
        user = subprocess.Popen(
            [sys.executable, __file__, "--normal-user", base, str(duration), str(user_out)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert user.stdout is not None
            if user.stdout.readline().strip() != "ready":
                raise RuntimeError("the normal user did not start")
            tallies, accepted, attacker_lag_s = asyncio.run(attack(base, duration, grace_s, fraction))
            load_during = os.getloadavg()
            usage = resource.getrusage(resource.RUSAGE_SELF)
            attacker_cpu_s = usage.ru_utime + usage.ru_stime
            user.wait(timeout=120)
            check_alive(proc, "during the attack", log)
            run_statuses = end_runs(base, accepted)
            sampler.stop.set()
            sampler.join()
            recovered_s = recovery_s(base)
            read, statuses, errors = read_back(base, accepted)
            correct = still_correct(base)
            check_alive(proc, "after the attack", log)
        finally:
            sampler.stop.set()
            if user.poll() is None:
                user.kill()
                user.wait()

    records = [(str(k), str(s), float(ms)) for k, s, ms in json.loads(user_out.read_text())]
    user_figs = user_figures(records)
    near_batch = largest_batch_within(fraction * int(default("max_memory_bytes")))
    goals = {
        "normal user's summary p99": (user_figs["summary (all)"]["p99_ms"], GOAL_SUMMARY_P99_MS),
        "normal user's /healthz p99": (user_figs["healthz"]["p99_ms"], GOAL_HEALTHZ_P99_MS),
    }
    results: dict[str, Any] = {
        "quick": args.quick,
        "duration_s": duration,
        "cpus": os.cpu_count(),
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "during": [round(x, 2) for x in load_during],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "service_env": {k: v for k, v in env.items() if k.startswith("LAYERWISE_")},
        "kinds": {t.kind: t.as_dict() for t in tallies},
        "normal_user": user_figs,
        "goals": {name: {"p99_ms": p99, "goal_ms": goal, "met": p99 < goal} for name, (p99, goal) in goals.items()},
        "memory": {
            **sampler.figures(),
            "training_cap_bytes": int(default("training_worker_max_rss_bytes")),
            "near_limit_batch": near_batch,
            "near_limit_estimate_bytes": estimated_bytes(lstm_training(near_batch)),
        },
        "recovery_s": recovered_s,
        "runs": {
            "accepted": len(accepted),
            "read_back": read,
            "lost": len(accepted) - read,
            "statuses": dict(statuses),
            "error_kinds": dict(errors),
            "all_by_status": run_statuses,
        },
        "correct_after": correct,
        "attacker_cpu_s": round(attacker_cpu_s, 1),
        "attacker_loop_lag_max_s": round(attacker_lag_s, 2),
    }
    bugs = sorted({bug for t in tallies for bug in t.bugs})
    bugs += [f"normal user: {n} x {s}" for s, n in Counter(s for _, s, _ in records).items() if not s.isdigit()]
    if results["runs"]["lost"]:
        bugs.append(f"{results['runs']['lost']} of {len(accepted)} accepted runs could not be read back")
    if not correct:
        bugs.append("after the attack the service did not answer the seed's summary correctly")
    results["bugs"] = bugs
    results["normal_user_refused"] = {
        s: n for s, n in Counter(s for _, s, _ in records).items() if s.isdigit() and s != "200"
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)
    print(f"written to {args.out}; the service's log in {log.relative_to(ROOT)}")
    for bug in bugs:
        print(f"FAIL: {bug}", file=sys.stderr)
    return 1 if bugs else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:  # the service did not run or died: say so without a traceback
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
