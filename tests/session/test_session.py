"""ChatSession in virtual time: marble streams stand in for the server, no thread, no I/O.

Each test scripts the turns' delta streams as cold observables on a ``TestScheduler``,
asks turns at chosen virtual times, and asserts what each ``complete`` call was sent,
the states emitted, the history, and (for cancel) the subscription window.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.coldobservable import ColdObservable

from rxchat import ChatClient, ChatMessage, ChatSession, ChatState, Message
from rxchat.errors import SessionError, StreamInterrupted
from rxchat.testing import ScriptedCompletion, marble_deltas

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error
subscribe = ReactiveTest.subscribe


def reply(scheduler: TestScheduler, *pieces: str, finish: str = "stop") -> ColdObservable[Any]:
    """A cold reply: one content delta every 10 ticks, then a finish delta, then done."""
    notes = [on_next(10 * (i + 1), Message(content=p)) for i, p in enumerate(pieces)]
    end = 10 * (len(pieces) + 1)
    notes += [on_next(end, Message(finish_reason=finish)), on_completed(end)]
    return scheduler.create_cold_observable(*notes)


def sent(params: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in params["messages"]]


def texts(messages: tuple[Message, ...]) -> list[tuple[str, str | None]]:
    return [(m.role, m.content) for m in messages]


def at(scheduler: TestScheduler, time: float, action: Any) -> None:
    scheduler.schedule_absolute(time, lambda _s, _t: action())


def test_three_turns_carry_the_whole_conversation() -> None:
    scheduler = TestScheduler()
    complete = ScriptedCompletion(
        reply(scheduler, "Hi", " Ann"), reply(scheduler, "Ann"), reply(scheduler, "Bye")
    )
    client = ChatClient("http://127.0.0.1:9/v1", "sk-test")
    session = ChatSession(
        client, model="m1", system="Be brief.", params={"temperature": 0.5},
        complete=complete, scheduler=scheduler,
    )
    at(scheduler, 100, lambda: session.on_next("I am Ann"))
    at(scheduler, 200, lambda: session.on_next("Who am I?"))
    at(scheduler, 300, lambda: session.on_next(ChatMessage.user("Bye")))
    scheduler.start()

    first = [("system", "Be brief."), ("user", "I am Ann")]
    second = [*first, ("assistant", "Hi Ann"), ("user", "Who am I?")]
    third = [*second, ("assistant", "Ann"), ("user", "Bye")]
    assert [sent(c) for c in complete.calls] == [first, second, third]
    assert all(c["model"] == "m1" and c["temperature"] == 0.5 for c in complete.calls)
    assert complete.options[0] == {"client": client, "scheduler": scheduler}
    assert texts(session.messages) == [*third, ("assistant", "Bye")]
    assert session.messages[-1].finish_reason == "stop"
    assert session.state.status == "idle" and session.state.turn == 3


def test_a_turn_asked_mid_stream_waits_and_sees_the_earlier_reply() -> None:
    scheduler = TestScheduler()
    one, two = reply(scheduler, "a", "b"), reply(scheduler, "c")
    complete = ScriptedCompletion(one, two)
    session = ChatSession(complete=complete, scheduler=scheduler)
    at(scheduler, 100, lambda: session.on_next("one"))
    at(scheduler, 115, lambda: session.on_next("two"))
    at(scheduler, 120, lambda: queued.append(session.state))
    queued: list[ChatState] = []
    scheduler.start()

    assert queued[0].pending == Message(role="user", content="one")
    assert one.subscriptions == [subscribe(100, 130)]
    assert two.subscriptions == [subscribe(130, 150)]
    assert sent(complete.calls[1]) == [("user", "one"), ("assistant", "ab"), ("user", "two")]
    assert texts(session.messages)[-1] == ("assistant", "c")


def summary(state: ChatState) -> tuple[Any, ...]:
    partial = state.partial.content if state.partial else None
    pending = state.pending.content if state.pending else None
    return (state.status, pending, partial, len(state.messages), state.turn)


def test_the_states_of_one_turn_in_order() -> None:
    scheduler = TestScheduler()
    session = ChatSession(
        system="S", complete=ScriptedCompletion(reply(scheduler, "He", "llo")),
        scheduler=scheduler,
    )
    at(scheduler, 300, lambda: session.on_next("hi"))
    observer = scheduler.start(lambda: session.pipe(ops.map(summary)))

    assert observer.messages == [
        on_next(200, ("idle", None, None, 1, 0)),
        on_next(300, ("streaming", "hi", None, 1, 1)),
        on_next(310, ("streaming", "hi", "He", 1, 1)),
        on_next(320, ("streaming", "hi", "Hello", 1, 1)),
        on_next(330, ("streaming", "hi", "Hello", 1, 1)),
        on_next(330, ("idle", None, None, 3, 1)),
    ]


def test_each_streaming_state_carries_its_delta() -> None:
    scheduler = TestScheduler()
    session = ChatSession(complete=ScriptedCompletion(reply(scheduler, "a", "b")),
                          scheduler=scheduler)
    deltas: list[str | None] = []

    def record(state: ChatState) -> None:
        if state.delta is not None:
            deltas.append(state.delta.content)

    session.subscribe(record)
    session.on_next("x")
    scheduler.start()
    assert deltas == ["a", "b", None]


def test_a_failed_turn_leaves_history_unchanged_and_regenerate_asks_it_again() -> None:
    scheduler = TestScheduler()
    broken = StreamInterrupted("cut off")
    failing = scheduler.create_cold_observable(
        on_next(10, Message(content="Hal")), on_error(20, broken)
    )
    complete = ScriptedCompletion(reply(scheduler, "ok"), failing, reply(scheduler, "fine"))
    session = ChatSession(complete=complete, scheduler=scheduler)
    states: list[ChatState] = []
    at(scheduler, 100, lambda: session.on_next("first"))
    at(scheduler, 200, lambda: session.on_next("second"))
    at(scheduler, 250, lambda: states.append(session.state))
    at(scheduler, 300, session.regenerate)
    scheduler.start()

    failed = states[0]
    assert failed.status == "error" and failed.error is broken
    assert texts(failed.messages) == [("user", "first"), ("assistant", "ok")]
    assert failed.failed == Message(role="user", content="second")
    assert failed.pending is None and failed.partial == Message(content="Hal")
    assert sent(complete.calls[2]) == sent(complete.calls[1])
    assert texts(session.messages)[2:] == [("user", "second"), ("assistant", "fine")]
    assert session.state.status == "idle" and session.state.error is None


def content_of(message: Message) -> str | None:
    return message.content


def test_send_replays_the_turns_deltas_and_its_end() -> None:
    scheduler = TestScheduler()
    failing = marble_deltas("-a-#", {"a": "x"}, error=StreamInterrupted("cut"))
    session = ChatSession(
        complete=ScriptedCompletion(reply(scheduler, "He", "llo"), failing), scheduler=scheduler
    )
    ok, bad = session.send("hi"), session.send("again")
    scheduler.start()

    late = scheduler.create_observer()
    ok.pipe(ops.map(content_of)).subscribe(late)
    errors: list[Exception] = []
    bad.subscribe(on_error=errors.append)
    now = scheduler.clock
    scheduler.advance_by(1)
    assert late.messages == [on_next(now, "He"), on_next(now, "llo"),
                             on_next(now, None), on_completed(now)]
    assert [type(e) for e in errors] == [StreamInterrupted]


def test_cancel_disposes_the_stream_and_keeps_the_partial_reply() -> None:
    scheduler = TestScheduler()
    slow = reply(scheduler, "Once", " upon", " a time")
    complete = ScriptedCompletion(slow, reply(scheduler, "next"))
    session = ChatSession(complete=complete, scheduler=scheduler)
    got: list[Message] = []
    at(scheduler, 100, lambda: session.send("story").subscribe(got.append))
    at(scheduler, 105, lambda: session.on_next("then"))
    at(scheduler, 125, lambda: cancelled.append(session.cancel()))
    at(scheduler, 126, lambda: cancelled.append(session.cancel()))
    cancelled: list[bool] = []
    scheduler.start()

    assert slow.subscriptions == [subscribe(100, 125)]
    assert cancelled == [True, True]  # the second cancel hit "then", at its start
    story = session.messages[1]
    assert (story.content, story.finish_reason) == ("Once upon", "cancelled")
    assert sent(complete.calls[0]) == [("user", "story")] and len(complete.calls) == 2
    assert [m.finish_reason for m in got] == [None, None, "cancelled"]


def test_a_cancel_folded_before_the_stream_opens_sends_nothing() -> None:
    scheduler = TestScheduler()
    complete = ScriptedCompletion(reply(scheduler, "late"))
    session = ChatSession(complete=complete, scheduler=scheduler)
    session.on_next("hi")
    session.cancel()  # nothing runs yet as this thread sees it: cancels what runs then
    scheduler.advance_by(1)
    assert complete.calls == []
    assert texts(session.messages) == [("user", "hi"), ("assistant", "")]
    assert session.messages[1].finish_reason == "cancelled"


def test_a_subscriber_cancelling_the_turn_it_sees_start_sends_no_request() -> None:
    scheduler = TestScheduler()
    complete = ScriptedCompletion(reply(scheduler, "late"))
    session = ChatSession(complete=complete, scheduler=scheduler)
    session.pipe(ops.filter(lambda s: s.status == "streaming")).subscribe(
        lambda _s: session.cancel()
    )
    session.on_next("hi")
    scheduler.advance_by(5)
    assert complete.calls == [] and session.state.status == "idle"


def test_regenerate_after_success_replaces_the_last_reply() -> None:
    scheduler = TestScheduler()
    complete = ScriptedCompletion(reply(scheduler, "one"), reply(scheduler, "two"))
    session = ChatSession(system="S", complete=complete, scheduler=scheduler)
    session.on_next("hi")
    scheduler.advance_to(100)
    session.regenerate()
    scheduler.start()

    assert sent(complete.calls[1]) == [("system", "S"), ("user", "hi")]
    assert texts(session.messages) == [("system", "S"), ("user", "hi"), ("assistant", "two")]


def test_a_failed_regeneration_keeps_the_old_reply_and_regenerates_again() -> None:
    scheduler = TestScheduler()
    failing = scheduler.create_cold_observable(on_error(10, StreamInterrupted("x")))
    also = scheduler.create_cold_observable(on_error(10, StreamInterrupted("y")))
    complete = ScriptedCompletion(reply(scheduler, "one"), failing, also, reply(scheduler, "3"))
    session = ChatSession(complete=complete, scheduler=scheduler)
    session.on_next("hi")
    scheduler.advance_to(100)
    session.regenerate()
    scheduler.advance_to(200)
    assert texts(session.messages) == [("user", "hi"), ("assistant", "one")]
    assert session.state.status == "error"
    session.regenerate()
    scheduler.advance_to(300)
    session.regenerate()
    scheduler.start()
    assert [sent(c) for c in complete.calls[1:]] == [[("user", "hi")]] * 3
    assert texts(session.messages) == [("user", "hi"), ("assistant", "3")]


def test_regenerate_undo_and_reset_refuse_what_they_cannot_do() -> None:
    scheduler = TestScheduler()
    session = ChatSession(system="S", complete=ScriptedCompletion(reply(scheduler, "a")),
                          scheduler=scheduler)
    errors: list[Exception] = []
    session.regenerate().subscribe(on_error=errors.append)
    with pytest.raises(SessionError, match="Nothing to undo"):
        session.undo()
    session.on_next("hi")
    scheduler.advance_by(1)
    with pytest.raises(SessionError, match="in progress"):
        session.undo()
    scheduler.start()
    assert [str(e) for e in errors] == [
        "Nothing to regenerate: no turn has been asked yet."
    ]
    assert not hasattr(ChatSession, "retry") or ChatSession.retry is Observable.retry


def test_undo_removes_the_last_turn_and_reset_keeps_the_system_prompt() -> None:
    scheduler = TestScheduler()
    complete = ScriptedCompletion(*(reply(scheduler, t) for t in "abc"))
    session = ChatSession(system="S", complete=complete, scheduler=scheduler)
    for text in ("1", "2"):
        session.on_next(text)
        scheduler.advance_by(50)
    session.undo()
    scheduler.advance_by(1)
    assert texts(session.messages) == [("system", "S"), ("user", "1"), ("assistant", "a")]
    session.on_next("3")
    scheduler.advance_by(50)
    assert sent(complete.calls[2])[-2:] == [("assistant", "a"), ("user", "3")]
    session.reset()
    scheduler.advance_by(1)
    assert texts(session.messages) == [("system", "S")]


def test_set_system_replaces_the_prompt_and_keeps_the_history() -> None:
    scheduler = TestScheduler()
    complete = ScriptedCompletion(reply(scheduler, "a"), reply(scheduler, "b"))
    session = ChatSession(system="S", complete=complete, scheduler=scheduler)
    session.on_next("1")
    scheduler.advance_by(50)
    session.set_system("T")
    scheduler.advance_by(1)
    assert texts(session.messages) == [("system", "T"), ("user", "1"), ("assistant", "a")]
    session.on_next("2")
    scheduler.advance_by(50)
    assert sent(complete.calls[1])[0] == ("system", "T")
    session.set_system(None)
    scheduler.advance_by(1)
    assert texts(session.messages)[0] == ("user", "1")
    session.set_system("U")
    scheduler.advance_by(1)
    assert texts(session.messages)[:2] == [("system", "U"), ("user", "1")]


def test_reset_mid_stream_drops_the_turn_and_its_stream() -> None:
    scheduler = TestScheduler()
    slow = reply(scheduler, "a", "b", "c")
    session = ChatSession(complete=ScriptedCompletion(slow, reply(scheduler, "d")),
                          scheduler=scheduler)
    errors: list[Exception] = []
    at(scheduler, 100, lambda: session.send("hi").subscribe(on_error=errors.append))
    at(scheduler, 115, session.reset)
    at(scheduler, 120, lambda: session.on_next("again"))
    scheduler.start()
    assert slow.subscriptions == [subscribe(100, 115)]
    assert texts(session.messages) == [("user", "again"), ("assistant", "d")]
    assert [type(e) for e in errors] == [SessionError]


def test_reasoning_stays_in_history_but_is_never_sent() -> None:
    scheduler = TestScheduler()
    thinking = scheduler.create_cold_observable(
        on_next(10, Message(reasoning_content="Let me think.")),
        on_next(20, Message(content="42", finish_reason="stop")), on_completed(30),
    )
    complete = ScriptedCompletion(thinking, reply(scheduler, "ok"))
    session = ChatSession(complete=complete, scheduler=scheduler)
    session.on_next("q")
    scheduler.advance_by(50)
    session.on_next("and?")
    scheduler.start()
    assert session.messages[1].reasoning_content == "Let me think."
    assert complete.calls[1]["messages"][1] == {"role": "assistant", "content": "42"}


def count_messages(state: ChatState) -> int:
    return len(state.messages)


def test_the_session_is_an_observer_of_asks_and_completes_after_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = TestScheduler()
    asks = scheduler.create_hot_observable(
        on_next(210, "one"), on_next(220, ChatMessage.user("two")),
        on_next(225, {"content": "three"}), on_completed(230),
    )
    session = ChatSession(
        complete=ScriptedCompletion(*(reply(scheduler, t) for t in "abc")),
        scheduler=scheduler,
    )
    asks.subscribe(session)
    observer = scheduler.start(lambda: session.pipe(ops.map(count_messages)),
                               subscribed=205)
    assert observer.messages[-2:] == [on_next(270, 6), on_completed(270)]
    session.on_next("four")  # after completion: ignored, never raised into the producer
    assert "ignored" in caplog.text and len(session.messages) == 6


def test_history_emits_committed_tuples_once_each_and_subscribers_get_the_state() -> None:
    scheduler = TestScheduler()
    session = ChatSession(system="S", complete=ScriptedCompletion(reply(scheduler, "a", "b")),
                          scheduler=scheduler)
    lengths: list[int] = []
    session.history.subscribe(lambda h: lengths.append(len(h)))
    session.on_next("hi")
    scheduler.start()
    assert lengths == [1, 3]
    first: list[ChatState] = []
    session.subscribe(first.append)
    scheduler.advance_by(1)
    assert first == [session.state]


def test_a_complete_that_raises_fails_the_turn() -> None:
    def broken(params: Any, **_: Any) -> Observable[Message]:
        raise SessionError("no server")

    scheduler = TestScheduler()
    session = ChatSession(complete=broken, scheduler=scheduler)
    errors: list[Exception] = []
    session.send("hi").subscribe(on_error=errors.append)
    scheduler.advance_by(1)
    assert session.state.status == "error" and session.messages == ()
    assert [str(e) for e in errors] == ["no server"]


def test_a_subscriber_that_raises_is_logged_and_does_not_wedge_the_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = TestScheduler()
    session = ChatSession(complete=ScriptedCompletion(reply(scheduler, "a")),
                          scheduler=scheduler)

    def bad(state: ChatState) -> None:
        if state.status == "streaming" and state.partial is None:
            raise RuntimeError("boom")

    session.subscribe(bad)
    session.on_next("hi")
    scheduler.start()
    assert texts(session.messages) == [("user", "hi"), ("assistant", "a")]
    assert "subscriber raised" in caplog.text and "boom" in caplog.text


def test_close_cancels_drops_waiting_turns_and_completes() -> None:
    scheduler = TestScheduler()
    session = ChatSession(complete=ScriptedCompletion(reply(scheduler, "a", "b")),
                          scheduler=scheduler)
    done: list[bool] = []
    session.subscribe(on_completed=lambda: done.append(True))
    session.on_next("hi")
    scheduler.advance_by(15)
    waiting = session.send("later")
    session.close()
    errors: list[Exception] = []
    waiting.subscribe(on_error=errors.append)
    scheduler.advance_by(1)
    assert done == [True] and [type(e) for e in errors] == [SessionError]
    assert texts(session.messages) == [("user", "hi"), ("assistant", "a")]


def test_five_threads_sending_at_once_get_five_whole_turns_in_order() -> None:
    def threaded(params: Any, **_: Any) -> Observable[Message]:
        last = params["messages"][-1]["content"]

        def run(observer: abc.ObserverBase[Message], _s: Any = None) -> abc.DisposableBase:
            def work() -> None:
                observer.on_next(Message(content=f"re {last}"))
                observer.on_next(Message(finish_reason="stop"))
                observer.on_completed()

            threading.Thread(target=work).start()
            return Disposable()

        calls.append(params)
        return reactivex.create(run)

    calls: list[Any] = []
    session = ChatSession(complete=threaded)
    gate = threading.Barrier(5)
    finished: list[threading.Event] = [threading.Event() for _ in range(5)]

    def user(n: int) -> None:
        gate.wait()
        session.send(f"u{n}").subscribe(on_completed=finished[n].set)

    threads = [threading.Thread(target=user, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert all(event.wait(10) for event in finished)

    assert [len(c["messages"]) for c in calls] == [1, 3, 5, 7, 9]
    asked = [c["messages"][-1]["content"] for c in calls]
    assert sorted(asked) == [f"u{n}" for n in range(5)]
    assert [m.content for m in session.messages] == [
        text for user_text in asked for text in (user_text, f"re {user_text}")
    ]


def test_the_overhead_benchmark_runs() -> None:
    """Smoke run of ``benchmarks/session_overhead.py`` so it cannot rot (no timings)."""
    import importlib.util
    import io
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "session_overhead.py"
    spec = importlib.util.spec_from_file_location("session_overhead", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = io.StringIO()
    assert module.main(["--quick"], out=out) == 0
    assert "us per delta" in out.getvalue() and "ms per turn" in out.getvalue()


def test_ask_is_cold_and_retry_asks_again_after_a_failure() -> None:
    scheduler = TestScheduler()
    failing = scheduler.create_cold_observable(
        on_next(10, Message(content="Hal")), on_error(20, StreamInterrupted("cut"))
    )
    fine = reply(scheduler, "fine")
    complete = ScriptedCompletion(failing, fine)
    session = ChatSession(complete=complete, scheduler=scheduler)
    turn = session.ask("q")
    scheduler.advance_to(100)
    assert complete.calls == []  # cold: nothing until subscribed
    observer = scheduler.start(lambda: turn.pipe(ops.retry(2), ops.map(content_of)))

    assert observer.messages == [on_next(210, "Hal"), on_next(230, "fine"),
                                 on_next(240, None), on_completed(240)]
    assert failing.subscriptions == [subscribe(200, 220)]
    assert fine.subscriptions == [subscribe(220, 240)]
    assert texts(session.messages) == [("user", "q"), ("assistant", "fine")]


def test_ask_take_stops_the_turn_after_k_deltas_and_keeps_them() -> None:
    scheduler = TestScheduler()
    slow = reply(scheduler, "a", "b", "c")
    session = ChatSession(complete=ScriptedCompletion(slow), scheduler=scheduler)
    observer = scheduler.start(lambda: session.ask("q").pipe(ops.take(2), ops.map(content_of)))

    assert observer.messages == [on_next(210, "a"), on_next(220, "b"), on_completed(220)]
    assert slow.subscriptions == [subscribe(200, 220)]
    assert session.messages[-1] == Message(content="ab", finish_reason="cancelled")


def test_disposing_an_ask_before_it_starts_unqueues_it_without_a_request() -> None:
    scheduler = TestScheduler()
    first = reply(scheduler, "a", "b")
    complete = ScriptedCompletion(first, reply(scheduler, "c"))
    session = ChatSession(complete=complete, scheduler=scheduler)
    states: list[ChatState] = []
    session.subscribe(states.append)
    at(scheduler, 100, lambda: session.on_next("one"))
    at(scheduler, 105, lambda: waiting.append(session.ask("two").subscribe()))
    at(scheduler, 110, lambda: waiting[0].dispose())
    waiting: list[abc.DisposableBase] = []
    scheduler.start()

    assert len(complete.calls) == 1
    assert [s.queued for s in states if s.queued] == [(Message(role="user", content="two"),)]
    assert texts(session.messages) == [("user", "one"), ("assistant", "ab")]


def test_switch_latest_over_asks_cancels_the_turn_a_newer_question_replaces() -> None:
    scheduler = TestScheduler()
    first, second = reply(scheduler, "a", "b", "c"), reply(scheduler, "d")
    session = ChatSession(complete=ScriptedCompletion(first, second), scheduler=scheduler)
    questions = scheduler.create_hot_observable(on_next(210, "one"), on_next(225, "two"))
    observer = scheduler.start(lambda: questions.pipe(
        ops.map(session.ask), ops.switch_latest(), ops.map(content_of)))

    assert observer.messages == [on_next(220, "a"), on_next(235, "d"), on_next(245, None)]
    assert first.subscriptions == [subscribe(210, 225)]
    assert second.subscriptions == [subscribe(225, 245)]
    assert texts(session.messages) == [
        ("user", "one"), ("assistant", "a"), ("user", "two"), ("assistant", "d")
    ]


def test_the_states_of_a_turn_asked_while_another_streams() -> None:
    scheduler = TestScheduler()
    session = ChatSession(
        complete=ScriptedCompletion(reply(scheduler, "a"), reply(scheduler, "b")),
        scheduler=scheduler,
    )
    at(scheduler, 300, lambda: session.on_next("one"))
    at(scheduler, 305, lambda: session.on_next("two"))

    def queued_summary(state: ChatState) -> tuple[Any, ...]:
        return (*summary(state), tuple(m.content for m in state.queued))

    observer = scheduler.start(lambda: session.pipe(ops.map(queued_summary)))
    assert observer.messages == [
        on_next(200, ("idle", None, None, 0, 0, ())),
        on_next(300, ("streaming", "one", None, 0, 1, ())),
        on_next(305, ("streaming", "one", None, 0, 1, ("two",))),
        on_next(310, ("streaming", "one", "a", 0, 1, ("two",))),
        on_next(320, ("streaming", "one", "a", 0, 1, ("two",))),
        on_next(320, ("streaming", "two", None, 2, 2, ())),
        on_next(330, ("streaming", "two", "b", 2, 2, ())),
        on_next(340, ("streaming", "two", "b", 2, 2, ())),
        on_next(340, ("idle", None, None, 4, 2, ())),
    ]
