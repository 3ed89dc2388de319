"""The session's actor as a pure function: commands in, the next `Actor` out.

`ChatSession` folds every command (an ask, a cancel, a delta from a turn's stream, a
new subscriber, ...) through `step` in a `scan`, one at a time on its serial scheduler.
`step` calls nothing but the pure reducer (`rxchat._session.reducer.apply_event`):
what must happen in the world (subscribe a stream, close one, start a tool call, hand
a delta to an `ask()` subscriber) is listed in `Actor.effects`, and the session
performs those after the state has been published. So the whole turn protocol is
testable as plain values.

```text
Asked ─▶ waiting ─▶ TurnStarted ─▶ Open (posted back) ─▶ Connect: subscribe the stream
                         │    ▲                            │ Streamed(delta/done/error)
                         │    └── ToolsCommitted ◀── RunTool per call, ◀─┤ a reply with
                         │        (next step)        ToolReturned each   │ tool calls
Cancel / Withdrawn ──────┴──▶ TurnCancelled, Close stream or tools ◀─────┘
```

With tools (`Actor.loop`), a reply that calls tools is committed as a step, its calls
start (at most `ToolLoop.concurrency` at once: a finished call starts the next), and
when every call has its result the results are committed and the next request opens;
after `ToolLoop.max_steps` requests the turn fails with `StepLimitError` instead.

`Open` travels once more through the mailbox before the stream is subscribed, so a
`cancel()` issued by a subscriber that saw the turn start is folded first, and no
request is sent at all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from reactivex import abc

from .._models import Message
from ..errors import SessionError, StepLimitError, StreamError
from .commands import (
    Ask,
    Asked,
    Cancel,
    Closed,
    Command,
    Connect,
    Deliver,
    Edit,
    Effect,
    End,
    Finish,
    Greet,
    InputCompleted,
    InputFailed,
    Open,
    Reset,
    RunTool,
    Shut,
    Streamed,
    ToolReturned,
    Unwatch,
    Watch,
    Withdrawn,
)
from .events import (
    DeltaReceived,
    SessionReset,
    StepCommitted,
    ToolsCommitted,
    ToolStarted,
    TurnCancelled,
    TurnCompleted,
    TurnFailed,
    TurnStarted,
)
from .reducer import apply_event, cancel_tools
from .state import ChatState, last_turn_start, waiting_calls

__all__ = ["Actor", "Phase", "ToolLoop", "fail_turn", "step"]

Phase = Literal["open", "closing", "closed"]


@dataclass(frozen=True)
class ToolLoop:
    """How a turn runs the tools its replies call.

    Attributes:
        max_steps: Requests a turn may make; a turn still calling tools after that
            many fails with `StepLimitError`.
        concurrency: Tool calls of one step running at once.
    """

    max_steps: int = 8
    concurrency: int = 4


@dataclass(frozen=True)
class Actor:
    """Everything the session knows: the conversation and the turn queue around it.

    Attributes:
        state: The conversation, as subscribers see it.
        running: The ask whose turn is in flight, or None.
        waiting: Asks queued behind it, in order.
        watchers: The state subscribers.
        phase: `"open"`; `"closing"` after `on_completed()` until the queue drains;
            `"closed"` after that, an error, `close()` or `dispose()`.
        effects: What the last command asks the session to do, in order.
        loop: How tool calls run; None: a reply with tool calls ends the turn.
        delivered: Deltas handed to the running ask's observer, all steps together.
        failed_origin: The `Ask.origin` of the turn that failed last (while the
            state still shows that failure, a retry of it continues it).
    """

    state: ChatState
    running: Ask | None = None
    waiting: tuple[Ask, ...] = ()
    watchers: tuple[abc.ObserverBase[ChatState], ...] = ()
    phase: Phase = "open"
    effects: tuple[Effect, ...] = ()
    loop: ToolLoop | None = None
    delivered: int = 0
    failed_origin: object | None = None


def step(actor: Actor, command: Command) -> Actor:
    """The actor after one command (pure: the inputs are unchanged).

    Args:
        actor: The actor before; its `effects` are those of the previous command.
        command: What happened.

    Returns:
        The next actor, whose `effects` say what to do about `command`.
    """
    if isinstance(command, (Streamed, ToolReturned)):
        return _streamed(actor, command)
    actor = replace(actor, effects=())
    if isinstance(command, Asked):
        if actor.phase != "open":
            return _with(actor, End(command.ask, SessionError(_CLOSED)))
        return _start_next(_queue(actor, (*actor.waiting, command.ask)))
    if isinstance(command, (Withdrawn, Cancel)):
        return _cancel(actor, command)
    if isinstance(command, Open):
        if actor.running is command.ask and actor.state.status == "streaming":
            return _with(actor, Connect(command.ask))
        return actor
    return _control(actor, command)


def _streamed(actor: Actor, command: Streamed | ToolReturned) -> Actor:
    ask, event = command.ask, command.event
    if ask is not actor.running:
        return replace(actor, effects=())
    if isinstance(command, Streamed) and ask.stream.is_disposed:
        # cancelled or withdrawn on another thread (its command follows): what the
        # stream sent after that was never given to the subscriber, and is not kept
        return replace(actor, effects=())
    if isinstance(command, ToolReturned):
        return _run_tools(replace(actor, state=apply_event(actor.state, event), effects=()))
    if isinstance(event, TurnCompleted) and actor.loop is not None:
        reply = actor.state.partial
        if reply is not None and reply.tool_calls:
            state = apply_event(actor.state, StepCommitted(event.turn))
            return _run_tools(replace(actor, state=state, effects=()))
    if isinstance(event, DeltaReceived) and not _is_text_delta(event.delta):
        return fail_turn(actor, StreamError(
            f"The turn's stream gave a delta whose text is not a string: {event.delta!r:.300}."
            " The turn failed and nothing of it was committed; the session goes on."
        ))
    state = apply_event(actor.state, event)
    if isinstance(event, DeltaReceived):
        return replace(actor, state=state, delivered=actor.delivered + 1,
                       effects=(Deliver(ask, event.delta),))
    error = event.error if isinstance(event, TurnFailed) else None
    failed = ask.origin if error is not None else actor.failed_origin
    return _start_next(replace(actor, state=state, running=None, failed_origin=failed,
                               effects=(End(ask, error),)))


def fail_turn(actor: Actor, error: Exception) -> Actor:
    """The turn in flight fails with `error`; its stream is closed and the next starts.

    For a failure while folding the turn (a delta the reducer cannot take, a bug):
    history stays as committed, the state shows the error, and the session serves the
    next turn instead of hanging.

    Args:
        actor: The actor before the command that failed.
        error: The turn's error.

    Returns:
        The actor after the failure (itself, without effects, when no turn runs).
    """
    ask, state = actor.running, actor.state
    if ask is None:
        return replace(actor, effects=())  # nothing runs: the session goes on as it was
    if state.status == "tools":  # every committed call gets its result
        state = cancel_tools(state)
    failed = ChatState(
        messages=state.messages, status="error", error=error, queued=state.queued,
        failed=actor.state.pending, turn=state.turn, regenerating=state.regenerating,
        step=state.step, tool_errors=state.tool_errors,
    )
    return _start_next(replace(actor, state=failed, running=None,
                               effects=(Shut(ask), End(ask, error))))


def _is_text_delta(delta: Message) -> bool:
    """Whether a delta's text fields are strings or None (what the reducer joins)."""
    content, reasoning = delta.content, delta.reasoning_content
    return (content is None or type(content) is str) and (
        reasoning is None or type(reasoning) is str
    )


