"""The tool loop in virtual time: marble replies, Observable tools on the TestScheduler.

No thread and no socket: the session's scheduler is a ``TestScheduler``, so the tools
run on it too (an Observable tool is subscribed with it, a plain one is called on it).
Each test asserts the whole state sequence, what each request sent, and, for cancel,
the tool's subscription window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.coldobservable import ColdObservable

from rxchat import ChatSession, ChatState, FunctionCall, Message, ToolCall, tool
from rxchat.errors import StepLimitError, StreamInterrupted, ToolError
from rxchat.testing import ScriptedCompletion

on_next, on_completed = ReactiveTest.on_next, ReactiveTest.on_completed
on_error, subscribe = ReactiveTest.on_error, ReactiveTest.subscribe


def call_delta(index: int, id: str | None, name: str | None, args: str) -> Message:
    return Message(tool_calls=(ToolCall(index, id, "function", FunctionCall(name, args)),))


def calls_reply(scheduler: TestScheduler, *calls: tuple[str, str, str]) -> ColdObservable[Any]:
    """A cold reply calling tools: each call's head and arguments 10 ticks apart, then
    ``finish_reason="tool_calls"``."""
    notes, time = [], 0
    for index, (id, name, args) in enumerate(calls):
        time += 10
        notes.append(on_next(time, call_delta(index, id, name, "")))
        time += 10
        notes.append(on_next(time, call_delta(index, None, None, args)))
    time += 10
    notes += [on_next(time, Message(finish_reason="tool_calls")), on_completed(time)]
    return scheduler.create_cold_observable(*notes)


def text_reply(scheduler: TestScheduler, *pieces: str) -> ColdObservable[Any]:
    notes = [on_next(10 * (i + 1), Message(content=p)) for i, p in enumerate(pieces)]
    end = 10 * (len(pieces) + 1)
    notes += [on_next(end, Message(finish_reason="stop")), on_completed(end)]
    return scheduler.create_cold_observable(*notes)


def wire(params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What a request sent, compactly: (role, content, tool call ids or tool_call_id)."""
    out: list[tuple[Any, ...]] = []
    for m in params["messages"]:
        ids = [c["id"] for c in m.get("tool_calls", ())] or m.get("tool_call_id")
        out.append((m["role"], m["content"], ids) if ids else (m["role"], m["content"]))
    return out


def at(scheduler: TestScheduler, time: float, action: Callable[[], object]) -> None:
    def run(_scheduler: object, _state: object) -> None:
        action()

    scheduler.schedule_absolute(time, run)


def summary(state: ChatState) -> tuple[Any, ...]:
    partial = state.partial
    shown = (partial.content or [c.id for c in partial.tool_calls]) if partial else None
    return (state.status, shown, len(state.messages), state.step,
            tuple(c.id for c in state.running_tools))


def slow_tool(scheduler: TestScheduler, delays: dict[str, int], log: list[str]) -> Any:
    """An Observable tool answering `city` after `delays[city]` virtual ticks."""

    @tool
    def weather(city: str) -> Observable[str]:
        """The weather in a city."""
        log.append(city)
        return reactivex.timer(delays[city], scheduler=scheduler).pipe(
            ops.map(lambda _: f"sunny in {city}")
        )

    return weather


def test_two_steps_every_state_and_every_request() -> None:
    scheduler, ran = TestScheduler(), list[str]()
    complete = ScriptedCompletion(
        calls_reply(scheduler, ("c1", "weather", '{"city": "Oslo"}')),
        text_reply(scheduler, "Sunny", "!"),
    )
    session = ChatSession(tools=[slow_tool(scheduler, {"Oslo": 5}, ran)],
                          complete=complete, scheduler=scheduler)
    at(scheduler, 300, lambda: session.on_next("Weather in Oslo?"))
    observer = scheduler.start(lambda: session.pipe(ops.map(summary)))

    assert observer.messages == [
        on_next(200, ("idle", None, 0, 0, ())),
        on_next(300, ("streaming", None, 0, 1, ())),
        on_next(310, ("streaming", ["c1"], 0, 1, ())),
        on_next(320, ("streaming", ["c1"], 0, 1, ())),
        on_next(330, ("streaming", ["c1"], 0, 1, ())),
        on_next(330, ("tools", None, 2, 1, ("c1",))),  # the step is committed
        on_next(335, ("streaming", None, 3, 2, ())),  # its result too; asked again
        on_next(345, ("streaming", "Sunny", 3, 2, ())),
        on_next(355, ("streaming", "Sunny!", 3, 2, ())),
        on_next(365, ("streaming", "Sunny!", 3, 2, ())),
        on_next(365, ("idle", None, 4, 0, ())),
    ]
    step_one = [("user", "Weather in Oslo?")]
    step_two = [*step_one, ("assistant", None, ["c1"]), ("tool", "sunny in Oslo", "c1")]
    assert [wire(c) for c in complete.calls] == [step_one, step_two]
    assert all(c["tools"][0]["function"]["name"] == "weather" for c in complete.calls)
    assert ran == ["Oslo"] and session.messages[-1].content == "Sunny!"


