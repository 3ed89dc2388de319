"""Small bounded thread pools whose threads end when idle, and per-stream serial queues.

Two pools serve every stream of the process (see "Many streams, few threads" in
``docs/concepts.md``):

* `send_pool` sends requests and waits for their headers (``rxchat-send`` threads,
  at most `SEND_THREADS`, environment ``RXCHAT_SEND_THREADS``);
* `delivery_pool` calls subscribers (``rxchat-deliver`` threads, at most
  `DELIVERY_THREADS`, environment ``RXCHAT_DELIVERY_THREADS``).

A pool starts a thread only when a job finds no idle one, and a thread that found no
job for `IDLE_SECONDS` ends: a process with no stream open holds none of them. The
caller of `WorkerPool.submit` waits for a thread to start only while the pool grows
(at most its size, once per busy period): with threads idle it only queues the job,
and with all threads busy at the cap the job waits its turn.

`SerialQueue` is one stream's queue of notifications: run in order, never two at once,
by whichever pool thread drains it; the values decoded from one read arrive as one
batch. Its backlog (the bytes its waiting values were decoded from) tells the reader
when to stop reading the stream (TCP back-pressure).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = [
    "DELIVERY_THREADS",
    "delivering_a_stream",
    "hold_delivery",
    "IDLE_SECONDS",
    "SEND_THREADS",
    "SerialQueue",
    "WorkerPool",
    "delivery_pool",
    "send_pool",
]

log = logging.getLogger("rxchat")

IDLE_SECONDS = 1.0
"""Seconds a pool thread waits for a job before it ends."""


def _env_int(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


SEND_THREADS = _env_int("RXCHAT_SEND_THREADS", 16)
"""Most threads sending requests and waiting for headers at once (default 16)."""
DELIVERY_THREADS = _env_int("RXCHAT_DELIVERY_THREADS", 8)
"""Most threads calling subscribers at once (default 8): as many subscribers may block
at the same time before other streams' deliveries wait."""


class WorkerPool:
    """At most ``size`` named daemon threads running submitted jobs in order of
    submission; threads start on demand and end after `IDLE_SECONDS` without work.

    Args:
        name: The threads' name.
        size: The most threads at once.
    """

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = max(1, size)
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._jobs: deque[Callable[[], Any]] = deque()
        self._threads = 0
        self._idle = 0

    @property
    def threads(self) -> int:
        """How many threads the pool has now."""
        return self._threads

    def submit(self, job: Callable[[], Any]) -> None:
        """Run ``job()`` on a pool thread; what it raises is logged, never raised here.

        Args:
            job: The work.
        """
        with self._lock:
            self._jobs.append(job)
            if self._idle >= len(self._jobs):  # enough threads waiting for every job
                self._work.notify()
                return
            start = self._threads < self.size
            if start:
                self._threads += 1
        if start:
            _starter.start(self)

    def _start(self) -> None:
        """Start one thread (already counted); on the caller, or on the starter."""
        thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        try:
            thread.start()
        except RuntimeError:  # interpreter shutting down: nothing will run any more
            with self._lock:
                self._threads -= 1

    def _run(self) -> None:
        _starter.keep_alive()
        lock = self._lock
        while True:
            with lock:
                while not self._jobs:
                    self._idle += 1
                    woken = self._work.wait(IDLE_SECONDS)
                    self._idle -= 1
                    # Whatever woke it (a notification can come as the wait times
                    # out), a thread takes a job that is there.
                    if not self._jobs and not woken:
                        self._threads -= 1
                        return
                job = self._jobs.popleft()
            try:
                job()
            except BaseException:  # a job's own bug must not end the thread
                log.exception("unexpected error in an rxchat %s thread", self.name)


class _Starter:
    """Starts pool threads for callers that must not wait for it.

    ``Thread.start()`` waits until the new thread runs, which under load (many threads
    wanting the GIL, a busy machine) takes milliseconds: too long for an event loop's
    thread, or for a subscribe call. So while any pool has a thread, one
    ``rxchat-starter`` thread starts the new ones, and a submitter only queues the
    request. Only when no pool has any thread (the first stream after an idle second)
    does the submitter start the first thread itself, which then starts the starter.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wanted = threading.Condition(self._lock)
        self._pending: deque[WorkerPool] = deque()
        self._alive = False

    def start(self, pool: WorkerPool) -> None:
        """Start one thread of ``pool`` (already counted), without waiting if possible."""
        with self._lock:
            if self._alive:
                self._pending.append(pool)
                self._wanted.notify()
                return
        pool._start()

    def keep_alive(self) -> None:
        """Called by each new pool thread: make sure the starter runs."""
        with self._lock:
            if self._alive:
                return
            self._alive = True
        thread = threading.Thread(target=self._run, name="rxchat-starter", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # interpreter shutting down
            with self._lock:
                self._alive = False

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending:
                    if not self._wanted.wait(IDLE_SECONDS) and not self._pending and not any(
                        pool.threads for pool in list(_pools.values())
                    ):
                        self._alive = False
                        return
                pool = self._pending.popleft()
            pool._start()


_starter = _Starter()
_pools: dict[str, WorkerPool] = {}
_pools_lock = threading.Lock()


def _pool(name: str, size: int) -> WorkerPool:
    with _pools_lock:
        pool = _pools.get(name)
        if pool is None:
            pool = _pools[name] = WorkerPool(name, size)
        return pool


def send_pool() -> WorkerPool:
    """The process's pool that sends requests (``rxchat-send`` threads)."""
    return _pool("rxchat-send", SEND_THREADS)


