"""The replay behind `ChatSession.send()`: a hot turn's deltas, for every subscriber.

`reactivex.subject.ReplaySubject` replays to a new subscriber while holding its lock,
which would call user code under a lock. Here recording and joining both run on the
session's serial scheduler (a join is posted to the session's mailbox), so no lock is
needed and a subscriber may call back into the session from any callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from .actor import call_subscriber
from .._models import Message

__all__ = ["Replay"]

_Post = Callable[[Callable[[], None]], None]


class Replay(abc.ObserverBase[Message]):
    """Records one turn's deltas and end; `observable` replays them, then goes live.

    Every method runs on the session's scheduler: the session calls the observer
    methods, and `observable`'s subscribe and dispose are posted there.

    Args:
        post: Runs a callable on the session's scheduler (its mailbox).
    """

    def __init__(self, post: _Post) -> None:
        self._post = post
        self._deltas: list[Message] = []
        self._end: tuple[Exception | None] | None = None
        self._live: list[abc.ObserverBase[Message]] = []

    @property
    def observable(self) -> Observable[Message]:
        """The turn's deltas from the first, then its end, for each subscriber."""

        def subscribe(
            observer: abc.ObserverBase[Message], _scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            self._post(lambda: self._join(observer))
            return Disposable(lambda: self._post(lambda: self._leave(observer)))

        return reactivex.create(subscribe)

    def on_next(self, value: Message) -> None:
        """Record a delta and pass it on."""
        self._deltas.append(value)
        for observer in list(self._live):
            _safely(observer.on_next, value)

    def on_error(self, error: Exception) -> None:
        """Record the turn's error and pass it on."""
        self._finish(error)

    def on_completed(self) -> None:
        """Record the turn's completion and pass it on."""
        self._finish(None)

    def _finish(self, error: Exception | None) -> None:
        self._end = (error,)
        live, self._live = self._live, []
        for observer in live:
            _end(observer, error)

    def _join(self, observer: abc.ObserverBase[Message]) -> None:
        for delta in list(self._deltas):
            _safely(observer.on_next, delta)
        if self._end is None:
            self._live.append(observer)
        else:
            _end(observer, self._end[0])

    def _leave(self, observer: abc.ObserverBase[Message]) -> None:
        if observer in self._live:
            self._live.remove(observer)


def _end(observer: abc.ObserverBase[Message], error: Exception | None) -> None:
    if error is None:
        _safely(observer.on_completed)
    else:
        _safely(observer.on_error, error)


def _safely(function: Callable[..., None], *args: Any) -> None:
    call_subscriber(function, *args)
