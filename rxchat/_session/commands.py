"""The values the session's actor folds and the effects it asks for.

Commands come in through the session's mailbox from any thread; effects go out of
`rxchat._session.turns.step` for the session to perform on its scheduler. All are frozen
values; only `Ask.stream` is touched from other threads (it is thread-safe).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reactivex import abc
from reactivex.disposable import SerialDisposable

from .._models import ChatMessage, Message, ToolCall
from .events import DeltaReceived, ToolFinished, TurnCompleted, TurnEvent, TurnFailed
from .state import ChatState

__all__ = [
    "Ask", "AskValue", "Asked", "Cancel", "Closed", "Command", "Connect", "Deliver", "Disposed",
    "Edit", "Effect", "End", "Finish", "Greet", "InputCompleted", "InputFailed", "Open", "Reset",
    "RunTool", "Shut", "Streamed", "ToolReturned", "Unwatch", "Watch", "Withdrawn",
    "as_message",
]

AskValue = str | ChatMessage | Message | Mapping[str, Any]
"""What asks a turn: the user's text, or a whole message (a `ChatMessage` or wire dict,
a tool result included)."""


def as_message(value: AskValue) -> Message:
    """The `Message` of an ask: text is a user message; a dict's role defaults to user.

    Raises:
        TypeError: `value` is none of those.
    """
    if isinstance(value, Message):
        return value
    if isinstance(value, ChatMessage):
        return Message(
            role=value.role, content=value.content, name=value.name,
            tool_calls=value.tool_calls, tool_call_id=value.tool_call_id,
        )
    if isinstance(value, str):
        return Message(role="user", content=value)
    if isinstance(value, Mapping):
        return Message.from_dict({"role": "user", **value})
    raise TypeError(f"ChatSession asks are str, ChatMessage or dict, not {type(value).__name__}")


@dataclass(frozen=True, eq=False)
class Ask:
    """One asked turn: its message (None: regenerate), who gets its deltas, its stream.

    `stream` is the only part touched from other threads: it holds what the turn is
    doing now (a step's stream, then the step's running tools, then the next step's
    stream). Disposing it closes the socket or disposes the tools at once, and
    anything assigned to it after that is disposed at once.
    """

    message: Message | None
    observer: abc.ObserverBase[Message]
    stream: SerialDisposable = field(default_factory=SerialDisposable)
    params: Mapping[str, Any] = field(default_factory=dict)
    """Request fields for this turn only (its ``response_format``)."""
    origin: object | None = None
    """The `ask()` Observable this subscription belongs to: when its previous
    subscription's turn failed and that failure is still the session's state, a new
    subscription (`ops.retry`) continues that turn as `regenerate()` does."""

    @property
    def regenerate(self) -> bool:
        """Whether this ask regenerates the last turn (or asks the failed one again)."""
        return self.message is None


# -- commands ------------------------------------------------------------------------


@dataclass(frozen=True)
class Asked:
    """A turn was asked (by `on_next`, `send`, `ask` or `regenerate`)."""

    ask: Ask


@dataclass(frozen=True)
class Withdrawn:
    """The `ask()` subscription was disposed: unqueue the turn, or cancel it.

    `given` is how many deltas its subscriber was given in all (None: every delta
    delivered): the cancelled reply keeps no delta beyond those.
    """

    ask: Ask
    given: int | None = None


@dataclass(frozen=True)
class Cancel:
    """`cancel()`: cancel `ask` if it still runs; None cancels whatever runs."""

    ask: Ask | None


@dataclass(frozen=True)
class Open:
    """The turn of `ask` started and nothing cancelled it since: subscribe its stream."""

    ask: Ask


@dataclass(frozen=True)
class Streamed:
    """What the stream of `ask` emitted."""

    ask: Ask
    event: DeltaReceived | TurnCompleted | TurnFailed


@dataclass(frozen=True)
class ToolReturned:
    """A tool call of the turn of `ask` ended."""

    ask: Ask
    event: ToolFinished


@dataclass(frozen=True)
class Edit:
    """An edit of the history (undo, system prompt, restore) applied as it is."""

    event: TurnEvent


@dataclass(frozen=True)
class Reset:
    """Clear the history (keeping the system prompt) and drop every turn."""


@dataclass(frozen=True)
class Watch:
    """A state subscriber arrived."""

    observer: abc.ObserverBase[ChatState]


@dataclass(frozen=True)
class Unwatch:
    """A state subscriber left."""

    observer: abc.ObserverBase[ChatState]


@dataclass(frozen=True)
class InputCompleted:
    """`on_completed()`: finish the asked turns, then complete."""


@dataclass(frozen=True)
class InputFailed:
    """`on_error(error)`: drop every turn and end with `error`."""

    error: Exception


@dataclass(frozen=True)
class Closed:
    """`close()`: cancel the turn in flight, drop the rest, complete."""


@dataclass(frozen=True)
class Disposed:
    """`dispose()`: cancel the turn in flight, drop the rest, release the subscribers."""


Command = (
    Asked | Withdrawn | Cancel | Open | Streamed | ToolReturned | Edit | Reset | Watch
    | Unwatch | InputCompleted | InputFailed | Closed | Disposed
)

# -- effects -------------------------------------------------------------------------


@dataclass(frozen=True)
class Connect:
    """Subscribe the stream of `ask`, built from the state its turn started in."""

    ask: Ask


@dataclass(frozen=True)
class RunTool:
    """Start `call` (turn `turn`) of the turn of `ask`: approval, then the tool."""

    ask: Ask
    call: ToolCall
    turn: int


@dataclass(frozen=True)
class Shut:
    """Close the stream of `ask` (if it is still open)."""

    ask: Ask


@dataclass(frozen=True)
class Deliver:
    """Hand `delta` to the observer of `ask`."""

    ask: Ask
    delta: Message


@dataclass(frozen=True)
class End:
    """The turn of `ask` is over: complete its observer, or error it with `error`."""

    ask: Ask
    error: Exception | None = None


@dataclass(frozen=True)
class Greet:
    """Give a new state subscriber the current state."""

    observer: abc.ObserverBase[ChatState]


@dataclass(frozen=True)
class Finish:
    """End `observers`: completed, or with `error`."""

    observers: tuple[abc.ObserverBase[ChatState], ...]
    error: Exception | None = None


Effect = Open | Connect | RunTool | Shut | Deliver | End | Greet | Finish
