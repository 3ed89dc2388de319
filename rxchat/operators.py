"""Operators for streams of ``Message`` deltas: plain RxPY operators for ``.pipe``.

Each is built by composing ``reactivex.operators``; `idle_timeout` is
``reactivex.operators.timeout`` with a typed error. The merging rules live in two pure
functions, `merge_delta` (one step, for running snapshots) and
`merge_deltas` (a whole stream at once, in linear time):

* ``content`` and ``reasoning_content`` are concatenated; ``None`` never overwrites;
* ``role`` and ``name`` are set by the first delta that carries them;
* tool-call fragments merge by ``index`` (by ``id`` when a provider reuses an index for
  a new call): ``id``, ``type`` and ``function.name`` are set once, argument fragments
  concatenated;
* ``finish_reason`` and ``usage`` are the last non-null ones seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

import reactivex
from reactivex import Observable, abc, compose
from reactivex import operators as ops
from reactivex.scheduler import ImmediateScheduler

from ._loop import loop_of, on_loop, on_subscriber_loop
from ._models import FunctionCall, Message, ToolCall
from ._toolcalls import tool_calls
from .errors import APITimeoutError

_T = TypeVar("_T")

__all__ = [
    "accumulate",
    "content",
    "final_message",
    "idle_timeout",
    "merge_delta",
    "merge_deltas",
    "reasoning",
    "tool_calls",
]


def accumulate() -> Callable[[Observable[Message]], Observable[Message]]:
    """Emit a running snapshot of the whole message after each delta.

    Each snapshot is a new string, so the cost per delta grows with the reply;
    use `final_message` when only the end result matters.

    ```text
    deltas:   ──a────b────c───|     (content "He", "ll", "o")
    accumulate()
    snapshots ──A────B────C───|     ("He", "Hell", "Hello")
    ```

    With ``n > 1`` choices, each snapshot is that of the delta's own choice
    (``index``): choices are never mixed.

    Returns:
        An operator from deltas to accumulated messages.
    """
    return compose(
        on_subscriber_loop(), ops.scan(_fold_choice, _NO_CHOICES), ops.map(_changed_choice)
    )


def final_message() -> Callable[[Observable[Message]], Observable[Message]]:
    """Emit one ``Message``, the whole reply, when the stream completes.

    ```text
    deltas:   ──a────b────c───|
    final_message()
    message   ────────────────(M|)
    ```

    Content and reasoning are joined, tool-call fragments merged by index, and
    ``finish_reason`` and ``usage`` kept (usage also from a trailing usage-only delta).
    An empty stream gives an empty assistant message; an error passes through. With
    ``n > 1`` choices, one message per choice is emitted, in ``index`` order.

    Returns:
        An operator from deltas to the final message (one per choice).
    """
    return compose(on_subscriber_loop(), ops.to_list(), ops.flat_map(_merge_choices))


def content() -> Callable[[Observable[Message]], Observable[str]]:
    """Emit the non-empty ``content`` pieces as strings.

    ```text
    deltas:   ──r────a────b───|     (role only, "He", "llo")
    content()
    text      ───────a────b───|     ("He", "llo")
    ```

    Returns:
        An operator from deltas to text fragments.
    """
    return compose(on_subscriber_loop(), ops.map(_content_of), ops.filter(bool))


def reasoning() -> Callable[[Observable[Message]], Observable[str]]:
    """Emit the non-empty ``reasoning_content`` pieces as strings.

    ```text
    deltas:   ──r────a────b───|     (reasoning "Hm", "m", then content "Hi")
    reasoning()
    text      ──r────a────────|     ("Hm", "m")
    ```

    Returns:
        An operator from deltas to reasoning fragments.
    """
    return compose(on_subscriber_loop(), ops.map(_reasoning_of), ops.filter(bool))


def idle_timeout(
    seconds: float, *, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Fail with `APITimeoutError` when no value arrives within
    ``seconds`` of subscribing or of the previous value.

    ```text
    source:   ──a──b─────────────c──|
    idle_timeout(4)
    output    ──a──b───#                 (# = APITimeoutError, 4 after b)
    ```

    Like ``reactivex.operators.timeout``, which errors with a bare ``Exception``, but
    the error is typed, so it is handled with the library's other timeouts (and the
    CLI's exit code for them). Disposing on timeout unsubscribes from the source, which
    for `create_stream_completion` closes the connection.

    Args:
        seconds: Longest silence allowed, from subscription and between values.
        scheduler: Where the timer runs; by default the subscriber's scheduler, else
            a timer thread. With an asyncio scheduler (given here, or to ``subscribe``
            as ``await`` does) the values are handed to its loop before the timer
            sees them, so the loop is never touched from another thread; subscribe
            on the loop's thread then.

    Returns:
        An operator that passes values through until the source falls silent.
    """

    def timed_out(_scheduler: abc.SchedulerBase) -> Observable[Any]:
        # A new error per subscription: an exception instance is not shared.
        return reactivex.throw(
            APITimeoutError(
                f"No value arrived within {seconds:g} s (idle_timeout); the source "
                "stalled. Retry, or allow a longer silence."
            )
        )

    def operator(source: Observable[_T]) -> Observable[_T]:
        fallback: Observable[_T] = reactivex.defer(timed_out)
        # An asyncio timer is only ever touched on its loop's thread: the values are
        # handed to that loop (the given scheduler's, else the subscriber's) first.
        return source.pipe(
            on_loop(loop_of(scheduler)),
            ops.timeout(seconds, other=fallback, scheduler=scheduler),
        )

    return operator


_Choices = tuple[tuple[Message, ...], int]
"""The snapshot of each choice seen, and the position of the one the last delta changed."""
_NO_CHOICES: _Choices = ((), -1)


def _fold_choice(acc: _Choices, delta: Message) -> _Choices:
    snapshots = acc[0]
    for position, snapshot in enumerate(snapshots):
        if snapshot.index == delta.index:
            merged = merge_delta(snapshot, delta)
            return (*snapshots[:position], merged, *snapshots[position + 1:]), position
    return (*snapshots, delta), len(snapshots)


def _changed_choice(acc: _Choices) -> Message:
    return acc[0][acc[1]]


def _merge_choices(deltas: list[Message]) -> Observable[Message]:
    # Emitted at once, on the thread that completed the stream: never handed to the
    # subscriber's scheduler (an asyncio loop would not wake for a call from the
    # reader thread).
    now = ImmediateScheduler.singleton()
    if all(d.index == deltas[0].index for d in deltas[1:]):
        return reactivex.just(merge_deltas(deltas), scheduler=now)
    by_index: dict[int, list[Message]] = {}
    for delta in deltas:
        by_index.setdefault(delta.index, []).append(delta)
    merged = [merge_deltas(by_index[i]) for i in sorted(by_index)]
    return reactivex.from_iterable(merged, scheduler=now)


def _content_of(message: Message) -> str:
    return message.content or ""


def _reasoning_of(message: Message) -> str:
    return message.reasoning_content or ""


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
        return right
    return left + right


def _concat(pieces: Iterable[str | None]) -> str | None:
    present = [p for p in pieces if p is not None]
    return "".join(present) if present else None


def _last(values: Iterable[_T | None]) -> _T | None:
    result: _T | None = None
    for value in values:
        if value is not None:
            result = value
    return result
