"""The conversation as a value: `ChatState`, the turn events, and the pure reducer.

A `rxchat.ChatSession` folds `apply_event` over a stream of turn events, seeded with
an immutable `ChatState` (the session's actor, `rxchat._session.turns`, wraps it with the turn
queue). Nothing here touches Rx, threads or the network, so every rule of the
conversation is testable with plain function calls:

```python
state = ChatState(messages=(system,))
state = apply_event(state, TurnStarted(Message(role="user", content="Hi")))
state = apply_event(state, DeltaReceived(state.turn, Message(content="Hel")))
state = apply_event(state, DeltaReceived(state.turn, Message(content="lo")))
state = apply_event(state, TurnCompleted(state.turn))
state.messages  # (system, user "Hi", assistant "Hello")
```

A *turn* is one asked message (usually `role="user"`) and the reply to it; in
`messages` a turn runs from a user message up to the next one, so an assistant
message with `tool_calls` and the tool results that answer it stay in one turn.
The user message and the reply are committed together (atomic turns). A reply that
calls tools is a *step*: the session commits it with the user message, then its tool
results (`rxchat._session.toolstate`), then asks again; the turn ends at a reply without tool
calls, and a failure keeps the steps committed before it.

Per-delta cost is flat: the reply in flight is a `rxchat._session.reply.ReplyLog` shared by
the states of the turn, each knowing how many deltas it has seen, and
`ChatState.partial` folds only the deltas new since the last read.
Events naming a turn that is no longer in flight (a late delta after `cancel()`)
and events that do not apply to the state leave it unchanged: the reducer is total.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .._models import Message
from .reply import ReplyLog
from .state import ChatState, Status, last_turn_start, system_prefix
from .toolstate import TOOL_EVENTS, ToolEvent, apply_tool_event, cancel_tools

__all__ = [
    "ChatState",
    "DeltaReceived",
    "Restored",
    "SessionReset",
    "Status",
    "TurnCancelled",
    "TurnCompleted",
    "TurnEvent",
    "TurnFailed",
    "TurnStarted",
    "TurnUndone",
    "apply_event",
    "last_turn_start",
    "system_prefix",
]

@dataclass(frozen=True)
class TurnStarted:
    """A turn begins: `message` is sent with the history (`regenerate`: without
    the last turn, which the reply will replace). A None `message` continues the
    committed history as it is: a tool loop that stopped before its final answer."""

    message: Message | None
    regenerate: bool = False


@dataclass(frozen=True)
class DeltaReceived:
    """One streamed delta of turn `turn`."""

    turn: int
    delta: Message


@dataclass(frozen=True)
class TurnCompleted:
    """Turn `turn` finished: commit its message and reply together."""

    turn: int


@dataclass(frozen=True)
class TurnFailed:
    """Turn `turn` failed with `error`: history stays as it was (committed steps too)."""

    turn: int
    error: Exception


@dataclass(frozen=True)
class TurnCancelled:
    """Turn `turn` was cancelled: commit the partial reply, marked `cancelled`.

    Tool calls of a cancelled reply are dropped (they never ran), and calls of a
    step whose tools were running each get a tool message saying so.
    """

    turn: int


@dataclass(frozen=True)
class TurnUndone:
    """Remove the last committed turn."""


@dataclass(frozen=True)
class SessionReset:
    """Clear the history, keeping the leading system messages."""


@dataclass(frozen=True)
class SystemChanged:
    """Replace the leading system prompt with `text` (remove it when None)."""

    text: str | None


@dataclass(frozen=True)
class Restored:
    """Replace the history (a loaded session)."""

    messages: tuple[Message, ...]


TurnEvent = (
    TurnStarted | DeltaReceived | TurnCompleted | TurnFailed | TurnCancelled
    | TurnUndone | SessionReset | SystemChanged | Restored
)
"""Everything that changes a conversation."""


def apply_event(state: ChatState, event: TurnEvent | ToolEvent) -> ChatState:
    """The state after one event (pure: `state` and `event` are unchanged).

    Args:
        state: The state before.
        event: What happened.

    Returns:
        The new state, or `state` itself if the event does not apply to it.
    """
    if isinstance(event, DeltaReceived):
        if state.status != "streaming" or event.turn != state.turn:
            return state
        reply = state.reply or ReplyLog()
        return ChatState(
            state.messages, state.pending, "streaming", None, state.queued, (), None,
            state.turn, event.delta, state.regenerating,
            reply.appended(state.count, event.delta), state.count + 1,
            state.step, (), state.tool_errors,
        )
    if isinstance(event, TurnStarted):
        if state.status in ("streaming", "tools"):
            return state
        if event.regenerate and last_turn_start(state.messages) == len(state.messages):
            return state
        return ChatState(
            state.messages, event.message, "streaming", queued=state.queued,
            turn=state.turn + 1, regenerating=event.regenerate, step=1,
        )
    if isinstance(event, (TurnCompleted, TurnCancelled, TurnFailed)):
        if event.turn != state.turn:
            return state
        if state.status == "tools" and isinstance(event, TurnCancelled):
            return cancel_tools(state)
        return _end_turn(state, event) if state.status == "streaming" else state
    if isinstance(event, TOOL_EVENTS):
        return apply_tool_event(state, event)
    return _edit_history(state, event)


def _end_turn(state: ChatState, event: TurnCompleted | TurnCancelled | TurnFailed) -> ChatState:
    if isinstance(event, TurnFailed):
        return ChatState(
            state.messages, None, "error", event.error, state.queued, (), state.pending,
            state.turn, None, state.regenerating, state.reply, state.count,
            state.step, (), state.tool_errors,
        )
    reply = state.partial or Message()
    if isinstance(event, TurnCancelled):  # its tool calls never ran: no call without a result
        reply = replace(reply, finish_reason="cancelled", tool_calls=())
    if reply.content is None and not reply.tool_calls:
        reply = replace(reply, content="")
    asked = () if state.pending is None else (state.pending,)
    return ChatState((*state.context, *asked, reply), queued=state.queued, turn=state.turn,
                     tool_errors=state.tool_errors)


def _edit_history(state: ChatState, event: TurnEvent) -> ChatState:
    if isinstance(event, Restored):
        return replace(state, messages=event.messages)
    if isinstance(event, SessionReset):
        return ChatState(system_prefix(state.messages), turn=state.turn)
    if isinstance(event, SystemChanged):
        system = (Message(role="system", content=event.text),) if event.text else ()
        rest = state.messages[len(system_prefix(state.messages)):]
        return replace(state, messages=(*system, *rest))
    if isinstance(event, TurnUndone) and state.status not in ("streaming", "tools"):
        start = last_turn_start(state.messages)
        if start < len(state.messages):
            return ChatState(state.messages[:start], queued=state.queued, turn=state.turn)
    return state
