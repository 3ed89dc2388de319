"""Hedged requests against a route with a stalling tail: time to first token.

Two loopback servers serve the same reply. Each request waits a first-token time drawn
from one lognormal distribution (median ``--median-ms``, spread ``--sigma``) before its
first event; the first route additionally stalls ``--stall-s`` seconds before its first
token on ``--stall-rate`` of its requests (3% by default: below the 5% a p95 hedge
delay assumes). Which requests stall and every first-token time come from a seeded
generator, per server, so every mode meets the same tail.

Three modes, ``--turns`` requests each, through the public API, interleaved (each turn
one request of each mode, one after another, so that all three meet the same load on
a shared machine), each mode on its own servers:

* ``first route alone``: `create_stream_completion` on the stalling route;
* ``second route alone``: the same on the other route (its own p95 and p99 give the
  target);
* ``hedged``: ``rxchat.hedge(first, second)`` with ``after="p95"``.

Time to first token is from subscribing to the first delta. Reported: p50/p95/p99/max
of each mode, the hedge delay the hedge ended with, the extra requests it sent (the
second route's requests over the turns) and the target: hedged p99 within 1.3x of
(the second route's own p99 + its p95). Nothing here asserts a timing; all traffic
stays on 127.0.0.1.

Run ``python benchmarks/hedge.py`` (500 turns, about two minutes), or
``python benchmarks/hedge.py --turns 200 --stall-s 1`` for a quicker look.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from reactivex import Observable

from rxchat import ChatClient, Message, create_stream_completion, hedge
from rxchat.testing import FakeServer, RecordedRequest, Reply

PARAMS: dict[str, Any] = {"messages": [{"role": "user", "content": "Say hello."}]}
REPLY = Reply.text("Hello! How can I help you today?")


class Route:
    """A loopback server whose first token comes after a drawn (or stalled) wait."""

    def __init__(self, seed: int, median_s: float, sigma: float, stall_rate: float,
                 stall_s: float, turns: int) -> None:
        rng = random.Random(seed)
        self.waits = [median_s * rng.lognormvariate(0.0, sigma) for _ in range(turns * 2)]
        stalled = rng.sample(range(turns), round(stall_rate * turns)) if stall_rate else []
        for index in stalled:
            self.waits[index] += stall_s
        self.stalls = len(stalled)
        self.served = 0
        self._lock = threading.Lock()
        self.server = FakeServer(self.respond)

    def respond(self, _request: RecordedRequest) -> Reply:
        with self._lock:
            wait = self.waits[self.served % len(self.waits)]
            self.served += 1
        return Reply((wait, *REPLY.parts))


def first_token_s(source: Observable[Message]) -> float:
    """Seconds from subscribing to the first delta; waits for the reply to end."""
    first: list[float] = []
    done = threading.Event()
    failed: list[Exception] = []

    def on_next(_message: Message) -> None:
        if not first:
            first.append(time.monotonic())

    def on_error(error: Exception) -> None:
        failed.append(error)
        done.set()

    start = time.monotonic()
    source.subscribe(on_next, on_error, done.set)
    if not done.wait(60):
        raise RuntimeError("a reply did not end within 60 s")
    if failed:
        raise failed[0]
    return first[0] - start


def run(
    turns: int, requests: Sequence[Callable[[], Observable[Message]]]
) -> list[list[float]]:
    """Each turn, one request of every mode in turn (so they share the machine's load)."""
    times: list[list[float]] = [[] for _ in requests]
    for _ in range(turns):
        for mode, request in enumerate(requests):
            times[mode].append(first_token_s(request()))
    return times


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {name: round(percentile(values, q) * 1000, 1)
            for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--stall-rate", type=float, default=0.03)
    parser.add_argument("--stall-s", type=float, default=2.0)
    parser.add_argument("--median-ms", type=float, default=40.0)
    parser.add_argument("--sigma", type=float, default=0.3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    median = args.median_ms / 1000
    # one server per mode, the stalling ones with the same seed: the first route alone
    # and the hedge's first route meet the same stalls on the same turns
    alone_first = Route(1, median, args.sigma, args.stall_rate, args.stall_s, args.turns)
    alone_second = Route(2, median, args.sigma, 0.0, 0.0, args.turns)
    first = Route(1, median, args.sigma, args.stall_rate, args.stall_s, args.turns)
    second = Route(2, median, args.sigma, 0.0, 0.0, args.turns)
    routes = (alone_first, alone_second, first, second)
    for route in routes:
        route.server.start()
    try:
        a1, b1, a, b = (ChatClient(r.server.base_url, "k", model="m", max_retries=0)
                        for r in routes)
        hedged_completion = hedge(a, b, after="p95")
        requests: list[Callable[[], Observable[Message]]] = [
            lambda: create_stream_completion(PARAMS, client=a1),
            lambda: create_stream_completion(PARAMS, client=b1),
            lambda: hedged_completion(PARAMS),
        ]
        alone_a, alone_b, hedged = run(args.turns, requests)  # interleaved: same load
        extra = second.served
    finally:
        for route in routes:
            route.server.stop()
    b_stats = summary(alone_b)
    target_ms = 1.3 * (b_stats["p99"] + b_stats["p95"])
    result = {
        "turns": args.turns,
        "stalls": first.stalls,
        "stall_s": args.stall_s,
        "first_route_alone_ms": summary(alone_a),
        "second_route_alone_ms": b_stats,
        "hedged_ms": summary(hedged),
        "hedge_delay_ms": round(hedged_completion.hedge_delay(0) * 1000, 1),
        "extra_requests": extra,
        "extra_requests_pct": round(100 * extra / args.turns, 1),
        "target_hedged_p99_ms": round(target_ms, 1),
        "hedged_p99_within_target": summary(hedged)["p99"] <= target_ms,
        "extra_within_15pct": extra <= 0.15 * args.turns,
    }
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return 0
    print(f"{args.turns} turns; first route stalls {args.stall_s:g} s on {first.stalls} "
          f"({100 * first.stalls / args.turns:.1f}%); first-token waits lognormal, "
          f"median {args.median_ms:g} ms")
    print(f"{'time to first token (ms)':28} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    for name, key in (("first route alone", "first_route_alone_ms"),
                      ("second route alone", "second_route_alone_ms"),
                      ("hedged (after='p95')", "hedged_ms")):
        row = result[key]
        print(f"{name:28} {row['p50']:8.1f} {row['p95']:8.1f} {row['p99']:8.1f} {row['max']:8.1f}")
    print(f"hedge delay at the end: {result['hedge_delay_ms']} ms; extra requests: "
          f"{extra} ({result['extra_requests_pct']}%, target <= 15%)")
    print(f"hedged p99 {result['hedged_ms']['p99']} ms; target <= 1.3 x (second route p99 "
          f"+ p95) = {result['target_hedged_p99_ms']} ms: "
          f"{'met' if result['hedged_p99_within_target'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
