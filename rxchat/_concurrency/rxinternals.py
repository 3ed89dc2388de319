"""reactivex's private names, in one module: the two places rxchat reaches past RxPY's API.

* `scheduler_loop`: the event loop of an ``AsyncIOScheduler`` (RxPY keeps it in
  ``_loop`` since 3.0 and has no public accessor), so values can be handed to the loop
  an ``await`` runs on.
* `subscriber_function`: the subscriber's own ``on_next`` behind RxPY's
  ``AutoDetachObserver``, so the read loop makes one Python call less per delta.

Both are fenced: ``reactivex`` has an upper bound in ``setup.cfg`` (``<7``), and
``tests/http/test_stream_subscribers.py`` and ``tests/aio/`` fail if either stops
working (each falls back to the public path when the private name is missing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import abc
from reactivex.observer.autodetachobserver import AutoDetachObserver

__all__ = ["scheduler_loop", "subscriber_function"]

_T = TypeVar("_T")


def scheduler_loop(scheduler: Any) -> asyncio.AbstractEventLoop | None:
    """The loop an ``AsyncIOScheduler`` schedules on, or None if it cannot be read."""
    loop = getattr(scheduler, "_loop", None)
    return loop if isinstance(loop, asyncio.AbstractEventLoop) else None


def subscriber_function(observer: abc.ObserverBase[_T]) -> Callable[[_T], None]:
    """What to call for each value on rxchat's short path.

    ``Observable.subscribe`` wraps the subscriber in an ``AutoDetachObserver`` whose
    ``on_next`` checks its stop flag and calls the subscriber's function. The read loop
    checks its own stop flag before every event (dispose sets both), so it calls that
    function directly: one Python call less per delta, about 4% of rxchat's per-delta
    cost. Any other observer is called through its ``on_next``.
    """
    if type(observer) is AutoDetachObserver:
        function = getattr(observer, "_on_next", None)
        if callable(function):
            return function  # type: ignore[no-any-return]
    return observer.on_next
