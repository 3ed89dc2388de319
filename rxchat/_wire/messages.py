"""Building ``Message`` values from wire dicts, fast: one is built per delta.

A frozen dataclass ``__init__`` assigns each field through ``object.__setattr__``, about
half a microsecond for a ``Message``. `message` builds the same value in half the
time: an instance of a plain class with the very same slots is filled in with ordinary
attribute stores and then becomes a ``Message`` by ``__class__`` assignment, which
Python allows between classes of identical layout. The result is the same value: its
type is ``Message``, it is equal, hashes the same and is still frozen
(``tests/wire/test_deltas_fast.py``).
"""

from __future__ import annotations

from typing import Any

from .._models import Message, ToolCall
from ..errors import StreamError
from . import json as _json
from .text import content_parts

__all__ = ["completion_messages", "delta_message", "message"]


class _Builder:
    """A ``Message`` under construction: same slots, in the same order, not frozen.

    It has no ``__init__``: ``_Builder()`` runs no Python frame of its own, and the
    builders below fill it in with their own attribute stores.
    """

    __slots__ = Message.__slots__


def message(
    role: str,
    content: str | None,
    reasoning_content: str | None,
    name: str | None,
    tool_calls: tuple[ToolCall, ...],
    tool_call_id: str | None,
    finish_reason: str | None,
    index: int,
) -> Message:
    """The ``Message`` with these fields and no usage (a value equal to
    ``Message(role, content, ..., index=index)``)."""
    built: Any = _Builder()  # typed Any: its slots are declared by Message
    built.role = role
    built.content = content
    built.reasoning_content = reasoning_content
    built.name = name
    built.tool_calls = tool_calls
    built.tool_call_id = tool_call_id
    built.finish_reason = finish_reason
    built.usage = None
    built.index = index
    built.route = None
    built.__class__ = Message
    return built  # type: ignore[no-any-return]


def delta_message(delta: dict[str, Any], finish_reason: str | None, index: int) -> Message:
    """The ``Message`` of one ``choices[i].delta`` wire dict.

    Explicit nulls stay None; ``delta.reasoning`` is ``reasoning_content``. The
    common content-only delta never gets here: `DeltaDecoder.common_delta` builds it
    with `message` directly, the one check of the common shape.
    """
    get = delta.get
    reasoning = get("reasoning_content")
    if reasoning is None:
        reasoning = get("reasoning")
        if not isinstance(reasoning, str):
            reasoning = None
    content = get("content")
    if (content is not None and type(content) is not str) or (
        reasoning is not None and type(reasoning) is not str
    ):
        content, reasoning = _text_fields(content, reasoning)
    calls = get("tool_calls")
    role, name, call_id = get("role"), get("name"), get("tool_call_id")
    # A number or a list where a role, a name or an id belongs would be committed to
    # history and break every later request: inline checks, cheap per delta.
    if (
        (role is not None and type(role) is not str)
        or (name is not None and type(name) is not str)
        or (call_id is not None and type(call_id) is not str)
        or (finish_reason is not None and type(finish_reason) is not str)
    ):
        raise TypeError("a role, name, tool_call_id or finish_reason is not a string")
    if calls:
        _check_calls(calls)
    return message(
        role or "assistant",
        content,
        reasoning,
        name,
        tuple(ToolCall.from_dict(c, i) for i, c in enumerate(calls) if isinstance(c, dict))
        if calls
        else (),
        call_id,
        finish_reason,
        index,
    )


_STR_OR_NONE = frozenset((str, type(None)))


def _check_calls(calls: Any) -> None:
    """Each tool call's id, type, name and arguments is text (or null) on the wire
    (a list as the name made the tool lookup fail on the session's thread).

    Raises:
        TypeError: One is not (`DeltaDecoder` makes it a ``StreamError`` quoting the
            chunk).
    """
    for call in calls if isinstance(calls, list) else ():
        if not isinstance(call, dict):
            continue
        function = call.get("function")
        if function is None:
            function = {}
        elif not isinstance(function, dict):
            raise TypeError(f"tool_calls[].function is {type(function).__name__}, not an object")
        if not _STR_OR_NONE.issuperset(map(type, (
            call.get("id"), call.get("type"), function.get("name"), function.get("arguments")
        ))):
            raise TypeError("a tool call's id, type, name or arguments is not a string")


def _text_fields(content: Any, reasoning: Any) -> tuple[str | None, str | None]:
    """Content and reasoning as text, from parts (see `rxchat._wire.text`).

    Raises:
        StreamError: Either is neither text nor a list of text and thinking parts.
    """
    text, thinking = content_parts(content)
    said, thought = content_parts(reasoning, "reasoning_content")
    pieces = [p for p in (said, thought, thinking) if p is not None]
    return text, ("".join(pieces) if pieces else None)


def completion_messages(text: str, content_type: str) -> list[Message]:
    """The messages of a whole (not streamed) chat completion, one per choice.

    For a server that ignored ``stream: true``; the usage goes with the last choice.

    Args:
        text: The response body.
        content_type: Its media type, for the error message.

    Raises:
        StreamError: The body is not a chat completion with choices.
    """
    try:
        payload = _json.loads(text)
    except ValueError:
        payload = None
    choices = payload.get("choices") if isinstance(payload, dict) else None
    if not isinstance(choices, list) or not choices:
        raise StreamError(
            f"Expected an event stream (text/event-stream) but got "
            f"{content_type or 'no Content-Type'}: {text[:200]!r}. Check "
            "that base_url points at an OpenAI-compatible /v1 endpoint."
        )
    messages: list[Message] = []
    for i, choice in enumerate(choices):
        message = dict(choice.get("message") or {})
        message.update(index=choice.get("index", i), finish_reason=choice.get("finish_reason"))
        message.pop("route", None)  # set by rxchat.hedge only, never by a server
        content, reasoning = message.get("content"), message.get("reasoning_content")
        if not isinstance(content, (str, type(None))) or not isinstance(
            reasoning, (str, type(None))
        ):
            message["content"], message["reasoning_content"] = _text_fields(content, reasoning)
        if i == len(choices) - 1:
            message["usage"] = payload.get("usage")
        messages.append(Message.from_dict(message))
    return messages

