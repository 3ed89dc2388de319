"""Scripted replies for the loopback server: what to send for one request.

A `Reply` is a status, headers, a framing and a list of body *parts*: ``bytes``
(written at once; one HTTP chunk each in chunked framing), a ``float`` (pause that many
seconds), `STALL` (go silent until the client disconnects or the server stops),
`RESET` (abort the connection with a TCP reset, as a crashed proxy does) or a
``threading.Event`` (go on once a test sets it; if it is not set within 10 s, end the
connection there, so a test that waits for something that never happens fails).
The constructors build the common shapes from chunk dicts shaped like OpenAI's.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

__all__ = [
    "RESET",
    "RecordedRequest",
    "STALL",
    "Framing",
    "Part",
    "Reply",
    "chunk",
    "sse_event",
]

Framing = Literal["chunked", "close", "length"]


class _Stall:
    def __repr__(self) -> str:
        return "STALL"


STALL = _Stall()
"""A body part: send nothing more until the client goes away."""


class _Reset:
    def __repr__(self) -> str:
        return "RESET"


RESET = _Reset()
"""A body part: abort the connection with a TCP RST (``SO_LINGER`` 0, then close)."""

Part = bytes | float | _Stall | _Reset | threading.Event


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    json: Any = field(default=None)
    client: tuple[str, int] | None = None
    """The client's (host, port): equal ports mean a reused keep-alive connection."""

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The ``messages`` of a chat request (empty if none)."""
        if isinstance(self.json, dict):
            return list(self.json.get("messages") or [])
        return []


def chunk(
    *,
    content: str | None = None,
    reasoning_content: str | None = None,
    role: str | None = None,
    tool_calls: Sequence[Mapping[str, Any]] | None = None,
    finish_reason: str | None = None,
    usage: Mapping[str, Any] | None = None,
    index: int = 0,
    model: str = "rxchat-offline",
    choices: bool = True,
) -> dict[str, Any]:
    """A ``chat.completion.chunk`` dict with one choice (or none if ``choices=False``)."""
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    if reasoning_content is not None:
        delta["reasoning_content"] = reasoning_content
    if tool_calls is not None:
        delta["tool_calls"] = [dict(c) for c in tool_calls]
    out: dict[str, Any] = {
        "id": "chatcmpl-rxchat",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": (
            [{"index": index, "delta": delta, "finish_reason": finish_reason}]
            if choices
            else []
        ),
    }
    if usage is not None:
        out["usage"] = dict(usage)
    return out


def sse_event(data: Mapping[str, Any] | str, *, event: str | None = None) -> bytes:
    """One SSE event: ``data: <json>`` and a blank line (``event:`` line if given)."""
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True)
class Reply:
    """What the loopback server sends for one request.

    Attributes:
        parts: Body parts: bytes, pauses (float seconds), `STALL`, `RESET` and
            events to wait for.
        status: HTTP status code.
        headers: Response headers (Content-Type included).
        framing: ``"chunked"`` (Transfer-Encoding), ``"close"`` (no length; the body
            ends when the connection closes) or ``"length"`` (Content-Length).
        delay_headers: Seconds to wait before sending the status line and headers, or
            `STALL` to send nothing at all until the client goes away.
    """

    parts: tuple[Part, ...] = ()
    status: int = 200
    headers: Mapping[str, str] = field(
        default_factory=lambda: {"Content-Type": "text/event-stream; charset=utf-8"}
    )
    framing: Framing = "chunked"
    delay_headers: float | _Stall = 0.0

    @classmethod
    def events(
        cls, chunks: Iterable[Mapping[str, Any] | bytes], *, done: bool = True,
        delay: float = 0.0, framing: Framing = "chunked",
    ) -> Reply:
        """A stream of chunk dicts (or raw event bytes), then ``[DONE]``."""
        parts: list[Part] = []
        for item in chunks:
            if delay and parts:
                parts.append(delay)
            parts.append(item if isinstance(item, bytes) else sse_event(item))
        if done:
            parts.append(DONE)
        return cls(tuple(parts), framing=framing)

    @classmethod
    def text(
        cls,
        text: str,
        *,
        reasoning: str = "",
        pieces: int | None = None,
        usage: Mapping[str, Any] | None = None,
        delay: float = 0.0,
        finish_reason: str = "stop",
        framing: Framing = "chunked",
    ) -> Reply:
        """A role chunk, reasoning and text split into words (or ``pieces`` parts),
        a finish chunk, an optional usage chunk, and ``[DONE]``."""
        chunks = [chunk(role="assistant", content="")]
        chunks += [chunk(reasoning_content=p) for p in split_text(reasoning, pieces)]
        chunks += [chunk(content=p) for p in split_text(text, pieces)]
        chunks.append(chunk(finish_reason=finish_reason))
        if usage is not None:
            chunks.append(chunk(usage=usage, choices=False))
        return cls.events(chunks, delay=delay, framing=framing)

    @classmethod
    def tool_calls(
        cls, calls: Sequence[Mapping[str, Any]], *, fragment: int = 8, content: str = "",
    ) -> Reply:
        """Tool calls streamed as OpenAI does: each call's head, then its arguments in
        ``fragment``-character pieces, then ``finish_reason="tool_calls"``.

        Each call is ``{"id", "name", "arguments"}`` or OpenAI's nested shape
        ``{"id", "type": "function", "function": {"name", "arguments"}}``;
        ``arguments`` may be a string or a dict (sent as JSON). ``content`` is text
        streamed before the calls.

        Raises:
            ValueError: A call has no name (says which).
        """
        chunks = [chunk(role="assistant", content=content or None)]
        for index, call in enumerate(calls):
            name, args = _call_parts(call, index)
            head = {"index": index, "id": call.get("id") or f"call_{index}", "type": "function",
                    "function": {"name": name, "arguments": ""}}
            chunks.append(chunk(tool_calls=[head]))
            for start in range(0, len(args), fragment):
                piece = {"index": index, "function": {"arguments": args[start:start + fragment]}}
                chunks.append(chunk(tool_calls=[piece]))
        chunks.append(chunk(finish_reason="tool_calls"))
        return cls.events(chunks)

    @classmethod
    def error(
        cls, status: int, body: str | Mapping[str, Any] = "", *,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """An HTTP error: a JSON body for a dict, otherwise the text as given."""
        if isinstance(body, str):
            data = body.encode()
            kind = "text/html" if body.lstrip().startswith("<") else "text/plain"
        else:
            data = json.dumps(body).encode()
            kind = "application/json"
        all_headers = {"Content-Type": kind, **(headers or {})}
        return cls((data,), status=status, headers=all_headers, framing="length")

    @classmethod
    def json_body(
        cls, body: Mapping[str, Any], *, status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """A JSON response, e.g. a whole (non-streamed) ``chat.completion``."""
        return cls.error(status, body, headers=headers)

    @classmethod
    def raw(
        cls, body: bytes | Sequence[Part], *, status: int = 200,
        headers: Mapping[str, str] | None = None, framing: Framing = "chunked",
    ) -> Reply:
        """Exact body bytes (or parts), e.g. a recorded provider stream."""
        parts = (body,) if isinstance(body, bytes) else tuple(body)
        return cls(parts, status=status,
                   headers=headers or {"Content-Type": "text/event-stream"}, framing=framing)

    def split(self, size: int) -> Reply:
        """The same body, written in pieces of at most ``size`` bytes."""
        parts: list[Part] = []
        for part in self.parts:
            if isinstance(part, bytes):
                parts += [part[i:i + size] for i in range(0, len(part), size)] or [b""]
            else:
                parts.append(part)
        return replace(self, parts=tuple(parts))

    def cut(self, keep_bytes: int) -> Reply:
        """The body cut off after ``keep_bytes`` bytes (the connection just ends)."""
        parts: list[Part] = []
        left = keep_bytes
        for part in self.parts:
            if isinstance(part, bytes):
                if left <= 0:
                    break
                parts.append(part[:left])
                left -= len(part)
            else:
                parts.append(part)
        return replace(self, parts=tuple(parts))

    def then(self, *parts: Part) -> Reply:
        """The same reply with more parts appended (e.g. ``STALL``)."""
        return replace(self, parts=self.parts + tuple(parts))

    def with_framing(self, framing: Framing) -> Reply:
        """The same reply in another framing."""
        return replace(self, framing=framing)

    def after(self, delay: float | _Stall) -> Reply:
        """The same reply, its headers sent after ``delay`` seconds (or never: STALL)."""
        return replace(self, delay_headers=delay)


def _call_parts(call: Mapping[str, Any], index: int) -> tuple[str, str]:
    """The name and argument text of a scripted call, flat or in OpenAI's nested shape."""
    function = call.get("function")
    source = function if isinstance(function, Mapping) else call
    name = source.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"Reply.tool_calls: call {index} has no name; give {{'id', 'name', 'arguments'}} "
            "or {'id', 'function': {'name', 'arguments'}}."
        )
    args = source.get("arguments", "")
    return name, args if isinstance(args, str) else json.dumps(args)


def split_text(text: str, pieces: int | None = None) -> list[str]:
    """Split text into word-sized pieces (keeping spaces), or into ``pieces`` parts."""
    if not text:
        return []
    if pieces:
        size = max(1, -(-len(text) // pieces))
        return [text[i:i + size] for i in range(0, len(text), size)]
    words = text.split(" ")
    spaced = [w + " " for w in words[:-1]]
    return [*spaced, words[-1]] if words[-1] else spaced
