"""Property tests: whatever bytes arrive, the outcome is deltas or an RxChatError.

In memory, hypothesis feeds arbitrary bytes, SSE-shaped noise and arbitrary JSON
through the decoding path (``SSEDecoder`` then ``DeltaDecoder``, read as the reader
reads: events in order, stop at ``[DONE]``, check the end), and valid streams split at
arbitrary points must decode to exactly their text. A smaller number of examples goes
through the real loopback server and ``create_stream_completion``, which must end in
``on_completed`` or an ``RxChatError`` within a bound: never another exception, never a
hang.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxchat import ChatClient, Message, create_stream_completion
from rxchat._wire.deltas import DeltaDecoder
from rxchat._wire.sse import SSEDecoder
from rxchat.errors import RxChatError
from rxchat.testing import FakeServer, Framing, Reply, chunk, sse_event
from tests.conftest import FRAMINGS, PARAMS, collect

IN_MEMORY = settings(max_examples=600, deadline=None, database=None)
LOOPBACK = settings(
    max_examples=60, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def decode(chunks: Sequence[bytes], max_event_bytes: int = 1 << 20) -> list[Message]:
    """Decode a body as the reader does; raises RxChatError for a bad or cut-off body."""
    sse, deltas = SSEDecoder(max_event_bytes), DeltaDecoder()
    out: list[Message] = []

    def take(events: Any) -> bool:
        for event in events:
            messages, error = deltas.decode(event)
            out.extend(messages)
            if error is not None:
                raise error
            if deltas.done:
                return True
        return False

    for piece in chunks:
        if take(sse.feed(piece)):
            return out
    take(sse.end())
    deltas.check_end()
    return out


def outcome(chunks: Sequence[bytes], max_event_bytes: int = 1 << 20) -> list[Message] | None:
    """The deltas, or None for an RxChatError; any other exception fails the test."""
    try:
        messages = decode(chunks, max_event_bytes)
    except RxChatError:
        return None
    assert all(isinstance(m, Message) for m in messages)
    return messages


# --- Building blocks -------------------------------------------------------------------

SSE_TOKENS = [
    b"data: ", b"data:", b"event: error\n", b"id: 1\n", b"retry: 10\n", b": ping\n\n",
    b"\n", b"\r", b"\r\n", b"\n\n", b"[DONE]", b"data: [DONE]\n\n", b"{", b"}", b"\xef\xbb\xbf",
    b'{"choices": [', b'{"index": 0, "delta": {"content": "x"}}', b'"finish_reason": "stop"',
    b"]}", b'{"error": {"message": "boom"}}', b"\xff", b"\xc3", b"\xe2\x82", "é🎯".encode(),
]
noise = st.lists(
    st.one_of(st.sampled_from(SSE_TOKENS), st.binary(max_size=40)), max_size=40
).map(b"".join)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["choices", "delta", "content", "reasoning_content", "reasoning",
                         "role", "tool_calls", "function", "arguments", "name", "index",
                         "id", "type", "finish_reason", "usage", "prompt_tokens",
                         "total_tokens", "error", "message", "code"]) | st.text(max_size=5),
        inner, max_size=5,
    ),
    max_leaves=20,
)


@st.composite
def splits(draw: st.DrawFn, body: bytes) -> list[bytes]:
    """``body`` cut at arbitrary points (possibly inside a UTF-8 character or a CRLF)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=12)))
    edges = [0, *cuts, len(body)]
    return [body[a:b] for a, b in itertools.pairwise(edges)]


@st.composite
def valid_streams(draw: st.DrawFn) -> tuple[bytes, str, str]:
    """A well-formed stream, in one of the line-ending styles providers use."""
    text = draw(st.lists(st.text(min_size=1, max_size=6), max_size=8))
    thought = draw(st.lists(st.text(min_size=1, max_size=6), max_size=3))
    chunks = [chunk(role="assistant", content="")]
    chunks += [chunk(reasoning_content=t) for t in thought]
    chunks += [chunk(content=t) for t in text]
    chunks.append(chunk(finish_reason="stop"))
    body = b"".join(sse_event(c) for c in chunks)
    if draw(st.booleans()):
        body = b": keep-alive\n\n" + body
    body += b"data: [DONE]\n\n"
    eol = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    if eol != b"\n":
        body = body.replace(b"\n", eol)
    return body, "".join(text), "".join(thought)


