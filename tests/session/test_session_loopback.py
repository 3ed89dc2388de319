"""ChatSession over real HTTP: turns through the loopback FakeServer and its offline model."""

from __future__ import annotations

import threading

from rxchat import ChatClient, ChatSession, Message
from rxchat.testing import STALL, FakeServer, Reply, chunk
from tests.conftest import collect


def test_three_real_turns_send_the_growing_conversation(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(Reply.text("Hi Ann!", reasoning="greet her"))
    session = ChatSession(client, model="rxchat-offline", system="Be brief.")
    for text in ("My name is Ann.", "I like tea.", "What do you know?"):
        assert collect(session.send(text)).completed

    bodies = [r.json for r in server.requests]
    assert [len(b["messages"]) for b in bodies] == [2, 4, 6]
    assert all(b["stream"] is True and b["model"] == "rxchat-offline" for b in bodies)
    assert bodies[1]["messages"][:3] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "My name is Ann."},
        {"role": "assistant", "content": "Hi Ann!"},
    ]
    assert bodies[2]["messages"][:4] == bodies[1]["messages"] and len(session.messages) == 7
    assert session.messages[2].reasoning_content == "greet her"
    last = session.messages[-1].content or ""
    assert "your name is Ann" in last and "you like tea" in last


def test_cancel_closes_the_connection_and_keeps_the_partial_reply(
    server: FakeServer, client: ChatClient
) -> None:
    stalled = Reply.events([chunk(role="assistant", content="partial")], done=False)
    server.enqueue(stalled.then(STALL), Reply.text("fine"))
    session = ChatSession(client)
    first = threading.Event()
    session.subscribe(lambda s: first.set() if s.partial else None)
    deltas = session.send("tell me everything")
    assert first.wait(5)

    assert session.cancel() is True
    assert server.wait_for_disconnects(1)
    assert collect(deltas).messages[-1].finish_reason == "cancelled"
    assert session.messages[-1] == Message(content="partial", finish_reason="cancelled")
    assert collect(session.send("and?")).completed
    assert server.requests[1].json["messages"][-2:] == [
        {"role": "assistant", "content": "partial"}, {"role": "user", "content": "and?"}
    ]


def test_turns_sent_from_five_threads_run_one_at_a_time(server: FakeServer) -> None:
    client = ChatClient(server.base_url, "sk-test", max_retries=0)
    session = ChatSession(client)
    replies: list[Message] = []
    gate = threading.Barrier(5)
    done = [threading.Event() for _ in range(5)]

    def user(n: int) -> None:
        gate.wait()
        session.send(f"message {n}").subscribe(replies.append, on_completed=done[n].set)

    threads = [threading.Thread(target=user, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    assert all(event.wait(10) for event in done)
    for thread in threads:
        thread.join(5)

    assert [len(r.messages) for r in server.requests] == [1, 3, 5, 7, 9]
    assert len(session.messages) == 10
    asked = [r.messages[-1]["content"] for r in server.requests]
    assert [m.content for m in session.messages[::2]] == asked
    client.close()
