"""The structured-output operators: a reply's JSON as it grows, item by item, or whole.

Each subscription gets its own `JSONStream` (made in ``defer``), fed the ``content``
of choice 0 delta by delta; a part that cannot fit the schema raises inside the
operator, so the error goes down the stream and the subscription is disposed, which
closes the socket of `create_stream_completion` at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reactivex
from reactivex import Observable, abc, compose
from reactivex import operators as ops
from reactivex.scheduler import ImmediateScheduler

from .._concurrency.loop import on_subscriber_loop
from .._models import Message
from ..errors import StructuredOutputError
from .parser import JSONStream
from .schema import Structured, as_structured
from .validate import SchemaChecker

__all__ = ["json_items", "parsed", "partial_arguments", "partial_json"]

_END: Any = object()  # appended to the stream: the text is complete
_SKIP: Any = object()  # nothing to emit for this delta


def _ended(source: Observable[Message]) -> Observable[Message]:
    return reactivex.concat(source, reactivex.just(_END))


def _checker(spec: Structured | None) -> SchemaChecker | None:
    return None if spec is None else SchemaChecker(spec.schema)


def _text_of(delta: Message) -> str:
    return delta.content or "" if delta.index == 0 else ""


def _per_subscription(
    make: Callable[[], Callable[[Message], Any]],
) -> Callable[[Observable[Message]], Observable[Any]]:
    """Map each delta (and the end) through a step made fresh per subscription;
    the step's `_SKIP` emits nothing."""

    def operator(source: Observable[Message]) -> Observable[Any]:
        def build(_scheduler: abc.SchedulerBase) -> Observable[Any]:
            return _ended(source).pipe(ops.map(make()), ops.filter(lambda v: v is not _SKIP))

        return reactivex.defer(build)

    return compose(on_subscriber_loop(), operator)


def partial_json(schema: Any = None) -> Callable[[Observable[Message]], Observable[Any]]:
    """Emit the reply's JSON value as it grows, each time it changed.

    ```text
    content: ──'{"a": [1'──', 2'──'3], "b": "h'──'i"}'──|
    partial_json()
    values   ──{a:[]}─────{a:[1]}──{a:[1,23],b:"h"}──{a:[1,23],b:"hi"}──|
    ```

    Each value extends the one before: keys and items only appear, strings only grow,
    and a number, ``true``/``false``/``null`` or a key appears only when complete (the
    ``1`` of ``[1`` may go on as ``12``). The value is **one object updated in place**
    (that keeps the cost per delta flat as the value grows): a subscriber that keeps a
    value copies it (``copy.deepcopy``). The value is complete when the stream
    completes; text that is not JSON, or ends before its value does, is a
    `StructuredOutputError`.

    With a ``schema``, each part is checked as it completes; the first that cannot fit
    (a wrong type, a value outside an ``enum``, a key the schema forbids, a missing
    required key when its object closes) fails the stream at once and disposes it,
    so the socket closes and the rest of the reply is not paid for:

    ```text
    content: ──'{"n": 1, '──'"x": '──'...'──|
    partial_json({"properties": {"n": ...}, "additionalProperties": False})
    values   ──{n:1}────────#                 (# StructuredOutputError: key "x")
    ```

    Only choice 0's ``content`` is read.

    Args:
        schema: What the value must fit: a pydantic model, a dataclass, a
            ``TypedDict``, a JSON Schema dict, or the dict `rxchat.response_format`
            returns (checked as sent, strict or not); None checks nothing.

    Returns:
        An operator from deltas to the growing value.
    """
    spec = None if schema is None else as_structured(schema)

    def make() -> Callable[[Message], Any]:
        stream = JSONStream(_checker(spec))

        def step(delta: Message) -> Any:
            if delta is _END:
                stream.close()  # a number at the very end completes here
                return stream.value if stream.changed else _SKIP
            text = _text_of(delta)
            return stream.value if text and stream.feed(text) else _SKIP

        return step

    return _per_subscription(make)


