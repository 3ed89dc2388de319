"""From Server-Sent Events to ``Message`` deltas: the chat-completion chunk protocol.

Pure and per-stream: a `DeltaDecoder` is fed the events of one response and
returns the deltas to emit, and tracks what is needed to tell a finished stream from a
cut-off one. What it accepts is modelled on recorded provider streams
(``../shared/streams``):

* ``data: [DONE]`` ends the stream (whitespace around it is ignored);
* a chunk whose ``choices`` is empty carries usage (emitted as a usage-only delta) or
  provider annotations (Azure ``prompt_filter_results``, moderation: skipped);
* a choice with neither ``delta`` nor ``finish_reason`` is an annotation (skipped);
* explicit nulls never overwrite anything; ``delta.reasoning`` is ``reasoning_content``;
* an ``{"error": ...}`` object, or an ``event: error`` event, inside a 200 stream ends
  it with `StreamError` carrying the server's message, after the
  deltas and usage of the same chunk were emitted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from . import _json
from ._models import Message, ToolCall, Usage
from ._sse import ServerSentEvent
from .errors import StreamError, StreamInterrupted

__all__ = ["DeltaDecoder", "completion_messages", "error_message_of"]

_loads: Callable[[str], Any] = _json.loads


def error_message_of(payload: Any) -> tuple[str | None, Any]:
    """Find the human message and code in an error body of any common shape.

    Handles OpenAI's ``{"error": {"message", "code"}}``, SiliconFlow's
    ``{"code", "message", "data"}``, ``{"error": "text"}`` and ``{"detail": ...}``.

    Returns:
        ``(message, code)``, either of which may be None.
    """
    if not isinstance(payload, Mapping):
        return None, None
    error = payload.get("error")
    if isinstance(error, Mapping):
        message = error.get("message") or error.get("msg")
        return (str(message) if message else None), error.get("code")
    if isinstance(error, str) and error:
        return error, payload.get("code")
    for key in ("message", "msg", "detail"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value, payload.get("code")
    return None, payload.get("code")


class DeltaDecoder:
    """Decodes the events of one chat-completion stream into deltas."""

    def __init__(self) -> None:
        self.done = False
        self._open_choices: set[int] = set()
        self._finished_choices: set[int] = set()

    @property
    def complete(self) -> bool:
        """Whether the stream may end now: ``[DONE]`` seen, or every choice finished."""
        if self.done:
            return True
        return bool(self._finished_choices) and not self._open_choices

    def check_end(self) -> None:
        """Call at end of body.

        Raises:
            StreamInterrupted: The body ended before the reply was complete.
        """
        if not self.complete:
            raise StreamInterrupted(
                "The response ended before the reply was complete (no [DONE] and no "
                "finish_reason): the connection was cut or the server gave up. The "
                "deltas received so far were emitted; retry to get the whole reply."
            )

    def decode(self, event: ServerSentEvent) -> tuple[list[Message], StreamError | None]:
        """Decode one event.

        Returns:
            The deltas to emit, and a StreamError to emit after them if the event
            carried an error object.

        Raises:
            StreamError: The event is not JSON, or not a JSON object.
        """
        data = event.data
        if data[:1] != "{" and data.strip() == "[DONE]":
            self.done = True
            return [], None
        try:
            chunk = _loads(data)
        except ValueError:
            if event.event == "error":  # ``event: error`` with a plain-text message
                return [], _stream_error({"error": {"message": data.strip()[:500]}})
            raise StreamError(
                f"The server sent an event that is not JSON: {data[:200]!r}. It is not "
                "an OpenAI-compatible stream, or the response was corrupted."
            ) from None
        if not isinstance(chunk, dict):
            if event.event == "error":
                return [], _stream_error({"error": {"message": data.strip()[:500]}})
            raise StreamError(
                f"The server sent an event that is not a JSON object: {data[:200]!r}."
            )
        try:
            messages = self._messages(chunk)
        except (TypeError, ValueError, AttributeError, KeyError):
            # A JSON object of the wrong shape ({"choices": true}, a string where an
            # object belongs): found by tests/test_fuzz.py.
            if event.event == "error" or chunk.get("error"):
                return [], _stream_error(chunk)
            raise StreamError(
                f"The server sent a chunk that is not shaped like a chat completion "
                f"chunk: {data[:200]!r}."
            ) from None
        if event.event == "error" or chunk.get("error"):
            return messages, _stream_error(chunk)
        return messages, None

    def _messages(self, chunk: dict[str, Any]) -> list[Message]:
        choices = chunk.get("choices")
        if type(choices) is list and len(choices) == 1 and chunk.get("usage") is None:
            # The common chunk: one choice, already open, still streaming. Nothing to
            # book-keep; the general loop below would give the same delta.
            choice = choices[0]
            if type(choice) is dict and choice.get("finish_reason") is None:
                delta, index = choice.get("delta"), choice.get("index", 0)
                if type(delta) is dict and type(index) is int and index in self._open_choices:
                    return [_delta(delta, None, index)]
        raw_usage = chunk.get("usage")
        usage = Usage.from_dict(raw_usage) if isinstance(raw_usage, dict) else None
        messages: list[Message] = []
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            finish = choice.get("finish_reason")
            if delta is None and finish is None:
                continue
            index = choice.get("index")
            index = index if isinstance(index, int) else 0
            if finish is not None:
                self._finished_choices.add(index)
                self._open_choices.discard(index)
            elif index not in self._finished_choices:
                self._open_choices.add(index)
            messages.append(_delta(delta if isinstance(delta, dict) else {}, finish, index))
        if usage is not None:
            if messages:
                messages[-1] = replace(messages[-1], usage=usage)
            else:
                messages.append(Message(usage=usage))
        return messages


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
        payload = _loads(text)
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
        if i == len(choices) - 1:
            message["usage"] = payload.get("usage")
        messages.append(Message.from_dict(message))
    return messages


def _delta(delta: dict[str, Any], finish_reason: str | None, index: int) -> Message:
    get = delta.get
    if len(delta) == 1 and "content" in delta:  # the common case: a content fragment
        return _message("assistant", get("content"), None, None, (), None, finish_reason, index)
    reasoning = get("reasoning_content")
    if reasoning is None:
        reasoning = get("reasoning")
        if not isinstance(reasoning, str):
            reasoning = None
    calls = get("tool_calls")
    return _message(
        get("role") or "assistant",
        get("content"),
        reasoning,
        get("name"),
        tuple(ToolCall.from_dict(c, i) for i, c in enumerate(calls) if isinstance(c, dict))
        if calls
        else (),
        get("tool_call_id"),
        finish_reason,
        index,
    )


_new = object.__new__
_set_role, _set_content, _set_reasoning, _set_name, _set_calls = (
    Message.__dict__[name].__set__
    for name in ("role", "content", "reasoning_content", "name", "tool_calls")
)
_set_call_id, _set_finish, _set_usage, _set_index = (
    Message.__dict__[name].__set__
    for name in ("tool_call_id", "finish_reason", "usage", "index")
)


def _message(
    role: str,
    content: str | None,
    reasoning_content: str | None,
    name: str | None,
    tool_calls: tuple[ToolCall, ...],
    tool_call_id: str | None,
    finish_reason: str | None,
    index: int,
) -> Message:
    """``Message(...)`` without ``usage``, about 2.5x faster: one is built per delta.

    A frozen dataclass ``__init__`` assigns each field through ``object.__setattr__``;
    this writes the slots through their member descriptors instead. The result is the
    same value (equal, same hash, still frozen); ``tests/test_deltas*.py`` check it.
    """
    message: Message = _new(Message)
    _set_role(message, role)
    _set_content(message, content)
    _set_reasoning(message, reasoning_content)
    _set_name(message, name)
    _set_calls(message, tool_calls)
    _set_call_id(message, tool_call_id)
    _set_finish(message, finish_reason)
    _set_usage(message, None)
    _set_index(message, index)
    return message


def _stream_error(chunk: dict[str, Any]) -> StreamError:
    message, code = error_message_of(chunk)
    text = message or json.dumps(chunk)[:300]
    return StreamError(
        f"The server reported an error in the middle of the stream: {text}. The deltas "
        "before it were emitted; the reply is incomplete. Retry, or shorten the request "
        "if the error is about limits.",
        server_message=message,
        code=code,
    )
