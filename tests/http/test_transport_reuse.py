"""Connection reuse: a stream that ended with ``[DONE]`` hands its connection back to the
pool (after completing, never before), over http and https, for streams and sessions."""

from __future__ import annotations

import threading
import time

import pytest
from reactivex.scheduler import ImmediateScheduler

from rxchat import ChatClient, ChatSession, create_stream_completion
from rxchat import operators as rxops
from rxchat._http import transport as _transport
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
    server: FakeServer, client: ChatClient
) -> None:
    # [DONE], then nothing: no chunked terminator. The subscriber completes at once;
    # the reader waits DRAIN_TIMEOUT for the terminator, then closes the connection.
    server.enqueue(Reply.events([chunk(content="x", finish_reason="stop")]).then(STALL))
    threads, fds = threading.active_count(), open_fds()
    started = time.monotonic()
    result = collect(create_stream_completion(PARAMS, client=client))
    assert result.completed and time.monotonic() - started < 0.5
    assert server.wait_for_disconnects(1, timeout=_transport.DRAIN_TIMEOUT + 2)
    assert wait_until(lambda: threading.active_count() <= threads)
    assert wait_until(lambda: open_fds() <= fds)
    server.enqueue(Reply.text("next"))
    assert collect(create_stream_completion(PARAMS, client=client)).content == "next"
    assert server.connections == 2


def test_a_terminator_that_comes_late_still_returns_the_connection(
    server: FakeServer, client: ChatClient
) -> None:
    late = Reply((b"data: " + b'{"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n',
                  DONE, 0.2))
    server.enqueue(late)
    started = time.monotonic()
    assert collect(create_stream_completion(PARAMS, client=client)).completed
    assert time.monotonic() - started < 0.2 + 0.15  # completed before the terminator
    time.sleep(0.4)
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
    # A long wait and a later terminator keep the margin wide on a loaded machine.
    monkeypatch.setattr(_transport, "REUSE_WAIT", 2.0)
    late = Reply((b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n', DONE, 3.0))
    server.enqueue(late, Reply.text("b"))
    scheduler = ImmediateScheduler()
    second_at: list[float] = []
    done = threading.Event()

    def send_the_second() -> None:
        create_stream_completion(PARAMS, client=client, scheduler=scheduler).subscribe(
            lambda _m: second_at.append(time.monotonic()), lambda _e: done.set(), done.set
        )

    started = time.monotonic()
    create_stream_completion(PARAMS, client=client, scheduler=scheduler).subscribe(
        on_completed=send_the_second
    )
    assert done.wait(5) and second_at
    assert second_at[0] - started < _transport.REUSE_WAIT * 0.8
