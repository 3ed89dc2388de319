"""ChatSession as an actor, over real threads and a loopback server.

Each bullet of the 0.1 review has a test here: subscribers calling back in (no
deadlock, with a hang guard), a cancel at the start of a turn (no request), a blocked
subscriber against ``cancel()`` from another thread, nested turns, the Subject's
grammar, and the session's thread ending when the session is idle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from reactivex import abc
from reactivex import operators as ops

from rxchat import ChatClient, ChatSession, ChatState, Message
from rxchat import operators as rxops
from rxchat.errors import SessionError
from rxchat.testing import STALL, FakeServer, Reply, chunk
from tests.conftest import collect, open_fds, wait_until

HANG = 10.0
"""Seconds after which a call that should return at once is a deadlock."""


def in_thread(function: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=function, daemon=True)
    thread.start()
    return thread


def stalled(content: str = "partial") -> Reply:
    """A reply that sends one delta, then nothing, holding the connection open."""
    return Reply.events([chunk(role="assistant", content=content)], done=False).then(STALL)


def session_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "rxchat-session"]


@pytest.mark.parametrize("call", ["cancel", "send", "regenerate", "undo", "reset"])
def test_a_subscriber_calling_back_from_its_first_on_next_does_not_deadlock(
    server: FakeServer, client: ChatClient, call: str
) -> None:
    server.enqueue(stalled(), Reply.text("two"), Reply.text("three"))
    session = ChatSession(client)
    streaming = threading.Event()
    session.subscribe(lambda s: streaming.set() if s.partial else None)
    session.on_next("one")
    assert streaming.wait(HANG)
    outcome: list[Any] = []

    def first(state: ChatState) -> None:
        if outcome:
            return
        try:
            method = getattr(session, call)
            outcome.append(method("again") if call == "send" else method())
        except SessionError as exc:  # undo mid-turn says so: an answer, not a hang
            outcome.append(exc)

    # subscribe from another thread while the turn streams; call back in at once
    subscriber = in_thread(lambda: session.subscribe(first))
    subscriber.join(HANG)
    assert not subscriber.is_alive()
    assert wait_until(lambda: bool(outcome), HANG), "the subscriber never returned"
    session.cancel()
    session.dispose()


def test_a_subscriber_can_ask_a_nested_turn_and_a_thread_can_wait_for_it(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(Reply.text("outer"), Reply.text("inner"))
    session = ChatSession(client)
    nested: list[Message] = []
    done = threading.Event()

    def on_state(state: ChatState) -> None:
        if len(state.messages) == 2 and not done.is_set() and not nested:
            nested.append(Message(content="asked"))
            # ask from inside a subscriber; a thread of ours waits for the answer
            in_thread(lambda: (nested.append(
                session.ask("and?").pipe(rxops.final_message()).run()), done.set()))

    session.subscribe(on_state)
    assert collect(session.send("hi")).completed
    assert done.wait(HANG)
    assert nested[-1].content == "inner"
    assert [m.content for m in session.messages] == ["hi", "outer", "and?", "inner"]


def test_a_cancel_from_a_subscriber_at_the_start_of_a_turn_sends_no_request(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(Reply.text("never"), Reply.text("second"))
    session = ChatSession(client)
    cancelled: list[bool] = []

    def on_state(state: ChatState) -> None:
        if state.status == "streaming" and state.pending and state.pending.content == "one":
            cancelled.append(session.cancel())

    session.subscribe(on_state)
    first = collect(session.send("one"))
    assert cancelled == [True] and first.messages[-1].finish_reason == "cancelled"
    assert collect(session.send("two")).completed
    assert [r.messages[-1]["content"] for r in server.requests] == ["two"]
    assert session.messages[1] == Message(content="", finish_reason="cancelled")


def test_cancel_from_another_thread_closes_the_socket_while_a_subscriber_is_blocked(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(stalled())
    session = ChatSession(client)
    blocked, release = threading.Event(), threading.Event()

    def slow(state: ChatState) -> None:
        if state.partial is not None and not blocked.is_set():
            blocked.set()
            release.wait(HANG)

    session.subscribe(slow)
    session.on_next("hi")
    assert blocked.wait(HANG)
    canceller = in_thread(session.cancel)
    canceller.join(HANG)
    assert not canceller.is_alive()
    assert server.wait_for_disconnects(1, timeout=2.0)  # while the subscriber still blocks
    assert blocked.is_set() and not release.is_set()
    release.set()
    assert wait_until(lambda: len(session.messages) == 2, HANG)
    assert session.messages[-1] == Message(content="partial", finish_reason="cancelled")


def test_disposing_an_ask_mid_stream_closes_the_connection_and_keeps_the_partial(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(Reply.text("warm"), stalled("so far"))
    session = ChatSession(client)
    assert collect(session.send("warm up")).completed  # the pool's connection exists
    fds, threads = open_fds(), threading.active_count()
    got: list[Message] = []
    arrived = threading.Event()
    subscription = session.ask("hi").subscribe(lambda m: (got.append(m), arrived.set()))
    assert arrived.wait(HANG)
    subscription.dispose()
    assert server.wait_for_disconnects(1, timeout=2.0)
    assert wait_until(lambda: len(session.messages) == 4, HANG)
    assert session.messages[-1] == Message(content="so far", finish_reason="cancelled")
    assert [m.content for m in got] == ["so far"]  # nothing after dispose
    assert wait_until(lambda: open_fds() <= fds and threading.active_count() <= threads)


def test_ask_take_stops_the_turn_over_http(server: FakeServer, client: ChatClient) -> None:
    server.enqueue(Reply.events(
        [chunk(role="assistant", content="a"), chunk(content="b")], done=False
    ).then(STALL))
    session = ChatSession(client)
    first = session.ask("hi").pipe(ops.take(1), ops.to_list()).run()
    assert [m.content for m in first] == ["a"]
    assert server.wait_for_disconnects(1, timeout=2.0)
    assert wait_until(lambda: session.state.status == "idle" and len(session.messages) == 2)


def test_the_session_is_a_subject_and_ignores_asks_after_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = ChatSession(client=None, complete=lambda *_a, **_k: _never())
    assert isinstance(session, abc.SubjectBase)
    assert isinstance(session, abc.DisposableBase)
    ended = threading.Event()
    session.subscribe(on_completed=ended.set)
    session.on_completed()
    assert ended.wait(HANG)
    session.on_next("late")  # never raised into the producer
    assert "ignored" in caplog.text
    other = ChatSession(complete=lambda *_a, **_k: _never())
    other.dispose()
    other.on_next("late")
    errors = collect(other.send("late too")).error
    assert isinstance(errors, SessionError)


def test_the_sessions_thread_exists_only_while_it_has_work(
    server: FakeServer, client: ChatClient
) -> None:
    before = len(session_threads())
    sessions = [ChatSession(client) for _ in range(50)]
    assert len(session_threads()) == before  # idle sessions hold no thread
    server.enqueue(Reply.text("one"))
    assert collect(sessions[0].send("hi")).completed
    assert wait_until(lambda: len(session_threads()) == before, HANG)


def _never() -> Any:
    import reactivex

    return reactivex.never()
