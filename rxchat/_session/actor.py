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

from .._concurrency.mailbox import Mailbox, on_a_drain_thread
from .._models import Message, ToolCall
from .._wire.merge import merge_deltas
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

BACKLOG = 256
"""Deltas of a turn's stream that may wait for the session's actor; then its reader
waits (the socket is not read, TCP pushes back on the server)."""

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
        self._asking_lock = threading.Lock()
        self._asking = 0  # asks posted and not folded yet
        self._gate = threading.Condition(threading.Lock())
        self._backlog = 0  # deltas posted and not folded yet
        self._merging = False  # the delta being folded is followed by another
        self._unpublished: list[Message] = []  # deltas of states merged away
        events: Subject[Command] = Subject()
        events.pipe(ops.scan(_guarded_step, seed)).subscribe(self._perform, self._crash)
        self._events = events
        self._mailbox: Mailbox[Command | Callable[[], None]] = Mailbox(
            scheduler or _own_thread(), self._handle
        )

    def post(self, item: Command | Callable[[], None]) -> None:
        """Queue a command (or a callable to run on the actor's scheduler), from any thread."""
        if isinstance(item, Asked):
            with self._asking_lock:
                self._asking += 1
        self._mailbox.post(item)

    @property
    def busy(self) -> bool:
        """Whether a turn has been asked and has not finished, counted now from any thread.

        An ask counts from the moment it is posted (before the actor folds it), so a
        turn asked a moment ago on another thread counts too.
        """
        value = self.value
        return bool(self._asking or value.running is not None or value.waiting)

    def post_and_wait(self, command: Command) -> None:
        """Post `command`; on the actor's own thread, return once it is applied.

        Called on any session's thread (a subscriber of this session or of another
        one) or with a scheduler of the caller's, it only posts: waiting there could
        wait for itself, or for a session that waits for this one.
        """
        self._mailbox.post(command)
        if self._own_thread and not on_a_drain_thread():
            applied = threading.Event()
            self._mailbox.post(applied.set)
            applied.wait()

    # -- on the actor's scheduler -------------------------------------------------

    def release(self) -> None:
        """Wake a stream reader waiting for room (its turn was cancelled or withdrawn)."""
        with self._gate:
            self._gate.notify_all()

    def _admit(self, ask: Ask) -> None:
        """On the turn's stream reader, before it posts a delta: wait while the actor is
        `BACKLOG` deltas behind, or a consumer the actor feeds is full.

        Never on a thread that serves a session or runs virtual time: only a reader
        of its own waits, so the socket is not read faster than the reply is used,
        and the actor itself never waits.
        """
        wait = (self._stream_scheduler is None and not on_a_drain_thread()
                and threading.get_ident() != self._mailbox.last_drainer)
        if wait:
            for consumer in self._mailbox.take_push_back():
                consumer(lambda: ask.stream.is_disposed)
        with self._gate:
            while wait and self._backlog >= BACKLOG and not ask.stream.is_disposed:
                self._gate.wait(0.25)
            self._backlog += 1

    def _handle(self, item: Command | Callable[[], None]) -> None:
        if callable(item):
            item()
        elif isinstance(item, Streamed) and isinstance(item.event, DeltaReceived):
            following = self._mailbox.peek()
            # the actor is behind: a later delta of this turn waits, so this state is
            # merged into the next one for the state subscribers (`partial` is cumulative)
            self._merging = (isinstance(following, Streamed) and following.ask is item.ask
                             and isinstance(following.event, DeltaReceived))
            try:
                self._events.on_next(item)
            finally:
                self._merging = False
                with self._gate:
                    self._backlog -= 1
                    if self._backlog <= BACKLOG // 2:  # a waiting reader reads on in bursts
                        self._gate.notify_all()
        elif isinstance(item, Asked):
            try:
                self._events.on_next(item)
            finally:  # now in `value` (running, waiting) or ended: no longer in flight
                with self._asking_lock:
                    self._asking -= 1
        else:
            self._events.on_next(item)

    def _perform(self, actor: Actor) -> None:
        audience = self.value.watchers
        changed = actor.state is not self.value.state
        self.value = actor
        if changed and audience:
            state = self._merged(actor.state)
            if state is not None:
                for watcher in audience:
                    call_subscriber(watcher.on_next, state)
        elif not audience:
            self._unpublished.clear()
        for effect in actor.effects:
            self._effect(effect)

    def _merged(self, state: ChatState) -> ChatState | None:
        """The state to publish: None while merging delta states, then the latest one,
        its `delta` the merge of the deltas since the last state published."""
        delta = state.delta
        if delta is None or state.status != "streaming":
            self._unpublished.clear()
            return state
        if self._merging:
            self._unpublished.append(delta)
            return None
        if not self._unpublished:
            return state
        deltas, self._unpublished = [*self._unpublished, delta], []
        return replace(state, delta=merge_deltas(deltas))

    def _effect(self, effect: Effect) -> None:
        if isinstance(effect, Deliver):
            # a full consumer of a turn's deltas (an aio channel) may make the turn's
            # reader wait; a consumer of states may not (a forgotten state iterator
            # would stall every turn)
            self._mailbox.accepting_push_back = True
            try:
                call_subscriber(effect.ask.observer.on_next, effect.delta)
            finally:
                self._mailbox.accepting_push_back = False
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
            self.release()
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
            def delta(value: Message) -> None:
                self._admit(ask)
                post(Streamed(ask, DeltaReceived(turn, value)))

            ask.stream.disposable = self._open_stream(state).subscribe(
                delta,
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
        try:
            run = self._start_tool(effect.call, lambda content, error: post(
                ToolReturned(ask, ToolFinished(effect.turn, effect.call, content, error))
            ))
        except Exception as exc:  # a call it cannot even start: answered, never waited for
            call = effect.call
            error = ToolError(
                f"Tool call {call.id!r} could not start: {exc!r}.",
                tool_call_id=call.id, tool_name=str(call.function.name),
            )
            error.__cause__ = exc
            post(ToolReturned(ask, ToolFinished(effect.turn, call, f"Error: {error}", error)))
            return
        tools.add(run)

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
