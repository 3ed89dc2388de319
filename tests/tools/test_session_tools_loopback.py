"""The tool loop over real threads and a loopback server, checking what the server got.

Each test scripts the model's replies on a ``FakeServer`` (calls, then an answer),
runs real tools (plain, ``async def``, Observable) on the session's worker threads,
and asserts the request bodies: tool messages, their ids and their order.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.scheduler import NewThreadScheduler

from rxchat import ChatClient, ChatSession, ChatState, Message, ToolCall, tool
from rxchat import operators as rxops
from rxchat.errors import StepLimitError, ToolError
from rxchat.testing import FakeServer, Reply
from tests.conftest import wait_until

HANG = 10.0


def final(deltas: Observable[Message]) -> Message:
    """The whole reply of a turn's deltas (an error if it takes more than HANG s)."""
    reply: Observable[Message] = deltas.pipe(rxops.final_message())
    return reply.pipe(ops.timeout(HANG)).run()


def ask(session: ChatSession, text: str) -> str | None:
    return final(session.ask(text)).content


def tool_messages(server: FakeServer, request: int = -1) -> list[tuple[str, str]]:
    return [(m["tool_call_id"], m["content"]) for m in server.requests[request].messages
            if m["role"] == "tool"]


def tool_threads() -> int:
    return sum(t.name == "rxchat-tool" for t in threading.enumerate())


def client_threads() -> int:
    """Threads alive, without the fake server's (one per kept-alive connection)."""
    return sum(not t.name.startswith("rxchat-fake-server")
               and "process_request_thread" not in t.name for t in threading.enumerate())


