"""The session's actor at run time: its mailbox, its scan, and the effects it performs.

```text
 any thread                      the session's serial scheduler (one thread, or virtual time)
 ──────────                      ─────────────────────────────────────────────────────────────
 on_next / ask / send ─┐
 cancel / undo / ...  ─┼─▶ Mailbox ─▶ scan(step, seed) ─▶ Actor ─▶ publish ChatState to subscribers
 a stream's deltas    ─┤    (deque)     (pure, _turns)           └▶ effects: subscribe a stream,
 a tool's result      ─┘                                             start a tool call,
                                                                     deliver a delta, end a turn
 cancel(): closes the turn's socket from the calling thread at once, then posts Cancel
```

Every command is posted to one `Mailbox` and folded by the pure `rxchat._session.turns.step`
in a `scan`, one at a time, on one serial scheduler: by default an
`EventLoopScheduler` whose thread exists only while the session has work (a server
holding thousands of idle sessions holds no idle threads). Subscribers, `ask()`
observers and `send()` replays are called on that scheduler, in order, never
concurrently and never while a lock is held, so they may call back into the session.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable
from reactivex.scheduler import EventLoopScheduler
from reactivex.subject import Subject

from .commands import (
    Ask,
    Command,
    Connect,
    Deliver,
    Effect,
    End,
    Greet,
    Open,
    RunTool,
    Shut,
    Streamed,
    ToolReturned,
)
from .reducer import ChatState, DeltaReceived, TurnCompleted, TurnFailed
from .._concurrency.mailbox import Mailbox
from .._models import Message
from .toolstate import ToolFinished
from .turns import Actor, step

__all__ = ["SessionActor", "call_subscriber"]

log = logging.getLogger("rxchat")

OpenStream = Callable[[ChatState], Observable[Message]]
"""Builds the stream of deltas of the turn that just started in a state."""

StartTool = Callable[[RunTool, Callable[[ToolFinished], None]], abc.DisposableBase]
"""Starts a tool call; its result goes to the callback (from any thread), once."""


class SessionActor:
    """Runs the actor: folds posted commands and performs the effects they ask for.

    Args:
        seed: The first actor value.
        scheduler: The serial scheduler; None for a thread of the actor's own.
        open_stream: Builds a turn's stream from the state it started in.
        stream_scheduler: Passed to the stream's `subscribe` (a virtual-time scheduler
            in tests; None otherwise, so a blocking read never runs on the actor).
        start_tool: Starts a tool call (`rxchat._tools.run`), when the session has tools.
    """

    def __init__(
        self,
        seed: Actor,
        scheduler: abc.SchedulerBase | None,
        open_stream: OpenStream,
        stream_scheduler: abc.SchedulerBase | None,
        start_tool: StartTool | None = None,
    ) -> None:
        self.value = seed
        self._open_stream, self._stream_scheduler = open_stream, stream_scheduler
        self._start_tool = start_tool
        self._own_thread = scheduler is None
        events: Subject[Command] = Subject()
        events.pipe(ops.scan(step, seed)).subscribe(self._perform, self._crash)
        self._events = events
        self._mailbox: Mailbox[Command | Callable[[], None]] = Mailbox(
            scheduler or _own_thread(), self._handle
        )

    def post(self, item: Command | Callable[[], None]) -> None:
        """Queue a command (or a callable to run on the actor's scheduler), from any thread."""
        self._mailbox.post(item)

    def post_and_wait(self, command: Command) -> None:
        """Post `command`; on the actor's own thread, return once it is applied.

        Called from a subscriber (the actor's thread) or with a scheduler of the
        caller's, it only posts: waiting there would wait for itself.
        """
        self._mailbox.post(command)
        if self._own_thread and not self._mailbox.on_drain_thread:
            applied = threading.Event()
            self._mailbox.post(applied.set)
            applied.wait()

    # -- on the actor's scheduler -------------------------------------------------

    def _handle(self, item: Command | Callable[[], None]) -> None:
        if callable(item):
            item()
        else:
            self._events.on_next(item)

    def _perform(self, actor: Actor) -> None:
        audience = self.value.watchers
        changed = actor.state is not self.value.state
        self.value = actor
        if changed:
            for watcher in audience:
                call_subscriber(watcher.on_next, actor.state)
        for effect in actor.effects:
            self._effect(effect)

    def _effect(self, effect: Effect) -> None:
        if isinstance(effect, Deliver):
            call_subscriber(effect.ask.observer.on_next, effect.delta)
        elif isinstance(effect, End):
            _end(effect.ask.observer, effect.error)
        elif isinstance(effect, Open):
            self._mailbox.post(effect)
        elif isinstance(effect, Connect):
            self._connect(effect.ask)
        elif isinstance(effect, RunTool):
            self._run_tool(effect)
        elif isinstance(effect, Shut):
            effect.ask.stream.dispose()
        elif isinstance(effect, Greet):
            call_subscriber(effect.observer.on_next, self.value.state)
        else:
            for observer in effect.observers:
                _end(observer, effect.error)

    def _connect(self, ask: Ask) -> None:
        """Subscribe the stream of the turn that just started."""
        if ask.stream.is_disposed:  # cancelled from another thread: its Cancel follows
            return
        state, post = self.value.state, self._mailbox.post
        turn = state.turn
        try:
            ask.stream.disposable = self._open_stream(state).subscribe(
                lambda delta: post(Streamed(ask, DeltaReceived(turn, delta))),
                lambda error: post(Streamed(ask, TurnFailed(turn, error))),
                lambda: post(Streamed(ask, TurnCompleted(turn))),
                scheduler=self._stream_scheduler,
            )
        except Exception as exc:  # building or subscribing the stream failed
            post(Streamed(ask, TurnFailed(turn, exc)))

    def _run_tool(self, effect: RunTool) -> None:
        """Start a tool call; it joins the step's tools, which `cancel()` disposes."""
        ask, post = effect.ask, self._mailbox.post
        if ask.stream.is_disposed or self._start_tool is None:
            return  # cancelled from another thread: its Cancel follows
        tools = ask.stream.disposable
        if not isinstance(tools, _StepTools):
            tools = _StepTools()
            ask.stream.disposable = tools  # the finished stream of the step is let go
        tools.add(self._start_tool(effect, lambda event: post(ToolReturned(ask, event))))

    def _crash(self, error: Exception) -> None:  # pragma: no cover - a bug in step()
        log.critical("rxchat: the session's reducer failed", exc_info=error)


class _StepTools(CompositeDisposable):
    """The tool calls of one step: what a turn is doing while its tools run."""


def call_subscriber(function: Callable[..., None], *args: Any) -> None:
    """Call a subscriber; its exception is logged, never raised into the session."""
    try:
        function(*args)
    except Exception:
        log.exception("A ChatSession subscriber raised; the session goes on.")


def _end(observer: abc.ObserverBase[Any], error: Exception | None) -> None:
    if error is None:
        call_subscriber(observer.on_completed)
    else:
        call_subscriber(observer.on_error, error)


def _own_thread() -> EventLoopScheduler:
    def thread(target: Callable[[], None]) -> threading.Thread:
        return threading.Thread(target=target, name="rxchat-session", daemon=True)

    return EventLoopScheduler(thread_factory=thread, exit_if_empty=True)
