"""What changes a conversation: the turn events and the tool events a `ChatState` folds.

Every event is a frozen value. The session's actor (`rxchat._session.turns`) decides
when each happens; `rxchat._session.reducer.apply_event` says what each does.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._models import Message, ToolCall
from ..errors import ToolError

__all__ = [
    "TOOL_EVENTS",
    "DeltaReceived",
    "Event",
    "Restored",
    "SessionReset",
    "StepCommitted",
    "SystemChanged",
    "ToolEvent",
    "ToolFinished",
    "ToolStarted",
    "ToolsCommitted",
    "TurnCancelled",
    "TurnCompleted",
    "TurnEvent",
    "TurnFailed",
    "TurnStarted",
    "TurnUndone",
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

Event = TurnEvent | ToolEvent
"""Everything `apply_event` folds."""
