"""Connection reuse: a stream that ended with ``[DONE]`` hands its connection back to the
pool (after completing, never before), over http and https, for streams and sessions."""

from __future__ import annotations

import threading
import time

import pytest
from reactivex.scheduler import ImmediateScheduler

from rxchat import ChatClient, ChatSession, create_stream_completion
from rxchat import operators as rxops
from rxchat._http import reactor as _reactor
from rxchat._http import transport as _transport
from rxchat._http.pools import draining
from rxchat.testing import DONE, STALL, FakeServer, Reply, chunk
from tests.conftest import PARAMS, collect, open_fds, tls_client, wait_until


def test_five_sequential_streams_ride_one_tls_connection(
    tls_server: FakeServer, ca_bundle: str
) -> None:
    with tls_client(tls_server, ca_bundle) as client:
        for number in range(5):
            tls_server.enqueue(Reply.text(f"reply {number}"))
            result = collect(create_stream_completion(PARAMS, client=client))
            assert result.completed and result.content == f"reply {number}"
    assert len(tls_server.requests) == 5
    assert tls_server.connections == 1


@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_five_sequential_streams_ride_one_http_connection(
    server: FakeServer, client: ChatClient, framing: str
) -> None:
    for _ in range(5):
        server.enqueue(Reply.text("hi there").with_framing(framing))  # type: ignore[arg-type]
        assert collect(create_stream_completion(PARAMS, client=client)).completed
    assert server.connections == 1
    assert len({request.client for request in server.requests}) == 1


def test_three_turns_of_a_session_ride_one_tls_connection(
    tls_server: FakeServer, ca_bundle: str
) -> None:
    with tls_client(tls_server, ca_bundle) as client:
        session = ChatSession(client)
        for turn in range(3):
            tls_server.enqueue(Reply.text(f"answer {turn}"))
            reply = session.send(f"question {turn}").pipe(rxops.final_message()).run()
            assert reply.content == f"answer {turn}"
    assert len(tls_server.requests) == 3
    assert tls_server.connections == 1


def test_completion_is_not_delayed_by_a_body_that_does_not_end(
    server: FakeServer, client: ChatClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # [DONE], then nothing: no chunked terminator. The subscriber completes at once;
    # the reader waits DRAIN_TIMEOUT for the terminator, then closes the connection.
    monkeypatch.setattr(_reactor, "DRAIN_TIMEOUT", 3.0)
    server.enqueue(Reply.events([chunk(content="x", finish_reason="stop")]).then(STALL))
    threads, fds = threading.active_count(), open_fds()
    result = collect(create_stream_completion(PARAMS, client=client))
    completed_at = time.monotonic()
    assert result.completed
    assert server.wait_for_disconnects(1, timeout=_reactor.DRAIN_TIMEOUT + 2)
    done_written = [e.at for e in server.events if e.request == 0 and e.kind == "write"][-1]
    disconnected = next(e.at for e in server.events if e.kind == "disconnect")
    # The reader gives up DRAIN_TIMEOUT after it read [DONE]: a completion that waited
    # for that would come after it, and after the server saw the close.
    assert completed_at < done_written + _reactor.DRAIN_TIMEOUT
    assert completed_at < disconnected
    assert wait_until(lambda: threading.active_count() <= threads)
    assert wait_until(lambda: open_fds() <= fds)
    server.enqueue(Reply.text("next"))
    assert collect(create_stream_completion(PARAMS, client=client)).content == "next"
    assert server.connections == 2


def test_a_terminator_that_comes_late_still_returns_the_connection(
    server: FakeServer, client: ChatClient
) -> None:
    terminator = threading.Event()  # the server sends the end of the body once set
    late = Reply((b"data: " + b'{"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n',
                  DONE, terminator))
    server.enqueue(late)
    # Completed before the terminator: it is sent only after `collect` returns.
    assert collect(create_stream_completion(PARAMS, client=client), timeout=5).completed
    assert server.events_of(0) == ["request", "headers", "write", "write"]
    terminator.set()
    assert server.wait_for_event("write", 3)  # the chunked terminator is sent
    draining(client.session).wait(5)  # and read: the connection is back in the pool
    server.enqueue(Reply.text("again"))
    assert collect(create_stream_completion(PARAMS, client=client)).content == "again"
    assert server.connections == 1


def test_dispose_after_completion_leaves_the_pooled_connection_alone(
    tls_server: FakeServer, ca_bundle: str
) -> None:
    with tls_client(tls_server, ca_bundle) as client:
        for _ in range(3):
            tls_server.enqueue(Reply.text("x"))
            done = threading.Event()
            disposable = create_stream_completion(PARAMS, client=client).subscribe(
                on_completed=done.set
            )
            assert done.wait(5)
            disposable.dispose()  # what operators do after on_completed
    assert tls_server.connections == 1
    assert tls_server.disconnects == 0


def test_a_request_sent_from_on_completed_does_not_wait_for_its_own_drain(
    server: FakeServer, client: ChatClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a synchronous scheduler the second request runs inside the first's
    # on_completed, on the thread that still waits for the first body's terminator.
    # Waiting for its own drain would hold the second request REUSE_WAIT (made longer
    # than the guard below); the terminator is sent only once the second has answered.
    monkeypatch.setattr(_transport, "REUSE_WAIT", 30.0)
    terminator = threading.Event()
    late = Reply((b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n', DONE,
                  terminator))
    server.enqueue(late, Reply.text("b"))
    scheduler = ImmediateScheduler()
    second_at: list[float] = []
    done = threading.Event()

    def send_the_second() -> None:
        create_stream_completion(PARAMS, client=client, scheduler=scheduler).subscribe(
            lambda _m: second_at.append(time.monotonic()), lambda _e: done.set(), done.set
        )

    subscription = create_stream_completion(PARAMS, client=client, scheduler=scheduler)
    threading.Thread(target=subscription.subscribe, kwargs={"on_completed": send_the_second},
                     daemon=True).start()
    assert done.wait(5) and second_at, "the second request waited for the first's drain"
    assert "write" not in server.events_of(0)[4:]  # the first body's end is not sent yet
    terminator.set()
