"""Hedged and fallback requests: several routes to one model, the first to answer wins.

* `routes` turns what the caller gave (a `ChatClient`, ``(client, model)``, or a
  completion function) into `Route` values that open one attempt each;
* `delays` keeps each route's recent first-delta times and answers "how long to wait
  before hedging" (the 95th percentile, or a fixed number);
* `race` is one subscription: the attempts, the hedge timer and the rules of the race;
* `hedge` is the face: `hedge(*routes, ...)` returns a `HedgedCompletion`.
"""

from __future__ import annotations

from .delays import DEFAULT_DELAY_S, FirstDeltaTimes
from .hedge import HedgedCompletion, hedge
from .routes import Route

__all__ = ["DEFAULT_DELAY_S", "FirstDeltaTimes", "HedgedCompletion", "Route", "hedge"]
