"""The delta decoder's fast paths: the same deltas and the same ``Message`` values."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxchat import Message, ToolCall
from rxchat._wire.deltas import DeltaDecoder
from rxchat._wire.messages import delta_message, message
from rxchat._wire.messages import message as _message
from rxchat._wire.sse import ServerSentEvent
from rxchat.errors import StreamError


@pytest.mark.parametrize(
    "fields",
    [
        ("assistant", "hi", None, None, (), None, None, 0),
        ("tool", None, "why", "n", (ToolCall(index=1, id="c"),), "c1", "stop", 2),
    ],
)
def test_fast_message_equals_the_dataclass_one(fields: tuple[object, ...]) -> None:
    fast = _message(*fields)  # type: ignore[arg-type]
    slow = Message(*fields[:7], None, fields[7])  # type: ignore[arg-type, call-arg]
    assert type(fast) is Message
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert dataclasses.replace(fast, content="z") == dataclasses.replace(slow, content="z")


def test_fast_message_is_still_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _message("assistant", "hi", None, None, (), None, None, 0).content = "x"  # type: ignore[misc]


@given(st.text(), st.integers(0, 5))
def test_the_content_delta_equals_the_dataclass_one(content: str, index: int) -> None:
    fast = message("assistant", content, None, None, (), None, None, index)
    slow = Message(content=content, index=index)
    assert type(fast) is Message and fast == slow and hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)
    assert fast == delta_message({"content": content}, None, index)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.content = "x"  # type: ignore[misc]


class _NeverOpen(set[int]):
    """Makes ``index in open_choices`` false, so only the general path runs."""

    def __contains__(self, item: object) -> bool:
        return False


def _general_only() -> DeltaDecoder:
    decoder = DeltaDecoder()
    decoder._open_choices = _NeverOpen()
    return decoder


_choices = st.fixed_dictionaries(
    {},
    optional={
        "index": st.sampled_from([0, 1, None, True, "0"]),
        "delta": st.sampled_from(
            [{"content": "a"}, {"role": "assistant", "content": ""}, {}, None, "x",
             {"content": None}, {"reasoning": "r"}, {"content": "b", "tool_calls": None}]
        ),
        "finish_reason": st.sampled_from([None, "stop"]),
    },
)
_chunks = st.fixed_dictionaries(
    {"choices": st.lists(_choices, max_size=2)},
    optional={"usage": st.sampled_from([None, {"total_tokens": 3}])},
)


@settings(max_examples=500, deadline=None)
@given(chunks=st.lists(_chunks, max_size=8))
def test_fast_path_decodes_like_the_general_path(chunks: list[dict[str, Any]]) -> None:
    fast, general = DeltaDecoder(), _general_only()
    for chunk in chunks:
        event = ServerSentEvent(data=json.dumps(chunk))
        assert fast.decode(event) == general.decode(event)
    assert fast.complete == general.complete
    assert fast._finished_choices == general._finished_choices
    assert set(fast._open_choices) == set(general._open_choices)


def _common_then_general(decoder: DeltaDecoder, data: str) -> Any:
    """What the read loop does with a plain event: the common path, else the general."""
    message = decoder.common_delta(data)
    if message is not None:
        return repr([message]), None
    try:
        messages, error = decoder.decode_data(data)
    except StreamError as exc:
        return "error", str(exc)
    return repr(messages), error and str(error)


def _general(decoder: DeltaDecoder, data: str) -> Any:
    try:
        messages, error = decoder.decode(ServerSentEvent(data=data))
    except StreamError as exc:
        return "error", str(exc)
    return repr(messages), error and str(error)


_values = st.sampled_from(
    [None, "a", "", 0, 1, True, 1.5, 2**64, -(2**63) - 1, 123456789012345678901, [], {}, "x\ud800"]
)
_deltas = st.dictionaries(
    st.sampled_from(["content", "role", "reasoning_content", "reasoning", "name",
                     "tool_call_id", "tool_calls", "refusal"]),
    _values, max_size=3,
) | st.sampled_from([{"content": "hi"}, {"content": "é\n"}, None, "x", [], 7])
_common_choices = st.fixed_dictionaries(
    {},
    optional={
        "index": st.sampled_from([0, 1, None, True, 2**64, 0.0]),
        "delta": _deltas,
        "finish_reason": st.sampled_from([None, "stop", 0]),
        "logprobs": _values,
    },
)
_common_chunks = st.fixed_dictionaries(
    {"choices": st.lists(_common_choices, max_size=2) | _values},
    optional={"usage": st.sampled_from([None, {"total_tokens": 3}, 0]),
              "error": st.sampled_from([None, {"message": "m"}, "", 0]),
              "created": _values},
) | _values


@settings(max_examples=1000, deadline=None)
@given(chunks=st.lists(_common_chunks, max_size=8), opened=st.sets(st.sampled_from([0, 1])))
def test_common_delta_decodes_like_the_general_path(chunks: list[Any], opened: set[int]) -> None:
    fast, general = DeltaDecoder(), DeltaDecoder()
    fast._open_choices |= opened
    general._open_choices |= opened
    for chunk in chunks:
        data = json.dumps(chunk)
        assert _common_then_general(fast, data) == _general(general, data)
        assert (fast.done, fast._open_choices, fast._finished_choices) == (
            general.done, general._open_choices, general._finished_choices)


@pytest.mark.parametrize(
    "data",
    ['{"choices":[{"index":0,"delta":{"content":"a"}}],"n":123456789012345678901}',
     '{"choices":[{"index":123456789012345678901,"delta":{"content":"a"}}]}',
     '{"choices":[{"index":0,"delta":{"content":"a","name":123456789012345678901}}]}',
     '{"choices":[{"index":0,"delta":{"content":NaN}}]}',
     '{"choices":[{"index":0,"delta":{"content":"\\ud800"}}]}',
     "[DONE]", "not json", "[1]"],
)
def test_common_delta_leaves_what_orjson_would_change_to_the_general_path(data: str) -> None:
    fast, general = DeltaDecoder(), DeltaDecoder()
    fast._open_choices.add(0)
    general._open_choices.add(0)
    assert _common_then_general(fast, data) == _general(general, data)


@pytest.mark.parametrize("index", [0, 1, 2, True, 0.0, 2**64, "absent"])
@pytest.mark.parametrize(
    "delta",
    [{"content": "a"}, {"role": "assistant", "content": "a"}, {"content": None,
     "reasoning_content": "r"}, {"content": 1}, {"content": "a", "name": 2**64},
     {"content": "a", "tool_calls": None}, {"content": "a", "tool_calls": [{"index": 0}]}],
)
@pytest.mark.parametrize("finish", [None, "stop", "absent"])
def test_common_delta_on_every_choice_shape(index: Any, delta: Any, finish: Any) -> None:
    choice: dict[str, Any] = {"index": index, "delta": delta, "finish_reason": finish}
    choice = {k: v for k, v in choice.items() if v != "absent"}
    data = json.dumps({"id": "x", "created": 2**65, "choices": [choice]})
    fast, general = DeltaDecoder(), DeltaDecoder()
    fast._open_choices |= {0, 1}
    general._open_choices |= {0, 1}
    assert _common_then_general(fast, data) == _general(general, data)
    assert (fast._open_choices, fast._finished_choices) == (
        general._open_choices, general._finished_choices)
