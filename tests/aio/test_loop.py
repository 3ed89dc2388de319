"""rxchat._concurrency.loop and .channel: handing values to an asyncio loop, both ways."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.scheduler import NewThreadScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler, AsyncIOThreadSafeScheduler
from reactivex.subject import Subject

from rxchat import aio
from rxchat._concurrency.channel import Channel
from rxchat._concurrency.loop import loop_of, on_subscriber_loop, thread_safe
from tests.aio.test_aio import run
from tests.conftest import wait_until


def from_thread(values: list[int], *, pause: float = 0.0) -> Observable[int]:
    """Emit `values` then complete, on a thread of its own; record whether disposed."""

    def subscribe(observer: abc.ObserverBase[int], _s: Any = None) -> abc.DisposableBase:
        stopped = threading.Event()

        def emit() -> None:
            for value in values:
                if stopped.is_set():
                    return
                observer.on_next(value)
                time.sleep(pause)
            observer.on_completed()

        threading.Thread(target=emit).start()
        return Disposable(stopped.set)

    return reactivex.create(subscribe)


def test_loop_of_and_thread_safe() -> None:
    loop = asyncio.new_event_loop()
    try:
        plain = AsyncIOScheduler(loop)
        assert loop_of(plain) is loop
        assert loop_of(NewThreadScheduler()) is None and loop_of(None) is None
        safe = thread_safe(plain)
        assert isinstance(safe, AsyncIOThreadSafeScheduler) and loop_of(safe) is loop
        assert thread_safe(safe) is safe
        other = NewThreadScheduler()
        assert thread_safe(other) is other
    finally:
        loop.close()


def test_every_value_arrives_in_order_on_the_loop_thread() -> None:
    threads: set[int] = set()
    values: list[int] = []

    async def main() -> int:
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def on_next(value: int) -> None:
            threads.add(threading.get_ident())
            values.append(value)

        from_thread(list(range(2000))).pipe(on_subscriber_loop()).subscribe(
            on_next, done.set_exception, lambda: done.set_result(None),
            scheduler=AsyncIOScheduler(loop),
        )
        await done
        return threading.get_ident()

    loop_thread = run(main)
    assert values == list(range(2000))
    assert threads == {loop_thread}


def test_without_an_asyncio_scheduler_nothing_moves() -> None:
    threads: set[int] = set()
    done = threading.Event()
    from_thread([1, 2]).pipe(on_subscriber_loop()).subscribe(
        lambda _v: threads.add(threading.get_ident()), on_completed=done.set
    )
    assert done.wait(5)
    assert threading.get_ident() not in threads


def test_nothing_is_delivered_after_dispose() -> None:
    got: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        subject: Subject[int] = Subject()
        subscription = subject.pipe(on_subscriber_loop()).subscribe(
            got.append, scheduler=AsyncIOScheduler(loop)
        )
        def post() -> None:
            for n in range(5):
                subject.on_next(n)

        poster = threading.Thread(target=post)
        poster.start()
        poster.join()  # queued for the loop, not delivered yet
        subscription.dispose()
        # The hand-over was queued before this task yields: it runs before the task
        # resumes (one wake-up drains the backlog).
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    run(main)
    assert got == []


def test_a_subscriber_that_raises_stops_the_source() -> None:
    disposed = threading.Event()
    failures: list[BaseException] = []

    def source(observer: abc.ObserverBase[int], _s: Any = None) -> abc.DisposableBase:
        threading.Thread(target=lambda: observer.on_next(1)).start()
        return Disposable(disposed.set)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = loop.get_exception_handler()
        loop.set_exception_handler(lambda _l, ctx: failures.append(ctx["exception"]))

        def on_next(_v: int) -> None:
            raise ValueError("subscriber bug")

        reactivex.create(source).pipe(on_subscriber_loop()).subscribe(
            on_next, scheduler=AsyncIOScheduler(loop)
        )
        while not failures:
            await asyncio.sleep(0.01)
        loop.set_exception_handler(handler)

    run(main)
    assert disposed.is_set()
    assert [type(f) for f in failures] == [ValueError]


def test_values_posted_after_the_loop_closed_are_dropped_quietly() -> None:
    subject: Subject[int] = Subject()
    loop = asyncio.new_event_loop()
    subject.pipe(on_subscriber_loop()).subscribe(lambda _v: None, scheduler=AsyncIOScheduler(loop))
    loop.close()
    poster = threading.Thread(target=lambda: subject.on_next(1))
    poster.start()
    poster.join()  # no exception in the thread (the test would fail on it)


def test_a_full_channel_holds_its_producer_until_taken_or_closed() -> None:
    async def main() -> None:
        channel: Channel[int] = Channel(asyncio.get_running_loop(), maxsize=2)
        put: list[int] = []

        def produce() -> None:
            for n in range(5):
                channel.on_next(n)
                put.append(n)

        producer = threading.Thread(target=produce)
        producer.start()
        assert await asyncio.to_thread(wait_until, lambda: len(put) == 2)
        await asyncio.sleep(0.1)
        assert len(put) == 2, "the producer went past a full channel"
        assert channel.take() == (0, 0)
        assert await asyncio.to_thread(wait_until, lambda: len(put) == 3)
        channel.close()  # the consumer leaves: the producer must not stay blocked
        await asyncio.to_thread(producer.join, 5)
        assert not producer.is_alive()
        assert channel.take() == (2, None)  # closed: the end

    run(main)


def test_breaking_while_the_producer_waits_frees_its_thread() -> None:
    threads = threading.active_count()

    async def main() -> list[int]:
        got = []
        async for n in aio.iterate(from_thread(list(range(100))), maxsize=2):
            got.append(n)
            await asyncio.sleep(0.05)  # the producer is blocked by now
            if n == 1:
                break
        return got

    assert run(main) == [0, 1]
    assert wait_until(lambda: threading.active_count() <= threads)


@pytest.mark.parametrize("maxsize", [1, 3, 1024])
def test_nothing_is_dropped_whatever_the_maxsize(maxsize: int) -> None:
    async def main() -> list[int]:
        return [n async for n in aio.iterate(from_thread(list(range(300))), maxsize=maxsize)]

    assert run(main) == list(range(300))
