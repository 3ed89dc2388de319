"""Handing notifications to an asyncio event loop, thread-safely.

RxPY's ``await observable`` subscribes with ``AsyncIOScheduler(loop)`` and resolves
an ``asyncio.Future`` from ``on_completed``. rxchat's values arrive on other threads
(the SSE reader, a session's actor), and a future resolved there calls
``loop.call_soon`` from the wrong thread: the loop is not woken (the ``await`` hangs
until something else wakes it) and, in asyncio debug mode, raises
``RuntimeError: Non-thread-safe operation``. Timers are the same: ``ops.timeout``
reschedules on the subscriber's scheduler from whatever thread ``on_next`` runs on.

So rxchat's sources and operators read the scheduler given to ``subscribe``: when it
is an asyncio scheduler, `on_subscriber_loop` hands every notification to that
loop with ``call_soon_threadsafe`` (one wake-up drains the whole backlog, in order),
and everything downstream (the future, a timer) runs on the loop's own thread. With
any other scheduler, or none, notifications pass straight through.

A notification posted *on* the loop thread is delivered at once, so a chain of
several rxchat operators hops once, not once per operator.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.scheduler.eventloop import AsyncIOScheduler, AsyncIOThreadSafeScheduler

from .rxinternals import scheduler_loop

_T = TypeVar("_T")

__all__ = ["deliver_on_loop", "loop_of", "on_loop", "on_subscriber_loop", "thread_safe"]

_NEXT, _ERROR, _COMPLETED = 0, 1, 2


def loop_of(scheduler: abc.SchedulerBase | None) -> asyncio.AbstractEventLoop | None:
    """The event loop of an asyncio scheduler, or None for any other scheduler."""
    if not isinstance(scheduler, AsyncIOScheduler):
        return None
    return scheduler_loop(scheduler)


def thread_safe(scheduler: abc.SchedulerBase) -> abc.SchedulerBase:
    """The scheduler, or for a plain ``AsyncIOScheduler`` its thread-safe twin.

    ``AsyncIOScheduler.schedule`` calls ``loop.call_soon``, which only the loop's own
    thread may call; the thread-safe scheduler uses ``call_soon_threadsafe``.
    """
    loop = loop_of(scheduler)
    if loop is None or isinstance(scheduler, AsyncIOThreadSafeScheduler):
        return scheduler
    return AsyncIOThreadSafeScheduler(loop)


def on_subscriber_loop() -> Callable[[Observable[_T]], Observable[_T]]:
    """Deliver the source's notifications on the subscriber's asyncio loop, if any.

    Returns:
        An operator that passes everything through; when subscribed with an asyncio
        scheduler (as ``await`` does), it calls the observer on that loop's thread.
    """
    return on_loop(None)


def on_loop(
    loop: asyncio.AbstractEventLoop | None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Deliver the source's notifications on ``loop``'s thread.

    Args:
        loop: The loop; None for the loop of the scheduler given to ``subscribe``
            (and no hop at all when that is not an asyncio scheduler).

    Returns:
        An operator that hands each notification to the loop, in order.
    """

    def operator(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def start(target: abc.ObserverBase[_T]) -> abc.DisposableBase:
                return source.subscribe(target, scheduler=scheduler)

            return deliver_on_loop(observer, loop or loop_of(scheduler), start)

        return reactivex.create(subscribe)

    return operator


def deliver_on_loop(
    observer: abc.ObserverBase[_T],
    loop: asyncio.AbstractEventLoop | None,
    start: Callable[[abc.ObserverBase[_T]], abc.DisposableBase],
) -> abc.DisposableBase:
    """Start a subscription whose notifications reach `observer` on `loop`'s thread.

    Args:
        observer: Where the notifications go.
        loop: The loop to hand them to; None to pass them straight through.
        start: Subscribes the given observer to the source; returns the subscription.

    Returns:
        The subscription; disposing it also drops what still waits for the loop.
    """
    if loop is None:
        return start(observer)
    hop = _Hop(observer, loop)
    hop.upstream = upstream = start(hop)
    return CompositeDisposable(Disposable(hop.dispose), upstream)


class _Hop(abc.ObserverBase[Any]):
    """One subscription's queue of notifications, drained on the loop's thread."""

    def __init__(self, observer: abc.ObserverBase[Any], loop: asyncio.AbstractEventLoop) -> None:
        self._observer, self._loop = observer, loop
        self._lock = threading.Lock()
        self._queue: deque[tuple[int, Any]] = deque()
        self._busy = False  # a drain is scheduled or running
        self._stopped = False
        self.upstream: abc.DisposableBase | None = None

    def on_next(self, value: Any) -> None:
        self._post(_NEXT, value)

    def on_error(self, error: Exception) -> None:
        self._post(_ERROR, error)

    def on_completed(self) -> None:
        self._post(_COMPLETED, None)

    def dispose(self) -> None:
        with self._lock:
            self._stopped = True
            self._queue.clear()

    def _post(self, kind: int, value: Any) -> None:
        with self._lock:
            if self._stopped:
                return
            self._queue.append((kind, value))
            if self._busy:
                return
            self._busy = True
        if _running_loop() is self._loop:
            self._drain()
            return
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: nobody is left to deliver to
            self.dispose()

    def _drain(self) -> None:
        while True:
            with self._lock:
                if self._stopped or not self._queue:
                    self._busy = False
                    return
                kind, value = self._queue.popleft()
                if kind != _NEXT:
                    self._stopped = True
            if kind == _NEXT:
                try:
                    self._observer.on_next(value)
                except Exception:  # the subscriber's own bug: the stream ends, and the
                    self._fail()  # exception goes on to whoever called us, as in RxPY
                    raise
            elif kind == _ERROR:
                self._observer.on_error(value)
            else:
                self._observer.on_completed()

    def _fail(self) -> None:
        self.dispose()
        if self.upstream is not None:
            self.upstream.dispose()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
