"""A bounded channel from producer threads to one consumer on an asyncio loop.

The producer side is an Rx observer, called on whatever thread the source emits on
(the SSE reader, a session's actor). When ``maxsize`` values wait, ``on_next`` blocks
that thread, so the reader stops reading and TCP pushes back on the server; the event
loop never blocks: its side only takes what is there, or awaits a future that a
producer resolves with ``call_soon_threadsafe``. Nothing is dropped.

Two exceptions, where waiting would be worse than queueing beyond ``maxsize``:

* a value emitted *on the loop's own thread* (a synchronous source, or a session
  whose scheduler is that loop) cannot wait for the loop: that would deadlock;
* a value emitted by a ``ChatSession``'s actor (its mailbox's drain): that thread
  serves every command and subscriber of the session, and a blocking method called
  from the loop (``undo()``, ``reset()``, ``set_system()``) would wait for it while it
  waited for the loop. Instead the full channel hands the session its
  ``wait_for_room`` (`rxchat._concurrency.mailbox.push_back`): the turn's stream
  reader waits there before its next delta, so the reply is not read faster than
  the consumer takes it, and the actor never waits.

The lock guards only the deque and flags; no user code runs while it is held.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from reactivex import Observable
from reactivex.disposable import SingleAssignmentDisposable

from .mailbox import on_a_drain_thread, push_back
from .pool import delivering_a_stream, hold_delivery

_T = TypeVar("_T")

__all__ = ["Channel"]

NEXT, ERROR, COMPLETED = 0, 1, 2


class Channel(Generic[_T]):
    """One subscription's values, waiting for the consumer on ``loop``.

    Args:
        loop: The consumer's loop (the running one when the channel is made).
        maxsize: How many values may wait before a producing thread waits.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._maxsize = maxsize
        self._room = threading.Condition(threading.Lock())
        self._items: deque[tuple[int, Any]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._subscription = SingleAssignmentDisposable()
        # holds of delivering streams (`pool.hold_delivery`), released when room is made
        self._releases: list[Callable[[], None]] = []

    @property
    def closed(self) -> bool:
        """Whether the consumer has gone (values are no longer taken)."""
        return self._closed

    def subscribe(self, source: Observable[_T]) -> None:
        """Subscribe the channel to ``source`` (once)."""
        self._subscription.disposable = source.subscribe(
            self.on_next, self.on_error, self.on_completed
        )

    # -- producer side: any thread ---------------------------------------------------

    def on_next(self, value: _T) -> None:
        """Queue a value; on a thread other than the loop's, wait while the channel is full.

        On a session's thread (a mailbox's drain) it never waits: when full, it asks
        that session's stream reader to wait for room instead (`push_back`; the
        session takes it only while it hands on a turn's deltas).
        """
        drain = on_a_drain_thread()
        wait = threading.get_ident() != self._loop_thread and not drain
        # On a delivery-pool thread, waiting would take that thread from every other
        # stream: that stream is held after this value instead, until there is room.
        delivering = wait and delivering_a_stream()
        self._put(NEXT, value, wait=wait and not delivering)
        if drain and self.full:
            push_back(self.wait_for_room)
        elif delivering and self.full:
            release = hold_delivery()
            if release is not None:
                with self._room:
                    if self.full:
                        self._releases.append(release)
                        release = None
                if release is not None:  # room was made meanwhile
                    release()

    @property
    def full(self) -> bool:
        """Whether `maxsize` values (or more) wait for the consumer."""
        return len(self._items) >= self._maxsize and not self._closed

    def wait_for_room(self, stop: Callable[[], bool]) -> None:
        """Block the calling (producer) thread while the channel is full.

        Args:
            stop: Checked now and then; waiting ends when it holds (the producer's
                stream was disposed).
        """
        with self._room:
            while len(self._items) >= self._maxsize and not self._closed and not stop():
                self._room.wait(0.25)

    def on_error(self, error: Exception) -> None:
        """Queue the error (never waits)."""
        self._put(ERROR, error, wait=False)

    def on_completed(self) -> None:
        """Queue the end (never waits)."""
        self._put(COMPLETED, None, wait=False)

    def _put(self, kind: int, value: Any, *, wait: bool) -> None:
        with self._room:
            while wait and len(self._items) >= self._maxsize and not self._closed:
                self._room.wait()
            if self._closed:
                return
            self._items.append((kind, value))
            waiter, self._waiter = self._waiter, None
        if waiter is not None and not self._wake_consumer(waiter):
            self.close()  # the loop is closed: no consumer is left

    def _wake_consumer(self, waiter: asyncio.Future[None]) -> bool:
        if threading.get_ident() == self._loop_thread:
            _wake(waiter)
            return True
        try:
            self._loop.call_soon_threadsafe(_wake, waiter)
        except RuntimeError:  # the loop is closed
            return False
        return True

    # -- consumer side: the loop's thread ----------------------------------------------

    def take(self) -> tuple[int, Any] | asyncio.Future[None]:
        """The next item (the end once closed), or a future resolved when there is one."""
        with self._room:
            if self._closed:
                return COMPLETED, None
            if self._items:
                item = self._items.popleft()
                self._room.notify()
                releases, self._releases = self._releases, []
            else:
                releases = None
        if releases is not None:
            for release in releases:
                release()
            return item
        with self._room:
            if self._closed:
                return COMPLETED, None
            if self._items:  # arrived meanwhile
                item = self._items.popleft()
                self._room.notify()
                return item
            waiter = self._waiter = self._loop.create_future()
            return waiter

    def close(self) -> None:
        """The consumer is gone: drop what waits, free the producer, dispose the source.

        Safe from any thread, and more than once. Disposing a ChatSession turn cancels
        it; disposing a stream closes its socket.
        """
        with self._room:
            self._closed = True
            self._items.clear()
            self._releases.clear()
            waiter, self._waiter = self._waiter, None
            self._room.notify_all()
        self._subscription.dispose()
        if waiter is not None:  # a consumer awaiting the next value sees the end
            self._wake_consumer(waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
