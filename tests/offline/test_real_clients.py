"""`rxchat serve` answers real OpenAI clients the way a provider does.

The official ``openai`` SDK and LangChain's ``ChatOpenAI`` are pointed at a real
``rxchat serve`` subprocess on 127.0.0.1 and used as their own documentation shows:
the plain streaming loop (``chunk.choices[0].delta.content``), ``models.retrieve``,
``n``, a forced ``tool_choice``, and what a provider refuses with a 400.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import rxchat_serve

ADD_TOOL: Any = {"type": "function", "function": {
    "name": "add", "description": "Add two numbers.",
    "parameters": {"type": "object", "properties": {
        "a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}}}


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    with rxchat_serve() as base_url:
        yield base_url


@pytest.fixture
def sdk(served: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=served, api_key="sk-none", max_retries=0) as client:
        yield client


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


# --- the openai SDK ------------------------------------------------------------------


def test_the_sdk_plain_streaming_loop_runs(sdk: openai.OpenAI) -> None:
    """OpenAI's own example indexes ``choices[0]`` of every chunk: no chunk may lack it."""
    stream = sdk.chat.completions.create(
        model="gpt-4o-mini", messages=user("My name is Ann."), stream=True)
    text = ""
    models = set()
    for chunk in stream:
        text += chunk.choices[0].delta.content or ""
        models.add(chunk.model)
    assert text.startswith('You said: "My name is Ann."')
    assert models == {"gpt-4o-mini"}  # every chunk echoes the requested model


def test_usage_comes_last_and_only_when_asked(sdk: openai.OpenAI) -> None:
    chunks = list(sdk.chat.completions.create(
        model="m", messages=user("hi"), stream=True,
        stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0
    assert all(c.choices and c.usage is None for c in chunks[:-1])
    plain = list(sdk.chat.completions.create(
        model="m", messages=user("hi"), stream=True,
        stream_options={"include_usage": False}))
    assert all(c.choices and c.usage is None for c in plain)


def test_models_retrieve_finds_a_listed_model_and_404s_others(sdk: openai.OpenAI) -> None:
    listed = [m.id for m in sdk.models.list()]
    assert listed == ["rxchat-offline"]
    model = sdk.models.retrieve("rxchat-offline")
    assert (model.id, model.object) == ("rxchat-offline", "model")
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        sdk.models.retrieve("gpt-5")


def test_an_empty_message_list_is_a_400(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="empty array") as caught:
        sdk.chat.completions.create(model="m", messages=[])
    assert caught.value.status_code == 400
    with pytest.raises(openai.BadRequestError, match="empty array"):
        sdk.chat.completions.create(model="m", messages=[], stream=True)


def test_malformed_messages_and_a_tool_choice_without_tools_are_400s(
    sdk: openai.OpenAI,
) -> None:
    bad: Any = ["hi"]
    with pytest.raises(openai.BadRequestError, match=r"messages\[0\]"):
        sdk.chat.completions.create(model="m", messages=bad)
    with pytest.raises(openai.BadRequestError, match="only allowed when 'tools'"):
        sdk.chat.completions.create(model="m", messages=user("hi"), tool_choice="required")
    auto = sdk.chat.completions.create(model="m", messages=user("hi"), tool_choice="auto")
    assert auto.choices[0].message.content


def test_a_model_id_with_a_slash_is_retrieved() -> None:
    from rxchat.testing import FakeServer

    with FakeServer() as server:
        server.models = ["Qwen/Qwen2.5-7B-Instruct"]
        with openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0) as sdk:
            assert sdk.models.retrieve("Qwen/Qwen2.5-7B-Instruct").id == \
                "Qwen/Qwen2.5-7B-Instruct"
        server.models = None
        with openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0) as sdk, \
                pytest.raises(openai.NotFoundError):
            sdk.models.retrieve("Qwen/Qwen2.5-7B-Instruct")


