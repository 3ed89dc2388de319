"""The pure reducer: `apply_event(state, event)`, every rule of the conversation.

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
results, then asks again; the turn ends at a reply without tool
calls, and a failure keeps the steps committed before it.

Per-delta cost is flat: the reply in flight is a `rxchat._session.state.ReplyLog` shared by
the states of the turn, each knowing how many deltas it has seen, and
`ChatState.partial` folds only the deltas new since the last read.
Events naming a turn that is no longer in flight (a late delta after `cancel()`)
and events that do not apply to the state leave it unchanged: the reducer is total.
"""

from __future__ import annotations

from dataclasses import replace

from .._models import Message, ToolCall
from .._wire.text import valid_message, valid_text
from .events import (
    TOOL_EVENTS,
    DeltaReceived,
    Event,
    Restored,
    SessionReset,
    StepCommitted,
    SystemChanged,
    ToolEvent,
    ToolFinished,
    ToolStarted,
    TurnCancelled,
    TurnCompleted,
    TurnEvent,
    TurnFailed,
    TurnStarted,
    TurnUndone,
)
from .state import ChatState, ReplyLog, calls_of, last_turn_start, system_prefix, waiting_calls

__all__ = ["CANCELLED", "apply_event", "apply_tool_event", "cancel_tools"]

CANCELLED = "Cancelled: the tool call was stopped before it finished (the user cancelled)."
"""The result given to the model for a call that was running or waiting at a cancel."""


def apply_event(state: ChatState, event: Event) -> ChatState:
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
            messages=state.messages, pending=state.pending, status="streaming",
            queued=state.queued, turn=state.turn, delta=event.delta,
            regenerating=state.regenerating, reply=reply.appended(state.count, event.delta),
            count=state.count + 1, step=state.step, tool_errors=state.tool_errors,
        )
    if isinstance(event, TurnStarted):
        if state.status in ("streaming", "tools"):
            return state
        if event.regenerate and last_turn_start(state.messages) == len(state.messages):
            return state
        return ChatState(
            messages=state.messages, pending=event.message, status="streaming",
            queued=state.queued, turn=state.turn + 1, regenerating=event.regenerate, step=1,
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
            messages=state.messages, status="error", error=event.error, queued=state.queued,
            failed=state.pending, turn=state.turn, regenerating=state.regenerating,
            reply=state.reply, count=state.count, step=state.step,
            tool_errors=state.tool_errors,
        )
    reply = valid_message(state.partial or Message())  # valid Unicode, ready to store
    if isinstance(event, TurnCancelled):  # its tool calls never ran: no call without a result
        reply = replace(reply, finish_reason="cancelled", tool_calls=())
    if reply.content is None and not reply.tool_calls:
        reply = replace(reply, content="")
    asked = () if state.pending is None else (valid_message(state.pending),)
    return ChatState(messages=(*state.context, *asked, reply), queued=state.queued,
                     turn=state.turn, tool_errors=state.tool_errors)


def _edit_history(state: ChatState, event: TurnEvent) -> ChatState:
    if isinstance(event, Restored):
        return replace(state, messages=tuple(map(valid_message, event.messages)))
    if isinstance(event, SessionReset):
        return ChatState(messages=system_prefix(state.messages), turn=state.turn)
    if isinstance(event, SystemChanged):
        system = (Message(role="system", content=valid_text(event.text)),) if event.text else ()
        rest = state.messages[len(system_prefix(state.messages)):]
        return replace(state, messages=(*system, *rest))
    if isinstance(event, TurnUndone) and state.status not in ("streaming", "tools"):
        start = last_turn_start(state.messages)
        if start < len(state.messages):
            return ChatState(messages=state.messages[:start], queued=state.queued, turn=state.turn)
    return state


def apply_tool_event(state: ChatState, event: ToolEvent) -> ChatState:
    """The state after one tool event; `state` itself when it does not apply.

    Args:
        state: The state before.
        event: What happened.

    Returns:
        The new state.
    """
    if event.turn != state.turn:
        return state
    if isinstance(event, StepCommitted):
        reply = state.partial
        if state.status != "streaming" or reply is None or not reply.tool_calls:
            return state
        reply = valid_message(reply)
        asked = () if state.pending is None else (valid_message(state.pending),)
        calls = tuple(c if c.id else replace(c, id=f"call_{state.turn}_{c.index}")
                      for c in reply.tool_calls)  # a result must name its call
        return ChatState(
            messages=(*state.context, *asked, replace(reply, tool_calls=calls)), status="tools",
            queued=state.queued, turn=state.turn, step=state.step, tool_errors=state.tool_errors,
        )
    if state.status != "tools":
        return state
    if isinstance(event, ToolStarted):
        if event.call not in waiting_calls(state):
            return state
        return replace(state, running_tools=(*state.running_tools, event.call))
    if isinstance(event, ToolFinished):
        if event.call not in state.running_tools:
            return state
        errors = (*state.tool_errors, event.error) if event.error else state.tool_errors
        return replace(
            state,
            running_tools=tuple(c for c in state.running_tools if c != event.call),
            tool_results=(*state.tool_results, _tool_message(event.call, event.content)),
            tool_errors=errors,
        )
    if state.running_tools or waiting_calls(state):
        return state
    return ChatState(
        messages=(*state.messages, *_in_call_order(state, CANCELLED)), status="streaming",
        queued=state.queued, turn=state.turn, step=state.step + 1,
        tool_errors=state.tool_errors,
    )


def cancel_tools(state: ChatState) -> ChatState:
    """The turn is cancelled while its tools run: answer every unfinished call.

    Args:
        state: A state whose status is `"tools"`.

    Returns:
        An idle state whose history ends with one tool message per call.
    """
    return ChatState(
        messages=(*state.messages, *_in_call_order(state, CANCELLED)),
        queued=state.queued, turn=state.turn, tool_errors=state.tool_errors,
    )


def _in_call_order(state: ChatState, missing: str) -> tuple[Message, ...]:
    """One tool message per call, in call order; `missing` for calls without a result."""
    results = {m.tool_call_id: m for m in state.tool_results}
    return tuple(results.get(c.id) or _tool_message(c, missing) for c in calls_of(state))


def _tool_message(call: ToolCall, content: str) -> Message:
    return Message(role="tool", content=valid_text(content), tool_call_id=call.id)