# --- In memory ---------------------------------------------------------------------------


@IN_MEMORY
@given(st.lists(st.binary(max_size=64), max_size=12))
def test_arbitrary_bytes(chunks: list[bytes]) -> None:
    outcome(chunks)


@IN_MEMORY
@given(noise.flatmap(splits))
def test_sse_shaped_noise(chunks: list[bytes]) -> None:
    outcome(chunks)
    outcome(chunks, max_event_bytes=32)


@IN_MEMORY
@given(st.lists(json_values, min_size=1, max_size=4), st.booleans())
def test_arbitrary_json_in_events(values: list[Any], done: bool) -> None:
    body = b"".join(b"data: " + json.dumps(v).encode() + b"\n\n" for v in values)
    outcome([body + (b"data: [DONE]\n\n" if done else b"")])


@IN_MEMORY
@given(valid_streams().flatmap(lambda s: st.tuples(st.just(s), splits(s[0]))))
def test_valid_streams_split_anywhere(case: tuple[tuple[bytes, str, str], list[bytes]]) -> None:
    (_body, text, thought), chunks = case
    messages = decode(chunks)
    assert "".join(m.content or "" for m in messages) == text
    assert "".join(m.reasoning_content or "" for m in messages) == thought
    assert messages[-1].finish_reason == "stop"


@IN_MEMORY
@given(valid_streams().flatmap(lambda s: st.tuples(st.just(s), st.integers(0, len(s[0]) - 1))))
def test_a_cut_off_valid_stream_never_completes_silently(
    case: tuple[tuple[bytes, str, str], int],
) -> None:
    (body, text, _thought), keep = case
    cut = body[:keep]
    messages = outcome([cut])
    if messages is not None:  # only a cut after the finish chunk may complete
        assert "".join(m.content or "" for m in messages) == text
        assert any(m.finish_reason == "stop" for m in messages)


# --- Through the loopback server ---------------------------------------------------------


@pytest.fixture(scope="module")
def loopback() -> Iterator[tuple[FakeServer, ChatClient]]:
    with FakeServer() as server, ChatClient(
        server.base_url, "k", max_retries=0, timeout=(1.0, 1.0), first_delta_timeout=2.0
    ) as client:
        yield server, client


def stream_outcome(server: FakeServer, client: ChatClient, reply: Reply) -> list[Message] | None:
    server.enqueue(reply)
    result = collect(create_stream_completion(PARAMS, client=client), timeout=5)
    assert result.terminals == 1 and result.overlaps == 0
    if result.error is not None:
        assert isinstance(result.error, RxChatError), repr(result.error)
        return None
    return result.messages


@LOOPBACK
@given(noise.flatmap(splits), st.sampled_from(FRAMINGS))
def test_noise_through_the_loopback_server(
    loopback: tuple[FakeServer, ChatClient], chunks: list[bytes], framing: Framing
) -> None:
    server, client = loopback
    reply = Reply.raw([c for c in chunks if c] or [b""], framing=framing)
    stream_outcome(server, client, reply)


@LOOPBACK
@given(valid_streams().flatmap(lambda s: st.tuples(st.just(s), splits(s[0]))),
       st.sampled_from(FRAMINGS))
def test_valid_streams_split_anywhere_through_the_loopback_server(
    loopback: tuple[FakeServer, ChatClient],
    case: tuple[tuple[bytes, str, str], list[bytes]],
    framing: Framing,
) -> None:
    server, client = loopback
    (_body, text, thought), chunks = case
    reply = Reply.raw([c for c in chunks if c], framing=framing)
    messages = stream_outcome(server, client, reply)
    assert messages is not None
    assert "".join(m.content or "" for m in messages) == text
    assert "".join(m.reasoning_content or "" for m in messages) == thought
