"""Frozen values and their wire forms."""

from __future__ import annotations

import dataclasses

import pytest

from rxchat import ChatMessage, FunctionCall, Message, ToolCall, Usage
from rxchat._models import message_to_wire


def test_message_defaults() -> None:
    message = Message()
    assert (message.role, message.content, message.reasoning_content) == ("assistant", None, None)
    assert (message.tool_calls, message.finish_reason, message.usage, message.index) == (
        (), None, None, 0)


def test_values_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Message().content = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ChatMessage.user("x").role = "system"  # type: ignore[misc]


def test_message_from_dict_ignores_explicit_nulls() -> None:
    data = {"role": None, "content": None, "reasoning_content": None, "tool_calls": None,
            "usage": None, "index": None, "finish_reason": None}
    assert Message.from_dict(data) == Message()


def test_message_from_dict_reasoning_alias() -> None:
    assert Message.from_dict({"reasoning": "hm"}).reasoning_content == "hm"
    assert Message.from_dict({"reasoning": {"not": "text"}}).reasoning_content is None
    assert Message.from_dict({"reasoning_content": "a", "reasoning": "b"}).reasoning_content == "a"


def test_message_round_trip() -> None:
    message = Message(
        content="Hi", reasoning_content="r", name="bot",
        tool_calls=(ToolCall(0, "c1", "function", FunctionCall("f", "{}")),),
        finish_reason="tool_calls", usage=Usage(1, 2, 3, {"cost": 0.5}),
    )
    assert Message.from_dict(message.to_dict()) == message


def test_request_form_drops_reasoning_finish_and_usage() -> None:
    message = Message(content="Hi", reasoning_content="r", finish_reason="stop",
                      usage=Usage(1, 2, 3))
    assert message.to_request_dict() == {"role": "assistant", "content": "Hi"}
    assert message_to_wire(message) == {"role": "assistant", "content": "Hi"}


def test_tool_call_from_dict() -> None:
    call = ToolCall.from_dict({"id": "", "type": None, "function": {"name": None,
                                                                   "arguments": None}}, 3)
    assert call == ToolCall(3, None, "function", FunctionCall(None, ""))
    assert ToolCall.from_dict({"index": 1, "function": None}).index == 1
    assert ToolCall(0, "c", "function", FunctionCall("f", "{}")).to_dict() == {
        "id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def test_usage_keeps_extra_fields() -> None:
    wire = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3,
            "prompt_tokens_details": None, "completion_tokens_details": {"reasoning_tokens": 1}}
    usage = Usage.from_dict(wire)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1, 2, 3)
    assert usage.to_dict() == wire
    assert hash(usage) == hash(Usage.from_dict(dict(wire)))


def test_chat_message_forms() -> None:
    assert ChatMessage.user("hi").to_dict() == {"role": "user", "content": "hi"}
    assert ChatMessage.system("s") == ChatMessage("system", "s")
    tool = ChatMessage("tool", "42", tool_call_id="c1")
    assert ChatMessage.from_dict(tool.to_dict()) == tool
    assistant = ChatMessage.from_message(Message(content="x", reasoning_content="r"))
    assert assistant == ChatMessage("assistant", "x")


def test_message_to_wire_accepts_dicts_unchanged() -> None:
    wire = {"role": "user", "content": [{"type": "text", "text": "hi"}]}
    assert message_to_wire(wire) == wire
    assert message_to_wire(ChatMessage.user("a")) == {"role": "user", "content": "a"}
