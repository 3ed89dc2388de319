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
    cancel: Callable[[], None],
    interrupted: threading.Event,
    clock: Callable[[], float] = time.monotonic,
) -> ReplyOutcome:
    """Subscribe to ``deltas`` and render them until the stream ends or is cancelled.

    Args:
        deltas: The reply's deltas.
        view: Where they are written.
        cancel: Called once when ``interrupted`` becomes set (e.g. ``session.cancel``).
        interrupted: Set by Ctrl-C (see :func:`sigint_sets`).
        clock: Monotonic seconds, for the timings.

    Returns:
        What arrived, how the stream ended and how long it took.
    """
    inbox: queue.Queue[Message | _Ended] = queue.Queue()
    started = clock()
    subscription = deltas.subscribe(
        on_next=inbox.put,
        on_error=lambda error: inbox.put(_Ended(error)),
        on_completed=lambda: inbox.put(_Ended()),
    )
    received: list[Message] = []
    first: float | None = None
    cancelled_at: float | None = None
    ended = _Ended()
    try:
        while True:
            if interrupted.is_set() and cancelled_at is None:
                cancelled_at = clock()
                cancel()
            try:
                item = inbox.get(timeout=POLL_S)
            except queue.Empty:
                if cancelled_at is not None and clock() - cancelled_at > CANCEL_GRACE_S:
                    break
                view.tick()
                continue
            if isinstance(item, _Ended):
                ended = item
                break
            if first is None and (item.content or item.reasoning_content):
                first = clock()
            received.append(item)
            view.delta(item)
    finally:
        subscription.dispose()
        view.finish()
    end = clock()
    return ReplyOutcome(
        message=merge_deltas(received),
        error=None if cancelled_at is not None else ended.error,
        cancelled=cancelled_at is not None,
        first_token_s=None if first is None else first - started,
        stream_s=None if first is None else end - first,
    )