def calls(*items: tuple[str, str, Any]) -> Reply:
    """A reply calling tools, in OpenAI's nested shape (arguments as a dict)."""
    return Reply.tool_calls([
        {"id": id, "type": "function", "function": {"name": name, "arguments": args}}
        for id, name, args in items
    ])


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first.
        b: The second.
    """
    return a + b


@tool
async def shout(text: str) -> str:
    """Upper-case a text, slowly."""
    await asyncio.sleep(0.01)
    return text.upper()


@tool
def countdown(n: int) -> Observable[int]:
    """Count down from n on another thread; the result is the last value, 0."""
    return reactivex.from_iterable(range(n, -1, -1), scheduler=NewThreadScheduler())


def test_plain_async_and_observable_tools_answer_in_call_order(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(calls(("c1", "add", {"a": 2, "b": 3}), ("c2", "shout", {"text": "hi"}),
                         ("c3", "countdown", {"n": 3})), Reply.text("All done."))
    session = ChatSession(client, tools=[add, shout, countdown])
    assert ask(session, "go") == "All done."

    first, second = server.requests
    assert [t["function"]["name"] for t in first.json["tools"]] == ["add", "shout", "countdown"]
    assert first.json["tools"][0]["function"]["parameters"]["properties"]["a"] == {
        "type": "integer", "description": "The first."}
    assert [m["role"] for m in second.messages] == ["user", "assistant", "tool", "tool", "tool"]
    assert [c["id"] for c in second.messages[1]["tool_calls"]] == ["c1", "c2", "c3"]
    assert tool_messages(server) == [("c1", "5"), ("c2", "HI"), ("c3", "0")]
    assert wait_until(lambda: tool_threads() == 0, HANG)


def test_at_most_max_tool_concurrency_calls_run_at_once(
    server: FakeServer, client: ChatClient
) -> None:
    lock, now, peak = threading.Lock(), [0], [0]

    def busy(i: int) -> int:
        """Hold a slot for a moment."""
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.05)
        with lock:
            now[0] -= 1
        return i

    server.enqueue(calls(*[(f"c{i}", "busy", {"i": i}) for i in range(6)]), Reply.text("ok"))
    session = ChatSession(client, tools=[busy], max_tool_concurrency=2)
    assert ask(session, "go") == "ok"
    assert peak[0] == 2
    assert tool_messages(server) == [(f"c{i}", str(i)) for i in range(6)]


def test_cancel_while_tools_run_disposes_them_and_threads_end(
    server: FakeServer, client: ChatClient
) -> None:
    baseline = client_threads()
    started, cancelled = threading.Event(), threading.Event()
    subscribed, disposed = threading.Event(), threading.Event()

    async def wait_forever() -> str:
        """Wait until cancelled."""
        started.set()
        try:
            await asyncio.sleep(HANG * 10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    def watch() -> Observable[str]:
        """Never answer; note when subscribed and when disposed."""
        def subscribe(_observer: Any, _scheduler: Any = None) -> Disposable:
            subscribed.set()
            return Disposable(disposed.set)
        return reactivex.create(subscribe)

    server.enqueue(calls(("a", "wait_forever", {}), ("w", "watch", {})))
    session = ChatSession(client, tools=[wait_forever, watch])
    events: list[Any] = []
    subscription = session.ask("go").subscribe(events.append, events.append,
                                               lambda: events.append("done"))
    # both tools must really be running: a call cancelled before its worker starts
    # is never made at all (test_tools.py checks that on its own)
    assert started.wait(HANG) and subscribed.wait(HANG)
    assert len(session.state.running_tools) == 2
    assert session.cancel()
    assert cancelled.wait(HANG) and disposed.wait(HANG)
    assert wait_until(lambda: events[-1:] == ["done"], HANG)
    assert [(m.role, m.tool_call_id) for m in session.messages] == [
        ("user", None), ("assistant", None), ("tool", "a"), ("tool", "w")]
    assert all(m.content and "cancelled" in m.content for m in session.messages[2:])
    assert wait_until(lambda: client_threads() <= baseline, HANG)
    subscription.dispose()
    # the history is valid for the next request: every call id has its result
    server.enqueue(Reply.text("fine"))
    assert ask(session, "again") == "fine"
    assert [m["tool_call_id"] for m in server.requests[-1].messages if m["role"] == "tool"] == [
        "a", "w"]


@pytest.mark.parametrize("answer", [
    False, "awaitable", "observable",
], ids=["bool", "awaitable", "observable"])
def test_a_refused_call_is_declined_and_the_others_run(
    server: FakeServer, client: ChatClient, answer: Any
) -> None:
    asked: list[ToolCall] = []

    def approve(call: ToolCall) -> Any:
        asked.append(call)
        ok = call.id != "no"
        if answer == "awaitable":
            async def decide() -> bool:
                return ok
            return decide()
        if answer == "observable":
            return reactivex.timer(0.01).pipe(ops.map(lambda _: ok))
        return ok

    server.enqueue(calls(("yes", "add", {"a": 1, "b": 1}), ("no", "add", {"a": 2, "b": 2})),
                   Reply.text("ok"))
    session = ChatSession(client, tools=[add], approve=approve)
    assert ask(session, "go") == "ok"
    assert sorted(c.id or "" for c in asked) == ["no", "yes"]
    (yes, no) = tool_messages(server)
    assert yes == ("yes", "2") and no[0] == "no" and "declined" in no[1]


def test_invalid_json_and_unknown_tools_become_error_messages(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(Reply.tool_calls([
        {"id": "bad", "name": "add", "arguments": '{"a": 1, "b": '},
        {"id": "type", "name": "add", "arguments": '{"a": 1, "b": "two"}'},
        {"id": "who", "name": "missing", "arguments": "{}"},
    ]), Reply.text("sorry"))
    session = ChatSession(client, tools=[add])
    assert ask(session, "go") == "sorry"
    results = dict(tool_messages(server))
    assert results["bad"].startswith("Error:") and "not valid JSON" in results["bad"]
    assert "arguments.b must be an integer" in results["type"]
    assert "no tool named 'missing'" in results["who"] and "'add'" in results["who"]
    errors = session.state.tool_errors
    assert [e.tool_call_id for e in errors] and all(isinstance(e, ToolError) for e in errors)
    assert sorted(e.tool_call_id or "" for e in errors) == ["bad", "type", "who"]


def test_step_limit_then_regenerate_never_reruns_a_completed_call(
    server: FakeServer, client: ChatClient
) -> None:
    runs: list[int] = []

    def record(n: int) -> int:
        """Record n."""
        runs.append(n)
        return n

    server.enqueue(calls(("r1", "record", {"n": 1})), calls(("r2", "record", {"n": 2})))
    session = ChatSession(client, tools=[record], max_steps=2)
    with pytest.raises(StepLimitError, match="max_steps"):
        ask(session, "go")
    assert session.state.status == "error" and runs == [1, 2]
    assert [m.role for m in session.messages] == ["user", "assistant", "tool", "assistant", "tool"]

    server.enqueue(Reply.text("1 and 2"))
    assert final(session.regenerate()).content == "1 and 2" and runs == [1, 2]
    assert tool_messages(server) == [("r1", "1"), ("r2", "2")]
    assert [m["role"] for m in server.requests[-1].messages][-1] == "tool"


def test_a_server_error_mid_loop_keeps_the_steps_and_regenerate_continues(
    server: FakeServer, client: ChatClient
) -> None:
    runs: list[int] = []

    def record(n: int) -> int:
        """Record n."""
        runs.append(n)
        return n

    server.enqueue(calls(("r1", "record", {"n": 1})), Reply.error(500, {"error": {
        "message": "overloaded"}}), Reply.text("one"))
    session = ChatSession(client, tools=[record])
    with pytest.raises(Exception, match="overloaded"):
        ask(session, "go")
    assert [m.role for m in session.messages] == ["user", "assistant", "tool"]
    assert final(session.regenerate()).content == "one" and runs == [1]
    assert server.requests[-1].messages == server.requests[-2].messages


def test_the_offline_model_calls_a_named_tool_and_answers_with_its_result(
    server: FakeServer, client: ChatClient
) -> None:
    session = ChatSession(client, tools=[add])
    assert ask(session, 'Please add {"a": 20, "b": 22}') == "The add tool returned: 42."
    assert [m.role for m in session.messages] == ["user", "assistant", "tool", "assistant"]
    assert "You said" in (ask(session, "thanks") or "")


def test_send_accepts_a_tool_message_as_a_dict(server: FakeServer, client: ChatClient) -> None:
    session = ChatSession(client)
    server.enqueue(Reply.tool_calls([{"id": "x1", "name": "f", "arguments": "{}"}]),
                   Reply.text("thanks"))
    assert ask(session, "call f") is None
    result = {"role": "tool", "tool_call_id": "x1", "content": "42"}
    assert final(session.send(result)).content == "thanks"
    assert server.requests[-1].messages[-1] == result


def test_a_subscriber_may_cancel_from_the_tools_state(
    server: FakeServer, client: ChatClient
) -> None:
    release = threading.Event()

    def slow() -> str:
        """Block until released."""
        release.wait(HANG)
        return "late"

    server.enqueue(calls(("s", "slow", {})))
    session = ChatSession(client, tools=[slow])
    def cancel_at_tools(state: ChatState) -> None:
        if state.status == "tools":
            session.cancel()

    session.subscribe(cancel_at_tools)
    session.send("go")
    assert wait_until(lambda: len(session.messages) == 3, HANG)
    release.set()
    assert wait_until(lambda: tool_threads() == 0, HANG)
    assert "cancelled" in (session.messages[-1].content or "")
    assert len(session.messages) == 3  # the plain tool's late result was dropped
