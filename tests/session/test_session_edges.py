"""ChatSession at the edges of its Rx contract: a stopped ask, undo right after an ask,
sessions that call each other, on_error after on_completed, the marble grammar.

Each test here failed on 0.2; hangs are guarded by events with timeouts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler

from rxchat import ChatClient, ChatSession, ChatState, Message, create_stream_completion
from rxchat import operators as rxops
from rxchat.errors import SessionError
from rxchat.testing import FakeServer, Reply, ScriptedCompletion, marble_deltas
from tests.conftest import wait_until

HANG = 10.0
on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed


def texts(messages: tuple[Message, ...]) -> list[tuple[str, str | None]]:
    return [(m.role, m.content) for m in messages]


def ending_with(done: threading.Event) -> Callable[..., Observable[Message]]:
    """`complete=`: a real request whose end, once handed to the session, sets `done`."""

    def complete(params: Any, **options: Any) -> Observable[Message]:
        source = create_stream_completion(params, **options)

        def subscribe(observer: Any, scheduler: Any = None) -> Any:
            def completed() -> None:
                observer.on_completed()  # posted to the session's mailbox...
                done.set()  # ...before this

            return source.subscribe(observer.on_next, observer.on_error, completed,
                                    scheduler=scheduler)

        return reactivex.create(subscribe)

    return complete


# -- 5: ops.take(k) keeps what its subscriber saw -------------------------------------


def test_take_keeps_exactly_the_deltas_its_subscriber_took(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(Reply.text("one two three four five six seven eight nine ten"),
                   Reply.text("ok"))
    ended = threading.Event()
    session = ChatSession(client, complete=ending_with(ended))
    seen: list[Message] = []
    finished = threading.Event()

    def take(delta: Message) -> None:
        if not seen:  # hold the session until the whole reply and its end are queued
            assert ended.wait(HANG)
        seen.append(delta)

    session.ask("count").pipe(ops.take(3)).subscribe(take, lambda _e: finished.set(),
                                                       finished.set)
    assert finished.wait(HANG)
    assert wait_until(lambda: session.state.status == "idle" and len(session.messages) == 2)
    kept = "".join(d.content or "" for d in seen)
    assert kept == "one two "
    user, reply = session.messages
    assert (user.content, reply.content, reply.finish_reason) == ("count", kept, "cancelled")

    answer: Observable[Message] = session.ask("more").pipe(rxops.final_message())
    assert answer.pipe(ops.timeout(HANG)).run().content == "ok"
    assert [(m["role"], m["content"]) for m in server.requests[-1].messages] == [
        ("user", "count"), ("assistant", "one two "), ("user", "more")]
    session.dispose()


def test_take_in_virtual_time_ignores_the_deltas_queued_behind_the_last_one_taken() -> None:
    scheduler = TestScheduler()

    def burst(_params: Any) -> Observable[Message]:  # all at once: queued together
        return reactivex.from_iterable(
            [Message(content=c) for c in "abcdef"] + [Message(finish_reason="stop")],
            scheduler=scheduler,
        )

    complete = ScriptedCompletion(burst)
    session = ChatSession(complete=complete, scheduler=scheduler)
    taken: list[str | None] = []
    session.ask("go").pipe(ops.take(2)).subscribe(lambda m: taken.append(m.content))
    scheduler.start()
    assert taken == ["a", "b"]
    assert texts(session.messages) == [("user", "go"), ("assistant", "ab")]
    assert session.messages[1].finish_reason == "cancelled"


# -- 6: undo() right after an ask ----------------------------------------------------


def test_undo_right_after_an_ask_raises_and_changes_nothing() -> None:
    scheduler = TestScheduler()
    one = scheduler.create_cold_observable(on_next(10, Message(content="1")), on_completed(10))
    two = scheduler.create_cold_observable(on_next(10, Message(content="2")), on_completed(10))
    session = ChatSession(complete=ScriptedCompletion(one, two), scheduler=scheduler)
    session.on_next("first")
    scheduler.start()
    assert texts(session.messages) == [("user", "first"), ("assistant", "1")]

    session.send("second")  # not folded yet (virtual time has not moved)
    with pytest.raises(SessionError, match="in progress"):
        session.undo()
    scheduler.start()
    assert texts(session.messages) == [
        ("user", "first"), ("assistant", "1"), ("user", "second"), ("assistant", "2")]


def test_undo_right_after_an_ask_from_another_thread_raises() -> None:
    scheduler = TestScheduler()
    one = scheduler.create_cold_observable(on_next(10, Message(content="1")), on_completed(10))
    two = scheduler.create_cold_observable(on_next(10, Message(content="2")), on_completed(10))
    session = ChatSession(complete=ScriptedCompletion(one, two), scheduler=scheduler)
    session.on_next("first")
    scheduler.start()
    asker = threading.Thread(target=lambda: session.on_next("second"))
    asker.start()
    asker.join(HANG)
    with pytest.raises(SessionError, match="in progress"):
        session.undo()
    scheduler.start()
    assert len(session.messages) == 4


# -- 7: sessions whose subscribers call each other -------------------------------------


@pytest.mark.parametrize("call", ["set_system", "reset", "undo"])
def test_two_sessions_calling_each_other_from_their_subscribers_never_deadlock(
    call: str,
) -> None:
    history = [Message(role="user", content="q"), Message(content="a")]
    a = ChatSession(system="A", history=history)
    b = ChatSession(system="B", history=history)
    both = threading.Barrier(2)
    done = {"a": threading.Event(), "b": threading.Event()}
    errors: list[BaseException] = []

    def calling(other: ChatSession, name: str) -> Callable[[ChatState], None]:
        def on_state(_state: ChatState) -> None:
            if done[name].is_set():
                return
            try:
                both.wait(HANG)  # both subscribers run on their session's thread now
                if call == "set_system":
                    other.set_system(f"from {name}")
                elif call == "reset":
                    other.reset()
                else:
                    other.undo()
            except BaseException as exc:
                errors.append(exc)
            done[name].set()

        return on_state

    a.subscribe(calling(b, "a"))
    b.subscribe(calling(a, "b"))
    assert done["a"].wait(HANG) and done["b"].wait(HANG), "the two sessions deadlocked"
    assert errors == []
    if call == "set_system":
        assert wait_until(lambda: a.messages[0].content == "from b"
                          and b.messages[0].content == "from a", HANG)
    else:
        assert wait_until(lambda: len(a.messages) == 1 and len(b.messages) == 1, HANG)
    a.dispose()
    b.dispose()


# -- 8: on_error after on_completed -----------------------------------------------------


def test_on_error_after_on_completed_is_ignored_and_the_queued_turns_finish() -> None:
    scheduler = TestScheduler()
    one = scheduler.create_cold_observable(on_next(10, Message(content="1")), on_completed(10))
    two = scheduler.create_cold_observable(on_next(10, Message(content="2")), on_completed(10))
    session = ChatSession(complete=ScriptedCompletion(one, two), scheduler=scheduler)
    ends: list[Any] = []
    session.subscribe(on_error=lambda e: ends.append(e), on_completed=lambda: ends.append("done"))
    session.on_next("a")
    session.on_next("b")
    session.on_completed()
    session.on_error(RuntimeError("late"))
    scheduler.start()
    assert texts(session.messages) == [
        ("user", "a"), ("assistant", "1"), ("user", "b"), ("assistant", "2")]
    assert ends == ["done"]


# -- 9: the marble grammar --------------------------------------------------------------


def test_marble_deltas_adjacent_letters_are_one_element_looked_up_or_an_error() -> None:
    with pytest.raises(ValueError, match=r"'ab'.*\(a,b\)"):
        marble_deltas("-ab-|", {"a": "x", "b": "y"})
    with pytest.raises(ValueError, match="'c'"):
        marble_deltas("-c-|", {"a": "x"})

    scheduler = TestScheduler()
    results = scheduler.start(lambda: marble_deltas(
        "-ab-(a,b)-|", {"a": "x", "b": "y", "ab": "xy"}, scheduler=scheduler, timespan=10))
    assert results.messages == [
        on_next(210, Message(content="xy")),
        on_next(240, Message(content="x")),
        on_next(240, Message(content="y")),
        on_completed(300),
    ]
