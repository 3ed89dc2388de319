"""The one merge rule for deltas: `merge_delta` (one step) and `merge_deltas` (a whole
stream, in linear time). Every operator, the session's partial reply and the command
line use these two, so the rules cannot drift apart:

* `content` and `reasoning_content` are concatenated; `None` never overwrites; the
  result is valid Unicode (a surrogate pair split across deltas is joined, a lone
  surrogate becomes U+FFFD: `rxchat._wire.text.valid_text`);
* `role` and `name` are set by the first delta that carries them;
* tool-call fragments merge by `index` (by `id` when a provider reuses an index for a
  new call): `id`, `type` and `function.name` are set once, argument fragments
  concatenated;
* `finish_reason` and `usage` are the last non-null ones seen;
* `route` (which hedged route answered) is set by the first delta that carries it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TypeVar

from .._models import FunctionCall, Message, ToolCall
from .text import has_surrogates, valid_text

_T = TypeVar("_T")

__all__ = ["merge_delta", "merge_deltas"]


def merge_delta(acc: Message, delta: Message) -> Message:
    """Fold one delta into an accumulated message (pure; the inputs are unchanged).

    Args:
        acc: The message so far.
        delta: The next delta.

    Returns:
        The message with the delta applied.
    """
    return Message(
        role=acc.role,
        content=_join(acc.content, delta.content),
        reasoning_content=_join(acc.reasoning_content, delta.reasoning_content),
        name=acc.name if acc.name is not None else delta.name,
        tool_calls=_merge_tool_calls(acc.tool_calls, delta.tool_calls),
        tool_call_id=acc.tool_call_id or delta.tool_call_id,
        finish_reason=delta.finish_reason or acc.finish_reason,
        usage=delta.usage or acc.usage,
        index=acc.index,
        route=acc.route if acc.route is not None else delta.route,
    )


def merge_deltas(deltas: Sequence[Message]) -> Message:
    """Merge a whole stream of deltas into one message, in time linear in its size.

    Args:
        deltas: The deltas in arrival order.

    Returns:
        The accumulated message (an empty assistant message for no deltas).
    """
    if not deltas:
        return Message()
    first = deltas[0]
    calls: tuple[ToolCall, ...] = ()
    for delta in deltas:
        if delta.tool_calls:
            calls = _merge_tool_calls(calls, delta.tool_calls)
    return Message(
        role=first.role,
        content=_concat(d.content for d in deltas),
        reasoning_content=_concat(d.reasoning_content for d in deltas),
        name=next((d.name for d in deltas if d.name is not None), None),
        tool_calls=calls,
        tool_call_id=next((d.tool_call_id for d in deltas if d.tool_call_id), None),
        finish_reason=_last(d.finish_reason for d in deltas),
        usage=_last(d.usage for d in deltas),
        index=first.index,
        route=next((d.route for d in deltas if d.route is not None), None),
    )


def _merge_tool_calls(
    calls: tuple[ToolCall, ...], fragments: tuple[ToolCall, ...]
) -> tuple[ToolCall, ...]:
    """Merge tool-call fragments into accumulated calls, by index (or id)."""
    if not fragments:
        return calls
    merged = list(calls)
    for fragment in fragments:
        position = _find_call(merged, fragment)
        if position is None:
            index = fragment.index
            if any(c.index == index for c in merged):
                index = max(c.index for c in merged) + 1
            merged.append(replace(fragment, index=index))
        else:
            merged[position] = _merge_call(merged[position], fragment)
    return tuple(merged)


def _find_call(calls: list[ToolCall], fragment: ToolCall) -> int | None:
    for position, call in enumerate(calls):
        if fragment.id is not None and call.id == fragment.id:
            return position
    for position, call in enumerate(calls):
        if call.index == fragment.index and (fragment.id is None or call.id is None):
            return position
    return None


def _merge_call(call: ToolCall, fragment: ToolCall) -> ToolCall:
    return ToolCall(
        index=call.index,
        id=call.id or fragment.id,
        type=call.type or fragment.type,
        function=FunctionCall(
            name=call.function.name or fragment.function.name,
            arguments=call.function.arguments + fragment.function.arguments,
        ),
    )


def _join(left: str | None, right: str | None) -> str | None:
    if right is None:
        return left
    if left is None:
        return valid_text(right, keep_open=True)
    if has_surrogates(right):  # a pair split between the two joins here (see .text)
        return left[:-1] + valid_text(left[-1:] + right, keep_open=True)
    return left + right


def _concat(pieces: Iterable[str | None]) -> str | None:
    present = [p for p in pieces if p is not None]
    return valid_text("".join(present)) if present else None


def _last(values: Iterable[_T | None]) -> _T | None:
    result: _T | None = None
    for value in values:
        if value is not None:
            result = value
    return result
