"""Text at the edges: a delta's ``content`` as providers send it, and valid Unicode.

* ``content`` is a string on most providers. Mistral's reasoning models send a list of
  parts instead (``[{"type": "thinking", "thinking": [{"type": "text", "text": ...}]},
  {"type": "text", "text": ...}]``): `content_parts` turns text parts into the
  content and thinking parts into the reasoning; anything else that is not a string
  is a `StreamError` naming what arrived. Only the slow path of the delta decoder calls
  it: the common delta has string content and never gets here.
* JSON may carry surrogate escapes that are not a pair (``"\\ud83d"`` alone, as UTF-16
  slicing of one emoji into two deltas produces). Python keeps them, but no UTF-8
  file, database or terminal accepts them. `valid_text` joins a pair split across two
  pieces and replaces a lone surrogate with U+FFFD; the merge rule and the session's
  commit use it, so what is merged or stored is always valid Unicode.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from .._models import Message
from ..errors import StreamError

__all__ = ["content_parts", "has_surrogates", "valid_message", "valid_text"]

_SURROGATE = re.compile("[\ud800-\udfff]")
_TEXT_PART_TYPES = frozenset(("text", "output_text"))
_THINKING_PART_TYPES = frozenset(("thinking", "reasoning"))


def has_surrogates(text: str) -> bool:
    """Whether ``text`` holds a surrogate code point (never in valid Unicode)."""
    return _SURROGATE.search(text) is not None


def valid_text(text: str, *, keep_open: bool = False) -> str:
    """``text`` as valid Unicode: surrogate pairs joined, lone surrogates U+FFFD.

    Args:
        text: Any string.
        keep_open: Keep a high surrogate at the very end as it is, so the low
            surrogate of the next piece can still join it (for a running merge).

    Returns:
        ``text`` itself when it holds no surrogate (the usual case), else the repair.
    """
    if _SURROGATE.search(text) is None:
        return text
    tail = ""
    if keep_open and "\ud800" <= text[-1] <= "\udbff":
        text, tail = text[:-1], text[-1]
    repaired = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return repaired + tail


def valid_message(message: Message) -> Message:
    """``message`` with its content and reasoning as valid Unicode (itself if they were)."""
    content, reasoning = message.content, message.reasoning_content
    fixed_content = valid_text(content) if isinstance(content, str) else content
    fixed_reasoning = valid_text(reasoning) if isinstance(reasoning, str) else reasoning
    if fixed_content is content and fixed_reasoning is reasoning:
        return message
    return replace(message, content=fixed_content, reasoning_content=fixed_reasoning)


def content_parts(value: Any, field: str = "content") -> tuple[str | None, str | None]:
    """Split a non-string ``content`` into its text and its thinking.

    Args:
        value: ``delta.content`` (or ``message.content``) as the server sent it.
        field: Its name, for the error message.

    Returns:
        ``(text, thinking)``: the joined text parts and the joined thinking parts, each
        None when there were none.

    Raises:
        StreamError: ``value`` is not a string, None or a list of such parts.
    """
    if value is None or isinstance(value, str):
        return value, None
    if not isinstance(value, list):
        raise _unexpected(field, value)
    text: list[str] = []
    thinking: list[str] = []
    for part in value:
        if isinstance(part, str):
            text.append(part)
            continue
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in _TEXT_PART_TYPES and isinstance(part.get("text"), str):
            text.append(part["text"])
        elif kind in _THINKING_PART_TYPES:
            inner = part.get(kind, part.get("text"))
            said, thought = content_parts(inner if inner is not None else "", field)
            thinking.append((said or "") + (thought or ""))
        else:
            raise _unexpected(field, value)
    return ("".join(text) if text else None), ("".join(thinking) if thinking else None)


def _unexpected(field: str, value: Any) -> StreamError:
    shown = repr(value)
    if len(shown) > 200:
        shown = shown[:200] + "..."
    return StreamError(
        f"The server sent a {field} that is neither text nor a list of text and "
        f"thinking parts: {type(value).__name__} {shown}. rxchat cannot show it as "
        "text; the provider's stream format may have changed (report it, with this "
        "message).",
    )
