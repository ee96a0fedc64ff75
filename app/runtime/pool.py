"""Worker processes: pebble process pools started with the spawn method, and the channel they report on.

Why pebble (https://pypi.org/project/Pebble/): unlike ``concurrent.futures.ProcessPoolExecutor``, a worker
that dies or is killed fails only the task it was running and is replaced, where the standard pool breaks
for every caller; and a running task can be cancelled or timed out by terminating its worker.

Why spawn: TensorFlow is not fork-safe (MLServer's ``parallel/`` starts its workers the same way).

Progress and stop requests do not go through pebble: each worker opens its own connection to a
:class:`ChannelHub` (a ``multiprocessing.connection.Listener`` on a Unix socket). A connection per worker
means a worker killed mid-message cannot leave a shared queue's lock held for the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import secrets
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError as FutureCancelledError
from concurrent.futures import TimeoutError as FutureTimeoutError
from multiprocessing.connection import Client, Connection, Listener, wait
from typing import Any

import psutil
from asgi_correlation_id import correlation_id
from pebble import ProcessExpired, ProcessFuture, ProcessPool

from app.errors import WorkerError, WorkerTimeoutError
from app.runtime import tasks as worker
from app.runtime.messages import Message, StopMessage

logger = logging.getLogger(__name__)

# Seconds between two rounds of a pool's watcher: a broken pool is restored, and a worker over the memory cap
# stopped, within about this. A memory cap is thus not a hard limit: a worker may allocate past it for up to
# this long (a few hundred MB at most for the trainings the limits allow).
WATCH_INTERVAL_S = 0.25


class ChannelHub:
    """Server end of the workers' connections.

    Messages from workers (plain dicts with a ``"kind"``) are handed to ``on_message`` on the event loop
    that called :meth:`start`. ``"ready"`` and ``"gone"`` (connection closed: the worker exited) also keep
    :attr:`ready` up to date: pool name -> pids of warm workers.
    """

    def __init__(self, on_message: Callable[[Message], None]) -> None:
        self._on_message = on_message
        self._dir = tempfile.mkdtemp(prefix="layerwise-")
        self.address = os.path.join(self._dir, "hub.sock")
        self.authkey = secrets.token_bytes(32)
        self.ready: dict[str, set[int]] = {}
        self._conns: dict[Connection, int | None] = {}
        self._by_pid: dict[int, Connection] = {}
        self._lock = threading.Lock()
        self._closing = False
        self._listener: Listener | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Listen and start the accept and read threads. Call from the event loop's thread."""
        self._loop = asyncio.get_running_loop()
        self._listener = Listener(self.address, family="AF_UNIX", authkey=self.authkey)
        for target in (self._accept_loop, self._read_loop):
            t = threading.Thread(target=target, name=f"layerwise-hub-{target.__name__}", daemon=True)
            t.start()
            self._threads.append(t)

    def close(self) -> None:
        """Stop the threads and close every connection."""
        self._closing = True
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wake accept() up
                Client(self.address, family="AF_UNIX", authkey=self.authkey).close()
        for t in self._threads:
            t.join(timeout=2)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
            self._by_pid.clear()
        if self._listener is not None:
            self._listener.close()
        with contextlib.suppress(OSError):
            os.rmdir(self._dir)

    def send(self, pid: int, message: StopMessage) -> bool:
        """Send a message to the worker with this pid; False if it is not connected."""
        with self._lock:
            conn = self._by_pid.get(pid)
            if conn is None:
                return False
            try:
                conn.send(message)
            except OSError:
                return False
        return True

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._closing:
            try:
                conn = self._listener.accept()
            except (OSError, EOFError) as exc:
                if not self._closing:
                    logger.warning("worker connection refused: %s", exc)
                continue
            if self._closing:
                conn.close()
                break
            with self._lock:
                self._conns[conn] = None

    def _read_loop(self) -> None:
        while not self._closing:
            with self._lock:
                conns = list(self._conns)
            if not conns:
                threading.Event().wait(0.05)
                continue
            for conn in wait(conns, timeout=0.05):
                assert isinstance(conn, Connection)
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    self._drop(conn)
                    continue
                if message["kind"] == "ready":
                    with self._lock:
                        self._conns[conn] = message["pid"]
                        self._by_pid[message["pid"]] = conn
                        self.ready.setdefault(message["pool"], set()).add(message["pid"])
                self._deliver(message)

    def _drop(self, conn: Connection) -> None:
        with self._lock:
            pid = self._conns.pop(conn, None)
            if pid is not None:
                self._by_pid.pop(pid, None)
                for pids in self.ready.values():
                    pids.discard(pid)
        conn.close()
        if pid is not None:
            self._deliver({"kind": "gone", "pid": pid})

    def _deliver(self, message: Message) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_message, message)


