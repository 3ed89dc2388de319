"""Fault injection over the loopback server: every fault ends in its typed error.

Each case checks four things: the error class (and a hint of its message), that it
arrives at all (a fault that hangs fails the collect guard), that the Rx grammar held
(``on_next*`` then exactly one terminal, never two calls at once), and that no thread
is left behind once the client is closed. Timeouts are small (0.3 s) so the suite is fast.
"""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from rxchat import ChatClient, create_stream_completion
from rxchat.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    RateLimitError,
    RxChatError,
    ServerError,
    StreamError,
    StreamInterrupted,
)
from rxchat.testing import RESET, STALL, FakeServer, Framing, Reply, chunk, closed_port, sse_event
from tests.conftest import (
    FRAMINGS,
    PARAMS,
    Collected,
    assert_grammar,
    collect,
    threads_started_since,
    wait_until,
)

IDLE = 0.3
FIRST_DELTA = 0.4
HANG_GUARD = 5.0
"""A fault that has not ended after this long hangs: the client timeouts are 0.3-1 s.
How fast each fault ends is a figure (printed with ``-s``), not an assertion."""


@dataclass
class Harness:
    """Runs one request per fault and checks the grammar, the time and the threads."""

    server: FakeServer
    clients: list[ChatClient]

    def client(self, base_url: str | None = None, **options: Any) -> ChatClient:
        settings: dict[str, Any] = {
            "max_retries": 0, "timeout": (1.0, IDLE), "first_delta_timeout": FIRST_DELTA,
        }
        settings.update(options)
        client = ChatClient(base_url or self.server.base_url, "sk-fault-test", **settings)
        self.clients.append(client)
        return client

    def run(self, reply: Reply | None = None, client: ChatClient | None = None) -> Collected:
        if reply is not None:
            self.server.enqueue(reply)
        started = time.monotonic()
        result = collect(create_stream_completion(PARAMS, client=client or self.client()),
                         timeout=HANG_GUARD)
        elapsed = time.monotonic() - started
        assert_grammar(result)
        assert result.events[-1] == "error", "a fault must never look like a complete reply"
        assert isinstance(result.error, RxChatError)
        print(f"{type(result.error).__name__} in {elapsed * 1000:.0f} ms: {result.error}")
        return result


@pytest.fixture
def harness(server: FakeServer) -> Iterator[Harness]:
    threads = set(threading.enumerate())
    running = Harness(server, [])
    yield running
    for client in running.clients:
        client.close()
    assert wait_until(lambda: not threads_started_since(threads)), (
        f"threads left behind: {[t.name for t in threading.enumerate()]}"
    )


HELLO = [chunk(role="assistant", content="Hello "), chunk(content="world")]


# --- The body goes wrong -----------------------------------------------------------------


@pytest.mark.parametrize("framing", FRAMINGS)
def test_body_cut_mid_event(harness: Harness, framing: Framing) -> None:
    first = sse_event(HELLO[0])
    reply = Reply.raw([first, sse_event(HELLO[1])[:25]], framing=framing)
    result = harness.run(reply)
    assert isinstance(result.error, StreamInterrupted)
    assert result.content == "Hello "


@pytest.mark.parametrize("framing", FRAMINGS)
def test_cut_between_events_without_done(harness: Harness, framing: Framing) -> None:
    result = harness.run(Reply.events(HELLO, done=False, framing=framing))
    assert isinstance(result.error, StreamInterrupted)
    assert result.content == "Hello world"


def test_malformed_json(harness: Harness) -> None:
    result = harness.run(Reply.raw([sse_event(HELLO[0]), b'data: {"choices": [\n\n']))
    assert isinstance(result.error, StreamError) and "not JSON" in str(result.error)
    assert result.content == "Hello "


def test_error_object_mid_stream(harness: Harness) -> None:
    error = {"error": {"message": "Model overloaded, try later", "code": 503}}
    result = harness.run(Reply.events([*HELLO, error], done=False))
    assert isinstance(result.error, StreamError)
    assert result.error.server_message == "Model overloaded, try later"
    assert result.content == "Hello world"


