"""The offline model answers from the conversation it was sent."""

from __future__ import annotations

from typing import Any

import pytest

from rxchat.testing import offline_answer


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def test_first_turn_quotes_the_message() -> None:
    answer = offline_answer([user("hello")])
    assert '"hello"' in answer and "first turn" in answer


def test_later_turns_count_and_recall_facts() -> None:
    answer = offline_answer(
        [user("I like tea and my name is Bo."), {"role": "assistant", "content": "ok"},
         user("I live in Paris, but I love green tea"), user("What do you remember?")]
    )
    assert "turn 3" in answer
    assert "your name is Bo," in answer
    assert "you like tea," in answer and "you like green tea" in answer
    assert "you live in Paris" in answer
    assert "tea and my name" not in answer


def test_facts_with_emoji_and_accents_are_recalled() -> None:
    answer = offline_answer([user("I like tea 🍵 and I live in Zürich."), user("and?")])
    assert "you like tea 🍵" in answer and "you live in Zürich" in answer


def test_system_prompt_is_acknowledged() -> None:
    answer = offline_answer([{"role": "system", "content": "Be terse."}, user("hi")])
    assert "Be terse." in answer


def test_no_user_message_gets_a_greeting() -> None:
    assert "offline model" in offline_answer([])


def test_the_server_answers_a_non_streamed_request_with_one_completion() -> None:
    import openai

    from rxchat.testing import FakeServer

    with FakeServer() as server:
        sdk = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        whole = sdk.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
        assert whole.choices[0].message.content == offline_answer([user("hi")])
        assert whole.usage is not None and whole.usage.total_tokens > 0
        with pytest.raises(openai.BadRequestError, match="messages"):
            sdk.chat.completions.create(model="m", messages=[], extra_body={"messages": "x"})


ADD_TOOL: Any = [
    {"type": "function", "function": {"name": "add", "parameters": {"type": "object"}}}]


def test_offline_model_calls_the_tool_a_user_message_names() -> None:
    from rxchat.testing import offline_tool_call

    call = offline_tool_call([user('please add {"a": 1, "b": 2} now')], ADD_TOOL)
    assert call == {"id": "call_1", "name": "add", "arguments": '{"a": 1, "b": 2}'}
    assert offline_tool_call([user("add")], ADD_TOOL) == {
        "id": "call_1", "name": "add", "arguments": "{}"}
    assert offline_tool_call([user("address")], ADD_TOOL) is None  # a whole word only
    assert offline_tool_call([user("add")], None) is None  # no tools offered
    assert offline_tool_call([user("add {oops")], ADD_TOOL) == {
        "id": "call_1", "name": "add", "arguments": "{oops"}  # sent as written


def test_the_server_plays_the_tool_loop_to_the_openai_sdk() -> None:
    import openai

    from rxchat.testing import FakeServer

    with FakeServer() as server:
        sdk: Any = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        messages: list[Any] = [user('add {"a": 40, "b": 2}')]
        first = sdk.chat.completions.create(model="m", messages=messages, tools=ADD_TOOL)
        (call,) = first.choices[0].message.tool_calls or []
        assert first.choices[0].finish_reason == "tool_calls"
        assert call.function.name == "add" and call.function.arguments == '{"a": 40, "b": 2}'
        messages += [first.choices[0].message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": "42"}]
        second = sdk.chat.completions.create(model="m", messages=messages, tools=ADD_TOOL)
        assert second.choices[0].message.content == "The add tool returned: 42."
        streamed = sdk.chat.completions.create(
            model="m", messages=messages[:1], tools=ADD_TOOL, stream=True)
        names = [c.function.name for chunk in streamed for c in chunk.choices[0].delta.tool_calls
                 or () if chunk.choices and c.function and c.function.name]
        assert names == ["add"]
