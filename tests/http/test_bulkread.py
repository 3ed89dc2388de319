"""The transport's bulk-read fast path (chunked and close-delimited bodies), and when it
stands aside.

This is the path of a stream read on a thread of its own: with an explicit
``scheduler=`` (here ``PER_STREAM``), and for what the shared reader cannot own. The
shared reader's path is fenced in ``test_transport_fastpath.py``."""

from __future__ import annotations

import gzip
import http.client
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from reactivex import Observable
from reactivex.scheduler import TimeoutScheduler

from rxchat import ChatClient, Message, create_stream_completion
from rxchat._http import bulkread as _bulkread
from rxchat._http import transport as _transport
from rxchat._http.bulkread import bulk_reader, iter_dechunked
from rxchat.testing import STALL, FakeServer, Framing, Reply, chunk, sse_event
from tests.conftest import FRAMINGS, collect, subscribe, wait_until

PARAMS: Any = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
PER_STREAM = TimeoutScheduler()  # each attempt read on a thread of its own


def threaded(client: ChatClient) -> Observable[Message]:
    """A stream read on a thread of its own (an explicit scheduler)."""
    return create_stream_completion(PARAMS, client=client, scheduler=PER_STREAM)


@pytest.fixture
def bulk_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the chunked responses read through the fast path."""
    return _count(monkeypatch, "iter_dechunked")


@pytest.fixture
def until_closed_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the close-delimited responses read through the fast path."""
    return _count(monkeypatch, "iter_until_closed")


def _count(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls: list[int] = []
    original = getattr(_bulkread, name)

    def counting(raw: Any, read1: Callable[[int], bytes], size: int) -> Iterator[bytes]:
        calls.append(size)
        return original(raw, read1, size)  # type: ignore[no-any-return]

    monkeypatch.setattr(_bulkread, name, counting)
    return calls


def test_chunked_stream_goes_through_the_bulk_path(
    server: FakeServer, client: ChatClient, bulk_calls: list[int]
) -> None:
    server.enqueue(Reply.text("one two three", pieces=3))
    result = collect(threaded(client))
    assert result.completed and bulk_calls == [_transport.READ_SIZE]
    assert "".join(m.content or "" for m in result.messages) == "one two three"


def test_close_delimited_stream_is_read_in_bulk_without_dechunking(
    server: FakeServer, client: ChatClient, bulk_calls: list[int],
    until_closed_calls: list[int],
) -> None:
    server.enqueue(Reply.text("one two", framing="close"))
    assert collect(threaded(client)).completed
    assert bulk_calls == []
    assert until_closed_calls == [_transport.READ_SIZE]


def test_length_framed_stream_keeps_the_normal_path(
    server: FakeServer, client: ChatClient, bulk_calls: list[int],
    until_closed_calls: list[int],
) -> None:
    server.enqueue(Reply.text("one two", framing="length"))
    assert collect(threaded(client)).content == "one two"
    assert bulk_calls == [] and until_closed_calls == []


@pytest.mark.parametrize("framing", FRAMINGS)
def test_an_idle_stream_holds_no_read_sized_buffer(
    server: FakeServer, client: ChatClient, framing: Framing
) -> None:
    # The reference is a length-framed body with 10 bytes to go: urllib3 then reads
    # at most those 10, so its streams hold everything but a read-sized buffer.
    budget = _transport.READ_SIZE / 2
    reference = _held_per_idle_stream(server, client, "length", lambda _held: False)
    held = _held_per_idle_stream(server, client, framing, lambda h: h - reference < budget)
    assert held - reference < budget, (
        f"{held / 1024:.0f} KiB per idle stream, {reference / 1024:.0f} KiB expected"
    )


def _held_per_idle_stream(
    server: FakeServer, client: ChatClient, framing: Framing, enough: Callable[[float], bool]
) -> float:
    """Memory traced while 8 streams wait for bytes after their first delta: the least
    of the samples taken until ``enough`` holds for one, or 20 of them were taken (a
    reader still busy with its first read holds more than an idle one, for a moment)."""
    count = 8
    for _ in range(count):
        events = Reply.events([chunk(content="x")], done=False, framing=framing)
        server.enqueue(events.then(STALL, b"0123456789"))
    tracemalloc.start()
    subscriptions = [subscribe(threaded(client))
                     for _ in range(count)]
    try:
        assert all(result.first.wait(5) for result, _ in subscriptions)
        samples: list[float] = []

        def sampled() -> bool:
            samples.append(tracemalloc.get_traced_memory()[0] / count)
            return enough(samples[-1]) or len(samples) >= 20

        assert wait_until(sampled)
        held = min(samples) * count
    finally:
        tracemalloc.stop()
        for _, subscription in subscriptions:
            subscription.dispose()
    return held / count


def test_content_encoding_keeps_the_normal_path(
    server: FakeServer, client: ChatClient, bulk_calls: list[int],
    until_closed_calls: list[int],
) -> None:
    body = sse_event(chunk(content="zipped", finish_reason="stop")) + b"data: [DONE]\n\n"
    headers = {"Content-Type": "text/event-stream", "Content-Encoding": "gzip"}
    server.enqueue(Reply.raw(gzip.compress(body), headers=headers))
    collect(threaded(client))  # the outcome is not ours
    assert bulk_calls == [] and until_closed_calls == []


def test_connection_is_reused_after_a_bulk_read_body(
    server: FakeServer, client: ChatClient, bulk_calls: list[int]
) -> None:
    for _ in range(5):
        server.enqueue(Reply.events([chunk(content="x", finish_reason="stop")], done=False))
        assert collect(threaded(client)).completed
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


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_a_stream_arriving_faster_than_it_is_read_is_read_in_large_pieces(
    server: FakeServer, client: ChatClient, framing: Framing, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One write of 400 KB: once a wait has filled the socket file's 8 KiB buffer, the
    # next read takes up to READ_SIZE of what has arrived, not 8 KiB at a time.
    sizes: list[int] = []
    original = _bulkread.bulk_reader

    def recording(raw: Any) -> Callable[[int], bytes] | None:
        read = original(raw)
        if read is None:
            return None

        def counted(size: int) -> bytes:
            data = read(size)
            sizes.append(len(data))
            return data

        return counted

    monkeypatch.setattr(_bulkread, "bulk_reader", recording)
    body = b"".join(sse_event(chunk(content="x" * 90)) for _ in range(4000))
    server.enqueue(Reply.raw(body + sse_event("[DONE]"), framing=framing))
    result = collect(threaded(client))
    assert result.completed and len(result.messages) == 4000
    assert max(sizes) > 8192 and sum(sizes) >= len(body)
