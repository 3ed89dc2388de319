"""The offline model answers from the conversation it was sent."""

from __future__ import annotations

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