def delivery_pool() -> WorkerPool:
    """The process's pool that calls subscribers (``rxchat-deliver`` threads)."""
    return _pool("rxchat-deliver", DELIVERY_THREADS)


_here = threading.local()


def delivering_a_stream() -> bool:
    """Whether the calling thread is a pool thread delivering a stream's value."""
    return getattr(_here, "queue", None) is not None


def hold_delivery() -> Callable[[], None] | None:
    """Called from a subscriber of a stream: stop delivering that stream after this
    value, without blocking the pool thread, until the returned function is called.

    For a consumer that is full (an ``aio`` iterator nobody reads): waiting on a pool
    thread would stop every other stream once as many consumers as the pool has threads
    are full. Held, the stream's values wait in its queue, and the reader stops reading
    it once they pass the high-water mark (TCP back-pressure).

    Returns:
        The release function (safe from any thread, more than once), or None when the
        caller is not delivering a stream's value on a pool thread.
    """
    queue: SerialQueue | None = getattr(_here, "queue", None)
    return queue._hold() if queue is not None else None


_BATCH, _CALL = 0, 1
_TURN = 32
"""Items one drain runs before it lets other streams' queues have the thread."""


class SerialQueue:
    """One stream's notifications, run in order and never concurrently on a pool.

    Values come in batches (`values`), terminal or other work as plain calls
    (`call`). `backlog` weighs the values waiting; when a drain brings it down to
    `low` after the reader paused (``paused`` set), ``resume`` is called.

    Args:
        pool: Where drains run.
        on_next: Called with each value.
        on_failure: Called with what ``on_next`` raised; the queue then stops.
        resume: Called (outside any lock) when the backlog fell to ``low`` while
            ``paused`` was set.
        low: The backlog at which a paused stream is resumed.
    """

    def __init__(
        self,
        pool: WorkerPool,
        on_next: Callable[[Any], None],
        on_failure: Callable[[Exception], None],
        resume: Callable[[], None],
        low: int = 64,
    ) -> None:
        self._pool = pool
        self._on_next = on_next
        self._on_failure = on_failure
        self._resume = resume
        self._low = low
        self._lock = threading.Lock()
        self._items: deque[tuple[int, Any]] = deque()
        self._busy = False
        self._held = False  # a consumer asked to stop after the current value
        self._parked = False  # held: the drain ended with items left, busy kept
        self.stopped = False
        self.backlog = 0
        self.paused = False

    def values(self, batch: list[Any], weight: int | None = None) -> None:
        """Queue values to pass to ``on_next`` in order.

        Args:
            batch: The values.
            weight: What they count in the backlog (the bytes they were decoded
                from); their number by default.
        """
        count = len(batch) if weight is None else max(1, weight)
        self._post(_BATCH, (batch, count), count)

    def call(self, function: Callable[[], None]) -> None:
        """Queue a call after the values queued so far (a terminal notification)."""
        self._post(_CALL, function, 0)

    def pause_over(self, high: int) -> bool:
        """Whether the backlog is over ``high``; if so, mark the queue paused (the
        reader stops reading until ``resume`` is called)."""
        with self._lock:
            if self.backlog > high and not self.stopped:
                self.paused = True
                return True
            return False

    def stop(self) -> None:
        """Drop what waits; nothing more is run (a call running now finishes)."""
        with self._lock:
            self.stopped = True
            self._items.clear()
            self.backlog = 0

    def _post(self, kind: int, item: Any, count: int) -> None:
        with self._lock:
            if self.stopped:
                return
            self._items.append((kind, item))
            self.backlog += count
            if self._busy:
                return
            self._busy = True
        self._pool.submit(self._drain)

    def _hold(self) -> Callable[[], None]:
        with self._lock:
            self._held = True
        return self._release

    def _release(self) -> None:
        with self._lock:
            self._held = False
            if not self._parked:
                return
            self._parked = False
            if self.stopped:
                self._busy = False
                return
        self._pool.submit(self._drain)

    def _park(self, rest: Any) -> bool:
        """Under the lock: if held, keep ``rest`` (the batch's undelivered values and
        weight, or None) first in line and end the drain, still busy."""
        if not self._held or self.stopped:
            return False
        if rest is not None:
            self._items.appendleft((_BATCH, rest))
        self._parked = True
        return True

    def _drain(self) -> None:
        outer, _here.queue = getattr(_here, "queue", None), self
        try:
            self._drain_turn()
        finally:
            _here.queue = outer

    def _drain_turn(self) -> None:
        lock, items, on_next = self._lock, self._items, self._on_next
        for _ in range(_TURN):
            wake = False
            with lock:
                idle = self.stopped or not items
                if idle:
                    self._busy = False
                    # a hold that ended the last batch left the reader paused
                    wake = self.paused and not self.stopped and self.backlog <= self._low
                    if wake:
                        self.paused = False
                else:
                    kind, item = items.popleft()
            if idle:
                if wake:
                    self._resume()
                return
            if kind == _CALL:
                item()
                continue
            batch, weight = item
            try:
                for position, value in enumerate(batch):
                    if self.stopped:
                        break
                    on_next(value)
                    if self._held:
                        with lock:
                            rest = batch[position + 1:]
                            if self._park((rest, weight) if rest else None):
                                if not rest:
                                    self.backlog = max(0, self.backlog - weight)
                                return
            except Exception as exc:  # the subscriber's own bug ends its stream
                self.stop()
                self._on_failure(exc)
                with lock:
                    self._busy = False
                return
            resume = False
            with lock:
                self.backlog = max(0, self.backlog - weight)
                if self.paused and self.backlog <= self._low:
                    self.paused, resume = False, True
            if resume:
                self._resume()
        self._pool.submit(self._drain)  # still busy: let other streams have a turn
