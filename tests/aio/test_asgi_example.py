"""examples/asgi_relay.py, for real: uvicorn on 127.0.0.1, an HTTP client, a loopback provider.

The browser is an `http.client` connection that reads a few events and hangs up; the
provider is a `FakeServer` that must see the relay's upstream socket close.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import uvicorn

from rxchat import ChatClient, ChatSession, Message
from rxchat.testing import STALL, FakeServer, Reply, chunk
from tests.conftest import wait_until

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "asgi_relay.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("asgi_relay", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def relay(client: ChatClient) -> Iterator[tuple[int, dict[str, ChatSession]]]:
    """The example app served by uvicorn on a free loopback port, in a thread."""
    app = load_example().create_app(client)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app, log_level="warning", loop="asyncio", http="h11", ws="none", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: server.started, timeout=10), "uvicorn did not start"
        yield listener.getsockname()[1], app.state.sessions
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()
    assert not thread.is_alive(), "uvicorn did not shut down"


def events(response: http.client.HTTPResponse) -> Iterator[tuple[str, dict[str, Any]]]:
    """The SSE events of a response, as (event name, data), read as they arrive."""
    name = "message"
    while line := response.readline():
        text = line.decode().rstrip("\r\n")
        if text.startswith("event: "):
            name = text[len("event: "):]
        elif text.startswith("data: "):
            yield name, json.loads(text[len("data: "):])
            name = "message"


def get(port: int, path: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers={"Accept": "text/event-stream"})
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type", "").startswith("text/event-stream")
    return connection, response


def test_a_whole_turn_is_relayed_and_kept(
    server: FakeServer, relay: tuple[int, dict[str, ChatSession]]
) -> None:
    port, sessions = relay
    server.enqueue(Reply.text("relayed to you"), Reply.text("again"))
    connection, response = get(port, "/chat?q=hi&cid=a")
    got = list(events(response))
    connection.close()
    assert got == [("message", {"content": p}) for p in ("relayed ", "to ", "you")] + [
        ("done", {})
    ]
    connection, response = get(port, "/chat?q=more&cid=a")
    assert list(events(response))[-1] == ("done", {})
    connection.close()
    assert [m.content for m in sessions["a"].messages] == ["hi", "relayed to you", "more",
                                                           "again"]
    assert [m["content"] for m in server_requests_messages(server)[-1]] == [
        "hi", "relayed to you", "more"
    ]


def server_requests_messages(server: FakeServer) -> list[list[dict[str, Any]]]:
    return [request.messages for request in server.requests]


def test_hanging_up_cancels_the_turn_upstream(
    server: FakeServer, relay: tuple[int, dict[str, ChatSession]]
) -> None:
    port, sessions = relay
    server.enqueue(Reply.events(
        [chunk(role="assistant", content="so"), chunk(content=" far"), chunk(content=",")],
        done=False,
    ).then(STALL))
    connection, response = get(port, "/chat?q=tell+me&cid=b")
    stream = events(response)
    first = [next(stream) for _ in range(3)]
    assert first == [("message", {"content": t}) for t in ("so", " far", ",")]
    response.close()
    connection.close()  # the browser goes away
    assert server.wait_for_disconnects(1), "the provider never saw the relay hang up"
    session = sessions["b"]
    assert wait_until(lambda: len(session.messages) == 2)
    assert session.messages[-1] == Message(content="so far,", finish_reason="cancelled")


def test_an_error_is_an_error_event(
    server: FakeServer, relay: tuple[int, dict[str, ChatSession]]
) -> None:
    port, _sessions = relay
    server.enqueue(Reply.error(503, {"error": {"message": "overloaded"}}))
    connection, response = get(port, "/chat?q=hi&cid=c")
    got = list(events(response))
    connection.close()
    assert len(got) == 1 and got[0][0] == "error"
    assert "overloaded" in got[0][1]["error"]
