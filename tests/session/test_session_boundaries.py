"""The session at its boundaries: a turn that cannot be folded fails with a typed error
and the next one is served; what it commits is valid Unicode; wrong arguments are a
``TypeError`` at the call."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.coldobservable import ColdObservable

from rxchat import ChatClient, ChatSession, Message, ToolCall
from rxchat.errors import SessionError, StreamError
from rxchat.stores import SQLiteStore
from rxchat.testing import FakeServer, Reply, ScriptedCompletion, chunk

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
subscribe = ReactiveTest.subscribe


def reply(scheduler: TestScheduler, *deltas: Message) -> ColdObservable[Any]:
    notes = [on_next(10 * (i + 1), d) for i, d in enumerate(deltas)]
    return scheduler.create_cold_observable(*notes, on_completed(10 * (len(deltas) + 1)))


def at(scheduler: TestScheduler, time: float, action: Any) -> None:
    scheduler.schedule_absolute(time, lambda _s, _t: action())


def texts(messages: tuple[Message, ...]) -> list[tuple[str, str | None]]:
    return [(m.role, m.content) for m in messages]


def run_two_turns(first: ColdObservable[Any], scheduler: TestScheduler) -> tuple[
    ChatSession, list[Any], ColdObservable[Any]
]:
    second = reply(scheduler, Message(content="fine"))
    session = ChatSession(complete=ScriptedCompletion(first, second), scheduler=scheduler)
    outcomes: list[Any] = []
    at(scheduler, 100, lambda: session.ask("one").subscribe(
        on_error=outcomes.append, on_completed=lambda: outcomes.append("done")))
    at(scheduler, 200, lambda: session.ask("two").subscribe(
        on_error=outcomes.append, on_completed=lambda: outcomes.append("done")))
    scheduler.start()
    return session, outcomes, second


def test_a_non_string_content_delta_fails_its_turn_and_the_next_is_served() -> None:
    scheduler = TestScheduler()
    bad = Message(content=[{"type": "image"}])  # type: ignore[arg-type]
    first = reply(scheduler, Message(content="a"), bad, Message(content="b"))
    session, outcomes, second = run_two_turns(first, scheduler)
    error, done = outcomes
    assert isinstance(error, StreamError) and "not a string" in str(error)
    assert done == "done"
    assert first.subscriptions == [subscribe(100, 120)]  # closed at the bad delta
    assert second.subscriptions == [subscribe(200, 220)]
    assert texts(session.messages) == [("user", "two"), ("assistant", "fine")]


def test_a_failure_while_folding_fails_the_turn_with_a_typed_error() -> None:
    scheduler = TestScheduler()
    broken = Message(content="x", tool_calls="not calls")  # type: ignore[arg-type]
    first = reply(scheduler, broken)  # the merge fails when the turn commits
    session, outcomes, _second = run_two_turns(first, scheduler)
    error, done = outcomes
    assert isinstance(error, SessionError) and "could not take" in str(error)
    assert done == "done"
    assert session.state.status == "idle"
    assert texts(session.messages) == [("user", "two"), ("assistant", "fine")]


def test_a_failed_fold_can_be_regenerated() -> None:
    scheduler = TestScheduler()
    bad = Message(content=5)  # type: ignore[arg-type]
    again = reply(scheduler, Message(content="ok"))
    first = reply(scheduler, Message(content="a"), bad)
    session = ChatSession(complete=ScriptedCompletion(first, again),
                          scheduler=scheduler)
    at(scheduler, 100, lambda: session.on_next("q"))
    at(scheduler, 200, lambda: session.regenerate())
    scheduler.start()
    assert texts(session.messages) == [("user", "q"), ("assistant", "ok")]


def test_a_surrogate_pair_split_across_deltas_is_committed_joined() -> None:
    scheduler = TestScheduler()
    first = reply(scheduler, Message(content="smile \ud83d"), Message(content="\ude00!"))
    session, _outcomes, _second = run_two_turns(first, scheduler)
    assert session.messages[1].content == "smile \U0001f600!"


def test_lone_surrogates_are_committed_as_the_replacement_character() -> None:
    scheduler = TestScheduler()
    first = reply(scheduler, Message(content="a\udc80", reasoning_content="\ud800"))
    second = reply(scheduler, Message(content="fine"))
    session = ChatSession(complete=ScriptedCompletion(first, second), scheduler=scheduler)
    at(scheduler, 100, lambda: session.on_next("b\udcff"))  # as surrogateescape gives it
    scheduler.start()
    user, answer = session.messages
    assert (user.content, answer.content, answer.reasoning_content) == (
        "b\ufffd", "a\ufffd", "\ufffd")


def test_a_tool_step_and_its_results_are_committed_as_valid_text() -> None:
    scheduler = TestScheduler()
    call = ToolCall.from_dict({"id": "c1", "function": {"name": "echo", "arguments": "{}"}})
    step = reply(scheduler, Message(content="\ud83d", tool_calls=(call,)))
    final = reply(scheduler, Message(content="done"))

    def echo() -> str:
        """Answer with a lone surrogate."""
        return "r\udc00"

    session = ChatSession(complete=ScriptedCompletion(step, final), tools=[echo],
                          scheduler=scheduler)
    at(scheduler, 100, lambda: session.on_next("go"))
    scheduler.start()
    contents = [m.content for m in session.messages]
    assert contents == ["go", "\ufffd", "r\ufffd", "done"]


def test_committed_text_round_trips_through_a_store(tmp_path: Path) -> None:
    scheduler = TestScheduler()
    first = reply(scheduler, Message(content="\ud83d"), Message(content="\ude00 \udc80"))
    with SQLiteStore(tmp_path / "c.db") as store:
        session = ChatSession(complete=ScriptedCompletion(first), scheduler=scheduler,
                              store=store)
        at(scheduler, 100, lambda: session.on_next("hi \ud800"))
        scheduler.start()
        stored = store.get(session.conversation_id or "")
        assert stored.messages == session.messages
        assert texts(stored.messages) == [("user", "hi \ufffd"), ("assistant", "\U0001f600 \ufffd")]


# --- arguments checked at the call --------------------------------------------------


def test_a_string_as_the_client_points_to_system() -> None:
    with pytest.raises(TypeError, match=r"ChatSession\(system=") as caught:
        ChatSession("You are terse.")  # type: ignore[arg-type]
    assert "client must be a rxchat.ChatClient" in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [({"system": 3}, "system"), ({"model": ["m"]}, "model"), ({"params": "x"}, "params")],
)
def test_wrong_argument_types_are_named(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(TypeError, match=f"ChatSession: {named} must be"):
        ChatSession(**kwargs)


# --- over loopback -------------------------------------------------------------------


def test_a_session_over_mistral_parts_commits_content_and_reasoning() -> None:
    parts = [{"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]},
             {"type": "text", "text": "Paris."}]
    with FakeServer() as server, ChatClient(server.base_url, "sk-test") as client:
        server.enqueue(
            Reply.events([{"choices": [{"index": 0, "delta": {"content": parts}}]},
                          chunk(finish_reason="stop")]),
            Reply.events([{"choices": [{"index": 0, "delta": {"content": 7}}]}]),
            Reply.text("after"),
        )
        session = ChatSession(client)
        session.ask("Capital of France?").run()
        answer = session.messages[-1]
        assert (answer.content, answer.reasoning_content) == ("Paris.", "hmm")
        with pytest.raises(StreamError, match="int 7"):
            session.ask("again").run()
        session.ask("and now?").run()
        assert [m.content for m in session.messages][-2:] == ["and now?", "after"]
        session.dispose()


def test_history_system_and_restored_messages_are_valid_text(tmp_path: Path) -> None:
    scheduler = TestScheduler()
    session = ChatSession(system="s\ud800", history=["h\udc00"], scheduler=scheduler,
                          complete=ScriptedCompletion())
    assert [m.content for m in session.messages] == ["s\ufffd", "h\ufffd"]
    session.set_system("t\udbff")
    scheduler.start()
    assert session.messages[0].content == "t\ufffd"


def test_a_tool_call_that_cannot_start_is_answered_and_the_turn_goes_on() -> None:
    # A call whose name is not a string (from a complete= function; the wire refuses
    # it) made the tool lookup raise on the session's thread: the step waited forever.
    scheduler = TestScheduler()
    call = ToolCall.from_dict({"index": 0, "id": "c1", "function": {"name": "f"}})
    bad = replace(call, function=replace(call.function, name=["f"]))  # type: ignore[arg-type]
    first = reply(scheduler, Message(tool_calls=(bad,), finish_reason="tool_calls"))
    after = reply(scheduler, Message(content="recovered"))
    session = ChatSession(
        complete=ScriptedCompletion(first, after), scheduler=scheduler, tools=[_f],
    )
    outcomes: list[Any] = []
    at(scheduler, 100, lambda: session.ask("one").subscribe(
        on_error=outcomes.append, on_completed=lambda: outcomes.append("done")))
    scheduler.start()
    assert outcomes == ["done"]
    roles = [m.role for m in session.messages]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert "could not start" in (session.messages[2].content or "")
    assert session.messages[-1].content == "recovered"


def _f() -> str:
    """A tool."""
    return "ok"