def _run_tools(actor: Actor) -> Actor:
    """Start waiting calls while there is room; once all have results, go on."""
    state, ask, loop = actor.state, actor.running, actor.loop
    assert ask is not None and loop is not None
    effects: list[Effect] = []
    for call in waiting_calls(state)[: max(0, loop.concurrency - len(state.running_tools))]:
        state = apply_event(state, ToolStarted(state.turn, call))
        effects.append(RunTool(ask, call, state.turn))
    if state.running_tools or waiting_calls(state) or state.status != "tools":
        return replace(actor, state=state, effects=tuple(effects))
    state = apply_event(state, ToolsCommitted(state.turn))
    if state.step <= loop.max_steps:
        return replace(actor, state=state, effects=(Open(ask),))
    state = apply_event(state, TurnFailed(state.turn, StepLimitError(loop.max_steps)))
    return _start_next(replace(actor, state=state, running=None, failed_origin=ask.origin,
                               effects=(End(ask, state.error),)))


def _cancel(actor: Actor, command: Withdrawn | Cancel) -> Actor:
    ask = command.ask
    if isinstance(command, Cancel) and ask is None:
        ask = actor.running
    if ask is None:
        return actor
    if ask is not actor.running:  # withdrawn before it started: no request is sent
        return _queue(actor, tuple(a for a in actor.waiting if a is not ask))
    state = actor.state
    if isinstance(command, Withdrawn) and command.given is not None:
        state = _given_only(state, command.given - (actor.delivered - state.count))
    state = apply_event(state, TurnCancelled(state.turn))
    ended = replace(actor, state=state, running=None,
                    effects=(Shut(ask), Deliver(ask, _CANCELLED), End(ask)))
    return _start_next(ended)


def _given_only(state: ChatState, given: int) -> ChatState:
    """The streaming state cut back to the first `given` deltas of its step.

    A subscriber on an event loop is handed the deltas later than they are folded:
    when it stops, the reply it keeps is what it saw (a committed step stays).
    """
    if state.status != "streaming" or given >= state.count:
        return state
    return replace(state, count=max(0, given))


