"""A mailbox: items posted from any thread, handed on one at a time on a serial scheduler.

This is the front door of the session's actor. `post` may be called from any thread
(a reader thread delivering a delta, the user's thread asking a turn, a subscriber
calling back in) and never blocks beyond appending to a deque; the items are handed
to `handle` in the order posted, never concurrently, on the scheduler. The lock
guards only the deque: `handle` (and any user code it reaches) runs without it.

Why not `ops.observe_on`: its `ScheduledObserver` schedules one action per item and
takes items with `list.pop(0)`, which is linear in the backlog, so a fast stream into
a busy session would cost quadratic time. Here one scheduled action drains the whole
backlog. With a `TestScheduler` the drain runs in virtual time, at the time of the post.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from reactivex import abc

from .loop import thread_safe

_T = TypeVar("_T")

__all__ = ["Mailbox", "on_a_drain_thread", "push_back"]

log = logging.getLogger("rxchat")

_here = threading.local()


def push_back(wait: Callable[[Callable[[], bool]], None]) -> bool:
    """Ask the producers of the mailbox draining on this thread to wait, not this thread.

    A consumer that is full and may not block a drain thread (`rxchat.aio`'s channel)
    hands over `wait`, which blocks until it has room (or until its argument, a
    `stop` check, says to give up). The mailbox's owner calls it on the producer's
    thread (`Mailbox.take_push_back`): the reader, never the actor, waits.

    Args:
        wait: Blocks until the consumer has room, or `stop()` holds.

    Returns:
        Whether a mailbox was draining on this thread to take it.
    """
    mailbox = getattr(_here, "mailbox", None)
    if mailbox is None or not mailbox.accepting_push_back:
        return False
    mailbox.note_push_back(wait)
    return True


def on_a_drain_thread() -> bool:
    """Whether the calling thread is handing on some mailbox's items (a session's actor).

    Such a thread serves every command and subscriber of its session, so a consumer
    must never make it wait (`rxchat.aio` queues instead).
    """
    return bool(getattr(_here, "draining", False))


class Mailbox(Generic[_T]):
    """Hands posted items to `handle`, in order, on `scheduler`, one at a time.

    Args:
        scheduler: A serial scheduler (an `EventLoopScheduler`, an asyncio scheduler,
            a `TestScheduler`); never the `ImmediateScheduler`.
        handle: Called with each item; it must not raise (an exception is logged).
    """

    def __init__(self, scheduler: abc.SchedulerBase, handle: Callable[[_T], None]) -> None:
        # Posts come from any thread: an asyncio scheduler must wake its loop safely.
        self._scheduler, self._handle = thread_safe(scheduler), handle
        self._lock = threading.Lock()
        self._items: deque[_T] = deque()
        self._draining = False
        self._drainer: int | None = None
        self.last_drainer: int | None = None  # the thread of the last drain (or this one)
        self.accepting_push_back = False  # set by the owner while it feeds a consumer
        self._push_back: dict[Any, Callable[[Callable[[], bool]], None]] = {}

    @property
    def on_drain_thread(self) -> bool:
        """Whether the calling thread is the one handing items on right now."""
        return self._drainer == threading.get_ident()

    def post(self, item: _T) -> None:
        """Queue `item`; start a drain on the scheduler unless one is due or running."""
        with self._lock:
            self._items.append(item)
            if self._draining:
                return
            self._draining = True
        self._scheduler.schedule(self._drain)

    def peek(self) -> _T | None:
        """The next item waiting to be handed on, or None (from the drain thread)."""
        with self._lock:
            return self._items[0] if self._items else None

    def note_push_back(self, wait: Callable[[Callable[[], bool]], None]) -> None:
        """Keep a full consumer's `wait` for the next producer (see `push_back`)."""
        with self._lock:
            self._push_back[wait] = wait  # a bound method equals itself: once per consumer

    def take_push_back(self) -> list[Callable[[Callable[[], bool]], None]]:
        """The waits of full consumers noted since the last call (see `push_back`)."""
        with self._lock:
            if not self._push_back:
                return []
            waits, self._push_back = list(self._push_back.values()), {}
        return waits

    def _drain(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        outer, _here.draining = getattr(_here, "draining", False), True
        outer_mailbox, _here.mailbox = getattr(_here, "mailbox", None), self
        self.last_drainer = threading.get_ident()
        try:
            self._drain_all()
        finally:
            _here.draining, _here.mailbox = outer, outer_mailbox

    def _drain_all(self) -> None:
        self._drainer = threading.get_ident()
        while True:
            with self._lock:
                if not self._items:
                    self._draining, self._drainer = False, None
                    return
                item = self._items.popleft()
            try:
                self._handle(item)
            except Exception:  # a bug of ours: keep the mailbox going
                log.exception("rxchat: a session command failed")
