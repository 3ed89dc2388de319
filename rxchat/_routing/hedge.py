"""`hedge`: a completion function that races several routes to the same model.

It returns a `HedgedCompletion`, called like `create_stream_completion`; each
subscription runs one `rxchat._routing.race.Race`. The routes' first-delta times are
kept by the `HedgedCompletion` across all its requests, so ``after="p95"`` learns each
route's tail as it goes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.scheduler import EventLoopScheduler

from .._client import ChatClient
from .._concurrency.loop import deliver_on_loop, loop_of, thread_safe
from .._models import ChatCompletionParams, Message
from ..errors import ConfigurationError
from .delays import FirstDeltaTimes
from .race import Race
from .routes import Route

__all__ = ["HedgedCompletion", "hedge"]

log = logging.getLogger("rxchat")

# Hedge timers without a scheduler given: one shared timer thread, started when a timer
# is due and ended when none is left (a thread per waiting request would not scale to
# thousands of streams). Its actions only subscribe, which never blocks.
_timers = EventLoopScheduler(exit_if_empty=True)


class HedgedCompletion:
    """A completion function that races routes; built by `hedge`.

    Call it like `create_stream_completion`, or pass it as
    ``ChatSession(complete=...)``.

    Attributes:
        routes: The routes, in order.
        max_in_flight: How many attempts may run at once.
        times: Each route's recent first-delta times and hedge delay.
    """

    def __init__(
        self, routes: tuple[Route, ...], after: str | float, max_in_flight: int
    ) -> None:
        self.routes = routes
        self.max_in_flight = max_in_flight
        self.times = FirstDeltaTimes(len(routes), after)

    def __repr__(self) -> str:
        names = ", ".join(r.name({}) for r in self.routes)
        return f"hedge({names}, max_in_flight={self.max_in_flight})"

    def hedge_delay(self, route: int = 0) -> float:
        """Seconds a request waits for route ``route``'s first delta before starting
        the next route.

        Args:
            route: The route's position (from 0).

        Returns:
            The fixed delay, or the route's current percentile of first-delta times.
        """
        return self.times.delay(route)

    def __call__(
        self,
        params: ChatCompletionParams | Mapping[str, Any],
        *,
        client: ChatClient | None = None,
        scheduler: abc.SchedulerBase | None = None,
    ) -> Observable[Message]:
        """Stream one completion from whichever route answers first.

        Args:
            params: The request, as for `create_stream_completion`; a route's model
                replaces its ``model``.
            client: Used only by completion routes (a client route has its own).
            scheduler: Where the hedge timer runs, passed on to every route; by
                default one timer thread shared by all hedges. A
                ``reactivex.testing.TestScheduler`` runs the race in virtual time. Leave
                it None for client routes: a serial scheduler (``EventLoopScheduler``)
                would run the first route's blocking read and its hedge timer on one
                thread, so the timer could not fire while the read waits.

        Returns:
            A cold Observable of the winning route's deltas; the first one carries
            ``route``, the winner's name. Disposing it disposes every attempt.

        Raises:
            TypeError: ``params`` is not a mapping.
        """
        if not isinstance(params, Mapping):
            raise TypeError(
                f"params must be a dict of request fields, not {type(params).__name__}"
            )
        routes = self.routes
        names = [route.name(params) for route in routes]
        keeps_inner = [route.client is None for route in routes]
        openers = [
            (lambda route=route: route.open(params, client, scheduler)) for route in routes
        ]
        timers = thread_safe(scheduler) if scheduler is not None else _timers

        def subscribe(
            observer: abc.ObserverBase[Message], scheduler_: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def start(target: abc.ObserverBase[Message]) -> abc.DisposableBase:
                race = Race(
                    openers, names, keeps_inner, self.times, self.max_in_flight, target, timers
                )
                disposable = Disposable(race.dispose)
                race.start()
                return disposable

            return deliver_on_loop(observer, loop_of(scheduler_), start)  # for ``await``

        return reactivex.create(subscribe)


def hedge(
    *routes: ChatClient | tuple[ChatClient, str] | Any,
    after: str | float = "p95",
    max_in_flight: int = 2,
) -> HedgedCompletion:
    """Race several routes to one model: the first to answer wins, the others are
    cancelled ("hedged requests"), and a route that fails hands over to the next.

    ```text
    route 1   ──────────────x           stalled: disposed when route 2 answered
    route 2        ├──a──b──|           started `after` seconds later
    output    ────────a──b──|
    ```

    Subscribing starts the first route. When no delta has arrived ``after`` seconds
    later, the next route starts too (at most ``max_in_flight`` at once). The first
    attempt to emit a delta wins and every other attempt is disposed at once (its
    socket closed); no attempt starts after that, so output is never duplicated. An
    attempt that fails before its first delta moves on to the next route at once.

    A route's own retries (``ChatClient(max_retries=...)``) happen inside its attempt:
    give route clients ``max_retries=0`` for the fastest fallback.

    Args:
        *routes: Each a `ChatClient` (the caller's model), ``(client, model)`` when
            providers name one model differently, or a completion function called like
            `create_stream_completion` (e.g. scripted routes in virtual time).
        after: ``"p95"`` (or any ``"pNN"``): per route, that percentile of its recent
            first-delta times (1 s until 20 are known); or a fixed delay in seconds.
        max_in_flight: How many attempts may run at once (1: fallback only, no hedging).

    Returns:
        A completion function: call it like `create_stream_completion`, or pass it
        as ``ChatSession(complete=...)``. The first delta of each reply names the route
        that answered in ``Message.route`` (``"<model> at <base URL>"``), which the
        session keeps on the committed message and in its store.

    Raises:
        TypeError: A route is none of the accepted kinds.
        ConfigurationError: No route, a bad ``after``, or ``max_in_flight`` below 1.
    """
    if not routes:
        raise ConfigurationError("hedge() needs at least one route (a ChatClient).")
    if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or max_in_flight < 1:
        raise ConfigurationError(
            f"hedge(max_in_flight={max_in_flight!r}): give a whole number of at least 1."
        )
    normalised = tuple(Route.of(value, position) for position, value in enumerate(routes))
    return HedgedCompletion(normalised, after, max_in_flight)
