"""Hedged requests inside a ChatSession: which route answered is kept with the reply,
in the session file and in the store; context survives a change of route; every step of
a tool turn is hedged."""

from __future__ import annotations

from pathlib import Path

from reactivex.testing import ReactiveTest, TestScheduler

from rxchat import ChatClient, ChatSession, Message, hedge
from rxchat.stores import SQLiteStore
from rxchat.testing import FakeServer, Reply, closed_port
from tests.conftest import collect

on_next, on_completed = ReactiveTest.on_next, ReactiveTest.on_completed


def client_of(server: FakeServer | None, model: str) -> ChatClient:
    base_url = server.base_url if server else f"http://127.0.0.1:{closed_port()}/v1"
    return ChatClient(base_url, "key", model=model, max_retries=0)


def test_two_turns_answered_by_different_routes_keep_their_context(tmp_path: Path) -> None:
    with FakeServer() as one, FakeServer() as two:
        one.enqueue(Reply.text("Hello Ann."), Reply.error(500, "down"))
        two.enqueue(Reply.text("You are Ann."))
        store = SQLiteStore(tmp_path / "log.db")
        complete = hedge(client_of(one, "model-1"), (client_of(two, "x"), "model-2"), after=5.0)
        session = ChatSession(complete=complete, store=store)
        assert collect(session.send("I am Ann.")).completed
        assert collect(session.send("Who am I?")).completed

        assert two.requests[0].json["messages"] == [
            {"role": "user", "content": "I am Ann."},
            {"role": "assistant", "content": "Hello Ann."},
            {"role": "user", "content": "Who am I?"},
        ]
        first, second = session.messages[1], session.messages[3]
        assert first.route == f"model-1 at {one.base_url}"
        assert second.route == f"model-2 at {two.base_url}" and second.content == "You are Ann."
        assert all(m.route is None for m in session.messages[::2])  # the user's messages

        session.save(tmp_path / "chat.json")
        assert ChatSession.load(tmp_path / "chat.json").messages == session.messages
        [summary] = store.list()
        stored = store.get(summary.id).messages
        assert [m.route for m in stored] == [None, first.route, None, second.route]
        store.close()


def test_every_step_of_a_tool_turn_is_hedged() -> None:
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    with FakeServer() as working:
        complete = hedge(client_of(None, "m"), client_of(working, "m"), after=5.0)
        session = ChatSession(complete=complete, tools=[add])
        assert collect(session.send('use add {"a": 2, "b": 3}')).completed
    call, result, answer = session.messages[1:]
    assert call.tool_calls and call.route == f"m at {working.base_url}"
    assert result.role == "tool" and result.route is None
    assert "5" in (answer.content or "") and answer.route == call.route


def test_a_session_in_virtual_time_commits_the_winners_name() -> None:
    scheduler = TestScheduler()
    slow = scheduler.create_cold_observable(on_next(100, Message(content="late")))
    quick = scheduler.create_cold_observable(
        on_next(3, Message(content="hi")), on_completed(4)
    )

    def first(params: object, **options: object) -> object:
        return slow

    def second(params: object, **options: object) -> object:
        return quick

    session = ChatSession(complete=hedge(first, second, after=10.0), scheduler=scheduler)
    session.send("hello")
    scheduler.advance_to(50)
    assert session.messages[-1] == Message(content="hi", route="route 2 (second)")
    assert slow.subscriptions[0].unsubscribe == quick.subscriptions[0].subscribe + 3
