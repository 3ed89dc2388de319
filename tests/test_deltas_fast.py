"""The delta decoder's fast paths: the same deltas and the same ``Message`` values."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxchat import Message
from rxchat._deltas import DeltaDecoder
from rxchat._messages import message as _message
from rxchat._models import ToolCall
from rxchat._sse import ServerSentEvent


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