def test_parallel_calls_finish_out_of_order_and_commit_in_call_order() -> None:
    scheduler, ran = TestScheduler(), list[str]()
    complete = ScriptedCompletion(
        calls_reply(scheduler, ("a", "weather", '{"city": "A"}'),
                    ("b", "weather", '{"city": "B"}'), ("c", "weather", '{"city": "C"}')),
        text_reply(scheduler, "done"),
    )
    session = ChatSession(
        tools=[slow_tool(scheduler, {"A": 30, "B": 10, "C": 5}, ran)],
        max_tool_concurrency=2, complete=complete, scheduler=scheduler,
    )
    running: list[tuple[float, tuple[str | None, ...]]] = []
    session.subscribe(lambda s: running.append((scheduler.clock, tuple(
        c.id for c in s.running_tools))) if s.status == "tools" else None)
    at(scheduler, 100, lambda: session.on_next("go"))
    scheduler.start()

    # the reply ends at 170: A and B start; B ends at 180 and C starts; C ends at 185
    assert running == [(170, ("a", "b")), (180, ("a", "c")), (185, ("a",))]
    assert ran == ["A", "B", "C"]
    assert wire(complete.calls[1])[2:] == [
        ("tool", "sunny in A", "a"), ("tool", "sunny in B", "b"), ("tool", "sunny in C", "c"),
    ]


def test_cancel_during_a_tool_disposes_it_and_answers_every_call() -> None:
    scheduler = TestScheduler()
    answer = scheduler.create_cold_observable(on_next(50, "late"), on_completed(50))

    @tool
    def lookup(key: str) -> Observable[str]:
        """Look a key up."""
        return answer

    complete = ScriptedCompletion(calls_reply(
        scheduler, ("k1", "lookup", '{"key": "x"}'), ("k2", "lookup", '{"key": "y"}')))
    session = ChatSession(tools=[lookup], max_tool_concurrency=1,
                          complete=complete, scheduler=scheduler)
    observer = scheduler.create_observer()
    at(scheduler, 100, lambda: session.ask("q").subscribe(observer))
    at(scheduler, 170, lambda: session.cancel())
    scheduler.start()

    assert answer.subscriptions == [subscribe(150, 170)]  # k2 never started
    assert [(m.role, m.tool_call_id) for m in session.messages] == [
        ("user", None), ("assistant", None), ("tool", "k1"), ("tool", "k2")]
    assert all("cancelled" in (m.content or "") for m in session.messages[2:])
    assert session.state.status == "idle" and session.state.running_tools == ()
    assert observer.messages[-2:] == [
        on_next(170, Message(finish_reason="cancelled")), on_completed(170)]
    assert len(complete.calls) == 1


def test_ask_carries_every_steps_deltas_and_completes_at_the_answer() -> None:
    scheduler = TestScheduler()
    complete = ScriptedCompletion(
        calls_reply(scheduler, ("c1", "weather", '{"city": "Rome"}')),
        text_reply(scheduler, "Warm"),
    )
    session = ChatSession(tools=[slow_tool(scheduler, {"Rome": 1}, [])],
                          complete=complete, scheduler=scheduler)
    observer = scheduler.start(lambda: session.ask("Rome?"))
    assert observer.messages == [
        on_next(210, call_delta(0, "c1", "weather", "")),
        on_next(220, call_delta(0, None, None, '{"city": "Rome"}')),
        on_next(230, Message(finish_reason="tool_calls")),
        on_next(241, Message(content="Warm")),
        on_next(251, Message(finish_reason="stop")),
        on_completed(251),
    ]


def test_step_limit_keeps_the_steps_and_regenerate_continues_without_rerunning() -> None:
    scheduler, ran = TestScheduler(), list[str]()
    complete = ScriptedCompletion(
        calls_reply(scheduler, ("c1", "weather", '{"city": "A"}')),
        calls_reply(scheduler, ("c2", "weather", '{"city": "B"}')),
        text_reply(scheduler, "A and B are sunny"),
    )
    session = ChatSession(tools=[slow_tool(scheduler, {"A": 1, "B": 1}, ran)], max_steps=2,
                          complete=complete, scheduler=scheduler)
    first = scheduler.create_observer()
    at(scheduler, 100, lambda: session.ask("both").subscribe(first))
    at(scheduler, 400, lambda: session.regenerate())
    states: list[ChatState] = []
    session.subscribe(states.append)
    scheduler.start()

    (end,) = [n for n in first.messages if getattr(n.value, "kind", None) == "E"]
    assert isinstance(getattr(end.value, "exception", None), StepLimitError)
    assert end.time == 162
    failed = next(s for s in states if s.status == "error")
    assert [m.role for m in failed.messages] == ["user", "assistant", "tool", "assistant", "tool"]
    assert failed.failed is None and "max_steps" in str(failed.error)
    # regenerate continues from the committed steps: no tool runs again
    assert wire(complete.calls[2]) == [
        *wire(complete.calls[1])[:3], ("assistant", None, ["c2"]), ("tool", "sunny in B", "c2")]
    assert ran == ["A", "B"]
    assert session.messages[-1].content == "A and B are sunny"
    assert [m.role for m in session.messages].count("user") == 1