def json_items(key: str | None = None, *, schema: Any = None
               ) -> Callable[[Observable[Message]], Observable[Any]]:
    """Emit each element of the reply's top-level array (or of the array under the
    top-level ``key``) once, as soon as it is complete.

    ```text
    content: ──'[{"n": 1}, {"n'──'": 2}'──']'──|
    json_items()
    items    ──{n:1}──────────{n:2}──────────|
    ```

    Items are plain JSON values, complete when emitted and never changed afterwards.
    A reply whose value has no such array is a `StructuredOutputError` (when the value
    opens as something else, or when it ends without the key).

    Args:
        key: The top-level key whose array to read; None reads the top-level array.
        schema: What the whole value must fit, checked part by part as for
            `partial_json` (fail fast).

    Returns:
        An operator from deltas to the array's elements.
    """
    spec = None if schema is None else as_structured(schema)
    at = () if key is None else (key,)

    def make() -> Callable[[Message], Any]:
        stream = JSONStream(_checker(spec), items_at=at)

        def step(delta: Message) -> Any:
            if delta is _END:
                stream.close()
                if not stream.found_items:
                    raise _no_array(stream, key)
            else:
                text = _text_of(delta)
                if text:
                    stream.feed(text)
                if not stream.found_items and (
                    stream.done or (key is None and stream.started)
                ):
                    raise _no_array(stream, key)
            if not stream.items:
                return _SKIP
            ready = list(stream.items)
            stream.items.clear()
            return ready

        return step

    def each(items: list[Any]) -> Observable[Any]:
        return reactivex.from_iterable(items, scheduler=ImmediateScheduler.singleton())

    return compose(_per_subscription(make), ops.concat_map(each))


def _no_array(stream: JSONStream, key: str | None) -> StructuredOutputError:
    where = "The reply's top-level value" if key is None else f"The reply's key {key!r}"
    found = type(stream.value).__name__ if key is None else "missing"
    return StructuredOutputError(
        f"{where} is not an array ({found}), so json_items has no items; "
        + ("pass key= to read an array inside an object." if key is None
           else "check the key's name against the schema."),
        text=stream.text, errors=(f"no array at {'$' if key is None else '$.' + key}",),
    )


def parsed(schema: Any) -> Callable[[Observable[Message]], Observable[Any]]:
    """Emit one validated value when the stream completes.

    ```text
    content: ──'{"title": "Ca'──'ke"}'──|
    parsed(Recipe)
    value    ───────────────────────────(R|)     (R = Recipe(title="Cake"))
    ```

    For a pydantic model the value is validated by pydantic and is an instance of the
    model (pydantic is optional: without it, use a dataclass or a schema); for a
    dataclass, an instance of it (nested dataclasses too); otherwise the plain JSON
    value. It fails fast as `partial_json` does, then checks the whole value at the end
    (nulls strict mode sent for optional fields are dropped first, so defaults apply).

    Args:
        schema: A pydantic model, a dataclass, a ``TypedDict``, a JSON Schema dict, or
            the dict `rxchat.response_format` returns.

    Returns:
        An operator from deltas to the one value.

    Raises:
        StructuredOutputError: (emitted) The reply is not JSON, or does not fit.
    """
    spec = as_structured(schema)

    def make() -> Callable[[Message], Any]:
        stream = JSONStream(_checker(spec))

        def step(delta: Message) -> Any:
            if delta is _END:
                return spec.build(stream.close(), stream.text)
            text = _text_of(delta)
            if text:
                stream.feed(text)
            return _SKIP

        return step

    return _per_subscription(make)


def partial_arguments() -> Callable[[Observable[Message]], Observable[tuple[str, Any]]]:
    """Emit ``(call_id, value)`` as each tool call's arguments grow.

    ```text
    deltas:  ──h1──'{"q": "r'──'x"}'──h2──'{}'──|    (h: a call's head)
    partial_arguments()
    pairs    ──────(c1,{q:"r"})──(c1,{q:"rx"})──(c2,{})──|
    ```

    The same rules as `partial_json`, per call: each call's value is one object
    updated in place, emitted when it changed; arguments that are not JSON are a
    `StructuredOutputError`. Only choice 0 is read; a call whose arguments are empty
    emits nothing.

    Returns:
        An operator from deltas to ``(call_id, arguments so far)`` pairs.
    """

    def make() -> Callable[[Message], Any]:
        calls: dict[int, tuple[str, JSONStream]] = {}

        def step(delta: Message) -> Any:
            if delta is _END:
                for _call_id, stream in calls.values():
                    if stream.text.strip():
                        stream.close()
                return _SKIP
            out: list[tuple[str, Any]] = []
            for call in delta.tool_calls if delta.index == 0 else ():
                if call.index not in calls:
                    calls[call.index] = (call.id or f"call_{call.index}", JSONStream())
                call_id, stream = calls[call.index]
                text = call.function.arguments
                if text and stream.feed(text):
                    out.append((call_id, stream.value))
            return out or _SKIP

        return step

    def each(pairs: list[tuple[str, Any]]) -> Observable[tuple[str, Any]]:
        return reactivex.from_iterable(pairs, scheduler=ImmediateScheduler.singleton())

    return compose(_per_subscription(make), ops.concat_map(each))
