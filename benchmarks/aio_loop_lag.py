"""How late an asyncio loop runs while rxchat streams into it (rxchat.aio, and await).

Against a loopback FakeServer, `--streams` replies of `--deltas` deltas each are read
at once, with `async for` over `aio.stream(...)` and with
`await create_stream_completion(...).pipe(final_message())`, while a probe sleeps 1 ms
over and over and records how late each sleep woke (the loop's lag). Also measured:
how long subscribing holds the loop (entering `async with aio.stream(...)`), while the
streams run and with one stream at a time.

    python benchmarks/aio_loop_lag.py [--streams 10] [--deltas 500] [--json out.json]

A figure, not a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from rxchat import ChatClient, aio, create_stream_completion
from rxchat import operators as rxops
from rxchat.testing import FakeServer, Reply

PARAMS: Any = {"messages": [{"role": "user", "content": "hi"}]}


async def _probe(lags: list[float], step: float = 0.001) -> None:
    while True:
        started = time.perf_counter()
        await asyncio.sleep(step)
        lags.append(time.perf_counter() - started - step)


async def _measure(streams: int, one: Callable[[], Awaitable[int]]) -> dict[str, Any]:
    lags: list[float] = []
    probe = asyncio.create_task(_probe(lags))
    started = time.perf_counter()
    counts = await asyncio.gather(*(one() for _ in range(streams)))
    took = time.perf_counter() - started
    probe.cancel()
    await asyncio.gather(probe, return_exceptions=True)
    ms = sorted(lag * 1e3 for lag in lags) or [0.0]
    return {
        "seconds": round(took, 3),
        "deltas": sum(counts),
        "lag_ms_median": round(statistics.median(ms), 3),
        "lag_ms_p99": round(ms[int(len(ms) * 0.99)], 3),
        "lag_ms_max": round(ms[-1], 3),
    }


def run(streams: int, deltas: int, debug: bool = False) -> dict[str, Any]:
    """Measure both ways of reading; returns the figures."""
    reply = Reply.text("w " * deltas, delay=0.0005)
    results: dict[str, Any] = {"streams": streams, "deltas_per_stream": deltas + 2}
    with FakeServer() as server, ChatClient(server.base_url, "sk-bench", max_retries=0) as client:
        subscribe_ms: list[float] = []

        async def iterate() -> int:
            deltas_in = aio.stream(PARAMS, client=client, maxsize=64)
            started = time.perf_counter()
            async with deltas_in:
                subscribe_ms.append((time.perf_counter() - started) * 1e3)
                return sum([1 async for _m in deltas_in])

        async def awaited() -> int:
            stream = create_stream_completion(PARAMS, client=client)
            message = await stream.pipe(rxops.final_message())
            return len((message.content or "").split())

        for name, one in (("aio.stream", iterate), ("await final_message", awaited)):
            server.enqueue(*[reply] * streams)
            results[name] = asyncio.run(_measure(streams, one), debug=debug)
        results["subscribe_ms_median"] = round(statistics.median(subscribe_ms), 3)
        results["subscribe_ms_max"] = round(max(subscribe_ms), 3)

        async def one_at_a_time() -> list[float]:
            subscribe_ms.clear()
            for _ in range(streams):
                await iterate()
            return list(subscribe_ms)

        server.enqueue(*[reply] * streams)
        alone = asyncio.run(one_at_a_time(), debug=debug)
        results["subscribe_alone_ms_median"] = round(statistics.median(alone), 3)
        results["subscribe_alone_ms_max"] = round(max(alone), 3)
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line: print the figures (and write them as JSON with `--json`)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--deltas", type=int, default=500)
    parser.add_argument("--debug", action="store_true", help="asyncio debug mode")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    results = run(args.streams, args.deltas, args.debug)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            out.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
