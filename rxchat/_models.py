"""Values that travel through rxchat: frozen dataclasses, parsed once at the edge.

``Message`` is both one streamed delta and a whole accumulated reply; ``ChatMessage`` is
a message of the request. Both convert to and from the OpenAI wire dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

__all__ = [
    "ChatCompletionParams",
    "ChatMessage",
    "FunctionCall",
    "Message",
    "MessageLike",
    "ToolCall",
    "Usage",
]

Role = Literal["system", "user", "assistant", "tool", "developer"]


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """The function part of a tool call: its name and JSON argument text."""

    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call, or one fragment of it inside a delta.

    Fragments merge by ``index``: ``id``, ``type`` and ``function.name`` are set once,
    ``function.arguments`` pieces are concatenated.
    """

    index: int = 0
    id: str | None = None
    type: str = "function"
    function: FunctionCall = field(default_factory=FunctionCall)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], default_index: int = 0) -> ToolCall:
        """Build from a wire dict; tolerates explicit nulls and missing keys."""
        function = data.get("function") or {}
        index = data.get("index")
        return cls(
            index=index if isinstance(index, int) else default_index,
            id=data.get("id") or None,
            type=data.get("type") or "function",
            function=FunctionCall(
                name=function.get("name") or None,
                arguments=function.get("arguments") or "",
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """The wire form used in requests (``index`` is stream-only and omitted)."""
        return {
            "id": self.id,
            "type": self.type,
            "function": {"name": self.function.name, "arguments": self.function.arguments},
        }


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one request; ``details`` keeps every other field the server sent."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    details: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        """Build from a wire ``usage`` object."""
        counts = ("prompt_tokens", "completion_tokens", "total_tokens")
        return cls(
            prompt_tokens=int(data.get("prompt_tokens") or 0),
            completion_tokens=int(data.get("completion_tokens") or 0),
            total_tokens=int(data.get("total_tokens") or 0),
            details={k: v for k, v in data.items() if k not in counts},
        )

    def to_dict(self) -> dict[str, Any]:
        """The wire form, extra fields included."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            **self.details,
        }


@dataclass(frozen=True, slots=True)
class Message:
    """One streamed delta, or a whole accumulated assistant message.

    Attributes:
        role: Who speaks; ``"assistant"`` unless the server says otherwise.
        content: Answer text (a fragment, in a delta), or None.
        reasoning_content: Reasoning text; providers' ``delta.reasoning`` lands here too.
        name: Optional participant name.
        tool_calls: Tool calls (fragments, in a delta), merged by ``index``.
        tool_call_id: For ``role="tool"`` messages, the call this answers.
        finish_reason: Why the choice ended (``stop``, ``length``, ``tool_calls``,
            ``cancelled``, ...), or None while it streams.
        usage: Token counts, when the server sent them.
        index: The choice index (``n > 1`` requests stream several choices).
        route: Which route answered, when the reply came through `rxchat.hedge`
            (``"<model> at <base URL>"``); set on the first delta and kept by the merge,
            so the committed message and the stored conversation name it. Never sent
            in a request.
    """

    role: str = "assistant"
    content: str | None = None
    reasoning_content: str | None = None
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    index: int = 0
    route: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        """Build from a wire message or delta dict (explicit nulls are ignored)."""
        reasoning = data.get("reasoning_content")
        if reasoning is None:
            alt = data.get("reasoning")
            reasoning = alt if isinstance(alt, str) else None
        calls = data.get("tool_calls") or ()
        usage = data.get("usage")
        route = data.get("route")
        return cls(
            role=data.get("role") or "assistant",
            content=data.get("content"),
            reasoning_content=reasoning,
            name=data.get("name"),
            tool_calls=tuple(ToolCall.from_dict(c, i) for i, c in enumerate(calls)),
            tool_call_id=data.get("tool_call_id"),
            finish_reason=data.get("finish_reason"),
            usage=Usage.from_dict(usage) if isinstance(usage, Mapping) else None,
            index=int(data.get("index") or 0),
            route=route if isinstance(route, str) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """Every non-empty field as a wire dict (for saving and display)."""
        out = _wire_dict(self.role, self.content, self.name, self.tool_calls, self.tool_call_id)
        if self.reasoning_content is not None:
            out["reasoning_content"] = self.reasoning_content
        if self.finish_reason is not None:
            out["finish_reason"] = self.finish_reason
        if self.usage is not None:
            out["usage"] = self.usage.to_dict()
        if self.route is not None:
            out["route"] = self.route
        return out

    def to_request_dict(self) -> dict[str, Any]:
        """The form sent back in a request: no reasoning, finish_reason or usage."""
        return ChatMessage.from_message(self).to_dict()


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A message of the request: what the user, system, assistant or a tool said."""

    role: str
    content: str | None = None
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    @classmethod
    def user(cls, content: str) -> ChatMessage:
        """A user message."""
        return cls("user", content)

    @classmethod
    def system(cls, content: str) -> ChatMessage:
        """A system prompt."""
        return cls("system", content)

    @classmethod
    def from_message(cls, message: Message) -> ChatMessage:
        """The request form of an assistant ``Message`` (reasoning dropped)."""
        return cls(
            role=message.role,
            content=message.content,
            name=message.name,
            tool_calls=message.tool_calls,
            tool_call_id=message.tool_call_id,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatMessage:
        """Build from a wire message dict."""
        calls = data.get("tool_calls") or ()
        return cls(
            role=str(data.get("role") or "user"),
            content=data.get("content"),
            name=data.get("name"),
            tool_calls=tuple(ToolCall.from_dict(c, i) for i, c in enumerate(calls)),
            tool_call_id=data.get("tool_call_id"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The wire dict sent in ``messages``."""
        return _wire_dict(self.role, self.content, self.name, self.tool_calls, self.tool_call_id)


def _wire_dict(
    role: str, content: str | None, name: str | None, tool_calls: tuple[ToolCall, ...],
    tool_call_id: str | None,
) -> dict[str, Any]:
    """The request fields of a message as a wire dict: role and content, then the rest set."""
    out: dict[str, Any] = {"role": role, "content": content}
    if name is not None:
        out["name"] = name
    if tool_calls:
        out["tool_calls"] = [c.to_dict() for c in tool_calls]
    if tool_call_id is not None:
        out["tool_call_id"] = tool_call_id
    return out


MessageLike = ChatMessage | Message | Mapping[str, Any]
"""Anything accepted in ``params["messages"]``."""


class ChatCompletionParams(TypedDict, total=False):
    """The request body, shaped like OpenAI's; unknown keys pass through unchanged."""

    messages: Sequence[MessageLike]
    model: str
    temperature: float
    top_p: float
    max_tokens: int
    stop: str | list[str]
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any]
    stream_options: dict[str, Any]
    n: int
    seed: int
    user: str
    response_format: dict[str, Any]
    stream: bool


def message_to_wire(message: MessageLike) -> dict[str, Any]:
    """Convert any accepted message form to the wire dict sent in a request."""
    if isinstance(message, ChatMessage):
        return message.to_dict()
    if isinstance(message, Message):
        return message.to_request_dict()
    return dict(message)
