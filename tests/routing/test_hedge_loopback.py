"""Hedged and fallback requests against real loopback servers whose first byte we hold.

Stalls are `STALL` (headers never sent, until the client goes away); a server that
must wait for something (the loser's disconnect) waits on a ``threading.Event`` part,
and ends its body if that never happens, so the test fails instead of hanging.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from rxchat import ChatClient, ChatSession, Message, hedge
from rxchat.errors import AllRoutesFailed, APIConnectionError, ServerError, StreamInterrupted
from rxchat.testing import RESET, STALL, FakeServer, Reply, chunk, closed_port, sse_event
from tests.conftest import PARAMS, assert_grammar, collect, subscribe


@pytest.fixture
def servers() -> Iterator[list[FakeServer]]:
    with FakeServer() as one, FakeServer() as two, FakeServer() as three:
        yield [one, two, three]


def client_of(server: FakeServer | None = None, **options: object) -> ChatClient:
    base_url = server.base_url if server else f"http://127.0.0.1:{closed_port()}/v1"
    return ChatClient(base_url, "key", model="m", max_retries=0, **options)  # type: ignore[arg-type]


def test_the_stalled_route_is_disconnected_before_the_winner_writes_its_next_delta(
    servers: list[FakeServer],
) -> None:
    slow, quick, _ = servers
    slow.enqueue(Reply.text("late").after(STALL))
    released = threading.Event()  # set once the stalled server saw its client go away
    quick.enqueue(Reply((
        sse_event(chunk(role="assistant", content="Hello")), released,
        sse_event(chunk(content=" there", finish_reason="stop")), b"data: [DONE]\n\n",
    )))

    def release_when_disconnected() -> None:
        if slow.wait_for_disconnects(1, 10):
            released.set()

    watcher = threading.Thread(target=release_when_disconnected, daemon=True)
    watcher.start()
    result = collect(hedge(client_of(slow), client_of(quick), after=0.05)(PARAMS))
    watcher.join(10)
    assert_grammar(result)
    assert result.error is None and result.content == "Hello there"
    assert slow.disconnects == 1
    assert result.messages[0].route == f"m at {quick.base_url}"


def test_a_quick_first_route_sends_one_request_only(servers: list[FakeServer]) -> None:
    first, second, _ = servers
    first.enqueue(Reply.text("Hi"))
    result = collect(hedge(client_of(first), client_of(second), after=5.0)(PARAMS))
    assert result.content == "Hi" and result.error is None
    assert len(first.requests) == 1 and second.requests == []


def test_a_500_falls_back_to_the_next_route(servers: list[FakeServer]) -> None:
    broken, working, _ = servers
    broken.enqueue(Reply.error(500, {"error": {"message": "overloaded"}}))
    working.enqueue(Reply.text("fine"))
    result = collect(hedge(client_of(broken), client_of(working), after=5.0)(PARAMS))
    assert result.content == "fine" and result.error is None
    assert len(broken.requests) == 1 and len(working.requests) == 1


def test_connection_refused_falls_back_to_the_next_route(servers: list[FakeServer]) -> None:
    working = servers[0]
    working.enqueue(Reply.text("fine"))
    result = collect(hedge(client_of(None), client_of(working), after=5.0)(PARAMS))
    assert result.content == "fine" and result.error is None


def test_no_other_request_once_a_delta_was_emitted(servers: list[FakeServer]) -> None:
    first, second, _ = servers
    first.enqueue(Reply((sse_event(chunk(role="assistant", content="Hal")), RESET)))
    second.enqueue(Reply.text("never"))
    # no hedge in time: what is tested is that the failure after a delta tries no other route
    result = collect(hedge(client_of(first), client_of(second), after=30)(PARAMS))
    assert result.content == "Hal"
    assert isinstance(result.error, StreamInterrupted)
    assert second.requests == []


def test_every_route_failing_names_each_failure(servers: list[FakeServer]) -> None:
    broken = servers[0]
    broken.enqueue(Reply.error(503, {"error": {"message": "try later"}}))
    result = collect(hedge(client_of(broken), client_of(None))(PARAMS))
    error = result.error
    assert isinstance(error, AllRoutesFailed)
    assert [type(e) for e in error.errors] == [ServerError, APIConnectionError]
    assert error.routes[0] == f"m at {broken.base_url}"
    assert "try later" in str(error) and "key" not in str(error).replace("API key", "")


def test_each_route_sends_its_own_model_name(servers: list[FakeServer]) -> None:
    first, second, _ = servers
    first.enqueue(Reply.error(500, "down"))
    second.enqueue(Reply.text("ok"))
    completion = hedge((client_of(first), "deepseek-chat"), (client_of(second), "ds-v3"))
    result = collect(completion({**PARAMS, "model": "callers-model"}))
    assert first.requests[0].json["model"] == "deepseek-chat"
    assert second.requests[0].json["model"] == "ds-v3"
    assert result.messages[0].route == f"ds-v3 at {second.base_url}"


def test_a_route_without_a_model_uses_the_callers(servers: list[FakeServer]) -> None:
    first = servers[0]
    first.enqueue(Reply.text("ok"))
    result = collect(hedge(client_of(first))({**PARAMS, "model": "callers-model"}))
    assert first.requests[0].json["model"] == "callers-model"
    assert result.messages[0].route == f"callers-model at {first.base_url}"


def test_dispose_during_the_race_closes_every_socket(servers: list[FakeServer]) -> None:
    one, two, three = servers
    for server in servers:
        server.enqueue(Reply.text("late").after(STALL))
    completion = hedge(client_of(one), client_of(two), client_of(three), after=0.01,
                       max_in_flight=3)
    result, subscription = subscribe(completion(PARAMS))
    assert all(server.wait_for_requests(1, 10) for server in servers)
    subscription.dispose()
    assert all(server.wait_for_disconnects(1, 10) for server in servers)
    assert result.messages == [] and result.terminals == 0


def test_the_winner_is_logged(servers: list[FakeServer], caplog: pytest.LogCaptureFixture) -> None:
    first = servers[0]
    first.enqueue(Reply.text("ok"))
    with caplog.at_level(logging.INFO, logger="rxchat"):
        collect(hedge(client_of(first))(PARAMS))
    assert f"m at {first.base_url} answered first" in caplog.text


def test_the_key_is_never_in_a_route_name_or_log(
    servers: list[FakeServer], caplog: pytest.LogCaptureFixture
) -> None:
    first = servers[0]
    first.enqueue(Reply.error(500, "down"))
    client = ChatClient(first.base_url, "sk-secret-123", max_retries=0)
    with caplog.at_level(logging.DEBUG, logger="rxchat"):
        result = collect(hedge(client)(PARAMS))
    assert "sk-secret-123" not in str(result.error) and "sk-secret-123" not in caplog.text
    assert "sk-secret-123" not in repr(hedge(client))


def test_messages_stay_plain_deltas_after_the_first(servers: list[FakeServer]) -> None:
    first = servers[0]
    first.enqueue(Reply.text("one two three"))
    result = collect(hedge(client_of(first))(PARAMS))
    assert [m.route is not None for m in result.messages] == [True] + [False] * (
        len(result.messages) - 1
    )
    assert isinstance(result.messages[0], Message)


def test_twenty_concurrent_races_share_one_hedge(servers: list[FakeServer]) -> None:
    stalled, quick, _ = servers
    for number in range(20):
        stalled.enqueue(Reply.text("slow") if number % 2 else Reply.text("x").after(STALL))
        quick.enqueue(Reply.text("quick"))
    completion = hedge(client_of(stalled), client_of(quick), after=0.05)
    pending = [subscribe(completion(PARAMS)) for _ in range(20)]
    for result, _ in pending:
        assert result.done.wait(10)
        assert_grammar(result)
        assert result.error is None and result.content in ("slow", "quick")
    assert stalled.wait_for_disconnects(10, 10)


def test_cancelling_a_session_turn_during_the_race_closes_both_sockets(
    servers: list[FakeServer],
) -> None:
    one, two, _ = servers
    one.enqueue(Reply.text("x").after(STALL))
    two.enqueue(Reply.text("y").after(STALL))
    session = ChatSession(complete=hedge(client_of(one), client_of(two), after=0.01))
    deltas = session.send("hello")
    assert one.wait_for_requests(1, 10) and two.wait_for_requests(1, 10)
    assert session.cancel() is True
    assert one.wait_for_disconnects(1, 10) and two.wait_for_disconnects(1, 10)
    assert collect(deltas).messages[-1].finish_reason == "cancelled"
    assert session.messages[-1].finish_reason == "cancelled"
