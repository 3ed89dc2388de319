"""The conversation as a value: `ChatState`, the turn events, and the pure reducer.

A `rxchat.ChatSession` folds `apply_event` over a stream of turn events, seeded with
an immutable `ChatState` (the session's actor, `rxchat._turns`, wraps it with the turn
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
The user message and the reply are committed together (atomic turns).

Per-delta cost is flat: the reply in flight is a `rxchat._partial.ReplyLog` shared by
the states of the turn, each knowing how many deltas it has seen, and
`ChatState.partial` folds only the deltas new since the last read.
Events naming a turn that is no longer in flight (a late delta after `cancel()`)
and events that do not apply to the state leave it unchanged: the reducer is total.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from ._models import Message, ToolCall
from ._partial import ReplyLog

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

Status = Literal["idle", "streaming", "tools", "error"]


@dataclass(frozen=True)
class ChatState:
    """An immutable snapshot of a conversation.

    Attributes:
        messages: The committed history, oldest first (system prompt included).
        pending: The message of the turn in flight, or None.
        status: `"streaming"` while a turn's request runs, `"tools"` while its tool
            calls run, `"error"` after a failed turn, otherwise `"idle"`.
        error: Why the last turn failed, or None.
        queued: The messages of the turns asked and waiting for the one in flight.
        running_tools: The tool calls running now.
        failed: The message of the last failed turn (not in `messages`), kept so
            `regenerate()` can ask it again; None once another turn starts.
        turn: How many turns were started so far: the id of the current turn.
        delta: The delta that produced this state while streaming, else None
            (a UI prints `delta.content` to render the reply incrementally).
        regenerating: Whether the turn in flight (or the failed one) replaces the last
            committed turn.
        reply: The deltas of the reply so far (see `partial`).
        count: How many of `reply`'s deltas this state has seen.
    """

    messages: tuple[Message, ...] = ()
    pending: Message | None = None
    status: Status = "idle"
    error: Exception | None = None
    queued: tuple[Message, ...] = ()
    running_tools: tuple[ToolCall, ...] = ()
    failed: Message | None = None
    turn: int = 0
    delta: Message | None = None
    regenerating: bool = False
    reply: ReplyLog | None = field(default=None, repr=False, compare=False)
    count: int = 0

    @property
    def partial(self) -> Message | None:
        """The reply so far, or None: O(1) per delta to read (the merge is cached)."""
        if self.reply is None or not self.count:
            return None
        return self.reply.merged(self.count)

    @property
    def context(self) -> tuple[Message, ...]:
        """The committed messages the pending turn builds on.

        All of `messages`, except that a regenerated turn replaces the last one.
        """
        if self.regenerating:
            return self.messages[: last_turn_start(self.messages)]
        return self.messages


@dataclass(frozen=True)
class TurnStarted:
    """A turn begins: `message` is sent with the history (`regenerate`: without
    the last turn, which the reply will replace)."""

    message: Message
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
    """Turn `turn` failed with `error`: history stays as it was."""

    turn: int
    error: Exception


@dataclass(frozen=True)
class TurnCancelled:
    """Turn `turn` was cancelled: commit the partial reply, marked `cancelled`."""

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


def apply_event(state: ChatState, event: TurnEvent) -> ChatState:
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
        )
    if isinstance(event, TurnStarted):
        if state.status == "streaming":
            return state
        if event.regenerate and last_turn_start(state.messages) == len(state.messages):
            return state
        return ChatState(
            state.messages, event.message, "streaming", queued=state.queued,
            turn=state.turn + 1, regenerating=event.regenerate,
        )
    if isinstance(event, (TurnCompleted, TurnCancelled, TurnFailed)):
        if state.status != "streaming" or event.turn != state.turn:
            return state
        return _end_turn(state, event)
    return _edit_history(state, event)


def _end_turn(state: ChatState, event: TurnCompleted | TurnCancelled | TurnFailed) -> ChatState:
    if isinstance(event, TurnFailed):
        return ChatState(
            state.messages, None, "error", event.error, state.queued, (), state.pending,
            state.turn, None, state.regenerating, state.reply, state.count,
        )
    reply = state.partial or Message()
    if isinstance(event, TurnCancelled):
        reply = replace(reply, finish_reason="cancelled")
    if reply.content is None and not reply.tool_calls:
        reply = replace(reply, content="")
    assert state.pending is not None
    return ChatState((*state.context, state.pending, reply), queued=state.queued, turn=state.turn)


def _edit_history(state: ChatState, event: TurnEvent) -> ChatState:
    if isinstance(event, Restored):
        return replace(state, messages=event.messages)
    if isinstance(event, SessionReset):
        return ChatState(system_prefix(state.messages), turn=state.turn)
    if isinstance(event, SystemChanged):
        system = (Message(role="system", content=event.text),) if event.text else ()
        rest = state.messages[len(system_prefix(state.messages)):]
        return replace(state, messages=(*system, *rest))
    if isinstance(event, TurnUndone) and state.status != "streaming":
        start = last_turn_start(state.messages)
        if start < len(state.messages):
            return ChatState(state.messages[:start], queued=state.queued, turn=state.turn)
    return state


def system_prefix(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """The leading system (or developer) messages: the part no trim or reset removes."""
    end = 0
    while end < len(messages) and messages[end].role in ("system", "developer"):
        end += 1
    return messages[:end]


def last_turn_start(messages: tuple[Message, ...]) -> int:
    """Where the last turn begins: the index of the last user message.

    Returns `len(messages)` when there is no turn after the system prompt.
    """
    floor = len(system_prefix(messages))
    for index in range(len(messages) - 1, floor - 1, -1):
        if messages[index].role == "user":
            return index
    return floor if floor < len(messages) else len(messages)
