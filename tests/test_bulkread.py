"""The transport's bulk-read fast path for chunked bodies, and when it stands aside."""

from __future__ import annotations

import gzip
import http.client
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rxchat import ChatClient, _transport, create_stream_completion
from rxchat._bulkread import bulk_reader, iter_dechunked
from rxchat.testing import FakeServer, Reply, chunk, sse_event
from tests.conftest import collect

PARAMS: Any = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def bulk_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the responses read through the fast path."""
    calls: list[int] = []

    def counting(raw: Any, read1: Callable[[int], bytes], size: int) -> Iterator[bytes]:
        calls.append(size)
        return iter_dechunked(raw, read1, size)

    monkeypatch.setattr(_transport, "iter_dechunked", counting)
    return calls


def test_chunked_stream_goes_through_the_bulk_path(
    server: FakeServer, client: ChatClient, bulk_calls: list[int]
) -> None:
    server.enqueue(Reply.text("one two three", pieces=3))
    result = collect(create_stream_completion(PARAMS, client=client))
    assert result.completed and bulk_calls == [_transport.READ_SIZE]
    assert "".join(m.content or "" for m in result.messages) == "one two three"


def test_close_delimited_stream_keeps_the_normal_path(
    server: FakeServer, client: ChatClient, bulk_calls: list[int]
) -> None:
    server.enqueue(Reply.text("one two", framing="close"))
    assert collect(create_stream_completion(PARAMS, client=client)).completed
    assert bulk_calls == []


def test_content_encoding_keeps_the_normal_path(
    server: FakeServer, client: ChatClient, bulk_calls: list[int]
) -> None:
    body = sse_event(chunk(content="zipped", finish_reason="stop")) + b"data: [DONE]\n\n"
    headers = {"Content-Type": "text/event-stream", "Content-Encoding": "gzip"}
    server.enqueue(Reply.raw(gzip.compress(body), headers=headers))
    collect(create_stream_completion(PARAMS, client=client))  # the outcome is not ours
    assert bulk_calls == []


def test_connection_is_reused_after_a_bulk_read_body(
    server: FakeServer, client: ChatClient, bulk_calls: list[int]
) -> None:
    for _ in range(5):
        server.enqueue(Reply.events([chunk(content="x", finish_reason="stop")], done=False))
        assert collect(create_stream_completion(PARAMS, client=client)).completed
    assert len(bulk_calls) == 5
    assert len({r.client for r in server.requests}) == 1


class FakeRaw:
    """Just enough of a urllib3 response for :func:`iter_dechunked`."""

    def __init__(self) -> None:
        self.released = False

    def release_conn(self) -> None:
        self.released = True


def reads(*pieces: bytes) -> Callable[[int], bytes]:
    queue = list(pieces)
    return lambda _size: queue.pop(0) if queue else b""


@pytest.mark.parametrize(
    "wire", [b"zz\r\nhello\r\n", b"5\r\nhello", b"5\r\nhelloXY0\r\n\r\n"],
    ids=["bad-size", "cut-off", "no-crlf"],
)
def test_bad_framing_is_an_incomplete_read_like_http_client(wire: bytes) -> None:
    with pytest.raises(http.client.IncompleteRead):
        list(iter_dechunked(FakeRaw(), reads(wire), 65536))


def test_bulk_reader_declines_anything_but_a_fresh_urllib3_chunked_response() -> None:
    assert bulk_reader(object()) is None
    assert bulk_reader(FakeRaw()) is None
