"""partial_json's cost per delta as the value grows, and its overhead over json.loads.

A JSON value of about 200 KB (an object holding an array of records with strings,
numbers, nested objects and escapes) is cut into 5,000 deltas and fed through
`rxchat.operators.partial_json` (with and without a schema) and through the bare
parser. Reported: the mean time per delta over the first and the last 1,000 deltas
(the target: the last within 2x the first, i.e. flat), the total, and the total
against one ``json.loads`` of the final text. For comparison, ``jiter``'s partial mode
re-parsing the whole text on every delta, if installed. Nothing is asserted.

Run: ``python benchmarks/partial_json.py [--deltas 5000] [--size 200000]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import time
from collections.abc import Callable
from typing import Any

import reactivex
from reactivex import operators as ops

from rxchat import Message
from rxchat import operators as rxops
from rxchat._structured.parser import JSONStream

SCHEMA = {"type": "object", "required": ["items"], "properties": {"items": {
    "type": "array", "items": {"type": "object", "required": ["id", "name", "price"],
                               "additionalProperties": False, "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "price": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "kind": {"enum": ["a", "b", "c"]},
        "stock": {"type": "object"}}}}}}


def sample(size: int) -> str:
    """A JSON text of about ``size`` characters."""
    rng = random.Random(7)
    items: list[dict[str, Any]] = []
    text = ""
    while len(text) < size:
        for _ in range(50):
            n = len(items)
            items.append({"id": n, "name": f"item \"{n}\" — naïve ✓ {'x' * rng.randint(0, 30)}",
                          "price": round(rng.uniform(0, 1000), 2),
                          "tags": [f"t{rng.randint(0, 99)}" for _ in range(rng.randint(0, 4))],
                          "kind": rng.choice("abc"),
                          "stock": {"here": rng.randint(0, 9), "there": None, "ok": True}})
        text = json.dumps({"items": items}, ensure_ascii=False)
    return text


def split(text: str, deltas: int) -> list[str]:
    size = -(-len(text) // deltas)
    return [text[i:i + size] for i in range(0, len(text), size)]


def per_delta(feed: Callable[[str], Any], pieces: list[str]) -> list[float]:
    times = []
    clock = time.perf_counter
    for piece in pieces:
        start = clock()
        feed(piece)
        times.append(clock() - start)
    return times


def through_operator(pieces: list[str], schema: Any) -> list[float]:
    """Time each delta through partial_json (the step between two emissions)."""
    stamps: list[float] = []
    clock = time.perf_counter

    def source(observer: Any, _scheduler: Any = None) -> Any:
        for piece in pieces:
            stamps.append(clock())
            observer.on_next(Message(content=piece))
        stamps.append(clock())
        observer.on_completed()

    reactivex.create(source).pipe(rxops.partial_json(schema), ops.count()).run()
    return [b - a for a, b in itertools.pairwise(stamps)]


def report(name: str, times: list[float], baseline: float) -> dict[str, Any]:
    first = sum(times[:1000]) / 1000
    last = sum(times[-1000:]) / 1000
    total = sum(times)
    row = {"name": name, "first_1000_us": first * 1e6, "last_1000_us": last * 1e6,
           "last_over_first": last / first, "total_ms": total * 1e3,
           "over_json_loads": total / baseline}
    print(f"{name:34} first {row['first_1000_us']:7.1f} us  last {row['last_1000_us']:7.1f} us"
          f"  last/first {row['last_over_first']:5.2f}  total {row['total_ms']:7.1f} ms"
          f"  = {row['over_json_loads']:6.1f}x json.loads")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=int, default=5000)
    parser.add_argument("--size", type=int, default=200_000)
    args = parser.parse_args()
    text = sample(args.size)
    pieces = split(text, args.deltas)
    start = time.perf_counter()
    for _ in range(20):
        json.loads(text)
    baseline = (time.perf_counter() - start) / 20
    print(f"{len(text.encode()):,} bytes in {len(pieces):,} deltas; one json.loads: "
          f"{baseline * 1e3:.2f} ms")
    stream = JSONStream()
    report("JSONStream.feed", per_delta(stream.feed, pieces), baseline)
    report("partial_json()", through_operator(pieces, None), baseline)
    report("partial_json(schema)", through_operator(pieces, SCHEMA), baseline)
    try:
        import jiter
    except ImportError:
        print("jiter not installed: its partial mode is not compared")
        return
    seen: list[str] = []

    def reparse(piece: str) -> Any:
        seen.append(piece)
        return jiter.from_json("".join(seen).encode(), partial_mode="trailing-strings")

    report("jiter partial (re-parse each)", per_delta(reparse, pieces), baseline)


if __name__ == "__main__":
    main()
