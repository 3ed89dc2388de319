"""Soak: many subscribe/dispose cycles and many concurrent streams leak nothing.

1,000 subscriptions are disposed at random moments (before the headers, mid-stream,
after completion) from 8 threads at once; then thread count and open file descriptors
must return to where they started (after ``client.close()`` and a short settle). 200
streams running at once must all complete with the right text. Sized to run in a few
seconds on 2 cores, in the default suite.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

from rxchat import ChatClient, ChatCompletionParams, create_stream_completion
from rxchat.testing import FakeServer, RecordedRequest, Reply
from tests.conftest import Collected, open_fds, subscribe, threads_started_since, wait_until

CYCLES = 1000
WORKERS = 8
CONCURRENT = 200
TEXT = "one two three four five six seven eight nine ten eleven twelve"


def varied_reply(request: RecordedRequest) -> Reply:
    """Slow headers, a slow body, or a fast one, chosen by the request's content."""
    kind = request.messages[-1]["content"] if request.messages else "fast"
    if kind == "slow-headers":
        return Reply.text(TEXT).after(0.02)
    if kind == "slow-body":
        return Reply.text(TEXT, delay=0.002)
    return Reply.text(TEXT)


def params(kind: str) -> ChatCompletionParams:
    return {"messages": [{"role": "user", "content": kind}]}


def moment(result: Collected) -> str:
    if result.done.is_set():
        return "after completion"
    return "mid-stream" if result.events else "before the first delta"


def test_random_dispose_cycles_leave_no_thread_or_socket() -> None:
    with FakeServer(varied_reply) as server:
        client = ChatClient(server.base_url, "k", max_retries=0, timeout=(2.0, 5.0))
        threads, fds = set(threading.enumerate()), open_fds()
        moments: Counter[str] = Counter()
        problems: list[str] = []
        lock = threading.Lock()

        def worker(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(CYCLES // WORKERS):
                kind = rng.choice(["slow-headers", "slow-body", "fast"])
                target = rng.choice(["before the first delta", "mid-stream", "after"])
                if target == "mid-stream":
                    kind = "slow-body"
                result, disposable = subscribe(create_stream_completion(params(kind),
                                                                        client=client))
                # Aim at each moment by waiting for it (random sleeps alone drift with
                # the machine's load), with a random extra delay inside it.
                if target == "mid-stream":
                    wait_until(lambda: bool(result.events))  # noqa: B023 - called within this iteration
                elif target == "after":
                    result.done.wait(5.0)
                time.sleep(rng.uniform(0, 0.002))
                seen = moment(result)
                disposable.dispose()
                count = len(result.events)
                time.sleep(0.001)
                with lock:
                    moments[seen] += 1
                    if result.overlaps or result.terminals > 1:
                        problems.append(f"grammar broken: {result.events}")
                    if seen != "after completion" and len(result.events) != count:
                        problems.append("emitted after dispose")
                    if result.error is not None:
                        problems.append(repr(result.error))

        started = time.monotonic()
        workers = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(60)
        elapsed = time.monotonic() - started
        assert sum(moments.values()) == CYCLES
        assert problems == []
        client.close()
        assert wait_until(lambda: not threads_started_since(threads), 10.0), (
            f"threads left behind: {threads_started_since(threads)}"
        )
        assert wait_until(lambda: open_fds() <= fds, 10.0), f"{open_fds() - fds} descriptors leaked"
        print(f"\n{CYCLES} cycles in {elapsed:.1f} s, disposed {dict(moments)}; "
              f"{len(server.requests)} requests reached the server; threads {len(threads)} -> "
              f"{threading.active_count()}, fds {fds} -> {open_fds()}")
    # Every moment was exercised, not just one of them.
    assert min(moments.values()) >= CYCLES // 20, moments


def test_200_concurrent_streams_all_complete() -> None:
    with FakeServer(varied_reply) as server:
        client = ChatClient(server.base_url, "k", max_retries=0, timeout=(5.0, 20.0))
        threads, fds = set(threading.enumerate()), open_fds()
        started = time.monotonic()
        results = [
            subscribe(create_stream_completion(params("slow-body"), client=client))[0]
            for _ in range(CONCURRENT)
        ]
        for result in results:
            assert result.done.wait(30), "a stream did not finish"
        elapsed = time.monotonic() - started
        assert all(r.completed and r.error is None for r in results)
        assert all(r.content == TEXT for r in results)
        assert all(r.overlaps == 0 and r.terminals == 1 for r in results)
        assert len(server.requests) == CONCURRENT
        client.close()
        assert wait_until(lambda: not threads_started_since(threads), 10.0)
        assert wait_until(lambda: open_fds() <= fds, 10.0)
        print(f"\n{CONCURRENT} concurrent streams completed in {elapsed:.2f} s")
