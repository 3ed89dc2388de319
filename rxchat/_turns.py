"""The turn runner behind ChatSession: the scan of turn events, and one turn at a time.

::

    ask(turn) ──▶ waiting ──▶ TurnStarted ──▶ start_stream(state).subscribe(...)
                                  │                  │ deltas, completion, error
                                  ▼                  ▼
    inbox of events ──scan(apply_event, seed)──▶ states (BehaviorSubject)
                                  │
                                  └──▶ the turn's ReplaySubject (send()'s deltas)

The history lives only in the scan; the runner holds just the scheduling beside it
(waiting turns, the turn in flight, its subscription). Events are applied one at a
time under a lock, so states go out in order and never concurrently, from whichever
thread delivered the event. An event raised while one is being applied on the same
thread (a subscriber asking a turn, a stream emitting synchronously on subscribe) is
queued and applied right after, so no thread and no blocking is needed: with a
``TestScheduler`` everything runs in virtual time.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.subject import BehaviorSubject, ReplaySubject, Subject

from ._history import (
    ChatState,
    DeltaReceived,
    TurnCancelled,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
    TurnStarted,
    apply_event,
)
from ._models import Message
from .errors import SessionError

log = logging.getLogger("rxchat")

__all__ = ["Turn", "TurnRunner"]


@dataclass(frozen=True)
class Turn:
    """A turn asked: its message, and where its deltas are replayed (if anyone asked)."""

    message: Message
    regenerate: bool = False
    deltas: ReplaySubject[Message] | None = None


class TurnRunner:
    """Folds turn events into states and runs the asked turns in order.

    Args:
        seed: The first state.
        start_stream: Builds the stream of deltas for a state whose turn just started.
        scheduler: Passed to ``subscribe`` of each turn's stream.
    """

    def __init__(
        self,
        seed: ChatState,
        start_stream: Callable[[ChatState], Observable[Message]],
        scheduler: abc.SchedulerBase | None,
    ) -> None:
        self._start_stream, self._scheduler = start_stream, scheduler
        self._events: Subject[TurnEvent] = Subject()
        self.states = BehaviorSubject(seed)
        self._events.pipe(
            ops.scan(apply_event, seed), ops.distinct_until_changed(comparer=_same)
        ).subscribe(self.states)
        self.lock = threading.RLock()
        self._inbox: deque[TurnEvent] = deque()
        self._dispatching = False
        self._waiting: deque[Turn] = deque()
        self._running: Turn | None = None
        self._stream: abc.DisposableBase | None = None
        self._closing = self._closed = False

    @property
    def busy(self) -> bool:
        """Whether a turn is streaming or waiting."""
        return self.states.value.status == "streaming" or bool(self._waiting)

    def ask(self, turn: Turn) -> None:
        """Queue a turn; it starts when the ones asked before it are done.

        Raises:
            SessionError: The session is closed.
        """
        with self.lock:
            if self._closing or self._closed:
                raise SessionError("The session is closed; start a new ChatSession.")
            self._waiting.append(turn)
            self.run(None)

    def cancel(self) -> bool:
        """Dispose the stream in flight and commit its partial reply; False if none."""
        with self.lock:
            state = self.states.value
            if state.status != "streaming":
                return False
            self._drop_stream()
            self.run(TurnCancelled(state.turn))
            return True

    def discard(self, error: Exception, *, running: bool = True) -> None:
        """Drop the waiting turns and (if ``running``) the one in flight, uncommitted.

        Their delta streams end with ``error``; the state is left to the caller's event.
        """
        with self.lock:
            turns = list(self._waiting)
            self._waiting.clear()
            if running and self._running is not None:
                self._drop_stream()
                turns.insert(0, self._running)
                self._running = None
        for turn in turns:
            if turn.deltas is not None:
                turn.deltas.on_error(error)

    def close(self) -> None:
        """Drop the waiting turns, cancel the one in flight, and complete the states."""
        with self.lock:
            self._closing = True
            self.discard(SessionError("The turn was discarded: the session closed."),
                         running=False)
            self.cancel()
            self.run(None)

    def complete_when_idle(self) -> None:
        """Complete the states once the turns already asked are done; refuse new ones."""
        with self.lock:
            self._closing = True
            self.run(None)

    def fail(self, error: Exception) -> None:
        """End the states with ``error`` now, dropping every turn."""
        with self.lock:
            self.discard(error)
            self._closed = True
        self.states.on_error(error)

    def run(self, event: TurnEvent | None) -> None:
        """Apply ``event`` (if any) and whatever follows from it, one event at a time.

        An exception raised by a subscriber does not stop the session: the remaining
        events are applied, then the first such exception is re-raised to the caller.
        """
        with self.lock:
            if event is not None:
                self._inbox.append(event)
            if self._dispatching:
                return
            self._dispatching = True
            failure: Exception | None = None
            try:
                while self._inbox or self._start_next():
                    try:
                        self._apply(self._inbox.popleft())
                    except Exception as exc:
                        failure = failure or exc
            finally:
                self._dispatching = False
            if failure is not None:
                raise failure

    def _start_next(self) -> bool:
        """Queue the start of the next waiting turn if none runs; complete if closing."""
        if self.states.value.status == "streaming" or self._running or self._closed:
            return False
        if self._waiting:
            self._running = turn = self._waiting.popleft()
            self._inbox.append(TurnStarted(turn.message, turn.regenerate))
            return True
        if self._closing:
            self._closed = True
            self.states.on_completed()
        return False

    def _apply(self, event: TurnEvent) -> None:
        before = self.states.value
        try:
            self._events.on_next(event)
        finally:
            if self._running is not None and self.states.value is not before:
                self._follow(self._running, event)
            elif isinstance(event, TurnStarted) and self._running is not None:
                self._finish(self._running, SessionError("There is no turn to retry."))

    def _follow(self, turn: Turn, event: TurnEvent) -> None:
        """Do what an applied event means for the turn in flight."""
        if isinstance(event, TurnStarted):
            self._subscribe(self.states.value)
        elif isinstance(event, DeltaReceived):
            if turn.deltas is not None:
                turn.deltas.on_next(event.delta)
        elif isinstance(event, TurnFailed):
            self._finish(turn, event.error)
        else:
            if isinstance(event, TurnCancelled) and turn.deltas is not None:
                turn.deltas.on_next(Message(finish_reason="cancelled"))
            self._finish(turn, None)

    def _finish(self, turn: Turn, error: Exception | None) -> None:
        self._running, self._stream = None, None
        if turn.deltas is None:
            return
        if error is None:
            turn.deltas.on_completed()
        else:
            turn.deltas.on_error(error)

    def _subscribe(self, state: ChatState) -> None:
        """Subscribe to the stream of the turn that just started."""
        number = state.turn
        try:
            self._stream = self._start_stream(state).subscribe(
                lambda delta: self._deliver(DeltaReceived(number, delta)),
                lambda error: self._deliver(TurnFailed(number, error)),
                lambda: self._deliver(TurnCompleted(number)),
                scheduler=self._scheduler,
            )
        except Exception as exc:  # building or subscribing the stream failed
            self._inbox.append(TurnFailed(number, exc))

    def _deliver(self, event: TurnEvent) -> None:
        """Apply an event from the turn's stream; a subscriber's exception is logged.

        It must not travel back into the stream: that would end the turn with the
        subscriber's bug as if the provider had failed, and lose the reply.
        """
        try:
            self.run(event)
        except Exception:
            log.exception("A ChatSession subscriber raised; the turn goes on.")

    def _drop_stream(self) -> None:
        if self._stream is not None:
            self._stream.dispose()
            self._stream = None


def _same(left: object, right: object) -> bool:
    return left is right