@pytest.mark.parametrize("framing", FRAMINGS)
def test_connection_reset_mid_stream(harness: Harness, framing: Framing) -> None:
    result = harness.run(Reply.events(HELLO, done=False, framing=framing).then(RESET))
    assert isinstance(result.error, StreamInterrupted)
    assert "reset" in str(result.error) or "closed" in str(result.error)
    assert result.content == "Hello world"


def test_connection_reset_before_any_delta_is_retried(harness: Harness) -> None:
    harness.server.enqueue(Reply.events([], done=False).then(RESET), Reply.text("again"))
    client = harness.client(max_retries=1)
    result = collect(create_stream_completion(PARAMS, client=client))
    assert result.completed and result.content == "again"
    assert len(harness.server.requests) == 2


def test_headers_then_silence_is_the_idle_timeout(harness: Harness) -> None:
    result = harness.run(Reply.events([], done=False).then(STALL))
    assert isinstance(result.error, APITimeoutError) and "idle timeout" in str(result.error)
    assert harness.server.wait_for_disconnects(1)


def test_silence_mid_stream_is_the_idle_timeout(harness: Harness) -> None:
    result = harness.run(Reply.events(HELLO, done=False).then(STALL))
    assert isinstance(result.error, APITimeoutError)
    assert result.content == "Hello world"


def test_no_headers_at_all_is_the_idle_timeout(harness: Harness) -> None:
    result = harness.run(Reply.text("never").after(STALL))
    assert isinstance(result.error, APITimeoutError)
    assert harness.server.wait_for_disconnects(1)


def test_keep_alive_comments_forever(harness: Harness) -> None:
    pings: list[bytes | float] = []
    for _ in range(400):
        pings += [b": keep-alive\n\n", 0.05]
    result = harness.run(Reply.raw(pings))
    assert isinstance(result.error, APITimeoutError)
    assert "first-delta timeout" in str(result.error)
    assert harness.server.wait_for_disconnects(1)


ENDLESS = b"x" * 65536


def endless_line(megabytes: int = 64) -> Reply:
    return Reply.raw([b"data: ", *([ENDLESS] * (megabytes * 16))])


def test_endless_line(harness: Harness) -> None:
    result = harness.run(endless_line(), harness.client(max_event_bytes=256 * 1024))
    assert isinstance(result.error, StreamError) and "larger than" in str(result.error)


def test_endless_line_keeps_memory_bounded(harness: Harness) -> None:
    # The server would send 64 MiB; the 1 MiB default limit stops the reader long before.
    client = harness.client()
    tracemalloc.start()
    try:
        result = harness.run(endless_line(64), client)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(result.error, StreamError) and "1048576 bytes" in str(result.error)
    assert peak < 12 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"


def test_endless_data_lines_without_a_blank_line(harness: Harness) -> None:
    line = b"data: " + b"y" * 1000 + b"\n"
    result = harness.run(Reply.raw([line] * 2000), harness.client(max_event_bytes=100_000))
    assert isinstance(result.error, StreamError) and "larger than" in str(result.error)


@pytest.mark.parametrize(
    "body",
    [b"data: {\"a\": \"\xff\xfe\"}\n\n", b"data: caf\xc3\n\n", b"\xc0\xaf: comment\n\n"],
    ids=["invalid-bytes", "truncated-sequence", "overlong"],
)
def test_invalid_utf8(harness: Harness, body: bytes) -> None:
    # One write: the good event and the bad bytes arrive in the same read.
    result = harness.run(Reply.raw([sse_event(HELLO[0]) + body]))
    assert isinstance(result.error, StreamError) and "UTF-8" in str(result.error)
    assert result.content == "Hello "


