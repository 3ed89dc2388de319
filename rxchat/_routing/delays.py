"""How long to wait for a route's first delta before starting the next route.

"The Tail at Scale" (Dean and Barroso, 2013): send a second request once the first has
been outstanding longer than the 95th percentile of its kind, so about 5% of requests
are hedged while the tail is cut. `FirstDeltaTimes` keeps each route's recent
first-delta times (a window of `WINDOW` samples) and gives that percentile once it has
`MIN_SAMPLES` of them; before that, the fixed `DEFAULT_DELAY_S`.

An attempt that lost the race after waiting at least its hedge delay is recorded
with the time it waited, a lower bound of its real first-delta time: it belongs to
the tail either way, so leaving it out would pull the percentile down (a stalled
route's stalls are exactly the attempts that lose). An attempt that lost sooner tells
nothing about the tail and is not recorded.
"""

from __future__ import annotations

import math
import re
import threading
from collections import deque

from ..errors import ConfigurationError

__all__ = ["DEFAULT_DELAY_S", "MIN_SAMPLES", "WINDOW", "FirstDeltaTimes", "parse_after"]

DEFAULT_DELAY_S = 1.0
"""Hedge delay of a route with fewer than `MIN_SAMPLES` first-delta times."""

MIN_SAMPLES = 20
"""First-delta times a route needs before its percentile is used."""

WINDOW = 200
"""How many recent first-delta times are kept per route."""

_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?)")


def parse_after(after: str | float) -> tuple[float | None, float | None]:
    """Read ``hedge(after=...)``: ``"p95"`` (any ``"pNN"``) or seconds.

    Args:
        after: The percentile as ``"pNN"``, or a fixed delay in seconds.

    Returns:
        ``(percentile, None)`` or ``(None, seconds)``.

    Raises:
        ConfigurationError: Neither a percentile between 1 and 99.9 nor a finite,
            non-negative number.
    """
    if isinstance(after, str):
        match = _PERCENTILE.fullmatch(after.strip())
        if match and 1.0 <= float(match.group(1)) < 100.0:
            return float(match.group(1)), None
    elif (
        isinstance(after, int | float) and not isinstance(after, bool)
        and math.isfinite(after) and after >= 0
    ):
        return None, float(after)
    raise ConfigurationError(
        f"hedge(after={after!r}): give a percentile of recent first-delta times such as "
        "'p95', or a fixed delay in seconds such as 0.8."
    )


class FirstDeltaTimes:
    """Recent first-delta times per route, and the hedge delay they give.

    Safe to use from several threads (each attempt reports from its own).

    Args:
        routes: How many routes.
        after: ``"pNN"`` to adapt, or a fixed delay in seconds.
    """

    def __init__(self, routes: int, after: str | float = "p95") -> None:
        self.percentile, self.fixed = parse_after(after)
        self._lock = threading.Lock()
        self._samples = [deque[float](maxlen=WINDOW) for _ in range(routes)]
        self._delays: list[float | None] = [None] * routes

    def delay(self, route: int) -> float:
        """Seconds to wait for route ``route``'s first delta before hedging.

        Args:
            route: The route's position.

        Returns:
            The fixed delay, or the percentile of the route's recent first-delta
            times (`DEFAULT_DELAY_S` until it has `MIN_SAMPLES`).
        """
        if self.fixed is not None:
            return self.fixed
        with self._lock:
            cached = self._delays[route]
            if cached is None:
                cached = self._delays[route] = self._compute(route)
            return cached

    def record(self, route: int, seconds: float) -> None:
        """Add one first-delta time (or lower bound of one) of route ``route``.

        Args:
            route: The route's position.
            seconds: From starting the attempt to its first delta.
        """
        with self._lock:
            self._samples[route].append(max(0.0, seconds))
            self._delays[route] = None

    def samples(self, route: int) -> int:
        """How many first-delta times of route ``route`` are kept."""
        with self._lock:
            return len(self._samples[route])

    def _compute(self, route: int) -> float:
        samples = self._samples[route]
        if self.percentile is None or len(samples) < MIN_SAMPLES:
            return DEFAULT_DELAY_S
        ordered = sorted(samples)  # nearest rank: the smallest value >= p% of them
        rank = math.ceil(self.percentile / 100.0 * len(ordered))
        return ordered[max(0, rank - 1)]