class WorkerPool:
    """A named pool of ``size`` spawn-started worker processes that import Keras once and serve many tasks.

    Tasks are top-level functions of :mod:`app.runtime.tasks` taking and returning plain data.

    A worker that has run ``max_tasks`` tasks exits and pebble starts a fresh one (0: never): memory a worker
    cannot give back goes with it. A graph-mode training leaves ~9 MB behind in its worker (its
    ``tf.function`` graphs, which ``keras.backend.clear_session`` does not free), so a worker that never
    restarts grows without bound (``bench/worker_memory.py`` measures it).

    A watcher thread keeps the pool whole without traffic: pebble replaces a worker that dies during a task,
    but gives up on the whole pool when one dies idle, so the watcher starts a new pool then, within
    :data:`WATCH_INTERVAL_S`. It also stops a warm worker whose resident memory is over ``max_rss_bytes``
    (0: no cap), and says so to :meth:`memory_exceeded`.
    """

    def __init__(
        self,
        name: str,
        size: int,
        hub: ChannelHub,
        max_tasks: int = 0,
        max_rss_bytes: int = 0,
        replace_grace_s: float = 60.0,
    ) -> None:
        self.name = name
        self.size = size
        self.max_tasks = max_tasks
        self.max_rss_bytes = max_rss_bytes
        self.replace_grace_s = replace_grace_s
        self._hub = hub
        self._pool: ProcessPool | None = None
        self._pool_lock = threading.RLock()
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self._ever_ready = False
        self._empty_since: float | None = None  # monotonic time the last warm worker went
        self._over_memory: dict[int, int] = {}  # pid -> resident bytes it was stopped at
        self._closing = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker processes (they warm up in the background; see :attr:`ready_workers`) and the
        watcher thread."""
        self._closing.clear()
        self._start_pool()
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name=f"layerwise-pool-{self.name}", daemon=True)
            self._watcher.start()

    def _start_pool(self) -> None:
        with self._pool_lock:
            self._pool = ProcessPool(
                max_workers=self.size,
                max_tasks=self.max_tasks,
                context=multiprocessing.get_context("spawn"),
                initializer=worker.init_worker,
                initargs=(self._hub.address, self._hub.authkey, self.name),
            )
            self._pool.schedule(worker.ping)  # pebble starts its processes on the first schedule

    @property
    def ready_pids(self) -> list[int]:
        """Process ids of the workers that have imported Keras and connected back."""
        return sorted(self._hub.ready.get(self.name, ()))

    @property
    def ready_workers(self) -> int:
        """How many workers have imported Keras and connected back."""
        return len(self._hub.ready.get(self.name, ()))

    @property
    def answering(self) -> bool:
        """Whether a task submitted now will be answered: a worker is warm, or the pool had one and its
        replacement (after a recycle, a kill, a cancel that stopped a worker) has been starting for less than
        ``replace_grace_s`` seconds; a task waits for it meanwhile. False before the first worker is warm."""
        self._observe()
        if self.ready_workers > 0:
            return True
        empty_since = self._empty_since
        return self._ever_ready and (empty_since is None or time.monotonic() - empty_since < self.replace_grace_s)

    def _observe(self) -> None:
        """Keep the readiness clock: whether the pool has ever had a warm worker, and since when it has none."""
        if self.ready_workers > 0:
            self._ever_ready, self._empty_since = True, None
        elif self._ever_ready and self._empty_since is None:
            self._empty_since = time.monotonic()

    @property
    def in_flight(self) -> int:
        """Tasks submitted and not yet done: running on a worker or waiting for one."""
        return self._in_flight

    @property
    def busy_workers(self) -> int:
        """Workers running a task (tasks beyond the pool's size wait in its queue)."""
        return min(self._in_flight, self.size)

    def memory_exceeded(self, pid: int) -> int | None:
        """The resident bytes the worker ``pid`` had when it was stopped for being over ``max_rss_bytes``, or
        None if it was not stopped for that. Each stop is told once."""
        return self._over_memory.pop(pid, None)

    def _task_done(self, _: object) -> None:  # pebble's thread
        with self._in_flight_lock:
            self._in_flight -= 1

    def _live_pool(self) -> ProcessPool:
        with self._pool_lock:
            if self._pool is None or not self._pool.active:
                # pebble gives up on a pool whose every worker died with no task running; start afresh.
                logger.warning("worker pool %r is broken; starting a new one", self.name)
                if self._pool is not None:
                    self._pool.stop()  # type: ignore[no-untyped-call]
                self._start_pool()
            assert self._pool is not None
            return self._pool

    def _watch(self) -> None:
        """The watcher thread: every :data:`WATCH_INTERVAL_S`, restore a broken pool, keep the readiness
        clock, and stop workers over the memory cap."""
        while not self._closing.wait(WATCH_INTERVAL_S):
            try:
                if self._pool is not None:
                    self._live_pool()
                self._observe()
                if self.max_rss_bytes:
                    self._stop_over_memory()
            except Exception:  # the watcher must outlive any one failure
                logger.exception("worker pool %r: watcher step failed", self.name)

    def _stop_over_memory(self) -> None:
        for pid in self.ready_pids:
            try:
                rss = int(psutil.Process(pid).memory_info().rss)
            except psutil.Error:  # gone meanwhile
                continue
            if rss > self.max_rss_bytes:
                logger.warning(
                    "%s worker %d uses %d bytes, over the cap of %d: stopping it",
                    self.name,
                    pid,
                    rss,
                    self.max_rss_bytes,
                )
                self._over_memory[pid] = rss
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def submit(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> ProcessFuture[Any]:
        """Queue ``fn(*args)`` for a worker; ``future.cancel()`` stops it, killing the worker if it runs.
        The current request's id goes along, into the worker's log lines."""
        future = self._live_pool().schedule(
            worker.with_request_id, args=(correlation_id.get(), fn, *args), timeout=timeout
        )
        with self._in_flight_lock:
            self._in_flight += 1
        future.add_done_callback(self._task_done)
        return future

    async def result(self, future: ProcessFuture[Any], timeout: float | None = None) -> Any:
        """Await a submitted task's result.

        Cancelling the awaiting coroutine (a client that went away) does not stop the task: killing a warm
        worker costs a Keras import to replace it.

        Raises:
            WorkerError: the worker died during the task (it has been replaced), or the task was cancelled.
            WorkerTimeoutError: the task ran past ``timeout`` seconds; its worker was killed and replaced.
        """
        wrapped = asyncio.wrap_future(future)
        wrapped.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved even if abandoned
        try:
            return await asyncio.shield(wrapped)
        except ProcessExpired as exc:
            raise WorkerError(
                f"the {self.name} worker process died while handling this request (exit code {exc.exitcode}); "
                "it has been replaced, and the request can be retried"
            ) from None
        except FutureTimeoutError:
            raise WorkerTimeoutError(
                f"the {self.name} worker took longer than {timeout} s and was stopped; it has been replaced"
            ) from None
        except FutureCancelledError:
            raise WorkerError(f"the {self.name} task was cancelled") from None

    async def call(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        """Run ``fn(*args)`` in a worker and return its result; errors as :meth:`result`."""
        return await self.result(self.submit(fn, *args, timeout=timeout), timeout)

    def close(self) -> None:
        """Stop the watcher and the workers, without waiting for running tasks."""
        self._closing.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
            self._watcher = None
        with self._pool_lock:
            if self._pool is not None:
                self._pool.stop()  # type: ignore[no-untyped-call]
                self._pool.join(timeout=10)
                self._pool = None
