"""`rxops.tool_calls()`: each whole tool call of a delta stream, as soon as it is whole.

Providers stream one call after another: a call's head (`id`, `function.name`), then
its argument fragments. So a call is complete when the next call begins, when the
choice sends its `finish_reason`, or when the stream completes; that is when it is
emitted, arguments merged by `rxchat.operators.merge_delta` (the one merge rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import reactivex
from reactivex import Observable, compose
from reactivex import operators as ops

from ._wire.merge import merge_delta
from ._models import Message, ToolCall

__all__ = ["tool_calls"]


@dataclass(frozen=True)
class _Calls:
    merged: Message = field(default_factory=Message)
    emitted: int = 0
    ready: tuple[ToolCall, ...] = ()


_END: Any = object()  # appended to the stream: every call still open is complete


def tool_calls() -> Callable[[Observable[Message]], Observable[ToolCall]]:
    """Emit each complete `ToolCall` (arguments merged) as soon as it is complete.

    ```text
    deltas:  ──h1──a──a──h2──a──f──|     (h: a call's head, a: argument piece,
    tool_calls()                          f: finish_reason)
    calls    ────────────C1─────C2─|
    ```

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
    if delta is _END:
        return _Calls(calls.merged, len(calls.merged.tool_calls),
                      calls.merged.tool_calls[calls.emitted:])
    merged = calls.merged
    if delta.tool_calls:
        merged = merge_delta(merged, Message(tool_calls=delta.tool_calls))
    done = len(merged.tool_calls) - 1  # the last call may still grow...
    if delta.finish_reason is not None:
        done = len(merged.tool_calls)  # ...unless the choice is finished
    done = max(done, calls.emitted)
    return _Calls(merged, done, merged.tool_calls[calls.emitted:done])
