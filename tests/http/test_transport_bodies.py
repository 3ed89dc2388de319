"""What real servers and CDNs send besides a plain stream: compressed bodies, declared
charsets, long chunk-size lines, empty ``data`` events, redirects; and the messages
for DNS failures and idle timeouts."""

from __future__ import annotations

import gzip
import json
import socket
import zlib
from typing import Any

import pytest

from rxchat import ChatClient, create_stream_completion
from rxchat.errors import APIConnectionError, APIStatusError, APITimeoutError, ServerError
from rxchat.testing import DONE, STALL, FakeServer, Reply, chunk, sse_event
from tests.conftest import PARAMS, collect, subscribe

EVENTS = [chunk(content="squeezed "), chunk(content="words", finish_reason="stop")]
BODY = b"".join(sse_event(c) for c in EVENTS) + DONE


def _deflate(data: bytes, wbits: int) -> bytes:
    packer = zlib.compressobj(wbits=wbits)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("encoding", "packed"),
    [("gzip", gzip.compress(BODY)), ("deflate", _deflate(BODY, zlib.MAX_WBITS))],
)
@pytest.mark.parametrize("framing", ["chunked", "close", "length"])
def test_a_compressed_stream_is_decoded(
    server: FakeServer, client: ChatClient, encoding: str, packed: bytes, framing: Any
) -> None:
    headers = {"Content-Type": "text/event-stream", "Content-Encoding": encoding}
    server.enqueue(Reply.raw(packed, headers=headers, framing=framing))
    result = collect(create_stream_completion(PARAMS, client=client))
    assert result.completed and result.content == "squeezed words"


def test_a_gzip_stream_is_delivered_as_it_arrives(
    server: FakeServer, client: ChatClient
) -> None:
    packer = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)  # gzip, flushed per event
    first = packer.compress(sse_event(EVENTS[0])) + packer.flush(zlib.Z_SYNC_FLUSH)
    headers = {"Content-Type": "text/event-stream", "Content-Encoding": "gzip"}
    server.enqueue(Reply.raw([first, STALL], headers=headers))
    result, subscription = subscribe(create_stream_completion(PARAMS, client=client))
    try:
        assert result.first.wait(5), "the first event waited for the rest of the body"
        assert result.content == "squeezed "
    finally:
        subscription.dispose()


def test_a_gzip_error_body_gives_the_servers_message(
    server: FakeServer, client: ChatClient
) -> None:
    body = gzip.compress(json.dumps({"error": {"message": "model overloaded"}}).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    server.enqueue(Reply((body,), status=503, headers=headers, framing="length"))
    error = collect(create_stream_completion(PARAMS, client=client)).error
    assert isinstance(error, ServerError)
    assert error.server_message == "model overloaded"
    assert "model overloaded" in str(error)


@pytest.mark.parametrize(
    ("content_type", "text", "shown"),
    [
        ("text/plain; charset=cp1252", "Caf\u00e9 \u2013 \u201cbusy\u201d", None),
        ("application/json; charset=latin-1",
         json.dumps({"error": {"message": "\u00dcberlastet"}}, ensure_ascii=False),
         "\u00dcberlastet"),
        ("text/plain; charset=no-such-codec", "plain words", None),
    ],
    ids=["cp1252", "latin-1-json", "unknown-charset"],
)
def test_an_error_body_is_read_in_its_declared_charset(
    server: FakeServer, client: ChatClient, content_type: str, text: str, shown: str | None
) -> None:
    charset = content_type.split("charset=")[1]
    data = text.encode(charset if charset != "no-such-codec" else "utf-8")
    server.enqueue(Reply((data,), status=500, headers={"Content-Type": content_type},
                         framing="length"))
    error = collect(create_stream_completion(PARAMS, client=client)).error
    assert isinstance(error, ServerError)
    assert (shown or text) in str(error)
    assert "\ufffd" not in str(error)


def test_chunk_size_lines_with_many_leading_zeros(
    server: FakeServer, client: ChatClient
) -> None:
    event = sse_event(chunk(content="zeros", finish_reason="stop"))
    wire = b"%020x\r\n%s\r\n%020x\r\n%s\r\n0000000000000000000000\r\n\r\n" % (
        len(event), event, len(DONE), DONE)
    headers = {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}
    server.enqueue(Reply.raw(wire, headers=headers, framing="close"))
    result = collect(create_stream_completion(PARAMS, client=client))
    assert result.completed and result.content == "zeros", result.error


def test_events_with_empty_data_are_skipped(server: FakeServer, client: ChatClient) -> None:
    body = (b"data:\n\n" + sse_event(chunk(content="a")) + b"data\n\n"
            + b"data: \n\n" + sse_event(chunk(content="b", finish_reason="stop")) + DONE)
    server.enqueue(Reply.raw(body))
    result = collect(create_stream_completion(PARAMS, client=client))
    assert result.completed and result.content == "ab", result.error


SECRETS = {"api-key": "azure-secret-value", "x-api-key": "anthropic-secret-value"}


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_cross_origin_redirect_is_refused_and_sends_no_credentials(
    server: FakeServer, status: int
) -> None:
    with FakeServer() as other:
        # localhost vs 127.0.0.1: another origin, still loopback
        location = f"http://localhost:{other.port}/v1/chat/completions"
        server.enqueue(Reply.error(status, "moved", headers={"Location": location}))
        with ChatClient(server.base_url, "sk-test-key", headers=SECRETS,
                        max_retries=2) as client:
            error = collect(create_stream_completion(PARAMS, client=client)).error
        assert other.requests == []
    assert isinstance(error, APIStatusError) and error.status_code == status
    assert "another origin" in str(error) and f"localhost:{other.port}" in str(error)
    assert len(server.requests) == 1  # not retried


def test_a_same_origin_redirect_is_followed_with_the_same_request(
    server: FakeServer
) -> None:
    server.enqueue(Reply.error(308, "", headers={"Location": "/v2/chat/completions"}),
                   Reply.text("moved here"))
    with ChatClient(server.base_url, "sk-test-key", headers=SECRETS) as client:
        result = collect(create_stream_completion(PARAMS, client=client))
    assert result.content == "moved here"
    first, second = server.requests
    assert second.path == "/v2/chat/completions" and second.body == first.body
    assert second.headers["api-key"] == SECRETS["api-key"]


def test_a_dns_failure_names_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    def unknown(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unknown)
    with ChatClient("https://api.no-such-host.invalid/v1", "sk-test-key",
                    max_retries=0) as client:
        error = collect(create_stream_completion(PARAMS, client=client)).error
    assert isinstance(error, APIConnectionError)
    assert "Could not resolve host api.no-such-host.invalid" in str(error)
    for internal in ("urllib3", "HTTPSConnectionPool", "Max retries", "object at 0x"):
        assert internal not in str(error)


def test_the_idle_timeout_mid_stream_says_its_seconds(server: FakeServer) -> None:
    server.enqueue(Reply.events([chunk(content="x")], done=False).then(STALL))
    with ChatClient(server.base_url, "k", max_retries=0, timeout=(2.0, 0.3)) as client:
        error = collect(create_stream_completion(PARAMS, client=client)).error
    assert isinstance(error, APITimeoutError)
    assert "while streaming within the idle timeout (0.3 s)" in str(error)
