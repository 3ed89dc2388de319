"""Boundaries over real loopback HTTP: provider input that 0.2 mishandled, arguments
checked at the call, the model list's redirects, and the pool of a shared client."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rxchat import ChatClient, ChatMessage, create_stream_completion
from rxchat._concurrency.pool import SEND_THREADS
from rxchat.cli._listing import list_models
from rxchat.errors import APIStatusError, ConfigurationError, StreamError
from rxchat.testing import FakeServer, RecordedRequest, Reply, chunk, sse_event
from tests.conftest import PARAMS, collect

SSE = {"Content-Type": "text/event-stream"}


# --- provider input -----------------------------------------------------------------


def test_mistral_content_parts_stream_as_content_and_reasoning(
    server: FakeServer, client: ChatClient
) -> None:
    parts = [{"type": "thinking", "thinking": [{"type": "text", "text": "Hm. "}]},
             {"type": "text", "text": "Paris."}]
    server.enqueue(Reply.events([chunk(role="assistant", content=""),
                                 {"choices": [{"index": 0, "delta": {"content": parts}}]},
                                 chunk(finish_reason="stop")]))
    result = collect(create_stream_completion(PARAMS, client=client))
    assert result.completed, result.error
    assert (result.content, result.reasoning) == ("Paris.", "Hm. ")


def test_non_string_content_is_a_stream_error_naming_it(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(Reply.events([chunk(role="assistant", content="a"),
                                 {"choices": [{"index": 0, "delta": {"content": {"x": 1}}}]}]))
    result = collect(create_stream_completion(PARAMS, client=client))
    assert isinstance(result.error, StreamError), result.error
    assert "dict {'x': 1}" in str(result.error) and result.content == "a"


def test_an_event_stream_of_other_text_is_quoted_and_not_retried(server: FakeServer) -> None:
    server.enqueue(*[Reply.raw(b'{"error":"Internal Server Error"}', headers=SSE)] * 3)
    with ChatClient(server.base_url, "sk-test-key", max_retries=2) as client:
        result = collect(create_stream_completion(PARAMS, client=client))
    assert isinstance(result.error, StreamError), result.error
    assert '{"error":"Internal Server Error"}' in str(result.error)
    assert len(server.requests) == 1


def test_json_nested_too_deeply_says_so(server: FakeServer, client: ChatClient) -> None:
    server.enqueue(Reply.raw(sse_event("[" * 100_000 + "]" * 100_000)))
    result = collect(create_stream_completion(PARAMS, client=client))
    assert isinstance(result.error, StreamError) and "nested too deeply" in str(result.error)
    assert "RecursionError" not in str(result.error)


def test_an_error_body_nested_too_deeply_is_still_a_status_error(
    server: FakeServer, client: ChatClient
) -> None:
    server.enqueue(Reply.error(400, "[" * 100_000 + "]" * 100_000))
    result = collect(create_stream_completion(PARAMS, client=client))
    assert isinstance(result.error, APIStatusError) and result.error.status_code == 400


# --- caller input -------------------------------------------------------------------


def test_a_string_for_the_client_is_a_type_error_at_the_call(server: FakeServer) -> None:
    with pytest.raises(TypeError, match=r"client must be a rxchat\.ChatClient") as caught:
        create_stream_completion(PARAMS, client=server.base_url)  # type: ignore[arg-type]
    assert "ChatClient(base_url=" in str(caught.value)
    assert server.requests == []


@pytest.mark.parametrize(
    ("params", "error", "words"),
    [
        ("hello", TypeError, "params must be a dict"),
        ({"messages": "hello"}, TypeError, "params['messages'] must be a list"),
        ({"messages": {"role": "user"}}, TypeError, "must be a list"),
        ({"mesages": [{"role": "user", "content": "x"}]}, ConfigurationError,
         "did you mean 'messages' instead of 'mesages'"),
        ({}, ConfigurationError, "params has no 'messages'"),
        ({"messages": []}, ConfigurationError, "params['messages'] is empty"),
        ({"messages": [{"content": "hi"}]}, ConfigurationError,
         "params['messages'][0] has no 'role'"),
        ({"messages": [{"role": "user", "content": "a"}, "b"]}, TypeError,
         "params['messages'][1] must be a dict"),
    ],
)
def test_malformed_params_are_refused_before_any_request(
    server: FakeServer, client: ChatClient, params: Any, error: type[Exception], words: str
) -> None:
    with pytest.raises(error) as caught:
        create_stream_completion(params, client=client)
    assert words in str(caught.value)
    assert server.requests == []


def test_well_formed_params_of_every_kind_pass(server: FakeServer, client: ChatClient) -> None:
    server.enqueue(Reply.text("ok"))
    params = {"messages": (ChatMessage.user("hi"), {"role": "assistant", "content": "x"})}
    assert collect(create_stream_completion(params, client=client)).completed


# --- /models: same-origin redirects only --------------------------------------------


class _Redirecting(ThreadingHTTPServer):
    """A loopback server whose every GET is a redirect to ``location`` (or a model
    list when ``location`` is None); it records the headers it got."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RedirectHandler)
        self.location: str | None = None
        self.headers_seen: list[dict[str, str]] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _RedirectHandler(BaseHTTPRequestHandler):
    server: _Redirecting

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.headers_seen.append(dict(self.headers.items()))
        if self.server.location is not None and self.path == "/v1/models":
            self.send_response(302)
            self.send_header("Location", self.server.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"data": [{"id": "moved-model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def redirecting() -> Iterator[_Redirecting]:
    server = _Redirecting()
    server.thread.start()
    yield server
    server.shutdown()
    server.server_close()
    server.thread.join(10)


SECRETS = {"api-key": "azure-secret-value", "X-Api-Key": "anthropic-secret-value"}


def test_the_model_list_refuses_a_cross_origin_redirect_and_sends_no_key(
    redirecting: _Redirecting,
) -> None:
    with FakeServer() as other:
        seen: list[RecordedRequest] = []

        def record(request: RecordedRequest) -> Reply:
            seen.append(request)
            return Reply.text("x")

        other.responder = record
        redirecting.location = f"http://localhost:{other.port}/v1/models"
        with ChatClient(redirecting.base_url, "sk-test-key", headers=SECRETS) as client, \
                pytest.raises(APIStatusError, match="another origin") as caught:
            list_models(client)
        assert other.connections == 0 and seen == []
    assert f"set base_url to http://localhost:{other.port}/v1." in str(caught.value)


def test_the_model_list_follows_a_same_origin_redirect(redirecting: _Redirecting) -> None:
    redirecting.location = "/v2/models"
    with ChatClient(redirecting.base_url, "sk-test-key", headers=SECRETS) as client:
        assert list_models(client) == ["moved-model"]
    _first, second = redirecting.headers_seen
    assert second["api-key"] == SECRETS["api-key"]


# --- a shared client with many streams ------------------------------------------------


def test_many_concurrent_streams_on_one_client_keep_their_connections(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # more than requests' default pool of 10, and at most as many as the send pool
    # sends at once (a sender waits for its headers; the server here answers none
    # before all have arrived)
    streams = min(24, SEND_THREADS)
    arrived = threading.Barrier(streams, timeout=10)

    def respond(_request: RecordedRequest) -> Reply:
        arrived.wait()  # every stream holds its connection at once
        return Reply.text("ok")

    caplog.set_level(logging.WARNING, logger="urllib3")
    with FakeServer(respond) as server, ChatClient(server.base_url, "sk-test-key") as client:
        results: list[Any] = []
        done = threading.Event()

        def ended(outcome: Any = "ok") -> None:
            results.append(outcome)
            if len(results) == streams:
                done.set()

        for _ in range(streams):
            create_stream_completion(PARAMS, client=client).subscribe(
                on_error=ended, on_completed=ended
            )
        assert done.wait(20)
    assert results == ["ok"] * streams
    assert not [r for r in caplog.records if "pool is full" in r.getMessage()]
