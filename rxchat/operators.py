"""Operators for streams of ``Message`` deltas: plain RxPY operators for ``.pipe``.

Each is built by composing ``reactivex.operators``; `idle_timeout` is
``reactivex.operators.timeout`` with a typed error. Every operator merges deltas with
the one rule of `merge_delta` (one step, for running snapshots) and `merge_deltas` (a
whole stream at once, in linear time), re-exported here from `rxchat._wire.merge`, which
states the rule.

`tool_calls()` emits each whole tool call as soon as it is whole. Providers stream one
call after another: a call's head (`id`, `function.name`), then its argument
fragments; a call is complete when the next call begins, when the choice sends its
`finish_reason`, or when the stream completes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import reactivex
from reactivex import Observable, abc, compose
from reactivex import operators as ops
from reactivex.scheduler import ImmediateScheduler

from ._concurrency.loop import loop_of, on_loop, on_subscriber_loop
from ._models import Message, ToolCall
from ._wire.merge import merge_delta, merge_deltas
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
    "partial_json",
    "json_items",
    "parsed",
    "partial_arguments",
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


@dataclass(frozen=True)
class _Calls:
    merged: Message = field(default_factory=Message)
    emitted: frozenset[int] = frozenset()  # positions in `merged.tool_calls`
    ready: tuple[ToolCall, ...] = ()


_END: Any = object()  # appended to the stream: every call still open is complete


def tool_calls() -> Callable[[Observable[Message]], Observable[ToolCall]]:
    """Emit each complete `ToolCall` (arguments merged) as soon as it is complete.

    ```text
    deltas:  ──h1──a──a──h2──a──f──|     (h: a call's head, a: argument piece,
    tool_calls()                          f: finish_reason)
    calls    ────────────C1─────C2─|
    ```

    A call is emitted once its arguments can no longer grow: they are complete JSON
    (an object or array) and a later call has begun, or the choice finished (the
    last call, and any call whose arguments are not a JSON object, wait for that).
    Providers may interleave the fragments of parallel calls (call 1's head before
    call 0's arguments): a call whose arguments are still arriving is never emitted.
    Calls are emitted in the order they complete.

    Only the first choice (`index` 0) is read. An error passes through; calls
    still open when it arrives are not emitted (they may be cut off).

    Returns:
        An operator from deltas to tool calls.
    """
    def first_choice(delta: Message) -> bool:
        return delta.index == 0

    def ended(source: Observable[Message]) -> Observable[Message]:
        return reactivex.concat(source, reactivex.just(_END))

    def ready(calls: _Calls) -> Observable[ToolCall]:
        return reactivex.from_iterable(calls.ready)

    scan: Callable[[Observable[Message]], Observable[_Calls]] = ops.scan(_track, _Calls())
    each: Callable[[Observable[_Calls]], Observable[ToolCall]] = ops.flat_map(ready)
    return compose(ops.filter(first_choice), ended, scan, each)


def _track(calls: _Calls, delta: Message) -> _Calls:
    merged, emitted = calls.merged, calls.emitted
    if delta is not _END and delta.tool_calls:
        merged = merge_delta(merged, Message(tool_calls=delta.tool_calls))
    every = merged.tool_calls
    if delta is _END or delta.finish_reason is not None:
        done = [p for p in range(len(every)) if p not in emitted]  # nothing grows now
    elif not delta.tool_calls:
        return _Calls(merged, emitted) if calls.ready else calls
    else:
        done = [p for p in range(len(every) - 1)  # a later call has begun
                if p not in emitted and _closed_json(every[p].function.arguments)]
    if not done:
        return _Calls(merged, emitted)
    return _Calls(merged, emitted | frozenset(done), tuple(every[p] for p in done))


def _closed_json(text: str) -> bool:
    """Whether `text` is a whole JSON object or array (more text would spoil it)."""
    text = text.strip()
    if not text or text[0] + text[-1] not in ("{}", "[]"):
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# Structured output (JSON as it grows): built in rxchat._structured, exported here.
from ._structured.operators import (  # noqa: E402
    json_items,
    parsed,
    partial_arguments,
    partial_json,
)
