"""One subscription of a hedged request: its attempts, its hedge timer, its rules.

```text
route 1   ──────────────x            (disposed: its socket closes)
route 2         ├──a──b──c──|        (started `after` seconds later; answered first)
output    ──────────a──b──c──|       (a carries route="<route 2>")
```

The rules, each kept in one place:

* `_Race.start` starts the first route; each start arms the hedge timer with that
  route's delay, and when it fires with no delta yet the next route starts too (at
  most ``max_in_flight`` attempts run at once).
* The first attempt to emit (a delta, or a completion) wins (`_claim`): every other
  attempt is disposed before the first delta is passed on, so their sockets are closed
  before the winner's next delta is even read; no attempt starts after that.
* An attempt that fails before the race is won moves on to the next route at once
  (fallback); when none is left and none runs, the race fails with `AllRoutesFailed`.

All timing goes through the scheduler (virtual time in tests); decisions are made
under a lock, and the observer and the routes are only called outside it, so an
attempt that answers inside ``subscribe`` (a scripted route) or a subscriber that
disposes from ``on_next`` cannot deadlock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import SerialDisposable, SingleAssignmentDisposable
from reactivex.scheduler import VirtualTimeScheduler

from .._models import Message
from ..errors import AllRoutesFailed, RxChatError
from .delays import FirstDeltaTimes

__all__ = ["Attempt", "Race"]

log = logging.getLogger("rxchat")

Opener = Callable[[], Observable[Message]]


class Attempt(abc.ObserverBase[Message]):
    """One route's attempt: it reports to its race and holds its subscription."""

    def __init__(self, race: Race, position: int, started: float) -> None:
        self.race = race
        self.position = position
        self.started = started
        self.subscription = SingleAssignmentDisposable()

    def on_next(self, value: Message) -> None:
        self.race.next(self, value)

    def on_error(self, error: Exception) -> None:
        self.race.error(self, error)

    def on_completed(self) -> None:
        self.race.completed(self)

    def dispose(self) -> None:
        """Dispose the attempt's subscription (closing its socket)."""
        self.subscription.dispose()


