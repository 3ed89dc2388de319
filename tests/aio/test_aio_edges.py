"""The edges of rxchat.aio: a temporary iterator, awaiting the session's own states,
an iterator entered and never exited, an asyncio subscriber that stops a turn.

Every coroutine runs under `asyncio.run(debug=True)` on a thread of its own (see
`tests.aio.test_aio.run`): a hang fails the test, and so does any error the loop saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex.operators as ops

from rxchat import ChatClient, ChatSession, ChatState, Message, aio, create_stream_completion
from rxchat import operators as rxops
from rxchat.testing import STALL, FakeServer, Reply, chunk
from tests.aio.test_aio import run
from tests.conftest import PARAMS, wait_until

HANG = 10.0


@pytest.fixture(autouse=True)
def _quiet_loop(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No warning from asyncio's debug mode, no thread-safety error anywhere."""
    with caplog.at_level(logging.WARNING):
        yield
    assert "Non-thread-safe" not in caplog.text
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []


# -- 1: a temporary iterator --------------------------------------------------------


def test_anext_of_a_temporary_stream_iterator_returns_the_first_delta(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(Reply.text("Hello world"), Reply.text("Bye now"))

    async def main() -> tuple[Message, Message]:
        first = await anext(aio.stream(PARAMS, client=client))
        other = await aio.iterate(create_stream_completion(PARAMS, client=client)).__anext__()
        return first, other

    first, other = run(main)
    assert first.role == "assistant"
    assert other.role == "assistant"
    assert len(server.requests) == 2


# -- 2: await on the session's own Observable -----------------------------------------


def test_await_the_session_states_and_history_under_debug_mode(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(Reply.text("Hi there"))
    session = ChatSession(client)

    async def main() -> tuple[ChatState, tuple[Message, ...], ChatState]:
        initial: ChatState = await session.pipe(ops.first())
        session.on_next("hello")
        def answered(state: ChatState) -> bool:
            return len(state.messages) == 2

        done: ChatState = await session.pipe(ops.first(answered))
        history = await session.history.pipe(ops.first())
        return initial, history, done

    try:
        initial, history, done = run(main)
    finally:
        session.dispose()
    assert initial.messages == ()
    assert [m.content for m in done.messages] == ["hello", "Hi there"]
    assert history == done.messages


# -- 13: entered with __aenter__, never exited ---------------------------------------


def test_an_entered_never_exited_iterator_is_disposed_at_loop_shutdown(
    server: FakeServer
) -> None:
    server.enqueue(Reply.events([chunk(role="assistant", content="a")], done=False).then(STALL))
    kept: list[Any] = []  # holds the iterator and its exit stack past the loop's end
    # a read timeout far beyond the wait below: only a dispose closes the socket in time
    client = ChatClient(server.base_url, "sk-test-key", max_retries=0, timeout=(2.0, 120.0))

    async def main() -> None:
        stack = contextlib.AsyncExitStack()
        kept.append(stack)
        kept.append(await stack.enter_async_context(aio.stream(PARAMS, client=client)))
        assert await asyncio.to_thread(server.wait_for_requests, 1, HANG)

    run(main)
    assert server.wait_for_disconnects(1, HANG), "the stream's socket stayed open"
    assert kept
    client.close()


# -- 5 (asyncio): what an asyncio subscriber stops with is what it saw ---------------


def test_take_on_an_awaiting_loop_keeps_only_the_deltas_it_was_given(
    server: FakeServer, client: ChatClient
) -> None:
    pieces = [f"p{i} " for i in range(12)]
    server.enqueue(
        Reply.events([chunk(role="assistant", content=""),
                      *[chunk(content=p) for p in pieces]], done=False).then(STALL),
        Reply.text("next"),
    )
    session = ChatSession(client)

    async def main() -> list[Message]:
        task = asyncio.ensure_future(_awaited(session.ask("go").pipe(ops.take(3), ops.to_list())))
        await asyncio.sleep(0)  # subscribed: now hold the loop while the actor folds
        assert wait_until(lambda: (session.state.partial or Message()).content
                          == "".join(pieces), HANG)
        seen: list[Message] = await task
        return seen

    try:
        seen = run(main)
        assert [m.content for m in seen] == ["", "p0 ", "p1 "]
        assert wait_until(lambda: session.state.status == "idle", HANG)
        _user, reply = session.messages
        assert (reply.content, reply.finish_reason) == ("p0 p1 ", "cancelled")
        ops_final: Any = rxops.final_message()
        session.ask("again").pipe(ops_final, ops.timeout(HANG)).run()
        sent = server.requests[-1].messages
        assert [(m["role"], m["content"]) for m in sent] == [
            ("user", "go"), ("assistant", "p0 p1 "), ("user", "again")]
    finally:
        session.dispose()


async def _awaited(observable: Any) -> Any:
    return await observable


# -- attack round: full iterators must not take the delivery pool -------------------


def test_iterators_nobody_reads_do_not_stall_other_streams() -> None:
    # An aio iterator whose consumer is behind made the delivery thread wait for room:
    # as many unread iterators as the pool has threads stopped every stream of the
    # process (the next stream's first delta never came).
    from rxchat._concurrency.pool import DELIVERY_THREADS

    unread = DELIVERY_THREADS + 2
    words = [f"w{i} " for i in range(300)]
    with FakeServer() as server:
        client = ChatClient(server.base_url, "sk-test")

        async def main() -> tuple[str, list[str]]:
            iterators = []
            for _ in range(unread):
                server.enqueue(Reply.events([chunk(content=w) for w in words]))
                iterator = aio.iterate(create_stream_completion(PARAMS, client=client),
                                       maxsize=2)
                await anext(iterator)  # open, then left unread
                iterators.append(iterator)
            server.enqueue(Reply.text("free stream"))
            other = await aio.complete(PARAMS, client=client)
            # and the held streams lose nothing once read
            texts = []
            for iterator in iterators:
                texts.append("".join([m.content or "" async for m in iterator]))
            return other.content or "", texts

        content, texts = run(main, timeout=HANG)
    assert content == "free stream"
    assert texts == ["".join(words[1:])] * unread