@pytest.mark.parametrize("framing", FRAMINGS)
def test_good_event_then_invalid_utf8_in_one_write_then_silence(
    harness: Harness, framing: Framing
) -> None:
    # The connection stays open: the error must not wait for more bytes (or the idle
    # timeout) once the good delta was emitted.
    body = sse_event(HELLO[0]) + b"data: caf\xc3\n\n"
    result = harness.run(Reply.raw([body, STALL], framing=framing))
    assert isinstance(result.error, StreamError) and "UTF-8" in str(result.error)
    assert result.content == "Hello "


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html", b"<html><body>Welcome to nginx!</body></html>"),
        ("text/plain", b"Welcome to nginx!"),
        ("application/json", b'{"object": "list", "data": [], "note": "Welcome to nginx!"}'),
        ("", b"Welcome to nginx!"),
    ],
)
def test_a_200_that_is_not_a_stream(harness: Harness, content_type: str, body: bytes) -> None:
    headers = {"Content-Type": content_type} if content_type else {"X-None": "1"}
    result = harness.run(Reply.raw(body, headers=headers, framing="length"))
    assert isinstance(result.error, StreamError)
    assert "Welcome to nginx!" in str(result.error)
    assert (content_type or "no Content-Type") in str(result.error)


def test_html_502_page(harness: Harness) -> None:
    page = ("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad "
            "Gateway</h1></center><hr><center>nginx/1.25</center></body></html>")
    result = harness.run(Reply.error(502, page))
    assert isinstance(result.error, ServerError) and result.error.status_code == 502
    assert "502 Bad Gateway" in str(result.error) and "<center>" not in str(result.error)


def test_html_502_page_is_retried_then_reported(harness: Harness) -> None:
    page = "<html><head><title>502 Bad Gateway</title></head></html>"
    busy = Reply.error(502, page, headers={"retry-after-ms": "20"})
    harness.server.enqueue(busy, busy)
    result = harness.run(client=harness.client(max_retries=1))
    assert isinstance(result.error, ServerError) and "2 attempts" in str(result.error)


# --- HTTP error statuses, in three body shapes -----------------------------------------

STATUSES: list[tuple[int, type[APIStatusError]]] = [
    (401, AuthenticationError), (403, AuthenticationError), (404, BadRequestError),
    (422, BadRequestError), (429, RateLimitError), (500, ServerError), (503, ServerError),
]
SHAPES: dict[str, Callable[[str], str | dict[str, Any]]] = {
    "openai": lambda said: {"error": {"message": said, "type": "x", "code": None}},
    "siliconflow": lambda said: {"code": 20015, "message": said, "data": None},
    "plain-text": lambda said: said,
}


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize(("status", "kind"), STATUSES, ids=[str(s) for s, _ in STATUSES])
def test_error_statuses(
    harness: Harness, status: int, kind: type[APIStatusError], shape: str
) -> None:
    said = f"The server says no ({status}, {shape})"
    result = harness.run(Reply.error(status, SHAPES[shape](said)))
    assert type(result.error) is kind
    assert result.error.status_code == status
    assert result.error.server_message == said
    assert said in str(result.error)


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("whole", [True, False], ids=["whole-body", "half-body"])
def test_error_body_cut_by_a_reset_keeps_its_status(
    harness: Harness, framing: Framing, whole: bool
) -> None:
    said = "Model overloaded, try later"
    body = json.dumps({"error": {"message": said}}).encode()
    sent = body if whole else body[:20]
    json_type = {"Content-Type": "application/json"}
    reply = Reply.raw([sent, RESET], status=503, headers=json_type, framing=framing)
    result = harness.run(reply)
    assert type(result.error) is ServerError and result.error.status_code == 503
    assert result.error.body == sent.decode()
    assert result.error.server_message == (said if whole else sent.decode())


# --- No connection --------------------------------------------------------------------


def test_connection_refused(harness: Harness) -> None:
    client = harness.client(f"http://127.0.0.1:{closed_port()}/v1")
    result = harness.run(client=client)
    assert type(result.error) is APIConnectionError and "refused" in str(result.error)


def test_connection_refused_with_retries(harness: Harness) -> None:
    client = harness.client(f"http://127.0.0.1:{closed_port()}/v1", max_retries=2)
    result = harness.run(client=client)
    assert type(result.error) is APIConnectionError and "3 attempts" in str(result.error)
