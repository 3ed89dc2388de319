"""The conversation as a value: `ChatState`, and the questions asked of it.

`rxchat._session.reducer` folds the events of `rxchat._session.events` into it; all
three are pure, so every rule of the conversation is testable with plain function calls.

`ReplyLog` is the reply in flight: its deltas, and their merge cached so reading it is
O(1) per delta.

Every state of a streaming turn shares one `ReplyLog` and knows how many of its deltas
it has seen. `ReplyLog.merged(count)` folds only the deltas added since the last read
into the cached message, so a subscriber that reads `ChatState.partial` on every state
pays for each delta once, however long the reply grows.

Text is where the cost hides: a new 1 MB string per delta is a 1 MB copy per delta
(measured: 0.3 us per 10-character delta at 10 kB of reply, 159 us at 1 MB). The cached
message is dropped before its text is extended, so when no one else holds the previous
snapshot the text is the only reference left and CPython grows the string in place;
a snapshot a subscriber kept is never changed (strings stay immutable, it is copied).
The merge rules are those of `rxchat._wire.merge.merge_delta` (text joined as `_join`
does, every other field by `merge_delta` itself), so the two cannot drift apart.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from .._models import Message, ToolCall
from .._wire.merge import merge_delta, merge_deltas
from ..errors import ToolError

__all__ = [
    "ChatState",
    "ReplyLog",
    "Status",
    "calls_of",
    "last_turn_start",
    "system_prefix",
    "waiting_calls",
]

class ReplyLog:
    """An append-only log of one reply's deltas, shared by the states of its turn.

    Appending is done only by the session's reducer; reading (`merged`) is safe from
    any thread.
    """

    __slots__ = ("_count", "_deltas", "_lock", "_message")

    def __init__(self, deltas: Sequence[Message] = ()) -> None:
        self._deltas: list[Message] = list(deltas)
        self._lock = threading.Lock()
        self._count = 0
        self._message: Message | None = None

    def __len__(self) -> int:
        return len(self._deltas)

    def appended(self, count: int, delta: Message) -> ReplyLog:
        """The log of the first `count` deltas plus `delta`.

        This log itself when `count` is its length (the usual case), else a copy, so
        a state folded twice never sees another branch's deltas.

        Args:
            count: How many deltas the appending state has seen.
            delta: The new delta.

        Returns:
            A log holding `count + 1` deltas.
        """
        if count == len(self._deltas):
            self._deltas.append(delta)
            return self
        return ReplyLog([*self._deltas[:count], delta])

    def merged(self, count: int) -> Message:
        """The first `count` deltas merged into one message.

        Args:
            count: How many deltas (a state's own count).

        Returns:
            The merged message; the same object for repeated reads of one count.
        """
        with self._lock:
            if count == self._count and self._message is not None:
                return self._message
            if count < self._count:  # an older state read late: merge it, cache nothing
                return merge_deltas(self._deltas[:count])
            return self._extend(count)

    def _extend(self, count: int) -> Message:
        message, self._message = self._message, None
        new = self._deltas[self._count:count]
        if message is None:  # an empty start, so the first delta merges like the others
            message = Message(role=new[0].role, index=new[0].index)
        content, reasoning = message.content, message.reasoning_content
        skeleton = _without_text(message)
        del message  # the text may now be ours alone: CPython then extends it in place
        for delta in new:  # the text rule of `_join`, inlined: a call would hold a reference
            if delta.content is not None:
                content = delta.content if content is None else content + delta.content
            if delta.reasoning_content is not None:
                piece = delta.reasoning_content
                reasoning = piece if reasoning is None else reasoning + piece
            if _is_structural(delta):
                skeleton = merge_delta(skeleton, _without_text(delta))
        s = skeleton
        merged = Message(
            s.role, content, reasoning, s.name, s.tool_calls, s.tool_call_id,
            s.finish_reason, s.usage, s.index, s.route,
        )
        self._message, self._count = merged, count
        return merged


def _without_text(m: Message) -> Message:
    return Message(
        m.role, None, None, m.name, m.tool_calls, m.tool_call_id, m.finish_reason, m.usage,
        m.index, m.route,
    )


def _is_structural(delta: Message) -> bool:
    """Whether a delta carries more than text (most deltas carry only text)."""
    return bool(
        delta.tool_calls or delta.finish_reason or delta.usage or delta.name
        or delta.tool_call_id or delta.route
    )


Status = Literal["idle", "streaming", "tools", "error"]


@dataclass(frozen=True, kw_only=True)
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
