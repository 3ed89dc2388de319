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
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .._models import Message, Usage
from ..errors import StreamError, StreamInterrupted
from . import json as _json
from .messages import delta_message as _delta
from .messages import message as _message
from .sse import ServerSentEvent

__all__ = ["DeltaDecoder"]

_loads: Callable[[str], Any] = _json.loads
_loads_unchecked: Callable[[str], Any] = _json.loads_unchecked
_STR_OR_NONE = frozenset((str, type(None)))


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

    def common_delta(self, data: str) -> Message | None:
        """The delta of a plain event of the most common shape, else None.

        The common shape: one choice, already open and still streaming, no usage, no
        error, a delta with no tool calls whose text fields are strings or null. It is
        parsed without the long-number check (see ``_json.loads_unchecked``): no number
        of it is used but the choice's index, which must be an ``int``. Any other
        event gives None and is left to `decode_data`, which gives the same
        delta for a common one.

        Args:
            data: The data of a plain (``message``) event.
        """
        # One try block holds the whole walk: anything not of the common shape
        # (orjson refused it, not one choice, a choice or delta that is not a dict, a
        # key missing) lands in the except and is left to decode_data. ``get`` is the
        # cheapest check here: a provider that sends ``"usage": null`` on every chunk
        # (OpenAI with include_usage) stays on this path.
        try:
            chunk = _loads_unchecked(data)
            (choice,) = chunk["choices"]
            delta = choice["delta"]
            if (
                choice.get("finish_reason") is not None
                or chunk.get("usage") is not None
                or chunk.get("error")
            ):
                return None
            index = choice.get("index", 0)
            if type(index) is not int or index not in self._open_choices:
                return None
            if len(delta) == 1 and "content" in delta:  # the most common delta
                content = delta["content"]
                if type(content) is str:
                    return _message("assistant", content, None, None, (), None, None, index)
            get = delta.get
            if get("tool_calls") is None and _STR_OR_NONE.issuperset(
                map(type, (get("role"), get("content"), get("reasoning_content"),
                           get("reasoning"), get("name"), get("tool_call_id")))
            ):
                return _delta(delta, None, index)
        except (TypeError, KeyError, ValueError, AttributeError, RecursionError):
            pass  # (RecursionError: deep nesting without orjson; decode_data says so)
        return None

    def decode(self, event: ServerSentEvent) -> tuple[list[Message], StreamError | None]:
        """Decode one event.

        Returns:
            The deltas to emit, and a StreamError to emit after them if the event
            carried an error object.

        Raises:
            StreamError: The event is not JSON, or not a JSON object.
        """
        return self.decode_data(event.data, event.event)

    def decode_data(
        self, data: str, kind: str = "message"
    ) -> tuple[list[Message], StreamError | None]:
        """Decode one event given as its data and type: see `decode`.

        Raises:
            StreamError: The event is not JSON, or not a JSON object.
        """
        if data[:1] != "{" and data.strip() == "[DONE]":
            self.done = True
            return [], None
        try:
            chunk = _loads(data)
        except _json.NestingTooDeepError:
            raise StreamError(
                f"The server sent an event whose JSON is nested too deeply to read "
                f"({len(data)} characters, starting {data[:60]!r}). It is not a chat "
                "completion chunk; the server or a proxy is misbehaving."
            ) from None
        except ValueError:
            if kind == "error":  # ``event: error`` with a plain-text message
                return [], _stream_error({"error": {"message": data.strip()[:500]}})
            raise StreamError(
                f"The server sent an event that is not JSON: {data[:200]!r}. It is not "
                "an OpenAI-compatible stream, or the response was corrupted."
            ) from None
        if not isinstance(chunk, dict):
            if kind == "error":
                return [], _stream_error({"error": {"message": data.strip()[:500]}})
            raise StreamError(
                f"The server sent an event that is not a JSON object: {data[:200]!r}."
            )
        try:
            messages = self._messages(chunk)
        except (TypeError, ValueError, AttributeError, KeyError, RecursionError):
            # A JSON object of the wrong shape ({"choices": true}, a string where an
            # object belongs): found by tests/stress/test_fuzz.py.
            if kind == "error" or chunk.get("error"):
                return [], _stream_error(chunk)
            raise StreamError(
                f"The server sent a chunk that is not shaped like a chat completion "
                f"chunk: {data[:200]!r}."
            ) from None
        if kind == "error" or chunk.get("error"):
            return messages, _stream_error(chunk)
        return messages, None

    def _messages(self, chunk: dict[str, Any]) -> list[Message]:
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


def _stream_error(chunk: dict[str, Any]) -> StreamError:
    message, code = _json.error_message_of(chunk)
    text = message or json.dumps(chunk)[:300]
    return StreamError(
        f"The server reported an error in the middle of the stream: {text}. The deltas "
        "before it were emitted; the reply is incomplete. Retry, or shorten the request "
        "if the error is about limits.",
        server_message=message,
        code=code,
    )
