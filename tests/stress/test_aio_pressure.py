"""Back-pressure and loop responsiveness of rxchat.aio, measured on a real loopback stream.

The figures (loop lag; memory held, traced with tracemalloc) are printed with `-s`;
how late the loop runs and how long subscribing takes are measured by
``benchmarks/aio_loop_lag.py``, not asserted here. The assertions are orderings and
counts: the reader stops while the channel is full, every stream subscribes before any
reply body is sent, and asyncio's debug mode logs no slow callback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import logging
import statistics
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
import reactivex.operators as ops

from rxchat import ChatClient, Message, aio, create_stream_completion
from rxchat.testing import FakeServer, Reply, chunk
from tests.aio.test_aio import run
from tests.conftest import PARAMS

PIECE = "x" * 16_000
PIECES = 2_000  # a 32 MB reply, sent as fast as loopback allows
SLOW_CALLBACK = 1.0
"""asyncio's debug mode logs a callback that holds the loop this long: a blocking read
on the loop would, a loaded machine's scheduling hiccup would not."""


def slow_callbacks(records: list[logging.LogRecord]) -> list[str]:
    """The "Executing <callback> took N seconds" warnings of asyncio's debug mode."""
    return [r.getMessage() for r in records
            if r.name == "asyncio" and r.getMessage().startswith("Executing")]


async def loop_lag(seconds: float, step: float = 0.005) -> list[float]:
    """How late each of many short sleeps woke, over `seconds`: the loop's lag."""
    lags = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        await asyncio.sleep(step)
        lags.append(time.monotonic() - started - step)
    return lags


def test_a_slow_consumer_stops_the_reader_and_loses_nothing(
    server: FakeServer, client: ChatClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="asyncio")
    server.enqueue(Reply.events(
        [chunk(role="assistant", content="")] + [chunk(content=PIECE)] * PIECES
        + [chunk(finish_reason="stop")]
    ))
    produced = 0
    maxsize = 8

    def count(_m: Message) -> None:
        nonlocal produced
        produced += 1

    async def main() -> tuple[list[int], int, list[float], int]:
        asyncio.get_running_loop().slow_callback_duration = SLOW_CALLBACK
        source = create_stream_completion(PARAMS, client=client).pipe(ops.do_action(count))
        async with aio.iterate(source, maxsize=maxsize) as deltas:
            received = [len((await deltas.__anext__()).content or "")]
            tracemalloc.start()  # what Python allocates from here on, on every thread
            # The consumer is busy elsewhere; the loop keeps running other work.
            lags = await loop_lag(0.3)
            seen = [produced]
            lags += await loop_lag(0.3)
            seen.append(produced)
            grown = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            received += [len(m.content or "") async for m in deltas]
        return seen, grown, lags, len(received)

    seen, grown, lags, count_received = run(main, timeout=60)
    print(f"\nwhile paused: {seen[-1]} deltas read ahead (maxsize {maxsize}), "
          f"memory held +{grown / 1e6:.2f} MB of a {PIECES * len(PIECE) / 1e6:.0f} MB reply, "
          f"loop lag median {statistics.median(lags) * 1e3:.2f} ms, "
          f"max {max(lags) * 1e3:.2f} ms")
    assert seen[0] == seen[1], "the reader went on reading while the channel was full"
    assert seen[1] <= maxsize + 2, f"{seen[1]} deltas read ahead of a full channel"
    assert grown < 2e6, f"memory grew by {grown / 1e6:.1f} MB while the consumer paused"
    assert slow_callbacks(caplog.records) == [], "the event loop was blocked"
    assert count_received == PIECES + 2 == produced  # nothing dropped


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "plain"])
def test_the_loop_stays_free_while_ten_streams_run(
    server: FakeServer, client: ChatClient, debug: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="asyncio")
    streams = 10
    # Every body waits for `go`, set on the loop once all ten have subscribed: a
    # subscribe that read (or waited for) its reply on the loop would wait for a body
    # that cannot come, and its stream would end without its deltas (the server gives
    # up after 10 s).
    go = threading.Event()
    for _ in range(streams):
        text = Reply.text("word " * 200, delay=0.001)
        server.enqueue(dataclasses.replace(text, parts=(go, *text.parts)))
    lags: list[float] = []

    async def main() -> list[int]:
        asyncio.get_running_loop().slow_callback_duration = SLOW_CALLBACK
        subscribed = 0
        all_in = asyncio.Event()

        async def probe() -> None:
            while True:
                started = time.monotonic()
                await asyncio.sleep(0.002)
                lags.append(time.monotonic() - started - 0.002)

        async def one() -> int:
            nonlocal subscribed
            deltas = aio.stream(PARAMS, client=client, maxsize=4)
            async with deltas:  # subscribes, on the loop's thread
                subscribed += 1
                if subscribed == streams:
                    assert server.events_of(0).count("write") == 0
                    go.set()
                    all_in.set()
                await all_in.wait()
                return sum([1 async for _m in deltas])

        task = asyncio.create_task(probe())
        counts = await asyncio.gather(*(one() for _ in range(streams)))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return list(counts)

    assert run(main, timeout=60, debug=debug) == [202] * streams  # role, 200 words, finish
    ms = [lag * 1e3 for lag in sorted(lags)]
    mode = "debug" if debug else "plain"
    print(f"\n{mode} loop lag while {streams} streams run: median {statistics.median(ms):.2f} ms, "
          f"p99 {ms[int(len(ms) * 0.99)]:.2f} ms, max {ms[-1]:.2f} ms; "
          f"threads now {threading.active_count()}")
    assert slow_callbacks(caplog.records) == [], "the event loop was blocked"


def test_the_loop_lag_benchmark_runs() -> None:
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "aio_loop_lag.py"
    spec = importlib.util.spec_from_file_location("aio_loop_lag", script)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = bench.run(streams=2, deltas=20)
    assert results["aio.stream"]["deltas"] == 2 * 22
    assert results["await final_message"]["deltas"] == 2 * 20
    assert results["subscribe_ms_max"] >= 0