def _control(actor: Actor, command: Command) -> Actor:
    if isinstance(command, Edit):
        return replace(actor, state=apply_event(actor.state, command.event))
    if isinstance(command, Reset):
        dropped = _drop(actor, SessionError("The turn was discarded by reset()."))
        return replace(dropped, state=apply_event(dropped.state, SessionReset()))
    if isinstance(command, Watch):
        if actor.phase == "closed":
            return _with(actor, Finish((command.observer,)))
        return replace(actor, watchers=(*actor.watchers, command.observer),
                       effects=(Greet(command.observer),))
    if isinstance(command, Unwatch):
        return replace(actor, watchers=tuple(w for w in actor.watchers
                                             if w is not command.observer))
    if actor.phase == "closed":
        return actor
    if isinstance(command, InputCompleted):
        return _start_next(replace(actor, phase="closing"))
    if isinstance(command, InputFailed):
        if actor.phase == "closing":  # after on_completed(): the Rx grammar ends input
            return actor
        dropped = _drop(actor, command.error)
        return replace(dropped, phase="closed", watchers=(),
                       effects=(*dropped.effects, Finish(actor.watchers, command.error)))
    # Closed, Disposed: the turn in flight keeps its partial reply
    cancelled = _cancel(replace(actor, phase="closed"), Cancel(None))
    dropped = _drop(cancelled, SessionError(_CLOSED))
    finish = (Finish(actor.watchers),) if isinstance(command, Closed) else ()
    return replace(dropped, watchers=(), effects=(*dropped.effects, *finish))


def _start_next(actor: Actor) -> Actor:
    """Start the first waiting turn if none runs; finish a closing actor that is done."""
    while actor.running is None and actor.waiting:
        ask, rest = actor.waiting[0], actor.waiting[1:]
        if ask.stream.is_disposed:  # its subscriber left before it started: skip it
            actor = _queue(actor, rest)
            continue
        started = _started(actor, ask)
        if started is None:
            actor = _with(_queue(actor, rest), End(ask, SessionError(_NOTHING)))
            continue
        state = replace(apply_event(actor.state, started), queued=_messages(rest))
        return replace(actor, state=state, running=ask, waiting=rest, delivered=0,
                       effects=(*actor.effects, Open(ask)))
    if actor.phase == "closing" and actor.running is None:
        return replace(actor, phase="closed", watchers=(),
                       effects=(*actor.effects, Finish(actor.watchers)))
    return actor


def _started(actor: Actor, ask: Ask) -> TurnStarted | None:
    """The `TurnStarted` of `ask`, or None when there is nothing to regenerate.

    A failed turn is asked again as it was asked (a failed regeneration regenerates
    again), so no sequence of failures and regenerations commits a message twice. A
    tool loop that stopped (a failed step, the step limit, a cancel) continues from
    its committed steps, and regenerating a turn that ran tools replaces only its
    last reply: a completed tool call never runs again.

    A new subscription of an `ask()` whose last turn failed (`ops.retry`), while the
    session still shows that failure, asks it again the same way: its user message
    is not asked twice and its committed steps are kept.
    """
    state = actor.state
    retried = ask.origin is not None and ask.origin is actor.failed_origin
    if ask.message is not None and not (retried and state.status == "error"):
        return TurnStarted(ask.message)
    if state.status == "error":
        return TurnStarted(state.failed, state.regenerating)
    messages = state.messages
    if messages and messages[-1].role == "tool":
        return TurnStarted(None)
    if len(messages) > 1 and messages[-2].role == "tool" and messages[-1].role == "assistant":
        return TurnStarted(None, True)
    start = last_turn_start(messages)
    if start == len(messages) or messages[start].role != "user":
        return None
    return TurnStarted(messages[start], True)


def _drop(actor: Actor, error: Exception) -> Actor:
    """Drop the turn in flight (uncommitted, its stream closed) and the waiting ones."""
    effects: list[Effect] = list(actor.effects)
    if actor.running is not None:
        effects += [Shut(actor.running), End(actor.running, error)]
    effects += [End(ask, error) for ask in actor.waiting]
    state = actor.state
    if state.status == "tools":  # every committed call gets its result
        state = apply_event(state, TurnCancelled(state.turn))
    if state.status == "streaming":
        state = ChatState(messages=state.messages, turn=state.turn)
    return replace(actor, state=replace(state, queued=()), running=None, waiting=(),
                   effects=tuple(effects))


def _queue(actor: Actor, waiting: tuple[Ask, ...]) -> Actor:
    state = actor.state
    queued = _messages(waiting)
    if queued != state.queued:
        state = replace(state, queued=queued, delta=None)
    return replace(actor, state=state, waiting=waiting)


def _messages(asks: tuple[Ask, ...]) -> tuple[Message, ...]:
    return tuple(a.message for a in asks if a.message is not None)


def _with(actor: Actor, effect: Effect) -> Actor:
    return replace(actor, effects=(*actor.effects, effect))


_CANCELLED = Message(finish_reason="cancelled")
_CLOSED = "The session is closed; start a new ChatSession."
_NOTHING = "Nothing to regenerate: no turn has been asked yet."
