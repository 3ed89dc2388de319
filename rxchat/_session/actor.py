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

`Replay` is the replay behind `ChatSession.send()`: a hot turn's deltas, for every
subscriber. `reactivex.subject.ReplaySubject` replays to a new subscriber while holding
its lock, which would call user code under a lock; here recording and joining both run
on the session's serial scheduler (a join is posted to the mailbox), so no lock is needed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.scheduler import EventLoopScheduler
from reactivex.subject import Subject

from .._concurrency.mailbox import Mailbox
from .._models import Message, ToolCall
from ..errors import SessionError, ToolError
from .commands import (
    Ask,
    Asked,
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
from .events import DeltaReceived, ToolFinished, TurnCompleted, TurnFailed
from .state import ChatState
from .turns import Actor, fail_turn, step

__all__ = ["Replay", "SessionActor", "call_subscriber"]

log = logging.getLogger("rxchat")

OpenStream = Callable[[ChatState], Observable[Message]]
"""Builds the stream of deltas of the turn that just started in a state."""

StartTool = Callable[[ToolCall, Callable[[str, ToolError | None], None]], abc.DisposableBase]
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
        events.pipe(ops.scan(_guarded_step, seed)).subscribe(self._perform, self._crash)
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
        tools.add(self._start_tool(effect.call, lambda content, error: post(
            ToolReturned(ask, ToolFinished(effect.turn, effect.call, content, error))
        )))

    def _crash(self, error: Exception) -> None:  # pragma: no cover - a bug in step()
        log.critical("rxchat: the session's reducer failed", exc_info=error)


_Post = Callable[[Callable[[], None]], None]


class Replay(abc.ObserverBase[Message]):
    """Records one turn's deltas and end; `observable` replays them, then goes live.

    Every method runs on the session's scheduler: the session calls the observer
    methods, and `observable`'s subscribe and dispose are posted there.

    Args:
        post: Runs a callable on the session's scheduler (its mailbox).
    """

    def __init__(self, post: _Post) -> None:
        self._post = post
        self._deltas: list[Message] = []
        self._end: tuple[Exception | None] | None = None
        self._live: list[abc.ObserverBase[Message]] = []

    @property
    def observable(self) -> Observable[Message]:
        """The turn's deltas from the first, then its end, for each subscriber."""

        def subscribe(
            observer: abc.ObserverBase[Message], _scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            self._post(lambda: self._join(observer))
            return Disposable(lambda: self._post(lambda: self._leave(observer)))

        return reactivex.create(subscribe)

    def on_next(self, value: Message) -> None:
        """Record a delta and pass it on."""
        self._deltas.append(value)
        for observer in list(self._live):
            call_subscriber(observer.on_next, value)

    def on_error(self, error: Exception) -> None:
        """Record the turn's error and pass it on."""
        self._finish(error)

    def on_completed(self) -> None:
        """Record the turn's completion and pass it on."""
        self._finish(None)

    def _finish(self, error: Exception | None) -> None:
        self._end = (error,)
        live, self._live = self._live, []
        for observer in live:
            _end(observer, error)

    def _join(self, observer: abc.ObserverBase[Message]) -> None:
        for delta in list(self._deltas):
            call_subscriber(observer.on_next, delta)
        if self._end is None:
            self._live.append(observer)
        else:
            _end(observer, self._end[0])

    def _leave(self, observer: abc.ObserverBase[Message]) -> None:
        if observer in self._live:
            self._live.remove(observer)


class _StepTools(CompositeDisposable):
    """The tool calls of one step: what a turn is doing while its tools run."""


def call_subscriber(function: Callable[..., None], *args: Any) -> None:
    """Call a subscriber; its exception is logged, never raised into the session."""
    try:
        function(*args)
    except Exception:
        log.exception("A ChatSession subscriber raised; the session goes on.")


def _end(observer: abc.ObserverBase[Any], error: Exception | None) -> None:
    """End `observer` with `error`, or complete it when None (as a subscriber call)."""
    if error is None:
        call_subscriber(observer.on_completed)
    else:
        call_subscriber(observer.on_error, error)


def _guarded_step(actor: Actor, command: Command) -> Actor:
    """`step`, except that a failure folding a command fails the turn in flight with a
    typed error (`SessionError`) instead of ending the scan: the session goes on."""
    try:
        return step(actor, command)
    except Exception as exc:
        log.error("rxchat: folding %s into the session failed; the turn in flight fails",
                  type(command).__name__, exc_info=exc)
        error = SessionError(
            f"The session could not take what the turn produced ({exc!r:.300}). The turn "
            "failed and nothing of it was committed; ask again or regenerate()."
        )
        try:
            failed = fail_turn(actor, error)
            if isinstance(command, Asked):  # never queued: its asker must hear too
                failed = replace(failed, effects=(*failed.effects, End(command.ask, error)))
            return failed
        except Exception:  # pragma: no cover - the state itself is broken
            log.critical("rxchat: the session could not fail the turn", exc_info=True)
            return replace(actor, effects=())


def _own_thread() -> EventLoopScheduler:
    def thread(target: Callable[[], None]) -> threading.Thread:
        return threading.Thread(target=target, name="rxchat-session", daemon=True)

    return EventLoopScheduler(thread_factory=thread, exit_if_empty=True)
