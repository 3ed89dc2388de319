"""Back-pressure through a session: a slow state subscriber, and a session turn read
through `aio.iterate(maxsize=...)`, make the turn's reader wait instead of the
session's mailbox (or the iterator's channel) growing with the whole reply.

The reader's wait is observed where it happens (its thread's frame), never timed.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

from reactivex import operators as ops

from rxchat import ChatClient, ChatSession, ChatState, aio
from rxchat import operators as rxops
from rxchat._session.actor import BACKLOG
from rxchat.testing import STALL, FakeServer, Reply
from tests.aio.test_aio import run
from tests.conftest import wait_until

HANG = 10.0
PIECES = 3 * BACKLOG


def waiting_in(function: str) -> bool:
    """Whether some thread is waiting inside `function` right now."""
    for top in sys._current_frames().values():
        frame: Any = top
        while frame is not None:
            if frame.f_code.co_name == function:
                return True
            frame = frame.f_back
    return False


def test_a_slow_state_subscriber_makes_the_reader_wait_and_gets_merged_states(
    server: FakeServer, client: ChatClient
) -> None:
    text = "".join(f"{i:04d}" for i in range(PIECES))
    server.enqueue(Reply.text(text, pieces=PIECES))
    session = ChatSession(client)
    hold, states = threading.Event(), []

    def slow(state: ChatState) -> None:
        states.append(state)
        if state.status == "streaming" and state.delta is not None:
            assert hold.wait(HANG)  # stuck until the reader waits for the session

    session.subscribe(slow)
    final: Any = rxops.final_message()
    reply: Any = session.send("go").pipe(final, ops.timeout(HANG * 3))
    result: list[Any] = []
    threading.Thread(target=lambda: result.append(reply.run()), daemon=True).start()
    assert wait_until(lambda: waiting_in("_admit"), HANG), "the reader never waited"
    assert session._actor._backlog <= BACKLOG + 1
    hold.set()
    assert wait_until(lambda: bool(result), HANG * 3)
    assert result[0].content == text
    assert session.messages[-1].content == text
    shown = "".join(s.delta.content or "" for s in states
                    if s.status == "streaming" and s.delta is not None)
    assert shown == text  # merged states carry the merged deltas
    assert len(states) < PIECES
    session.dispose()


def test_a_session_turn_through_a_full_aio_iterator_makes_its_reader_wait(
    server: FakeServer, client: ChatClient
) -> None:
    text = "".join(f"{i:04d}" for i in range(PIECES))
    server.enqueue(Reply.text(text, pieces=PIECES))
    session = ChatSession(client)

    async def main() -> tuple[str, bool, int]:
        pieces = aio.iterate(session.ask("go").pipe(rxops.content()), maxsize=4)
        got = [await anext(pieces)]
        # the consumer holds: the reader must come to wait for its room
        parked = await asyncio.to_thread(wait_until, lambda: waiting_in("wait_for_room"), HANG)
        folded = session.state.count
        async for piece in pieces:
            got.append(piece)
        return "".join(got), parked, folded

    try:
        joined, parked, folded = run(main, HANG * 3)
        assert parked, "the reader never waited for the iterator"
        assert folded <= 4 + BACKLOG + 8
        assert joined == text
        assert wait_until(lambda: session.messages[-1].content == text, HANG)
    finally:
        session.dispose()


def test_cancel_while_the_reader_waits_closes_the_socket_at_once(
    server: FakeServer, client: ChatClient
) -> None:
    text = "".join(f"{i:04d}" for i in range(PIECES))
    server.enqueue(Reply.text(text, pieces=PIECES).then(STALL), Reply.text("after"))
    session = ChatSession(client)
    hold = threading.Event()

    def slow(state: ChatState) -> None:
        if state.status == "streaming" and state.delta is not None:
            assert hold.wait(HANG)

    session.subscribe(slow)
    session.on_next("go")
    assert wait_until(lambda: waiting_in("_admit"), HANG), "the reader never waited"
    assert session.cancel()
    assert server.wait_for_disconnects(1, HANG), "the socket stayed open"
    assert wait_until(lambda: not waiting_in("_admit"), HANG), "the reader kept waiting"
    hold.set()
    assert wait_until(lambda: session.state.status == "idle" and len(session.messages) == 2,
                      HANG)
    assert session.messages[-1].finish_reason == "cancelled"
    final: Any = rxops.final_message()
    assert session.ask("again").pipe(final, ops.timeout(HANG)).run().content == "after"
    session.dispose()
