"""Provider input at the wire: content parts, non-string content, valid Unicode in the
merge, a no-event body, deep nesting (the "Boundaries" rules of the API contract)."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxchat import Message
from rxchat._wire.deltas import DeltaDecoder
from rxchat._wire.merge import merge_delta, merge_deltas
from rxchat._wire.messages import completion_messages
from rxchat._wire.sse import SSEDecoder
from rxchat._wire.text import valid_text
from rxchat.errors import StreamError

MISTRAL_PARTS = [
    {"type": "thinking", "thinking": [{"type": "text", "text": "Let me think. "}]},
    {"type": "text", "text": "Paris."},
]


def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return json.dumps({"choices": [choice]})


def deltas_of(*datas: str) -> list[Message]:
    decoder = DeltaDecoder()
    out: list[Message] = []
    for data in datas:
        message = decoder.common_delta(data)
        if message is not None:
            out.append(message)
            continue
        messages, error = decoder.decode_data(data)
        assert error is None
        out += messages
    return out


# --- content given as a list of parts ----------------------------------------------


def test_mistral_parts_become_content_and_reasoning() -> None:
    first, second = deltas_of(
        chunk({"role": "assistant", "content": ""}), chunk({"content": MISTRAL_PARTS})
    )
    assert (second.content, second.reasoning_content) == ("Paris.", "Let me think. ")
    assert isinstance(first.content, str)


def test_parts_with_only_thinking_leave_content_none() -> None:
    (delta,) = deltas_of(chunk({"content": [{"type": "thinking", "thinking": "hm"}]}))
    assert (delta.content, delta.reasoning_content) == (None, "hm")


def test_reasoning_content_as_parts_is_text() -> None:
    (delta,) = deltas_of(chunk({"reasoning_content": [{"type": "text", "text": "a"}]}))
    assert delta.reasoning_content == "a"


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (5, "int 5"),
        ({"text": "hi"}, "dict {'text': 'hi'}"),
        ([{"type": "image_url", "image_url": "x"}], "list [{'type': 'image_url'"),
        (True, "bool True"),
    ],
)
def test_other_non_string_content_is_a_stream_error_naming_it(content: Any, named: str) -> None:
    decoder = DeltaDecoder()
    data = chunk({"content": content})
    assert decoder.common_delta(data) is None  # never the fast path
    with pytest.raises(StreamError, match="neither text nor a list") as caught:
        decoder.decode_data(data)
    assert named in str(caught.value)


def test_a_whole_completion_with_parts_is_text_too() -> None:
    body = json.dumps({"choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": MISTRAL_PARTS}}]})
    (message,) = completion_messages(body, "application/json")
    assert (message.content, message.reasoning_content) == ("Paris.", "Let me think. ")


def test_string_content_stays_on_the_fast_path() -> None:
    decoder = DeltaDecoder()
    decoder.decode_data(chunk({"role": "assistant", "content": ""}))
    assert decoder.common_delta(chunk({"content": "hi"})) == Message(content="hi")


# --- valid Unicode in what is merged -----------------------------------------------


def test_a_surrogate_pair_split_across_deltas_is_joined() -> None:
    deltas = deltas_of(chunk({"content": "a"}), r'{"choices":[{"index":0,"delta":'
                       r'{"content":"\ud83d"}}]}', r'{"choices":[{"index":0,"delta":'
                       r'{"content":"\ude00b"}}]}')
    assert merge_deltas(deltas).content == "a\U0001f600b"
    snapshot = Message()
    for delta in deltas:
        snapshot = merge_delta(snapshot, delta)
    assert snapshot.content == "a\U0001f600b"


@pytest.mark.parametrize("lone", ["\ud83d", "\ude00", "x\udc80y"])
def test_a_lone_surrogate_becomes_the_replacement_character(lone: str) -> None:
    merged = merge_deltas([Message(content="a"), Message(content=lone), Message(content="b")])
    assert merged.content == "a" + lone.replace(lone.strip("xy"), "\ufffd") + "b"
    assert merged.content is not None
    merged.content.encode("utf-8")  # storable


def _utf16_pieces(text: str, cuts: list[int]) -> list[str]:
    units = text.encode("utf-16-le")
    bounds = sorted({0, len(units), *(2 * (c % (len(units) // 2 + 1)) for c in cuts)})
    return [units[a:b].decode("utf-16-le", "surrogatepass") for a, b in itertools.pairwise(bounds)]


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=30), cuts=st.lists(st.integers(0, 100), max_size=10))
def test_any_utf16_split_of_valid_text_merges_back_to_it(text: str, cuts: list[int]) -> None:
    deltas = [Message(content=piece) for piece in _utf16_pieces(text, cuts)]
    assert (merge_deltas(deltas).content or "") == text
    snapshot = Message()
    for delta in deltas:
        snapshot = merge_delta(snapshot, delta)
    assert (snapshot.content or "") == text


@given(text=st.text(alphabet=st.characters(codec=None), max_size=30))
def test_valid_text_is_always_encodable_and_idempotent(text: str) -> None:
    fixed = valid_text(text)
    fixed.encode("utf-8")
    assert valid_text(fixed) == fixed


# --- a text/event-stream body that holds no events ----------------------------------


def _events_then_end(*pieces: bytes) -> None:
    decoder = SSEDecoder()
    for piece in pieces:
        decoder.feed_data(piece)
    decoder.end()


@pytest.mark.parametrize(
    "body",
    [b'{"error":"Internal Server Error"}', b'{"error":"Internal Server Error"}\n',
     b"<html>\r\n<body>Bad gateway</body>\r\n</html>\r\n"],
)
def test_a_body_of_other_text_is_a_stream_error_quoting_it(body: bytes) -> None:
    with pytest.raises(StreamError, match="holds no events") as caught:
        _events_then_end(body)
    assert body.decode().splitlines()[0] in str(caught.value)


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(0, 60), max_size=8))
def test_any_split_of_a_no_event_body_gives_the_same_error(cuts: list[int]) -> None:
    body = b'\xef\xbb\xbf{"error": "Internal Server Error"}\n{"detail": 2}\n'
    bounds = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts)})
    with pytest.raises(StreamError) as whole:
        _events_then_end(body)
    with pytest.raises(StreamError) as split:
        _events_then_end(*(body[a:b] for a, b in itertools.pairwise(bounds)))
    assert str(split.value) == str(whole.value)


@pytest.mark.parametrize(
    "body", [b"", b": ping\n\n", b"data: {\"cho", b"\xef\xbb\xbf", b"event: x\n"],
)
def test_an_empty_or_cut_off_body_is_no_stray_text(body: bytes) -> None:
    _events_then_end(body)  # left to the delta decoder: StreamInterrupted, retried


def test_stray_text_after_events_is_ignored_as_before() -> None:
    _events_then_end(b"data: {}\n\nnot a field\n")


# --- nesting -------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_json_nested_too_deeply_is_a_stream_error_saying_so(depth: int) -> None:
    data = "[" * depth + "]" * depth
    decoder = DeltaDecoder()
    assert decoder.common_delta(data) is None
    with pytest.raises(StreamError, match="nested too deeply"):
        decoder.decode_data(data)


# -- attack round: fields a Message types as text ---------------------------------------


@pytest.mark.parametrize(
    ("delta", "finish"),
    [
        ({"role": 5, "content": "x"}, None),  # committed, it broke every later request
        ({"content": "x", "name": ["n"]}, None),
        ({"content": "x", "tool_call_id": {}}, None),
        ({"content": "x"}, 5),
        ({"tool_calls": [{"index": 0, "id": "c", "function": {"name": ["f"]}}]}, None),
        ({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": 5}}]},
         None),
        ({"tool_calls": [{"index": 0, "id": 7, "function": {"name": "f"}}]}, None),
        ({"tool_calls": [{"index": 0, "id": "c", "function": "f"}]}, None),
    ],
)
def test_a_non_string_text_field_is_a_stream_error(delta: dict[str, Any], finish: Any) -> None:
    with pytest.raises(StreamError, match="not shaped like a chat completion chunk"):
        DeltaDecoder().decode_data(chunk(delta, finish))
