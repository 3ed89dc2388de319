"""create_stream_completion against a real loopback FakeServer: the wire as it is."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from rxchat import ChatClient, ChatCompletionParams, ChatMessage, Message, create_stream_completion
from rxchat.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    RateLimitError,
    ServerError,
    StreamError,
    StreamInterrupted,
)
from rxchat.testing import STALL, FakeServer, Framing, Reply, chunk, closed_port, sse_event
from tests.conftest import (
    FRAMINGS,
    PARAMS,
    assert_grammar,
    collect,
    open_fds,
    retry_timers,
    subscribe,
    threads_started_since,
    wait_until,
)


def stream(client: ChatClient, params: ChatCompletionParams = PARAMS) -> Any:
    return create_stream_completion(params, client=client)


# --- The body as providers send it ---------------------------------------------------


@pytest.mark.parametrize("framing", FRAMINGS)
def test_text_reply_in_both_framings(
    server: FakeServer, client: ChatClient, framing: Framing
) -> None:
    server.enqueue(Reply.text("Hello there, friend", usage={"prompt_tokens": 1,
                   "completion_tokens": 3, "total_tokens": 4}, framing=framing))
    result = collect(stream(client))
    assert_grammar(result)
    assert result.completed and result.error is None
    assert result.content == "Hello there, friend"
    assert [m.content for m in result.messages[1:4]] == ["Hello ", "there, ", "friend"]
    assert result.messages[-2].finish_reason == "stop"
    assert result.messages[-1].usage is not None and result.messages[-1].usage.total_tokens == 4


def test_keep_alive_comments_are_ignored(server: FakeServer, client: ChatClient) -> None:
    body = [b": ping\n\n", sse_event(chunk(content="a")), b": OPENROUTER PROCESSING\n\n",
            sse_event(chunk(content="b", finish_reason="stop")), b": ping\n\n"]
    server.enqueue(Reply.raw(body))
    result = collect(stream(client))
    assert result.completed
    assert result.content == "ab"


@pytest.mark.parametrize("eol", [b"\r\n", b"\r"], ids=["crlf", "cr"])
def test_other_line_endings(server: FakeServer, client: ChatClient, eol: bytes) -> None:
    reply = Reply.text("one two three")
    body = b"".join(p for p in reply.parts if isinstance(p, bytes)).replace(b"\n", eol)
    server.enqueue(Reply.raw(body).split(7))
    result = collect(stream(client))
    assert result.completed
    assert result.content == "one two three"


@pytest.mark.parametrize("framing", FRAMINGS)
def test_split_at_every_byte_and_inside_utf8(
    server: FakeServer, client: ChatClient, framing: Framing
) -> None:
    text = "北京 is 🎯 déjà vu"
    server.enqueue(Reply.text(text, reasoning="思考 🤔", framing=framing).split(1))
    result = collect(stream(client))
    assert result.completed
    assert result.content == text
    assert result.reasoning == "思考 🤔"


def test_empty_choices_chunks_are_skipped(server: FakeServer, client: ChatClient) -> None:
    azure_first = {"choices": [], "created": 0, "id": "", "model": "",
                   "prompt_filter_results": [{"prompt_index": 0}]}
    server.enqueue(Reply.events([azure_first, chunk(content="ok", finish_reason="stop"),
                                 chunk(choices=False)]))
    result = collect(stream(client))
    assert result.completed
    assert [m.content for m in result.messages] == ["ok"]


def test_reasoning_field_and_tool_calls(server: FakeServer, client: ChatClient) -> None:
    server.enqueue(Reply.tool_calls([{"id": "call_1", "name": "get", "arguments": '{"a": 1}'}],
                                    fragment=3))
    result = collect(stream(client))
    assert result.completed
    args = "".join(c.function.arguments for m in result.messages for c in m.tool_calls)
    assert args == '{"a": 1}'
    assert result.messages[-1].finish_reason == "tool_calls"


@pytest.mark.parametrize("framing", FRAMINGS)
def test_error_object_mid_stream(
    server: FakeServer, client: ChatClient, framing: Framing
) -> None:
    error = {"error": {"message": "The server had an error while processing your request.",
                       "type": "server_error"}}
    server.enqueue(Reply.events([chunk(content="The "), chunk(content="question"), error],
                                done=False, framing=framing))
    result = collect(stream(client))
    assert_grammar(result)
    assert result.content == "The question"
    assert isinstance(result.error, StreamError)
    assert result.error.server_message == "The server had an error while processing your request."
    assert "The server had an error" in str(result.error)


def test_malformed_event_is_a_stream_error(server: FakeServer, client: ChatClient) -> None:
    server.enqueue(Reply.raw([sse_event(chunk(content="a")), b"data: {oops\n\n"]))
    result = collect(stream(client))
    assert result.content == "a"
    assert isinstance(result.error, StreamError) and "not JSON" in str(result.error)


def test_event_over_the_size_limit(server: FakeServer) -> None:
    client = ChatClient(server.base_url, "k", max_retries=0, max_event_bytes=1000)
    server.enqueue(Reply.events([chunk(content="x" * 5000)]))
    result = collect(stream(client))
    assert isinstance(result.error, StreamError) and "larger than 1000" in str(result.error)


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("keep", [0, 30, 120, 260])
def test_cut_off_body_is_interrupted_never_complete(
    server: FakeServer, client: ChatClient, framing: Framing, keep: int
) -> None:
    reply = Reply.text("The capital of the UK is London.", framing=framing)
    server.enqueue(reply.cut(keep))
    result = collect(stream(client))
    assert_grammar(result)
    assert not result.completed
    assert isinstance(result.error, StreamInterrupted)
    assert "The capital of the UK is London.".startswith(result.content)


def test_final_event_without_blank_line_completes(server: FakeServer, client: ChatClient) -> None:
    body = sse_event(chunk(content="x")) + sse_event(chunk(finish_reason="stop"))[:-1]
    server.enqueue(Reply.raw(body, framing="close"))
    result = collect(stream(client))
    assert result.completed
    assert result.messages[-1].finish_reason == "stop"


def test_clean_eof_after_finish_reason_completes(server: FakeServer, client: ChatClient) -> None:
    server.enqueue(Reply.events([chunk(content="x"), chunk(finish_reason="stop")], done=False,
                                framing="close"))
    assert collect(stream(client)).completed


# --- Content types and HTTP errors ---------------------------------------------------


def test_wrong_content_type_is_a_clear_stream_error(
    server: FakeServer, client: ChatClient
) -> None:
    html = b"<html><body>Welcome to nginx!</body></html>"
    server.enqueue(Reply.raw(html, headers={"Content-Type": "text/html"}, framing="length"))
    result = collect(stream(client))
    assert isinstance(result.error, StreamError)
    assert "text/html" in str(result.error)
    assert "Welcome to nginx!" in str(result.error)


def test_whole_json_completion_is_one_message(server: FakeServer, client: ChatClient) -> None:
    completion = {
        "id": "x", "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "Hi!"}}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
    }
    server.enqueue(Reply.error(200, completion))
    result = collect(stream(client))
    assert result.completed
    assert len(result.messages) == 1
    message = result.messages[0]
    assert (message.content, message.finish_reason) == ("Hi!", "stop")
    assert message.usage is not None and message.usage.total_tokens == 3


HTTP_ERRORS: list[tuple[int, str | dict[str, Any], type[Exception], str]] = [
    (400, {"error": {"message": "Input tokens exceed the limit", "type": "invalid_request_error",
                     "param": "messages", "code": "context_length_exceeded"}},
     BadRequestError, "Input tokens exceed the limit"),
    (400, {"code": 20012, "message": "Model does not exist. Please check it carefully.",
           "data": None}, BadRequestError, "Model does not exist."),
    (404, {"detail": "Not Found"}, BadRequestError, "Not Found"),
    (401, {"error": {"message": "Invalid token"}}, AuthenticationError, "Invalid token"),
    (403, "Forbidden by policy", AuthenticationError, "Forbidden by policy"),
    (429, {"error": {"message": "Rate limit exceeded"}}, RateLimitError, "Rate limit exceeded"),
    (500, "upstream crashed", ServerError, "upstream crashed"),
    (502, "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>"
          "<hr><center>nginx</center></body></html>", ServerError, "502 Bad Gateway"),
]


@pytest.mark.parametrize(("status", "body", "kind", "said"), HTTP_ERRORS)
def test_http_errors_carry_the_servers_message(
    server: FakeServer, client: ChatClient, status: int, body: str | dict[str, Any],
    kind: type[Exception], said: str,
) -> None:
    server.enqueue(Reply.error(status, body, headers={"Retry-After": "7"}))
    result = collect(stream(client))
    assert type(result.error) is kind
    assert said in str(result.error)
    assert getattr(result.error, "status_code", None) == status
    assert "<center>" not in str(result.error)
    if isinstance(result.error, RateLimitError):
        assert result.error.retry_after == 7


# --- Delivery: each delta as soon as it arrives --------------------------------------


@pytest.mark.parametrize("framing", FRAMINGS)
def test_delta_arrives_while_the_server_is_still_silent(
    server: FakeServer, client: ChatClient, framing: Framing
) -> None:
    server.enqueue(Reply.events([chunk(role="assistant", content="first")], done=False,
                                framing=framing).then(STALL))
    result, disposable = subscribe(stream(client))
    try:
        assert result.first.wait(3), "the first delta was held back"
        assert result.content == "first"
        assert not result.done.is_set()
    finally:
        disposable.dispose()
    assert server.wait_for_disconnects(1)


# --- Cold, and what is sent ----------------------------------------------------------


def test_cold_nothing_is_sent_until_subscribe(server: FakeServer, client: ChatClient) -> None:
    server.enqueue(Reply.text("a"), Reply.text("b"))
    observable = stream(client)
    assert server.requests == []  # and an eager request would have taken "a" below
    assert collect(observable).content == "a"
    assert collect(observable).content == "b"
    assert len(server.requests) == 2


def test_request_body_and_headers(server: FakeServer) -> None:
    client = ChatClient(server.base_url, "sk-secret-1", model="default-model", max_retries=0,
                        headers={"X-Extra": "1"})
    params: ChatCompletionParams = {
        "messages": [ChatMessage.system("be brief"), ChatMessage.user("hi"),
                     Message(content="hello", reasoning_content="hidden",
                             finish_reason="stop"),
                     {"role": "user", "content": "again"}],
        "temperature": 0.2, "max_tokens": 5, "stream": False,
        "stream_options": {"include_usage": True},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    }
    params["custom_field"] = {"nested": [1, 2]}  # type: ignore[typeddict-unknown-key]
    server.enqueue(Reply.text("ok"))
    assert collect(stream(client, params)).completed
    request = server.requests[0]
    assert request.method == "POST" and request.path == "/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer sk-secret-1"
    assert request.headers["X-Extra"] == "1"
    assert "text/event-stream" in request.headers["Accept"]
    assert request.json == {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "again"},
        ],
        "model": "default-model", "temperature": 0.2, "max_tokens": 5, "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "custom_field": {"nested": [1, 2]},
    }


def test_params_model_wins_over_client_model(server: FakeServer, client: ChatClient) -> None:
    server.enqueue(Reply.text("ok"))
    hi = [{"role": "user", "content": "hi"}]
    collect(stream(client, {"model": "deepseek-ai/DeepSeek-R1", "messages": hi}))
    assert server.requests[0].json["model"] == "deepseek-ai/DeepSeek-R1"


def test_params_are_not_mutated(server: FakeServer, client: ChatClient) -> None:
    params: ChatCompletionParams = {"messages": [ChatMessage.user("hi")]}
    server.enqueue(Reply.text("ok"))
    collect(stream(client, params))
    assert params == {"messages": [ChatMessage.user("hi")]}


# --- Dispose -------------------------------------------------------------------------


@pytest.fixture
def baseline(server: FakeServer) -> Iterator[tuple[set[threading.Thread], int]]:
    yield set(threading.enumerate()), open_fds()


@pytest.mark.parametrize("framing", FRAMINGS)
def test_dispose_while_the_server_is_silent(
    server: FakeServer, baseline: tuple[set[threading.Thread], int], framing: Framing
) -> None:
    threads, fds = baseline
    client = ChatClient(server.base_url, "k", max_retries=0)
    server.enqueue(Reply.events([chunk(content="a")], done=False, framing=framing).then(STALL))
    result, disposable = subscribe(stream(client))
    assert result.first.wait(3)
    disposable.dispose()
    assert server.wait_for_disconnects(1, timeout=3), "the socket was not closed"
    assert wait_until(lambda: not threads_started_since(threads)), "reader thread still alive"
    client.close()
    assert wait_until(lambda: open_fds() <= fds), "a socket was leaked"
    assert result.events == ["next"]


def test_nothing_is_emitted_after_dispose(server: FakeServer, client: ChatClient) -> None:
    server.enqueue(Reply.events([chunk(content=str(i)) for i in range(200)], delay=0.01))
    result, disposable = subscribe(stream(client))
    assert result.first.wait(3)
    disposable.dispose()
    seen = len(result.events)
    assert server.wait_for_disconnects(1)
    # The socket is closed, and a second stream through the same client is read and
    # delivered to its end: whatever of the first was still queued has had its turn.
    server.enqueue(Reply.text("after"))
    assert collect(stream(client)).content == "after"
    assert len(result.events) == seen
    assert "completed" not in result.events and "error" not in result.events


def test_dispose_before_headers_arrive(
    server: FakeServer, baseline: tuple[set[threading.Thread], int]
) -> None:
    threads, fds = baseline
    # The read timeout is far beyond the waits below: only the dispose can close.
    client = ChatClient(server.base_url, "k", max_retries=0, timeout=(5, 60))
    server.enqueue(Reply.text("never").after(STALL))
    result, disposable = subscribe(stream(client))
    assert server.wait_for_requests(1)  # sent; the client waits for the status line
    disposable.dispose()
    assert server.wait_for_disconnects(1, timeout=3), "the socket was not closed"
    assert server.events_of(0) == ["request", "disconnect"]  # no headers were ever sent
    assert wait_until(lambda: not threads_started_since(threads)), "reader thread still alive"
    client.close()
    assert wait_until(lambda: open_fds() <= fds), "a socket was leaked"
    assert result.events == []


def test_dispose_before_the_reader_starts_sends_nothing(server: FakeServer) -> None:
    from reactivex.scheduler import VirtualTimeScheduler

    scheduler = VirtualTimeScheduler()
    client = ChatClient(server.base_url, "k", max_retries=0)
    observable = create_stream_completion(PARAMS, client=client, scheduler=scheduler)
    result, disposable = subscribe(observable)
    disposable.dispose()
    scheduler.start()  # runs every attempt, request and read included, synchronously
    assert server.requests == [] and result.events == []


# --- Retries -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 429])
def test_retries_before_the_first_delta(server: FakeServer, status: int) -> None:
    client = ChatClient(server.base_url, "k", max_retries=2)
    server.enqueue(Reply.error(status, {"error": {"message": "busy"}},
                               headers={"Retry-After": "0.05"}),
                   Reply.text("second time lucky"))
    result = collect(stream(client))
    assert result.completed
    assert result.content == "second time lucky"
    assert len(server.requests) == 2


def test_retries_give_up_after_max_retries(server: FakeServer) -> None:
    client = ChatClient(server.base_url, "k", max_retries=1)
    busy = Reply.error(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "0"})
    server.enqueue(busy, busy, Reply.text("too late"))
    result = collect(stream(client))
    assert isinstance(result.error, RateLimitError)
    assert "slow down" in str(result.error) and "2 attempts" in str(result.error)
    assert len(server.requests) == 2


def test_no_retry_on_a_bad_request(server: FakeServer) -> None:
    client = ChatClient(server.base_url, "k", max_retries=2)
    server.enqueue(Reply.error(400, {"error": {"message": "bad"}}), Reply.text("no"))
    assert isinstance(collect(stream(client)).error, BadRequestError)
    assert len(server.requests) == 1


def test_no_retry_after_the_first_delta(server: FakeServer) -> None:
    client = ChatClient(server.base_url, "k", max_retries=2, timeout=(1, 0.3))
    server.enqueue(Reply.events([chunk(content="partial")], done=False).then(STALL),
                   Reply.text("duplicate"))
    result = collect(stream(client))
    assert isinstance(result.error, APITimeoutError)
    assert result.content == "partial"
    assert len(server.requests) == 1
    # The error was terminal: no retry is pending to take the next reply.
    assert collect(stream(client)).content == "duplicate"
    assert len(server.requests) == 2


def test_dispose_during_retry_backoff_ends_at_once(server: FakeServer) -> None:
    client = ChatClient(server.base_url, "k", max_retries=2)
    server.enqueue(Reply.error(429, "wait", headers={"Retry-After": "30"}))
    result, disposable = subscribe(stream(client))
    assert server.wait_for_requests(1)
    assert wait_until(retry_timers), "no retry is waiting"
    disposable.dispose()
    assert wait_until(lambda: not retry_timers()), "the 30 s wait outlived dispose"
    assert len(server.requests) == 1 and result.events == []


# --- Connection failures -------------------------------------------------------------


def test_connection_refused() -> None:
    client = ChatClient(f"http://127.0.0.1:{closed_port()}/v1", "k", max_retries=0)
    result = collect(stream(client))
    assert type(result.error) is APIConnectionError
    assert "refused" in str(result.error)


def test_connection_refused_is_retried_then_reported() -> None:
    client = ChatClient(f"http://127.0.0.1:{closed_port()}/v1", "k", max_retries=1)
    result = collect(stream(client))
    assert type(result.error) is APIConnectionError
    assert "2 attempts" in str(result.error)


def test_read_timeout_before_headers(server: FakeServer) -> None:
    client = ChatClient(server.base_url, "k", max_retries=0, timeout=(1, 0.3))
    server.enqueue(Reply.text("late").after(STALL))
    result = collect(stream(client))
    assert isinstance(result.error, APITimeoutError)
    assert "timeout" in str(result.error)


@pytest.mark.parametrize("framing", FRAMINGS)
def test_read_timeout_mid_stream(server: FakeServer, framing: Framing) -> None:
    client = ChatClient(server.base_url, "k", max_retries=0, timeout=(1, 0.3))
    server.enqueue(Reply.events([chunk(content="a")], done=False, framing=framing).then(STALL))
    result = collect(stream(client))
    assert_grammar(result)
    assert isinstance(result.error, APITimeoutError)
    assert result.content == "a"


def test_timeout_error_is_a_connection_error() -> None:
    assert issubclass(APITimeoutError, APIConnectionError)


def test_json_body_of_error_is_kept(server: FakeServer, client: ChatClient) -> None:
    body = {"error": {"message": "nope", "code": "x"}}
    server.enqueue(Reply.error(400, body))
    error = collect(stream(client)).error
    assert isinstance(error, BadRequestError)
    assert json.loads(error.body) == body
    assert error.server_message == "nope"


# --- Keep-alive connections ----------------------------------------------------------


def test_many_requests_on_one_client_with_pooled_connections(
    server: FakeServer, client: ChatClient
) -> None:
    # Bodies read to the end leave their connection in the pool; the dispose that
    # follows each terminal notification must not shut a pooled connection down.
    for i in range(30):
        if i % 3 == 0:
            server.enqueue(Reply.error(429, {"error": {"message": "slow"}}))
        elif i % 3 == 1:
            server.enqueue(Reply.text("cut short").cut(40))
        else:
            server.enqueue(Reply.events([chunk(content="x", finish_reason="stop")], done=False))
        error = collect(stream(client)).error
        assert not isinstance(error, APIConnectionError), f"request {i}: {error}"
    # Every body was read to its end, so one connection served them all.
    assert len({r.client for r in server.requests}) == 1
