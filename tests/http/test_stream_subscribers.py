"""How the stream treats its subscriber: where the read runs, and a subscriber's bugs."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading

import pytest
import reactivex.operators as ops
from reactivex.observer.autodetachobserver import AutoDetachObserver
from reactivex.scheduler import CurrentThreadScheduler
from reactivex.scheduler.eventloop import AsyncIOThreadSafeScheduler

from rxchat import ChatClient, ChatSession, Message, create_stream_completion
from rxchat import operators as rxops
from rxchat.testing import STALL, FakeServer, Reply, chunk
from tests.conftest import PARAMS


def test_a_subscribe_time_scheduler_does_not_run_the_blocking_read(
    server: FakeServer, client: ChatClient
) -> None:
    # The body waits for `go`, set only once subscribe has returned: a read run by
    # subscribe would wait for a delta that cannot come, and the stream would end
    # (the server gives up after 10 s) without one.
    go = threading.Event()
    reply = Reply.events([chunk(content="x")], done=False)
    server.enqueue(dataclasses.replace(reply, parts=(go, *reply.parts, STALL)))
    first = threading.Event()
    subscription = create_stream_completion(PARAMS, client=client).subscribe(
        lambda _delta: first.set(), scheduler=CurrentThreadScheduler.singleton()
    )
    go.set()
    assert first.wait(5), "subscribe ran the read"
    subscription.dispose()
    assert server.wait_for_disconnects(1)


def test_awaiting_a_reply_leaves_the_event_loop_free(server: FakeServer) -> None:
    server.enqueue(Reply.text("slow reply", pieces=8, delay=0.05))
    client = ChatClient(server.base_url)

    async def main() -> tuple[str | None, int]:
        loop = asyncio.get_running_loop()
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        reply: Message = await create_stream_completion(PARAMS, client=client).pipe(
            rxops.final_message(), ops.observe_on(AsyncIOThreadSafeScheduler(loop))
        )
        task.cancel()
        return reply.content, ticks

    content, ticks = asyncio.run(main())
    assert content == "slow reply"
    assert ticks >= 10, f"the loop ran only {ticks} times while the reply streamed"
    client.close()


def test_awaiting_a_final_message_needs_nothing_else_to_wake_the_loop(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(Reply.text("done"))

    async def main() -> Message:
        loop = asyncio.get_running_loop()
        reply = create_stream_completion(PARAMS, client=client).pipe(
            rxops.final_message(), ops.observe_on(AsyncIOThreadSafeScheduler(loop))
        )

        async def final() -> Message:
            return await reply

        return await asyncio.wait_for(final(), 5)

    assert asyncio.run(main()).content == "done"


def test_an_exception_in_on_next_ends_the_stream_with_that_exception(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(Reply.events([chunk(content="a"), chunk(content="b")], done=False)
                   .then(STALL))
    errors: list[Exception] = []
    done = threading.Event()
    bug = ValueError("bug in the subscriber")

    def on_next(_delta: Message) -> None:
        raise bug

    def on_error(error: Exception) -> None:
        errors.append(error)
        done.set()

    create_stream_completion(PARAMS, client=client).subscribe(on_next, on_error)
    assert done.wait(5)
    assert errors == [bug]
    assert server.wait_for_disconnects(1), "the request was not closed"


def test_a_state_subscriber_that_raises_does_not_cost_the_turn(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.enqueue(Reply.text("the whole reply"))
    session = ChatSession(ChatClient(server.base_url))
    raised: list[bool] = []

    def flaky(state: object) -> None:
        if getattr(state, "delta", None) is not None and not raised:
            raised.append(True)
            raise RuntimeError("ui bug")

    session.subscribe(flaky)
    with caplog.at_level(logging.ERROR, logger="rxchat"):
        reply = session.send("hi").pipe(rxops.final_message()).run()
    assert reply.content == "the whole reply"
    assert session.state.status == "idle"
    assert [m.content for m in session.messages] == ["hi", "the whole reply"]
    assert raised and "subscriber raised" in caplog.text


def test_the_read_loop_calls_the_subscribers_function_directly(
    server: FakeServer, client: ChatClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The short path skips RxPY's ``AutoDetachObserver.on_next`` (one call per delta):
    if an upgrade renames its private ``_on_next``, this fails instead of the loop
    quietly falling back to the slower call."""
    wrapper_calls: list[Message] = []
    original = AutoDetachObserver.on_next

    def counting(self: AutoDetachObserver[Message], value: Message) -> None:
        wrapper_calls.append(value)
        original(self, value)

    monkeypatch.setattr(AutoDetachObserver, "on_next", counting)
    server.enqueue(Reply.text("one two three four", pieces=4))
    got: list[Message] = []
    done = threading.Event()
    create_stream_completion(PARAMS, client=client).subscribe(
        got.append, on_completed=done.set
    )
    assert done.wait(5)
    assert "".join(m.content or "" for m in got) == "one two three four"
    assert len(got) >= 4 and wrapper_calls == []
