"""What a turn sends: request messages, reasoning dropped, trimmed to a context window."""

from __future__ import annotations

from typing import Any

from reactivex.testing import ReactiveTest, TestScheduler

from rxchat import ChatMessage, ChatSession, FunctionCall, Message, ToolCall
from rxchat._session.context import estimate_tokens, request_messages
from rxchat.testing import ScriptedCompletion

SYSTEM = Message(role="system", content="S")


def user(text: str) -> Message:
    return Message(role="user", content=text)


def one_each(_message: Any) -> int:
    return 1


def contents(wires: list[dict[str, Any]]) -> list[Any]:
    return [w["content"] for w in wires]


def test_the_default_estimate_is_four_characters_per_token_plus_four() -> None:
    assert estimate_tokens({"role": "user", "content": ""}) == 4
    assert estimate_tokens({"role": "user", "content": "abcd"}) == 5
    assert estimate_tokens({"role": "user", "content": "abcde"}) == 6
    call = {"function": {"name": "get", "arguments": '{"q":1}'}}  # 3 + 7 characters
    assert estimate_tokens({"role": "assistant", "content": None, "tool_calls": [call]}) == 7
    parts = [{"type": "text", "text": "abcdefgh"}]
    assert estimate_tokens({"role": "user", "content": parts}) == 6


def test_no_window_sends_everything_without_reasoning() -> None:
    history = (SYSTEM, user("q"), Message(content="a", reasoning_content="hmm"))
    wires = request_messages(history, user("next"))
    assert wires == [
        {"role": "system", "content": "S"}, {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a"}, {"role": "user", "content": "next"},
    ]


def test_an_empty_cancelled_reply_is_kept_in_history_but_not_sent() -> None:
    empty = Message(content="", finish_reason="cancelled")
    history = (SYSTEM, user("q"), empty, user("r"), Message(content="b"))
    assert contents(request_messages(history, user("next"))) == ["S", "q", "r", "b", "next"]
    trim = request_messages(history, user("3"), context_window=4, count_tokens=one_each)
    assert contents(trim) == ["S", "r", "b", "3"]


def test_the_oldest_turns_are_dropped_first() -> None:
    history = (SYSTEM, user("1"), Message(content="a"), user("2"), Message(content="b"))
    trim = request_messages(history, user("3"), context_window=4, count_tokens=one_each)
    assert contents(trim) == ["S", "2", "b", "3"]
    assert contents(request_messages(history, user("3"), context_window=3,
                                     count_tokens=one_each)) == ["S", "3"]
    assert len(request_messages(history, user("3"), context_window=6,
                                count_tokens=one_each)) == 6


def test_the_system_prompt_and_new_message_are_sent_even_over_budget() -> None:
    history = (SYSTEM, user("1"), Message(content="a"))
    assert contents(request_messages(history, user("x" * 400), context_window=10)) == [
        "S", "x" * 400
    ]


def tool_turn() -> tuple[Message, ...]:
    call = ToolCall(id="c1", function=FunctionCall("get", "{}"))
    return (user("weather?"), Message(content=None, tool_calls=(call,)),
            Message(role="tool", content="sunny", tool_call_id="c1"), Message(content="Sunny."))


def test_a_tool_call_is_never_separated_from_its_results() -> None:
    history = (SYSTEM, *tool_turn(), user("2"), Message(content="b"))
    for window in range(2, 10):
        wires = request_messages(history, user("3"), context_window=window,
                                 count_tokens=one_each)
        expected: list[str | None] = ["S", "2", "b", "3"] if window >= 4 else ["S", "3"]
        if window >= 8:
            expected[1:1] = ["weather?", None, "sunny", "Sunny."]
        assert contents(wires) == expected


def test_a_new_tool_result_keeps_the_call_it_answers() -> None:
    call = ToolCall(id="c1", function=FunctionCall("get", "{}"))
    history = (SYSTEM, user("1"), Message(content="a"), user("weather?"),
               Message(content=None, tool_calls=(call,)))
    result = Message(role="tool", content="sunny", tool_call_id="c1")
    wires = request_messages(history, result, context_window=1, count_tokens=one_each)
    assert [w["role"] for w in wires] == ["system", "user", "assistant", "tool"]
    assert wires[2]["tool_calls"][0]["id"] == "c1"


def test_a_session_trims_requests_but_not_its_history() -> None:
    scheduler = TestScheduler()

    def reply() -> Any:
        return scheduler.create_cold_observable(
            ReactiveTest.on_next(10, Message(content="r")), ReactiveTest.on_completed(20)
        )

    complete = ScriptedCompletion(reply(), reply(), reply())
    session = ChatSession(system="S", context_window=4, count_tokens=one_each,
                          complete=complete, scheduler=scheduler)
    for text in ("1", "2", "3"):
        session.on_next(ChatMessage.user(text))
        scheduler.advance_by(50)
    assert [contents(c["messages"]) for c in complete.calls] == [
        ["S", "1"], ["S", "1", "r", "2"], ["S", "2", "r", "3"]
    ]
    assert len(session.messages) == 7
