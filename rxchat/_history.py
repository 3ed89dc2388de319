"""The conversation as a value: ``ChatState``, the turn events, and the pure reducer.

A :class:`~rxchat.ChatSession` is a ``scan`` of :func:`apply_event` over a stream of
turn events, seeded with an immutable :class:`ChatState`. Nothing here touches Rx,
threads or the network, so every rule of the conversation is testable with plain
function calls::

    state = ChatState(messages=(system,))
    state = apply_event(state, TurnStarted(Message(role="user", content="Hi")))
    state = apply_event(state, DeltaReceived(state.turn, Message(content="Hel")))
    state = apply_event(state, DeltaReceived(state.turn, Message(content="lo")))
    state = apply_event(state, TurnCompleted(state.turn))
    state.messages  # (system, user "Hi", assistant "Hello")

A *turn* is one asked message (usually ``role="user"``) and the reply to it; in
``messages`` a turn runs from a user message up to the next one, so an assistant
message with ``tool_calls`` and the tool results that answer it stay in one turn.
The user message and the reply are committed together (atomic turns).

Per-delta cost is flat: the reply in flight is kept as :class:`Pieces`, a persistent
linked list of deltas that each state extends in O(1) and shares with its
predecessor. :attr:`ChatState.partial` joins it only when read, once per state.
Events naming a turn that is no longer in flight (a late delta after ``cancel()``)
and events that do not apply to the state leave it unchanged: the reducer is total.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

from ._models import Message
from .operators import merge_deltas

__all__ = [
    "ChatState",
    "DeltaReceived",
    "Pieces",
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

Status = Literal["idle", "streaming", "error"]


@dataclass(frozen=True, eq=False, slots=True)
class Pieces:
    """A persistent, append-only list of deltas (newest first, sharing its tail).

    Compared by identity: two states hold equal pieces only if they are the same.
    """

    delta: Message
    previous: Pieces | None
    count: int

    def to_list(self) -> list[Message]:
        """The deltas oldest first, in time linear in their number."""
        out: list[Message] = []
        node: Pieces | None = self
        while node is not None:
            out.append(node.delta)
            node = node.previous
        out.reverse()
        return out


@dataclass(frozen=True)
class ChatState:
    """An immutable snapshot of a conversation.

    Attributes:
        messages: The committed history, oldest first (system prompt included).
        pending: The message of the turn in flight, or None.
        status: ``"streaming"`` while a turn runs, ``"error"`` after a failed turn,
            otherwise ``"idle"``.
        error: Why the last turn failed, or None.
        failed: The message of the last failed turn (not in ``messages``), kept so
            ``retry()`` can ask it again; None once another turn starts.
        turn: How many turns were started so far: the id of the current turn.
        delta: The delta that produced this state while streaming, else None
            (a UI prints ``delta.content`` to render the reply incrementally).
        regenerating: Whether the turn in flight replaces the last committed turn.
        pieces: The deltas of the reply so far (see :attr:`partial`).
    """

    messages: tuple[Message, ...] = ()
    pending: Message | None = None
    status: Status = "idle"
    error: Exception | None = None
    failed: Message | None = None
    turn: int = 0
    delta: Message | None = None
    regenerating: bool = False
    pieces: Pieces | None = field(default=None, repr=False)

    @cached_property
    def partial(self) -> Message | None:
        """The reply so far, merged from its deltas on first access (then cached)."""
        if self.pieces is None:
            return None
        return merge_deltas(self.pieces.to_list())

    @property
    def context(self) -> tuple[Message, ...]:
        """The committed messages the pending turn builds on.

        All of ``messages``, except that a regenerated turn replaces the last one.
        """
        if self.regenerating:
            return self.messages[: last_turn_start(self.messages)]
        return self.messages


@dataclass(frozen=True)
class TurnStarted:
    """A turn begins: ``message`` is sent with the history (``regenerate``: without
    the last turn, which the reply will replace)."""

    message: Message
    regenerate: bool = False


@dataclass(frozen=True)
class DeltaReceived:
    """One streamed delta of turn ``turn``."""

    turn: int
    delta: Message


@dataclass(frozen=True)
class TurnCompleted:
    """Turn ``turn`` finished: commit its message and reply together."""

    turn: int


@dataclass(frozen=True)
class TurnFailed:
    """Turn ``turn`` failed with ``error``: history stays as it was."""

    turn: int
    error: Exception


@dataclass(frozen=True)
class TurnCancelled:
    """Turn ``turn`` was cancelled: commit the partial reply, marked ``cancelled``."""

    turn: int


@dataclass(frozen=True)
class TurnUndone:
    """Remove the last committed turn."""


@dataclass(frozen=True)
class SessionReset:
    """Clear the history, keeping the leading system messages."""


@dataclass(frozen=True)
class SystemChanged:
    """Replace the leading system prompt with ``text`` (remove it when None)."""

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
    """The state after one event (pure: ``state`` and ``event`` are unchanged).

    Args:
        state: The state before.
        event: What happened.

    Returns:
        The new state, or ``state`` itself if the event does not apply to it.
    """
    if isinstance(event, DeltaReceived):
        if state.status != "streaming" or event.turn != state.turn:
            return state
        count = state.pieces.count + 1 if state.pieces is not None else 1
        return ChatState(
            state.messages, state.pending, "streaming", None, None, state.turn,
            event.delta, state.regenerating, Pieces(event.delta, state.pieces, count),
        )
    if isinstance(event, TurnStarted):
        if state.status == "streaming":
            return state
        if event.regenerate and last_turn_start(state.messages) == len(state.messages):
            return state
        return ChatState(
            state.messages, event.message, "streaming", turn=state.turn + 1,
            regenerating=event.regenerate,
        )
    if isinstance(event, (TurnCompleted, TurnCancelled, TurnFailed)):
        if state.status != "streaming" or event.turn != state.turn:
            return state
        return _end_turn(state, event)
    return _edit_history(state, event)


def _end_turn(state: ChatState, event: TurnCompleted | TurnCancelled | TurnFailed) -> ChatState:
    if isinstance(event, TurnFailed):
        return ChatState(
            state.messages, None, "error", event.error, state.pending, state.turn,
            pieces=state.pieces,
        )
    reply = state.partial or Message()
    if isinstance(event, TurnCancelled):
        reply = replace(reply, finish_reason="cancelled")
    if reply.content is None and not reply.tool_calls:
        reply = replace(reply, content="")
    assert state.pending is not None
    return ChatState((*state.context, state.pending, reply), turn=state.turn)


def _edit_history(state: ChatState, event: TurnEvent) -> ChatState:
    if isinstance(event, Restored):
        return ChatState(event.messages, turn=state.turn)
    if isinstance(event, SessionReset):
        return ChatState(system_prefix(state.messages), turn=state.turn)
    if isinstance(event, SystemChanged):
        system = (Message(role="system", content=event.text),) if event.text else ()
        rest = state.messages[len(system_prefix(state.messages)):]
        return replace(state, messages=(*system, *rest))
    if isinstance(event, TurnUndone) and state.status != "streaming":
        start = last_turn_start(state.messages)
        if start < len(state.messages):
            return ChatState(state.messages[:start], turn=state.turn)
    return state


def system_prefix(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """The leading system (or developer) messages: the part no trim or reset removes."""
    end = 0
    while end < len(messages) and messages[end].role in ("system", "developer"):
        end += 1
    return messages[:end]


def last_turn_start(messages: tuple[Message, ...]) -> int:
    """Where the last turn begins: the index of the last user message.

    Returns ``len(messages)`` when there is no turn after the system prompt.
    """
    floor = len(system_prefix(messages))
    for index in range(len(messages) - 1, floor - 1, -1):
        if messages[index].role == "user":
            return index
    return floor if floor < len(messages) else len(messages)
