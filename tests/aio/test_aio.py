"""rxchat.aio and `await`, under asyncio debug mode, against a real loopback server.

Every coroutine runs with `asyncio.run(..., debug=True)`: a loop method called from
another thread raises `RuntimeError: Non-thread-safe operation` there, and the
awaiting coroutine then never wakes, so `run` fails on a timeout as well as on any
error the loop's exception handler saw.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar, cast

import pytest
import reactivex
import reactivex.operators as ops
from reactivex.scheduler.eventloop import AsyncIOScheduler

from rxchat import ChatClient, ChatSession, Message, aio, create_stream_completion
from rxchat import operators as rxops
from rxchat.errors import APITimeoutError, ConfigurationError, ServerError
from rxchat.testing import STALL, FakeServer, Reply, chunk
from tests.conftest import PARAMS, open_fds, wait_until

_T = TypeVar("_T")

STALLED = Reply.events(
    [chunk(role="assistant", content="a"), chunk(content="b"), chunk(content="c")], done=False
).then(STALL)
"""Three deltas, then silence until the client hangs up."""


def run(main: Callable[[], Awaitable[_T]], timeout: float = 10.0, *, debug: bool = True) -> _T:
    """Run `main()` in a debug-mode loop; fail on a hang or an exception the loop saw.

    The loop runs on a thread of its own, so a loop that can never wake again (a
    future resolved from a foreign thread) fails the test instead of hanging it.
    """
    seen: list[dict[str, Any]] = []
    outcome: list[Any] = []

    async def guarded() -> _T:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: seen.append(ctx))
        return await asyncio.wait_for(main(), timeout)

    def target() -> None:
        try:
            outcome.append(("ok", asyncio.run(guarded(), debug=debug)))
        except BaseException as exc:
            outcome.append(("error", exc))

    thread = threading.Thread(target=target, name="test-loop", daemon=True)
    thread.start()
    thread.join(timeout + 5)
    assert outcome, f"the loop hung for more than {timeout + 5:g} s"
    assert seen == [], f"the loop saw errors: {seen}"
    kind, value = outcome[0]
    if kind == "error":
        raise value
    return cast(_T, value)


@pytest.fixture
def session(client: ChatClient) -> Iterator[ChatSession]:
    chat = ChatSession(client)
    yield chat
    chat.dispose()


@pytest.fixture(autouse=True)
def _no_thread_safety_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    yield
    assert "Non-thread-safe" not in caplog.text


# -- await ---------------------------------------------------------------------------


def test_await_a_final_message_returns_as_soon_as_the_stream_ends(
    server: FakeServer, client: ChatClient
) -> None:
    # The end of the body waits for `release`, set once the await has returned: the
    # loop has nothing else to wake it, so an await that the stream's end does not
    # wake (a value handed over without waking the loop) returns only when the guard
    # timer wakes the loop, after the server stopped waiting (10 s) and so never sent
    # the end of the body.
    release = threading.Event()
    text = Reply.text("hello there")
    server.enqueue(dataclasses.replace(text, parts=(*text.parts, release)))

    async def main() -> Message:
        reply = await create_stream_completion(PARAMS, client=client).pipe(
            rxops.final_message()
        )
        release.set()
        return reply

    reply = run(main, timeout=15)
    assert reply.content == "hello there"
    assert server.wait_for_event("write", len(text.parts) + 1), "the loop was not woken"


def test_await_a_stream_gives_its_last_delta_on_the_loop_thread(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(Reply.text("one two", finish_reason="length"))
    threads: set[int] = set()

    async def main() -> tuple[Message, int]:
        loop_thread = threading.get_ident()
        last = await create_stream_completion(PARAMS, client=client).pipe(
            ops.do_action(lambda _m: threads.add(threading.get_ident()))
        )
        return last, loop_thread

    last, loop_thread = run(main)
    assert last.finish_reason == "length"
    assert threads == {loop_thread}


@pytest.mark.parametrize("operator", ["accumulate", "content", "reasoning", "final_message"])
def test_await_every_operator_over_a_foreign_thread_source(operator: str) -> None:
    # A plain Observable emitting on its own thread, once the await has subscribed and
    # given the loop back: the operator alone hands over.
    awaiting = threading.Event()

    def source(observer: Any, _scheduler: Any = None) -> Any:
        def emit() -> None:
            assert awaiting.wait(5)
            observer.on_next(Message(content="x", reasoning_content="r"))
            observer.on_completed()

        threading.Thread(target=emit).start()
        return reactivex.disposable.Disposable()

    async def main() -> object:
        asyncio.get_running_loop().call_soon(awaiting.set)  # runs once the await yields
        return await reactivex.create(source).pipe(getattr(rxops, operator)())

    assert run(main, timeout=5) in (Message(content="x", reasoning_content="r"), "x", "r")


def test_await_with_idle_timeout_keeps_the_timer_on_the_loop(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(Reply.text("a b c d e", delay=0.02))
    server.enqueue(STALLED)

    async def main() -> tuple[Message, BaseException | None]:
        ok = await create_stream_completion(PARAMS, client=client).pipe(
            rxops.idle_timeout(2.0), rxops.final_message()
        )
        try:
            await create_stream_completion(PARAMS, client=client).pipe(
                rxops.idle_timeout(0.3), rxops.final_message()
            )
        except APITimeoutError as exc:
            return ok, exc
        return ok, None

    ok, error = run(main)
    assert ok.content == "a b c d e"
    assert isinstance(error, APITimeoutError)
    assert server.wait_for_disconnects(1)


def test_idle_timeout_on_an_explicit_asyncio_scheduler_inside_iterate(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(STALLED)

    async def main() -> tuple[list[str], BaseException | None]:
        loop = asyncio.get_running_loop()
        got: list[str] = []
        stream = create_stream_completion(PARAMS, client=client).pipe(
            rxops.idle_timeout(0.3, scheduler=AsyncIOScheduler(loop)), rxops.content()
        )
        try:
            async for text in aio.iterate(stream):
                got.append(text)
        except APITimeoutError as exc:
            return got, exc
        return got, None

    got, error = run(main)
    assert got == ["a", "b", "c"]
    assert isinstance(error, APITimeoutError)
    assert server.wait_for_disconnects(1)


def test_idle_timeout_inside_iterate_runs_its_timer_off_the_loop(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(STALLED)

    async def main() -> list[str]:
        got: list[str] = []
        stream = create_stream_completion(PARAMS, client=client).pipe(
            rxops.idle_timeout(1.0), rxops.content()
        )
        with pytest.raises(APITimeoutError):
            async for text in aio.iterate(stream):
                got.append(text)
        return got

    assert run(main) == ["a", "b", "c"]
    assert server.wait_for_disconnects(1)


def test_cancelling_an_await_closes_the_socket(server: FakeServer, client: ChatClient) -> None:
    server.enqueue(STALLED)

    async def main() -> None:
        task = asyncio.ensure_future(
            create_stream_completion(PARAMS, client=client).pipe(rxops.final_message())
        )
        assert await asyncio.to_thread(server.wait_for_event, "write", 3)  # then silence
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main)
    assert server.wait_for_disconnects(1)


def test_complete_returns_the_final_message(server: FakeServer, client: ChatClient) -> None:
    server.enqueue(Reply.text("all of it", usage={"prompt_tokens": 1, "completion_tokens": 3,
                                                  "total_tokens": 4}))

    async def main() -> Message:
        return await aio.complete(PARAMS, client=client)

    reply = run(main)
    assert (reply.content, reply.finish_reason) == ("all of it", "stop")
    assert reply.usage is not None and reply.usage.total_tokens == 4


# -- iterate ---------------------------------------------------------------------------


def test_stream_iterates_every_delta_in_order(server: FakeServer, client: ChatClient) -> None:
    server.enqueue(Reply.text("one two three"))

    async def main() -> list[str | None]:
        return [m.content async for m in aio.stream(PARAMS, client=client)]

    assert run(main) == ["", "one ", "two ", "three", None]


def test_an_error_is_raised_by_async_for(server: FakeServer, client: ChatClient) -> None:
    server.enqueue(Reply.error(500, {"error": {"message": "down"}}))

    async def main() -> None:
        async for _m in aio.stream(PARAMS, client=client):
            pass

    with pytest.raises(ServerError):
        run(main)


def test_breaking_out_of_an_inline_async_for_closes_the_socket(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(STALLED)
    fds, threads = open_fds(), threading.active_count()

    async def main() -> list[str]:
        got = []
        async for text in aio.iterate(create_stream_completion(PARAMS, client=client)
                                      .pipe(rxops.content())):
            got.append(text)
            if text == "b":
                break
        assert server.wait_for_disconnects(1, timeout=5), "not closed at the break"
        return got

    assert run(main) == ["a", "b"]
    assert wait_until(lambda: threading.active_count() <= threads)
    assert wait_until(lambda: open_fds() <= fds)


def test_leaving_async_with_closes_the_socket(server: FakeServer, client: ChatClient) -> None:
    server.enqueue(STALLED)

    async def main() -> str | None:
        async with aio.stream(PARAMS, client=client) as deltas:
            first = await deltas.__anext__()
        assert server.wait_for_disconnects(1, timeout=5)
        with pytest.raises(StopAsyncIteration):
            await deltas.__anext__()
        return first.content

    assert run(main) == "a"


def test_cancelling_the_iterating_task_closes_the_socket(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(STALLED)
    fds, threads = open_fds(), threading.active_count()

    async def main() -> list[str | None]:
        got: list[str | None] = []

        async def reader() -> None:
            async for m in aio.stream(PARAMS, client=client):
                got.append(m.content)

        task = asyncio.create_task(reader())
        while len(got) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert server.wait_for_disconnects(1, timeout=5)
        return got

    assert run(main) == ["a", "b", "c"]
    assert wait_until(lambda: threading.active_count() <= threads)
    assert wait_until(lambda: open_fds() <= fds)


def test_an_abandoned_iterator_closes_the_socket_when_collected(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(STALLED)

    async def main() -> None:
        deltas = aio.stream(PARAMS, client=client)
        async for _m in deltas:
            break
        assert not server.wait_for_disconnects(1, timeout=0.2), "still held: still open"
        del deltas
        gc.collect()
        assert server.wait_for_disconnects(1, timeout=5)

    run(main)


HELD: list[aio.ObservableIterator[Message]] = []


def test_an_iterator_still_held_is_closed_when_the_loop_shuts_down(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(STALLED)

    async def main() -> None:
        deltas = aio.stream(PARAMS, client=client)
        HELD.append(deltas)  # a reference that outlives asyncio.run
        async for _m in deltas:
            break

    try:
        run(main)
        assert server.wait_for_disconnects(1, timeout=1.0)
    finally:
        HELD.clear()


def test_a_closed_iterator_never_subscribes(server: FakeServer, client: ChatClient) -> None:
    async def main() -> None:
        deltas = aio.stream(PARAMS, client=client)
        await deltas.aclose()
        await deltas.aclose()
        assert [m async for m in deltas] == []

    run(main)
    assert not server.wait_for_requests(1, timeout=0.2)


def test_maxsize_must_be_positive() -> None:
    with pytest.raises(ConfigurationError, match="maxsize"):
        aio.iterate(reactivex.of(1), maxsize=0)


def test_a_synchronous_source_on_the_loop_thread_is_not_dropped() -> None:
    async def main() -> list[int]:
        return [n async for n in aio.iterate(reactivex.from_iterable(range(50)), maxsize=4)]

    assert run(main) == list(range(50))


# -- ChatSession ---------------------------------------------------------------------


def test_await_a_session_turn(server: FakeServer, session: ChatSession) -> None:
    server.enqueue(Reply.text("first"), Reply.text("second"))

    async def main() -> tuple[Message, Message]:
        one = await session.ask("q1").pipe(rxops.final_message())
        two = await session.ask("q2").pipe(rxops.final_message())
        return one, two

    one, two = run(main)
    assert (one.content, two.content) == ("first", "second")
    assert [m.content for m in session.messages] == ["q1", "first", "q2", "second"]


def test_await_a_bare_session_turn_and_send(server: FakeServer, session: ChatSession) -> None:
    server.enqueue(Reply.text("asked"), Reply.text("sent"))

    async def main() -> tuple[Message, Message]:
        last_asked = await session.ask("q1")   # the turn's last delta, on this loop
        last_sent = await session.send("q2")
        return last_asked, last_sent

    asked, sent = run(main)
    assert asked.finish_reason == "stop" and sent.finish_reason == "stop"
    assert [m.content for m in session.messages] == ["q1", "asked", "q2", "sent"]


def test_iterate_a_session_turn(server: FakeServer, session: ChatSession) -> None:
    server.enqueue(Reply.text("in pieces"))

    async def main() -> str:
        return "".join([m.content or "" async for m in aio.iterate(session.ask("q"))])

    assert run(main) == "in pieces"
    assert session.messages[-1].content == "in pieces"


def test_cancelling_the_task_cancels_the_turn_and_keeps_its_partial(
    server: FakeServer, session: ChatSession
) -> None:
    server.enqueue(STALLED)
    threads = threading.active_count()

    async def main() -> None:
        got: list[Message] = []

        async def turn() -> None:
            async for m in aio.iterate(session.ask("q")):
                got.append(m)

        task = asyncio.create_task(turn())
        while len(got) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main)
    assert server.wait_for_disconnects(1)
    assert wait_until(lambda: len(session.messages) == 2)
    assert session.messages[-1] == Message(content="abc", finish_reason="cancelled")
    assert wait_until(lambda: threading.active_count() <= threads)  # the session's too


def test_cancelling_an_awaited_turn_cancels_it(server: FakeServer, session: ChatSession) -> None:
    server.enqueue(STALLED)

    async def main() -> None:
        task = asyncio.ensure_future(session.ask("q").pipe(rxops.final_message()))
        while session.state.partial is None or session.state.partial.content != "abc":
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main)
    assert server.wait_for_disconnects(1)
    assert wait_until(lambda: len(session.messages) == 2)
    assert session.messages[-1] == Message(content="abc", finish_reason="cancelled")


def test_a_slow_consumer_never_stalls_the_session(
    server: FakeServer, session: ChatSession
) -> None:
    reply = "one two three four five six"
    server.enqueue(Reply.text(reply))

    async def main() -> list[str]:
        got: list[str] = []
        async for text in aio.iterate(session.ask("q").pipe(rxops.content()), maxsize=1):
            got.append(text)
            if len(got) == 1:
                # The channel is full and the turn's reader waits for room (back-pressure),
                # but the session's thread is free: a blocking session method called
                # from here returns, with its change made.
                session.set_system("Be brief.")
                assert session.messages[0].content == "Be brief."
        return got

    assert "".join(run(main)) == reply


def test_a_session_on_the_asyncio_loop_is_thread_safe(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(Reply.text("on the loop"))

    async def main() -> Message:
        chat = ChatSession(client, scheduler=AsyncIOScheduler(asyncio.get_running_loop()))
        try:
            return await chat.ask("q").pipe(rxops.final_message())
        finally:
            chat.dispose()

    assert run(main).content == "on the loop"


def test_a_failed_turn_is_raised(server: FakeServer, session: ChatSession) -> None:
    server.enqueue(Reply.error(500, {"error": {"message": "down"}}))

    async def main() -> Message:
        return await session.ask("q").pipe(rxops.final_message())

    with pytest.raises(ServerError):
        run(main)
    assert session.messages == ()


def test_no_loop_warning_is_logged(
    server: FakeServer, client: ChatClient, caplog: pytest.LogCaptureFixture
) -> None:
    server.enqueue(Reply.text("quiet", delay=0.01))
    caplog.set_level(logging.WARNING, logger="asyncio")

    async def main() -> Message:
        return await aio.complete(PARAMS, client=client)

    assert run(main).content == "quiet"
    assert [r for r in caplog.records if r.name == "asyncio"] == []