def test_n_gives_n_choices_streamed_and_whole(sdk: openai.OpenAI) -> None:
    whole = sdk.chat.completions.create(model="m", messages=user("hi"), n=2)
    assert [c.index for c in whole.choices] == [0, 1]
    assert whole.choices[0].message.content == whole.choices[1].message.content
    texts = ["", ""]
    for chunk in sdk.chat.completions.create(model="m", messages=user("hi"), n=2,
                                              stream=True):
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    assert texts[0] == texts[1] == whole.choices[0].message.content
    with pytest.raises(openai.BadRequestError, match="'n'"):
        sdk.chat.completions.create(model="m", messages=user("hi"), n=0)


def test_a_forced_tool_choice_is_honoured(sdk: openai.OpenAI) -> None:
    forced: Any = {"type": "function", "function": {"name": "add"}}
    whole = sdk.chat.completions.create(model="m", messages=user("hello"), tools=[ADD_TOOL],
                                        tool_choice=forced)
    (call,) = whole.choices[0].message.tool_calls or []
    assert whole.choices[0].finish_reason == "tool_calls"
    assert call.type == "function" and call.function.name == "add"
    required = sdk.chat.completions.create(model="m", messages=user("hello"),
                                           tools=[ADD_TOOL], tool_choice="required")
    assert required.choices[0].message.tool_calls
    never = sdk.chat.completions.create(model="m", messages=user('add {"a": 1, "b": 2}'),
                                        tools=[ADD_TOOL], tool_choice="none")
    assert never.choices[0].message.tool_calls is None
    assert never.choices[0].finish_reason == "stop"
    with pytest.raises(openai.BadRequestError, match="tool_choice"):
        sdk.chat.completions.create(model="m", messages=user("hi"), tools=[ADD_TOOL],
                                    tool_choice={"type": "function",
                                                 "function": {"name": "nope"}})


def test_the_async_sdk_streams_too(served: str) -> None:
    async def main() -> str:
        async with openai.AsyncOpenAI(base_url=served, api_key="x", max_retries=0) as client:
            stream = await client.chat.completions.create(
                model="m", messages=user("hi"), stream=True)
            return "".join([c.choices[0].delta.content or "" async for c in stream])

    assert asyncio.run(main()).startswith('You said: "hi"')


# --- LangChain ------------------------------------------------------------------------


@pytest.fixture
def llm(served: str) -> Any:
    """LangChain's ChatOpenAI for `rxchat serve` (the test extra installs it; CI must run it)."""
    try:
        import langchain_openai
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("langchain-openai is not installed: pip install -e '.[test]'")
        pytest.skip("langchain-openai is not installed: pip install -e '.[test]'")
    return langchain_openai.ChatOpenAI(
        base_url=served, api_key="sk-none", model="rxchat-offline", max_retries=0,
        stream_usage=True,
    )


def test_langchain_invoke_stream_and_astream(llm: Any) -> None:
    assert llm.invoke("My name is Ann.").content.startswith('You said: "My name is Ann."')
    pieces = list(llm.stream("hi"))
    assert "".join(p.content for p in pieces).startswith('You said: "hi"')
    assert any(p.usage_metadata for p in pieces)  # it asks with include_usage

    async def collect() -> str:
        try:
            return "".join([p.content async for p in llm.astream("hi")])
        finally:  # its client belongs to this event loop
            await llm.root_async_client.close()

    assert asyncio.run(collect()).startswith('You said: "hi"')


def test_langchain_bind_tools_and_a_forced_tool(llm: Any) -> None:
    def add(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    named = llm.bind_tools([add]).invoke('add {"a": 2, "b": 3}')
    assert [(c["name"], c["args"]) for c in named.tool_calls] == [("add", {"a": 2, "b": 3})]
    forced = llm.bind_tools([add], tool_choice="add").invoke("hello")
    assert [c["name"] for c in forced.tool_calls] == ["add"]
    streamed = None
    for piece in llm.bind_tools([add], tool_choice="add").stream("hello"):
        streamed = piece if streamed is None else streamed + piece
    assert streamed is not None and [c["name"] for c in streamed.tool_calls] == ["add"]