class Race:
    """The state of one hedged subscription.

    Args:
        openers: One function per route that opens that route's attempt.
        names: Each route's name (for the message, the log and errors).
        keeps_inner: Per route, whether a route name already on its first delta is
            kept (a completion route may be a hedge itself, which names its own).
        times: The routes' first-delta times, shared by every request of the hedge.
        max_in_flight: How many attempts may run at once.
        observer: Where the winner's deltas go.
        scheduler: Where the hedge timer runs.
    """

    def __init__(
        self,
        openers: Sequence[Opener],
        names: Sequence[str],
        keeps_inner: Sequence[bool],
        times: FirstDeltaTimes,
        max_in_flight: int,
        observer: abc.ObserverBase[Message],
        scheduler: abc.SchedulerBase,
    ) -> None:
        self._openers, self._names, self._times = openers, names, times
        self._keeps_inner = keeps_inner
        self._max = max_in_flight
        self._observer = observer
        self._scheduler = scheduler
        self._lock = threading.Lock()
        self._next_route = 0
        self._running: dict[int, Attempt] = {}
        self._failed: list[tuple[int, Exception]] = []
        self._winner: Attempt | None = None
        self._stopped = False
        self._timer = SerialDisposable()

    def start(self) -> None:
        """Start the first route."""
        self._launch()

    def dispose(self) -> None:
        """Stop: dispose the timer and every attempt (their sockets close at once)."""
        with self._lock:
            attempts = self._stop()
        self._dispose_all(attempts)

    def _stop(self) -> list[Attempt]:
        """Mark the race stopped and take its running attempts (the lock is held)."""
        self._stopped = True
        attempts = list(self._running.values())
        self._running.clear()
        return attempts

    def _dispose_all(self, attempts: list[Attempt]) -> None:
        """Dispose the hedge timer and `attempts` (outside the lock)."""
        self._timer.dispose()
        for attempt in attempts:
            attempt.dispose()

    # -- the attempts' reports ------------------------------------------------------

    def next(self, attempt: Attempt, delta: Message) -> None:
        """An attempt emitted a delta: the winner's go on; the first one wins."""
        if self._winner is attempt:  # set once, by this attempt's own thread
            if not self._stopped:
                self._observer.on_next(delta)
            return
        if not self._claim(attempt):
            return
        if delta.route is None or not self._keeps_inner[attempt.position]:
            delta = replace(delta, route=self._names[attempt.position])
        self._observer.on_next(delta)

    def completed(self, attempt: Attempt) -> None:
        """An attempt completed: the winner's completion, or a win with no delta."""
        if self._winner is not attempt and not self._claim(attempt):
            return
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._observer.on_completed()

    def error(self, attempt: Attempt, error: Exception) -> None:
        """An attempt failed: the winner's error ends the race; before a win, fall back."""
        final: Exception | None = None
        with self._lock:
            if self._stopped:
                return
            if self._winner is attempt:
                self._stopped = True
                final = error
            elif self._winner is not None or self._running.pop(attempt.position, None) is None:
                return
            else:
                self._failed.append((attempt.position, error))
                if self._next_route >= len(self._openers) and not self._running:
                    self._stopped = True
                    final = self._all_failed()
        if final is not None:
            self._observer.on_error(final)
            return
        name = self._names[attempt.position]
        log.info("hedge: %s failed before answering (%s: %s); trying the next route",
                 name, type(error).__name__, error)
        self._launch()

    # -- the rules ------------------------------------------------------------------

    def _launch(self) -> None:
        """Start the next route, if one is left, the race is open and a slot is free."""
        with self._lock:
            if (
                self._stopped or self._winner is not None
                or self._next_route >= len(self._openers) or len(self._running) >= self._max
            ):
                return
            position = self._next_route
            self._next_route += 1
            attempt = self._running[position] = Attempt(self, position, self._now())
            more = self._next_route < len(self._openers)
            in_flight = len(self._running)
        if position:
            log.info("hedge: starting %s (%d attempt(s) now in flight)",
                     self._names[position], in_flight)
        try:
            observable = self._openers[position]()
            attempt.subscription.disposable = observable.subscribe(attempt)
        except RxChatError as exc:
            attempt.on_error(exc)
        except Exception as exc:  # a bug in a completion function: not a route failure
            if not self._fail(exc):
                raise  # the race was won inside subscribe: the subscriber's own exception
        if more:
            self._arm(attempt)

    def _arm(self, attempt: Attempt) -> None:
        """Start the hedge timer of the route just started, unless it already answered,
        failed (then the next route is started and armed instead) or the race ended.

        Armed after subscribing, so starting the timer is not part of the wait for the
        first delta; a race won in between has disposed `_timer`, which then disposes
        this timer at once.
        """
        with self._lock:
            if (
                self._stopped or self._winner is not None
                or attempt.position not in self._running
                or self._next_route != attempt.position + 1
            ):
                return
        delay = self._times.delay(attempt.position)
        self._timer.disposable = self._scheduler.schedule_relative(delay, self._on_timer)

    def _fail(self, error: Exception) -> bool:
        """End the race with ``error``; False (nothing done) if it has ended or been won."""
        with self._lock:
            if self._stopped or self._winner is not None:
                return False
            attempts = self._stop()
        self._dispose_all(attempts)
        self._observer.on_error(error)
        return True

    def _on_timer(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        self._launch()

    def _claim(self, attempt: Attempt) -> bool:
        """Make ``attempt`` the winner if the race is still open; dispose the others."""
        with self._lock:
            if self._stopped or self._winner is not None or attempt.position not in self._running:
                return False
            self._winner = attempt
            losers = [a for a in self._running.values() if a is not attempt]
            self._running = {attempt.position: attempt}
            self._next_route = len(self._openers)
        self._timer.dispose()
        for loser in losers:
            loser.dispose()
        now = self._now()
        for loser in losers:  # waited its hedge delay at least: a lower bound of its tail
            waited = now - loser.started
            if waited >= self._times.delay(loser.position):
                self._times.record(loser.position, waited)
        took = now - attempt.started
        self._times.record(attempt.position, took)
        log.info("hedge: %s answered first, %.3f s after it started (%d route(s) tried)",
                 self._names[attempt.position], took, attempt.position + 1)
        return True

    def _all_failed(self) -> AllRoutesFailed:
        ordered = sorted(self._failed, key=lambda item: item[0])
        return AllRoutesFailed(
            [self._names[position] for position, _ in ordered], [e for _, e in ordered]
        )

    def _now(self) -> float:
        scheduler = self._scheduler
        if isinstance(scheduler, VirtualTimeScheduler):
            return float(scheduler.clock)
        return time.monotonic()
