"""The conversation as a value: `ChatState`, and where its turns begin.

`rxchat._session.reducer` folds turn events into it, `rxchat._session.toolstate` tool events; both are
pure, so every rule of the conversation is testable with plain function calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .._models import Message, ToolCall
from .reply import ReplyLog
from ..errors import ToolError

__all__ = ["ChatState", "Status", "last_turn_start", "system_prefix"]

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
        step: How many requests the turn in flight has made (its tool loop's step).
        tool_results: The tool messages of the calls finished in this step, in the
            order they finished (committed in call order once all are done).
        tool_errors: Why tool calls of the current (or last) turn failed: each a
            `ToolError` whose `__cause__` is what the tool raised. The model was given
            the message as the call's result.
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
    step: int = 0
    tool_results: tuple[Message, ...] = ()
    tool_errors: tuple[ToolError, ...] = ()

    @property
    def partial(self) -> Message | None:
        """The reply so far, or None: O(1) per delta to read (the merge is cached)."""
        if self.reply is None or not self.count:
            return None
        return self.reply.merged(self.count)

    @property
    def context(self) -> tuple[Message, ...]:
        """The committed messages the pending turn builds on.

        All of `messages`, except that a regenerated turn replaces the last one (or,
        when it continues a tool loop, the last step's reply).
        """
        if self.regenerating:
            if self.pending is None and self.failed is None:
                return self.messages[:-1]
            return self.messages[: last_turn_start(self.messages)]
        return self.messages


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
