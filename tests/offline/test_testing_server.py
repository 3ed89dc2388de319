"""rxchat.testing: scripted replies and the loopback server itself."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time

import pytest

from rxchat.testing import STALL, FakeServer, Reply, chunk, closed_port, offline_answer, sse_event


def post(server: FakeServer, body: object, path: str = "/v1/chat/completions",
         timeout: float = 5) -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        conn.request("POST", path, json.dumps(body).encode(),
                     {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


# --- Reply transforms (pure) ---------------------------------------------------------


def test_split_cut_then_after() -> None:
    reply = Reply.raw(b"abcdef")
    assert reply.split(4).parts == (b"abcd", b"ef")
    assert Reply.raw([b"abc", 0.5, b"def"]).cut(4).parts == (b"abc", 0.5, b"d")
    assert reply.then(STALL).parts == (b"abcdef", STALL)
    assert reply.after(STALL).delay_headers is STALL
    assert reply.with_framing("close").framing == "close"


def test_text_reply_shape() -> None:
    reply = Reply.text("a b", reasoning="r", usage={"total_tokens": 1})
    body = b"".join(p for p in reply.parts if isinstance(p, bytes))
    assert body.endswith(b"data: [DONE]\n\n")
    assert sse_event(chunk(content="a ")) in body
    assert sse_event(chunk(reasoning_content="r")) in body
    assert sse_event(chunk(usage={"total_tokens": 1}, choices=False)) in body


def test_sse_event_with_name() -> None:
    assert sse_event("x", event="error") == b"event: error\ndata: x\n\n"


# --- The server ----------------------------------------------------------------------


def test_records_requests_and_plays_replies_in_order(server: FakeServer) -> None:
    server.enqueue(Reply.raw(b"first", framing="length"), Reply.raw(b"second",
                                                                   framing="length"))
    assert post(server, {"messages": [{"role": "user", "content": "hi"}]})[1] == b"first"
    assert post(server, {"n": 2})[1] == b"second"
    assert [r.json for r in server.requests] == [
        {"messages": [{"role": "user", "content": "hi"}]}, {"n": 2}]
    assert server.requests[0].messages == [{"role": "user", "content": "hi"}]
    assert server.requests[0].path == "/v1/chat/completions"


def test_offline_model_answers_when_the_script_is_empty(server: FakeServer) -> None:
    messages = [{"role": "user", "content": "my name is Ada."},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "who am I?"}]
    response, body = post(server, {"messages": messages, "stream": True})
    assert response.status == 200
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert body.endswith(b"data: [DONE]\n\n")
    assert "your name is Ada" in offline_answer(messages)


def test_unknown_route_and_models(server: FakeServer) -> None:
    response, body = post(server, {}, path="/v1/embeddings")
    assert response.status == 404 and b"No route" in body
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/v1/models")
    models = json.loads(conn.getresponse().read())
    conn.close()
    assert models["data"][0]["id"] == "rxchat-offline"


@pytest.mark.parametrize(
    ("framing", "header", "value"),
    [("chunked", "Transfer-Encoding", "chunked"), ("length", "Content-Length", "6"),
     ("close", "Connection", "close")],
)
def test_framings(server: FakeServer, framing: str, header: str, value: str) -> None:
    server.enqueue(Reply.raw([b"abc", b"def"], framing=framing))  # type: ignore[arg-type]
    response, body = post(server, {})
    assert body == b"abcdef"
    assert response.getheader(header) == value
    if framing == "close":
        assert response.getheader("Content-Length") is None
        assert response.getheader("Transfer-Encoding") is None


def test_error_reply(server: FakeServer) -> None:
    server.enqueue(Reply.error(429, {"error": {"message": "slow"}}, headers={"Retry-After": "3"}))
    response, body = post(server, {})
    assert response.status == 429
    assert response.getheader("Retry-After") == "3"
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(body) == {"error": {"message": "slow"}}


def test_stall_before_headers_counts_the_disconnect(server: FakeServer) -> None:
    server.enqueue(Reply.text("x").after(STALL))
    with pytest.raises(TimeoutError):
        post(server, {}, timeout=0.3)
    assert server.wait_for_disconnects(1)


def test_delayed_headers(server: FakeServer) -> None:
    server.enqueue(Reply.raw(b"late", framing="length").after(0.2))
    started = time.monotonic()
    assert post(server, {})[1] == b"late"
    assert time.monotonic() - started >= 0.2


def test_stop_ends_stalled_replies() -> None:
    server = FakeServer().start()
    server.enqueue(Reply.raw([b"x"]).then(STALL))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "/v1/chat/completions", b"{}")
    response = conn.getresponse()
    assert server.wait_for_event("write")  # the part before the stall is sent
    server.stop()
    # The stall ends with the server: the body is cut, long before the 5 s read timeout.
    with pytest.raises(http.client.IncompleteRead):
        response.read()
    conn.close()
    assert server.events_of(0) == ["request", "headers", "write"]


def test_events_log_what_the_server_did_in_order(server: FakeServer) -> None:
    gate = threading.Event()
    server.enqueue(Reply.raw([b"one", gate, b"two"], framing="close"),
                   Reply.events([chunk(content="x")], done=False).then(STALL))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    with contextlib.closing(conn):
        conn.request("POST", "/v1/chat/completions", b"{}")
        response = conn.getresponse()
        assert server.wait_for_requests(1) and server.wait_for_headers(1)
        assert server.wait_for_event("write", 1)
        assert server.events_of(0) == ["request", "headers", "write"]  # held at the gate
        gate.set()
        assert response.read() == b"onetwo"
    assert server.events_of(0) == ["request", "headers", "write", "write"]
    stalled = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    stalled.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: 2\r\n\r\n{}")
    assert server.wait_for_event("write", 3)
    stalled.close()
    assert server.wait_for_disconnects(1)
    assert server.events_of(-1) == ["request", "headers", "write", "disconnect"]
    times = [event.at for event in server.events]
    assert times == sorted(times)
    assert not server.wait_for_event("disconnect", 2, timeout=0.05)


def test_a_get_is_logged_without_a_request() -> None:
    with FakeServer() as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        with contextlib.closing(conn):
            conn.request("GET", "/v1/models")
            assert conn.getresponse().status == 200
        assert server.wait_for_headers(1) and server.wait_for_event("write", 1)
        assert server.requests == []
        assert [(e.kind, e.request) for e in server.events][:2] == [("headers", -1),
                                                                   ("write", -1)]


def test_closed_port_refuses() -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", closed_port()), timeout=2).close()


def test_base_url_needs_a_running_server() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = FakeServer().base_url


def test_tool_calls_reply_accepts_the_flat_and_the_nested_openai_shape() -> None:
    flat = Reply.tool_calls([{"id": "c1", "name": "f", "arguments": '{"x": 1}'}])
    nested = Reply.tool_calls([{"id": "c1", "type": "function",
                                "function": {"name": "f", "arguments": {"x": 1}}}])
    assert flat == nested
    with pytest.raises(ValueError, match="call 0 has no name"):
        Reply.tool_calls([{"id": "c1", "function": {"arguments": "{}"}}])


def test_the_event_log_is_bounded_and_waits_still_count_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rxchat._offline import server as server_module

    monkeypatch.setattr(server_module, "EVENTS_KEPT", 10)
    with FakeServer() as server:
        for _ in range(5):
            server.enqueue(Reply.raw([b"a", b"b", b"c"], framing="length"))
            assert post(server, {})[1] == b"abc"
        assert server.wait_for_event("write", 15, timeout=5)  # 5 x (3 parts)
        assert server.wait_for_requests(5, timeout=5)
        assert len(server.events) <= 10
        assert server.events_of(4) == ["request", "headers", "write", "write", "write"]


def test_events_of_a_request_that_does_not_exist_is_empty(server: FakeServer) -> None:
    assert server.events_of(-1) == [] and server.events_of(3) == []
