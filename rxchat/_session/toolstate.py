"""A turn's tool loop as a value: the tool events and how they change a `ChatState`.

```text
streaming ──StepCommitted──▶ tools ──ToolStarted / ToolFinished per call──▶ tools
    ▲        (user message +          (running_tools, tool_results)           │
    │         the tool-call reply                                             │
    │         committed)                                                      │
    └──────────────── ToolsCommitted: one tool message per call, in call order ◀┘
```

Every assistant message with `tool_calls` in `messages` is followed by exactly one
`role="tool"` message per call, whatever happens: `cancel_tools` answers the calls
that did not finish with a message saying they were cancelled. Pure functions only;
the session's actor (`rxchat._session.turns`) decides when each event happens.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .._models import Message, ToolCall
from .state import ChatState
from ..errors import ToolError

__all__ = [
    "CANCELLED",
    "TOOL_EVENTS",
    "StepCommitted",
    "ToolEvent",
    "ToolFinished",
    "ToolStarted",
    "ToolsCommitted",
    "apply_tool_event",
    "calls_of",
    "cancel_tools",
    "waiting_calls",
]

CANCELLED = "Cancelled: the tool call was stopped before it finished (the user cancelled)."
"""The result given to the model for a call that was running or waiting at a cancel."""


@dataclass(frozen=True)
class StepCommitted:
    """The reply of turn `turn` calls tools: commit it (and the user message) as a step."""

    turn: int


@dataclass(frozen=True)
class ToolStarted:
    """`call` of turn `turn` started (approval first, if asked for)."""

    turn: int
    call: ToolCall


@dataclass(frozen=True)
class ToolFinished:
    """`call` of turn `turn` ended; `content` is its tool message's text.

    `error` says why it failed (its text is in `content`), or None.
    """

    turn: int
    call: ToolCall
    content: str
    error: ToolError | None = None


@dataclass(frozen=True)
class ToolsCommitted:
    """Every call of the step has a result: commit them in call order, ask again."""

    turn: int


ToolEvent = StepCommitted | ToolStarted | ToolFinished | ToolsCommitted
TOOL_EVENTS = (StepCommitted, ToolStarted, ToolFinished, ToolsCommitted)


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
        asked = () if state.pending is None else (state.pending,)
        calls = tuple(c if c.id else replace(c, id=f"call_{state.turn}_{c.index}")
                      for c in reply.tool_calls)  # a result must name its call
        return ChatState(
            (*state.context, *asked, replace(reply, tool_calls=calls)), None, "tools",
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
        (*state.messages, *_in_call_order(state, CANCELLED)), None, "streaming",
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
        (*state.messages, *_in_call_order(state, CANCELLED)),
        queued=state.queued, turn=state.turn, tool_errors=state.tool_errors,
    )


def calls_of(state: ChatState) -> tuple[ToolCall, ...]:
    """The tool calls of the step whose tools run (none unless status is `"tools"`)."""
    if state.status != "tools" or not state.messages:
        return ()
    return state.messages[-1].tool_calls


def waiting_calls(state: ChatState) -> tuple[ToolCall, ...]:
    """The calls of the step that have not started yet, in call order."""
    done = {m.tool_call_id for m in state.tool_results}
    return tuple(
        c for c in calls_of(state)
        if c not in state.running_tools and (c.id is None or c.id not in done)
    )


def _in_call_order(state: ChatState, missing: str) -> tuple[Message, ...]:
    """One tool message per call, in call order; `missing` for calls without a result."""
    results = {m.tool_call_id: m for m in state.tool_results}
    return tuple(results.get(c.id) or _tool_message(c, missing) for c in calls_of(state))


def _tool_message(call: ToolCall, content: str) -> Message:
    return Message(role="tool", content=content, tool_call_id=call.id)
