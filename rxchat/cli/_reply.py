"""Play one streamed reply on the terminal, and let Ctrl-C cancel it.

The deltas arrive on the reader thread; they are handed over a queue to the main
thread, which alone writes to the terminal and animates the spinner while it waits.
During a reply SIGINT does not raise ``KeyboardInterrupt`` (which could land anywhere);
it sets a flag that the loop turns into ``cancel()``: the HTTP stream is closed and
what arrived so far is kept.
"""

from __future__ import annotations

import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from reactivex import Observable

from .._models import Message
from ..operators import merge_deltas
from ._render import ReplyView

__all__ = ["ReplyOutcome", "sigint_sets", "stream_reply"]

POLL_S = 0.08
"""How often the spinner moves and the cancel flag is looked at."""

CANCEL_GRACE_S = 3.0
"""How long to wait for the stream to end after ``cancel()`` before letting go of it."""


@dataclass(frozen=True)
class ReplyOutcome:
    """How one reply went.

    Attributes:
        message: Everything that arrived, merged (partial if cancelled or failed).
        error: The error that ended the stream, or None.
        cancelled: Ctrl-C stopped the reply.
        first_token_s: Seconds from the request to the first text, if any arrived.
        stream_s: Seconds from the first text to the end.
    """

    message: Message
    error: Exception | None = None
    cancelled: bool = False
    first_token_s: float | None = None
    stream_s: float | None = None


class _Ended:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error


@contextmanager
def sigint_sets(flag: threading.Event) -> Iterator[threading.Event]:
    """While active, Ctrl-C (SIGINT) sets ``flag`` instead of raising.

    Signal handlers can only be set from the main thread; elsewhere this does nothing.

    Args:
        flag: The event to set.

    Yields:
        ``flag``.
    """
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(_signum: int, _frame: FrameType | None) -> None:
        flag.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def stream_reply(
    deltas: Observable[Message],
    view: ReplyView,
    *,
    cancel: Callable[[], object] | None,
    interrupted: threading.Event,
    clock: Callable[[], float] = time.monotonic,
    inbox: queue.Queue[Any] | None = None,
) -> ReplyOutcome:
    """Subscribe to ``deltas`` and render them until the stream ends or is cancelled.

    Args:
        deltas: The reply's deltas.
        view: Where they are written.
        cancel: Called once when ``interrupted`` becomes set (e.g. ``session.cancel``),
            after which the loop waits for the stream to end; None: stop at once
            (disposing the subscription aborts the request).
        interrupted: Set by Ctrl-C (see `sigint_sets`).
        clock: Monotonic seconds, for the timings.
        inbox: The queue the deltas go through; other threads may put callables in
            it too, run on this thread with the view (a tool's approval prompt).

    Returns:
        What arrived, how the stream ended and how long it took.
    """
    loop = _ReplyLoop(view, cancel, interrupted, clock, inbox or queue.Queue())
    subscription = deltas.subscribe(
        on_next=loop.inbox.put,
        on_error=lambda error: loop.inbox.put(_Ended(error)),
        on_completed=lambda: loop.inbox.put(_Ended()),
    )
    try:
        loop.run()
    finally:
        subscription.dispose()
        view.finish()
    return loop.outcome()


class _ReplyLoop:
    """The main thread's side of one reply: render deltas, watch for Ctrl-C."""

    def __init__(
        self, view: ReplyView, cancel: Callable[[], object] | None,
        interrupted: threading.Event, clock: Callable[[], float], inbox: queue.Queue[Any],
    ) -> None:
        self.inbox = inbox
        self._view = view
        self._cancel = cancel
        self._interrupted = interrupted
        self._clock = clock
        self._started = clock()
        self._received: list[Message] = []
        self._first: float | None = None
        self._cancelled_at: float | None = None
        self._ended = _Ended()

    def run(self) -> None:
        """Render deltas until the stream ends, or Ctrl-C ends the wait for it."""
        while not self._cancel_if_asked():
            try:
                item = self.inbox.get(timeout=POLL_S)
            except queue.Empty:
                if self._cancelled_at is not None:
                    if self._clock() - self._cancelled_at > CANCEL_GRACE_S:
                        return
                else:
                    self._view.tick()
                continue
            if isinstance(item, _Ended):
                self._ended = item
                return
            if callable(item):  # work handed to the main thread (a tool's prompt)
                if self._cancelled_at is None:  # none after Ctrl-C
                    item(self._view)
                continue
            if self._first is None and (item.content or item.reasoning_content):
                self._first = self._clock()
            self._received.append(item)
            self._view.delta(item)

    def _cancel_if_asked(self) -> bool:
        """Cancel once Ctrl-C was pressed; True if the loop should stop now."""
        if self._interrupted.is_set() and self._cancelled_at is None:
            self._cancelled_at = self._clock()
            if self._cancel is None:
                return True
            self._cancel()
        return False

    def outcome(self) -> ReplyOutcome:
        """What arrived and how the reply ended, with its timings."""
        end = self._clock()
        first = self._first
        return ReplyOutcome(
            message=merge_deltas(self._received),
            error=None if self._cancelled_at is not None else self._ended.error,
            cancelled=self._cancelled_at is not None,
            first_token_s=None if first is None else first - self._started,
            stream_s=None if first is None else end - first,
        )