def test_a_failed_step_keeps_the_committed_ones_and_regenerate_continues() -> None:
    scheduler, ran = TestScheduler(), list[str]()
    broken = scheduler.create_cold_observable(
        on_next(10, Message(content="Par")), on_error(20, StreamInterrupted("cut")))
    complete = ScriptedCompletion(
        calls_reply(scheduler, ("c1", "weather", '{"city": "A"}')), broken,
        text_reply(scheduler, "Sunny"),
    )
    session = ChatSession(tools=[slow_tool(scheduler, {"A": 1}, ran)],
                          complete=complete, scheduler=scheduler)
    at(scheduler, 100, lambda: session.on_next("A?"))
    errors: list[ChatState] = []
    session.subscribe(lambda s: errors.append(s) if s.status == "error" else None)
    at(scheduler, 300, lambda: session.regenerate())
    scheduler.start()

    assert [m.role for m in errors[0].messages] == ["user", "assistant", "tool"]
    assert isinstance(errors[0].error, StreamInterrupted)
    assert wire(complete.calls[2]) == wire(complete.calls[1])
    assert ran == ["A"]
    assert [m.role for m in session.messages] == ["user", "assistant", "tool", "assistant"]


def test_a_raising_tool_becomes_a_tool_message_and_its_error_is_in_the_state() -> None:
    scheduler = TestScheduler()

    def divide(a: float, b: float) -> float:
        """Divide."""
        return a / b

    complete = ScriptedCompletion(
        calls_reply(scheduler, ("d", "divide", '{"a": 1, "b": 0}')), text_reply(scheduler, "x"))
    session = ChatSession(tools=[divide], complete=complete, scheduler=scheduler)
    session.on_next("1/0")
    scheduler.start()

    (error,) = session.state.tool_errors
    assert isinstance(error, ToolError) and isinstance(error.__cause__, ZeroDivisionError)
    assert error.tool_call_id == "d" and error.tool_name == "divide"
    assert wire(complete.calls[1])[-1] == (
        "tool", "Error: the tool raised ZeroDivisionError: division by zero.", "d")


def test_without_tools_a_reply_with_tool_calls_ends_the_turn_as_before() -> None:
    scheduler = TestScheduler()
    complete = ScriptedCompletion(calls_reply(scheduler, ("c1", "f", "{}")))
    session = ChatSession(complete=complete, scheduler=scheduler)
    session.on_next("hi")
    scheduler.start()
    assert [m.role for m in session.messages] == ["user", "assistant"]
    assert session.messages[-1].tool_calls[0].id == "c1" and "tools" not in complete.calls[0]


def test_regenerating_a_turn_that_ran_tools_replaces_only_its_answer() -> None:
    scheduler, ran = TestScheduler(), list[str]()
    complete = ScriptedCompletion(
        calls_reply(scheduler, ("c1", "weather", '{"city": "A"}')),
        text_reply(scheduler, "Sunny"), text_reply(scheduler, "Bright"),
    )
    session = ChatSession(tools=[slow_tool(scheduler, {"A": 1}, ran)],
                          complete=complete, scheduler=scheduler)
    at(scheduler, 100, lambda: session.on_next("A?"))
    at(scheduler, 300, lambda: session.regenerate())
    scheduler.start()

    assert wire(complete.calls[2]) == wire(complete.calls[1]) and ran == ["A"]
    assert [(m.role, m.content) for m in session.messages][2:] == [
        ("tool", "sunny in A"), ("assistant", "Bright")]


@pytest.mark.parametrize("end", ["on_error", "close", "dispose"])
def test_ending_the_session_during_tools_leaves_every_call_answered(end: str) -> None:
    scheduler = TestScheduler()
    answer = scheduler.create_cold_observable(on_next(50, "late"), on_completed(50))

    def lookup() -> Observable[str]:
        """Never in time."""
        return answer

    session = ChatSession(tools=[lookup], complete=ScriptedCompletion(
        calls_reply(scheduler, ("k", "lookup", "{}"))), scheduler=scheduler)
    session.on_next("q")
    stop = {"on_error": lambda: session.on_error(RuntimeError("input")),
            "close": session.close, "dispose": session.dispose}[end]
    at(scheduler, 40, lambda: stop())
    scheduler.start()
    assert answer.subscriptions == [subscribe(30, 40)]
    assert [(m.role, m.tool_call_id) for m in session.messages] == [
        ("user", None), ("assistant", None), ("tool", "k")]
