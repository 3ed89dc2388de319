"""Marble helpers: delta streams in virtual time, for ``ChatSession(complete=...)`` tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import reactivex
from reactivex import Observable, abc

from .._models import Message
from ..errors import StreamInterrupted

__all__ = ["ScriptedCompletion", "marble_deltas"]


def marble_deltas(
    marbles: str,
    values: Mapping[str, Message | str] | None = None,
    *,
    error: Exception | None = None,
    timespan: float = 1.0,
    scheduler: abc.SchedulerBase | None = None,
) -> Observable[Message]:
    """A cold Observable of deltas described by a marble string.

    RxPY's marble grammar: each character is one ``timespan`` of virtual time; ``-``
    is a tick with nothing, ``|`` completes and ``#`` emits ``error``. Characters
    written together form ONE element (``"ab"`` is the element ``ab``, emitted at
    the time of its first character); ``(a,b)`` emits ``a`` then ``b`` at one time.
    Every element is looked up in ``values`` (a ``str`` value becomes a content
    delta); an element that is not there is an error naming it, raised here.

    ```text
    marble_deltas("-a-b-|", {"a": "Hel", "b": Message(content="lo", finish_reason="stop")})
    marble_deltas("-(a,b)-|", ...)   # a and b at time 1
    marble_deltas("-ab-|", {"ab": "Hello"})   # one delta, at time 1
    ```

    Args:
        marbles: The marble diagram.
        values: What each letter emits.
        error: What ``#`` emits; by default a
            `StreamInterrupted`, as a cut-off reply would.
        timespan: Virtual seconds per character.
        scheduler: Scheduler to run on (usually the test's ``TestScheduler``).

    Returns:
        A cold Observable of ``Message`` deltas.

    Raises:
        ValueError: An element of ``marbles`` has no value in ``values`` (the
            message names it, and says how to write separate elements).
    """
    lookup = _Lookup(marbles, {
        key: Message(content=value) if isinstance(value, str) else value
        for key, value in (values or {}).items()
    })
    return reactivex.from_marbles(
        marbles, timespan=timespan, lookup=lookup, scheduler=scheduler,
        error=error if error is not None else StreamInterrupted("the marble stream ended with #"),
    )


class _Lookup(dict[Any, Any]):
    """The values of a marble string: RxPY asks `get(element, element)`; a miss raises."""

    def __init__(self, marbles: str, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        self._marbles = marbles

    def __bool__(self) -> bool:  # RxPY reads `lookup or {}`: no values still looks up
        return True

    def get(self, key: Any, default: Any = None) -> Any:
        text = str(key)  # RxPY has read "1" as the int 1 already
        if text in self:
            return self[text]
        if key in self:
            return self[key]
        hint = (f" Adjacent characters form one element: write '({','.join(text)})' for "
                f"{len(text)} deltas at one time, or separate them with '-'."
                if len(text) > 1 else "")
        raise ValueError(
            f"marble_deltas({self._marbles!r}): the element {text!r} has no value; "
            f"the values are {sorted(map(str, self))}.{hint}"
        )


class ScriptedCompletion:
    """A ``complete=`` stand-in for ChatSession: plays Observables and records params.

    ``calls`` holds the params of each call (``calls[i]["messages"]`` is what turn
    ``i`` would have sent) and ``options`` the keyword arguments (``client``,
    ``scheduler``) it was called with.

    Args:
        streams: The Observables to return, one per call, in order; or a callable
            building one from the params.
    """

    def __init__(
        self, *streams: Observable[Message] | Callable[[Any], Observable[Message]]
    ) -> None:
        self._streams = list(streams)
        self.calls: list[dict[str, Any]] = []
        self.options: list[dict[str, Any]] = []

    def __call__(self, params: Any, **kwargs: Any) -> Observable[Message]:
        self.calls.append(dict(params))
        self.options.append(kwargs)
        if not self._streams:
            raise AssertionError("ScriptedCompletion was called more times than scripted")
        stream = self._streams.pop(0)
        return stream if isinstance(stream, Observable) else stream(params)
