"""Tools at the edges: a tool's own CancelledError, a retried tool turn, and the
`tool_calls()` operator on interleaved fragments of parallel calls.

Each test here failed on 0.2; hangs are guarded by `ops.timeout`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler

from rxchat import ChatClient, ChatSession, Message, ToolCall, tool
from rxchat import operators as rxops
from rxchat._models import FunctionCall
from rxchat.testing import FakeServer, Reply
from tests.conftest import wait_until
from tests.tools.test_session_tools_loopback import calls, tool_messages

HANG = 10.0
on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed


def final(deltas: Observable[Message]) -> Message:
    reply: Observable[Message] = deltas.pipe(rxops.final_message())
    return reply.pipe(ops.timeout(HANG)).run()


# -- 3: an async tool's own CancelledError ---------------------------------------------


@tool
async def gives_up() -> str:
    """Wait for a helper task that it cancels itself, as library code may."""
    helper = asyncio.ensure_future(asyncio.sleep(HANG * 10))
    helper.cancel()
    await helper
    return "never"


def test_an_async_tool_cancelling_itself_is_a_tool_error_and_the_turn_goes_on(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(calls(("c1", "gives_up", {})), Reply.text("I could not."))
    session = ChatSession(client, tools=[gives_up])
    assert final(session.ask("try")).content == "I could not."
    ((call_id, content),) = tool_messages(server)
    assert call_id == "c1" and "CancelledError" in content
    (error,) = session.state.tool_errors
    assert isinstance(error.__cause__, asyncio.CancelledError)
    assert [m.role for m in session.messages] == ["user", "assistant", "tool", "assistant"]
    session.dispose()


# -- 4: ask(q).pipe(ops.retry(n)) on a tool turn ----------------------------------------


def test_a_retried_tool_turn_continues_from_its_committed_steps(
    server: FakeServer, client: ChatClient
) -> None:
    sent: list[str] = []

    @tool
    def send_mail(to: str) -> str:
        """Send a mail (a side effect that must not happen twice)."""
        sent.append(to)
        return "sent"

    server.enqueue(
        calls(("m1", "send_mail", {"to": "ann"})),
        Reply.error(500, {"error": {"message": "overloaded"}}),
        Reply.text("Mail sent."),
    )
    session = ChatSession(client, tools=[send_mail])
    assert final(session.ask("mail ann").pipe(ops.retry(3))).content == "Mail sent."

    assert sent == ["ann"]
    assert [(m.role, m.content) for m in session.messages] == [
        ("user", "mail ann"), ("assistant", None), ("tool", "sent"),
        ("assistant", "Mail sent.")]
    first, failed, retried = server.requests
    assert [m["role"] for m in first.messages] == ["user"]
    assert failed.messages == retried.messages  # the same context, asked once
    assert [(m["role"], m.get("content")) for m in retried.messages] == [
        ("user", "mail ann"), ("assistant", None), ("tool", "sent")]
    session.dispose()


def test_a_retried_ask_whose_first_step_failed_asks_its_message_once(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(Reply.error(500, {"error": {"message": "overloaded"}}), Reply.text("Hi."))
    session = ChatSession(client)
    assert final(session.ask("hello").pipe(ops.retry(2))).content == "Hi."
    assert [(m.role, m.content) for m in session.messages] == [
        ("user", "hello"), ("assistant", "Hi.")]
    assert [m["content"] for m in server.requests[-1].messages] == ["hello"]
    assert wait_until(lambda: session.state.status == "idle", HANG)
    session.dispose()


# -- 10: tool_calls() with interleaved fragments of parallel calls ----------------------


def piece(index: int, id: str | None = None, name: str | None = None, args: str = "") -> Message:
    return Message(tool_calls=(ToolCall(index=index, id=id, function=FunctionCall(name, args)),))


def test_tool_calls_waits_for_a_call_whose_arguments_still_arrive() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(
        on_next(210, piece(0, "a", "f")),
        on_next(220, piece(1, "b", "g")),  # call 1's head before call 0's arguments
        on_next(230, piece(0, args='{"x": ')),
        on_next(240, piece(1, args='{"y": 2}')),
        on_next(250, piece(0, args="1}")),
        on_next(260, Message(finish_reason="tool_calls")),
        on_completed(270),
    )
    results = scheduler.start(lambda: source.pipe(rxops.tool_calls()))
    assert results.messages == [
        on_next(250, ToolCall(index=0, id="a", function=FunctionCall("f", '{"x": 1}'))),
        on_next(260, ToolCall(index=1, id="b", function=FunctionCall("g", '{"y": 2}'))),
        on_completed(270),
    ]


def test_tool_calls_keeps_a_call_without_object_arguments_until_the_choice_ends() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(
        on_next(210, piece(0, "a", "f", "")),
        on_next(220, piece(1, "b", "g", "{}")),
        on_next(230, piece(2, "c", "h", "{}")),
        on_next(240, Message(finish_reason="tool_calls")),
        on_completed(250),
    )
    results: Any = scheduler.start(lambda: source.pipe(rxops.tool_calls()))
    assert [(m.time, m.value.value.id) for m in results.messages[:-1]] == [
        (230, "b"), (240, "a"), (240, "c")]
