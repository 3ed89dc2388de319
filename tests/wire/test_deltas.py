"""The chunk protocol: SSE events in, Message deltas out, and when a stream may end."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rxchat import FunctionCall, Message, ToolCall, Usage
from rxchat._wire.deltas import DeltaDecoder
from rxchat._wire.json import error_message_of
from rxchat._wire.sse import ServerSentEvent
from rxchat.errors import StreamError, StreamInterrupted


def event(data: dict[str, Any] | str, kind: str = "message") -> ServerSentEvent:
    return ServerSentEvent(event=kind, data=data if isinstance(data, str) else json.dumps(data))


def chunk(*choices: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "choices": list(choices), **extra}


def decode(decoder: DeltaDecoder, data: dict[str, Any] | str) -> list[Message]:
    messages, error = decoder.decode(event(data))
    assert error is None
    return messages


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_done_ends_the_stream_without_deltas() -> None:
    decoder = DeltaDecoder()
    assert not decoder.complete
    assert decoder.decode(event("[DONE]")) == ([], None)
    assert decoder.done and decoder.complete
    decoder.check_end()


def test_done_with_surrounding_whitespace() -> None:
    decoder = DeltaDecoder()
    decoder.decode(event(" [DONE] "))
    assert decoder.done


def test_content_delta() -> None:
    decoder = DeltaDecoder()
    got = decode(decoder, chunk({"index": 0, "delta": {"role": "assistant", "content": "Hi"}}))
    assert got == [Message(content="Hi")]


def test_usage_only_chunk_becomes_a_usage_delta() -> None:
    got = decode(DeltaDecoder(), chunk(usage=USAGE))
    assert got == [Message(usage=Usage(3, 2, 5))]


def test_usage_on_a_chunk_with_choices_goes_on_its_last_delta() -> None:
    got = decode(DeltaDecoder(), chunk(
        {"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}, usage=USAGE
    ))
    assert got == [Message(content="x", finish_reason="stop", usage=Usage(3, 2, 5))]


def test_null_usage_is_ignored() -> None:
    got = decode(DeltaDecoder(), chunk({"index": 0, "delta": {"content": "x"}}, usage=None))
    assert got == [Message(content="x")]


def test_empty_choices_without_usage_is_skipped() -> None:
    # Azure's first chunk: prompt_filter_results and no choices.
    azure = {"choices": [], "created": 0, "id": "", "model": "",
             "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}
    decoder = DeltaDecoder()
    assert decode(decoder, azure) == []
    assert not decoder.complete


def test_choice_without_delta_is_an_annotation() -> None:
    decoder = DeltaDecoder()
    decode(decoder, chunk({"index": 0, "delta": {"content": "x"}, "finish_reason": "stop"}))
    annotation = chunk({"index": 0, "finish_reason": None,
                        "content_filter_offsets": {"start_offset": 0}})
    assert decode(decoder, annotation) == []
    assert decoder.complete


def test_finish_chunk_with_empty_delta() -> None:
    got = decode(DeltaDecoder(), chunk({"index": 0, "delta": {}, "finish_reason": "stop"}))
    assert got == [Message(finish_reason="stop")]


def test_finish_reason_without_delta_key_is_kept() -> None:
    got = decode(DeltaDecoder(), chunk({"index": 0, "finish_reason": "length"}))
    assert got == [Message(finish_reason="length")]


def test_explicit_nulls_are_absent_values() -> None:
    delta = {"role": None, "content": None, "reasoning_content": None, "tool_calls": None,
             "name": None}
    got = decode(DeltaDecoder(), chunk({"index": 0, "delta": delta, "finish_reason": None}))
    assert got == [Message()]


def test_reasoning_field_is_delivered_as_reasoning_content() -> None:
    got = decode(DeltaDecoder(), chunk({"index": 0, "delta": {
        "role": "assistant", "content": "", "reasoning": "Hm", "reasoning_details": [{}]}}))
    assert got == [Message(content="", reasoning_content="Hm")]


def test_reasoning_content_wins_over_reasoning() -> None:
    got = decode(DeltaDecoder(), chunk({"index": 0, "delta": {
        "reasoning_content": "a", "reasoning": "b"}}))
    assert got[0].reasoning_content == "a"


def test_tool_call_fragments() -> None:
    delta = {"tool_calls": [
        {"index": 1, "id": "call_1", "type": "function",
         "function": {"name": "get", "arguments": ""}},
        {"index": 2, "function": {"arguments": "{\"a\""}},
    ]}
    got = decode(DeltaDecoder(), chunk({"index": 0, "delta": delta}))
    assert got[0].tool_calls == (
        ToolCall(1, "call_1", "function", FunctionCall("get", "")),
        ToolCall(2, None, "function", FunctionCall(None, "{\"a\"")),
    )


def test_several_choices_keep_their_index() -> None:
    got = decode(DeltaDecoder(), chunk(
        {"index": 0, "delta": {"content": "a"}}, {"index": 1, "delta": {"content": "b"}}
    ))
    assert [(m.index, m.content) for m in got] == [(0, "a"), (1, "b")]


def test_error_object_in_a_200_stream() -> None:
    decoder = DeltaDecoder()
    payload = {"error": {"message": "The server had an error", "type": "server_error",
                         "code": None}}
    messages, error = decoder.decode(event(payload))
    assert messages == []
    assert isinstance(error, StreamError)
    assert error.server_message == "The server had an error"
    assert "The server had an error" in str(error)


def test_error_chunk_emits_its_deltas_and_usage_first() -> None:
    # OpenRouter: a chunk with a top-level error, a choice and usage.
    payload = chunk({"index": 0, "delta": {"role": "assistant", "content": ""},
                     "finish_reason": None},
                    error={"code": 400, "message": "Token limit reached"}, usage=USAGE)
    messages, error = DeltaDecoder().decode(event(payload))
    assert messages == [Message(content="", usage=Usage(3, 2, 5))]
    assert error is not None and error.code == 400
    assert error.server_message == "Token limit reached"


def test_named_error_event() -> None:
    payload = {"error": {"message": "Tool call validation failed", "code": "tool_use_failed"}}
    _, error = DeltaDecoder().decode(event(payload, kind="error"))
    assert error is not None and error.code == "tool_use_failed"
    assert "Tool call validation failed" in str(error)


def test_named_error_event_without_error_key() -> None:
    _, error = DeltaDecoder().decode(event({"message": "overloaded"}, kind="error"))
    assert error is not None and error.server_message == "overloaded"


def test_named_error_event_with_plain_text_data() -> None:
    _, error = DeltaDecoder().decode(event("upstream overloaded", kind="error"))
    assert error is not None
    assert "upstream overloaded" in str(error)


@pytest.mark.parametrize("data", ["{not json", "data: {}", "{\"a\": 1"])
def test_malformed_json_is_a_stream_error(data: str) -> None:
    with pytest.raises(StreamError, match="not JSON"):
        DeltaDecoder().decode(event(data))


@pytest.mark.parametrize("data", ["[1, 2]", "\"text\"", "42", "null"])
def test_json_that_is_not_an_object_is_a_stream_error(data: str) -> None:
    with pytest.raises(StreamError, match="not a JSON object"):
        DeltaDecoder().decode(event(data))


# --- Completion rules ----------------------------------------------------------------


def test_no_events_is_not_complete() -> None:
    decoder = DeltaDecoder()
    with pytest.raises(StreamInterrupted, match="before the reply was complete"):
        decoder.check_end()


def test_deltas_without_finish_reason_are_not_complete() -> None:
    decoder = DeltaDecoder()
    decode(decoder, chunk({"index": 0, "delta": {"content": "The capital of the"}}))
    assert not decoder.complete
    with pytest.raises(StreamInterrupted):
        decoder.check_end()


def test_finish_reason_completes_without_done() -> None:
    decoder = DeltaDecoder()
    decode(decoder, chunk({"index": 0, "delta": {"content": "x"}}))
    decode(decoder, chunk({"index": 0, "delta": {}, "finish_reason": "stop"}))
    assert decoder.complete
    decode(decoder, chunk(usage=USAGE))
    decoder.check_end()


def test_every_choice_must_finish() -> None:
    decoder = DeltaDecoder()
    decode(decoder, chunk({"index": 0, "delta": {"content": "a"}},
                          {"index": 1, "delta": {"content": "b"}}))
    decode(decoder, chunk({"index": 0, "delta": {}, "finish_reason": "stop"}))
    assert not decoder.complete
    decode(decoder, chunk({"index": 1, "delta": {}, "finish_reason": "stop"}))
    assert decoder.complete


def test_a_late_delta_of_a_finished_choice_does_not_reopen_it() -> None:
    decoder = DeltaDecoder()
    decode(decoder, chunk({"index": 0, "delta": {"content": "a"}, "finish_reason": "stop"}))
    decode(decoder, chunk({"index": 0, "delta": {}}))  # relay-added empty chunk
    assert decoder.complete


def test_error_message_of_shapes() -> None:
    assert error_message_of({"error": {"message": "m", "code": "c"}}) == ("m", "c")
    assert error_message_of({"code": 20015, "message": "bad model", "data": None}) == (
        "bad model", 20015)
    assert error_message_of({"error": "text", "code": 5}) == ("text", 5)
    assert error_message_of({"detail": "Not Found"}) == ("Not Found", None)
    assert error_message_of(["x"]) == (None, None)
    assert error_message_of({"other": 1}) == (None, None)
