"""Timeouts: finite defaults, the first-delta timeout, and the idle_timeout operator."""

from __future__ import annotations

import inspect
import math

from reactivex.notification import Notification, OnError
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.subscription import Subscription

from rxchat import ChatClient, create_stream_completion
from rxchat import operators as rxops
from rxchat._client import DEFAULT_FIRST_DELTA_TIMEOUT, DEFAULT_TIMEOUT
from rxchat.errors import APITimeoutError
from rxchat.testing import STALL, FakeServer, Reply, chunk, sse_event
from tests.conftest import PARAMS, collect

on_next, on_completed, on_error = (
    ReactiveTest.on_next, ReactiveTest.on_completed, ReactiveTest.on_error,
)
PING = b": keep-alive\n\n"


def kind(value: object) -> str:
    assert isinstance(value, Notification)
    return value.kind


def pings(count: int, every: float) -> list[bytes | float]:
    parts: list[bytes | float] = []
    for _ in range(count):
        parts += [PING, every]
    return parts


# --- Defaults ------------------------------------------------------------------------


def test_every_timeout_is_finite_by_default() -> None:
    client = ChatClient("https://api.example.com/v1", "k")
    assert client.timeout == DEFAULT_TIMEOUT == (10.0, 120.0)
    assert client.first_delta_timeout == DEFAULT_FIRST_DELTA_TIMEOUT == 300.0
    connect, idle = DEFAULT_TIMEOUT
    assert all(math.isfinite(t) and t > 0 for t in (connect, idle, DEFAULT_FIRST_DELTA_TIMEOUT))


def test_the_defaults_are_explained() -> None:
    import rxchat._client as module

    source = inspect.getsource(module)
    assert "reasoning_content" in source.split("DEFAULT_FIRST_DELTA_TIMEOUT = 300.0")[1][:900]


# --- The first-delta timeout --------------------------------------------------------


def test_keep_alive_comments_do_not_reset_the_first_delta_timeout(server: FakeServer) -> None:
    # Pings every 50 ms keep the idle timeout (0.3 s) from ever running out.
    client = ChatClient(server.base_url, "k", max_retries=0, timeout=(1, 0.3),
                        first_delta_timeout=0.4)
    server.enqueue(Reply.raw(pings(200, 0.05)))
    result = collect(create_stream_completion(PARAMS, client=client), timeout=5)
    assert isinstance(result.error, APITimeoutError)
    assert "first-delta timeout (0.4 s)" in str(result.error)
    assert result.messages == []
    assert server.wait_for_disconnects(1), "the connection was left open"


def test_the_first_delta_stops_the_clock(server: FakeServer) -> None:
    client = ChatClient(server.base_url, "k", max_retries=0, timeout=(1, 0.3),
                        first_delta_timeout=0.2)
    body = [sse_event(chunk(content="a")), *pings(8, 0.05),
            sse_event(chunk(content="b", finish_reason="stop"))]
    server.enqueue(Reply.raw(body))
    result = collect(create_stream_completion(PARAMS, client=client), timeout=5)
    assert result.completed and result.content == "ab"


def test_no_first_delta_timeout_when_disabled(server: FakeServer) -> None:
    client = ChatClient(server.base_url, "k", max_retries=0, timeout=(1, 0.3),
                        first_delta_timeout=None)
    body = [*pings(8, 0.05), sse_event(chunk(content="late", finish_reason="stop"))]
    server.enqueue(Reply.raw(body))
    result = collect(create_stream_completion(PARAMS, client=client), timeout=5)
    assert result.completed and result.content == "late"


def test_a_first_delta_timeout_is_retried_like_any_timeout(server: FakeServer) -> None:
    client = ChatClient(server.base_url, "k", max_retries=1, timeout=(1, 0.3),
                        first_delta_timeout=0.2)
    server.enqueue(Reply.raw(pings(100, 0.05)), Reply.text("second"))
    result = collect(create_stream_completion(PARAMS, client=client), timeout=5)
    assert result.completed and result.content == "second"


def test_idle_timeout_names_itself(server: FakeServer) -> None:
    client = ChatClient(server.base_url, "k", max_retries=0, timeout=(1, 0.2))
    server.enqueue(Reply.raw([PING]).then(STALL))
    result = collect(create_stream_completion(PARAMS, client=client), timeout=5)
    assert isinstance(result.error, APITimeoutError)
    assert "idle timeout" in str(result.error)


# --- The idle_timeout operator, in virtual time ------------------------------------------


def test_idle_timeout_passes_a_lively_source_through() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(
        on_next(210, "a"), on_next(250, "b"), on_next(290, "c"), on_completed(320)
    )
    results = scheduler.start(lambda: xs.pipe(rxops.idle_timeout(50)))
    assert results.messages == [
        on_next(210, "a"), on_next(250, "b"), on_next(290, "c"), on_completed(320)
    ]
    assert xs.subscriptions == [Subscription(200, 320)]


def test_idle_timeout_errors_typed_after_a_silence() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(
        on_next(210, "a"), on_next(240, "b"), on_next(400, "c"), on_completed(500)
    )
    results = scheduler.start(lambda: xs.pipe(rxops.idle_timeout(50)))
    assert results.messages[:2] == [on_next(210, "a"), on_next(240, "b")]
    assert len(results.messages) == 3
    last = results.messages[2]
    assert last.time == 290 and isinstance(last.value, OnError)
    assert isinstance(last.value.exception, APITimeoutError)
    assert "50 s" in str(last.value.exception)
    assert xs.subscriptions == [Subscription(200, 290)]  # the source is disposed


def test_idle_timeout_counts_from_subscription() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(on_next(300, "late"))
    results = scheduler.start(lambda: xs.pipe(rxops.idle_timeout(40)))
    assert [(m.time, kind(m.value)) for m in results.messages] == [(240, "E")]
    assert xs.subscriptions == [Subscription(200, 240)]


def test_idle_timeout_on_an_explicit_scheduler() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_cold_observable(on_next(10, 1), on_next(100, 2))
    results = scheduler.start(lambda: xs.pipe(rxops.idle_timeout(30, scheduler=scheduler)))
    assert [(m.time, kind(m.value)) for m in results.messages] == [(210, "N"), (240, "E")]


def test_each_subscription_gets_its_own_error() -> None:
    scheduler = TestScheduler()
    xs = scheduler.create_hot_observable(on_next(500, 1))
    timed = xs.pipe(rxops.idle_timeout(10))
    errors: list[Exception] = []
    timed.subscribe(on_error=errors.append, scheduler=scheduler)
    timed.subscribe(on_error=errors.append, scheduler=scheduler)
    scheduler.start()
    assert len(errors) == 2 and errors[0] is not errors[1]
    assert all(isinstance(e, APITimeoutError) for e in errors)


def test_idle_timeout_is_public_and_documented_with_a_marble() -> None:
    assert "idle_timeout" in rxops.__all__
    doc = inspect.getdoc(rxops.idle_timeout) or ""
    assert "```text\n" in doc and doc.count("──") >= 2 and "Returns:" in doc


def test_idle_timeout_on_a_real_stream_closes_the_connection(server: FakeServer) -> None:
    client = ChatClient(server.base_url, "k", max_retries=0)
    server.enqueue(Reply.events([chunk(content="a")], done=False).then(STALL))
    source = create_stream_completion(PARAMS, client=client).pipe(rxops.idle_timeout(0.2))
    result = collect(source, timeout=5)
    assert isinstance(result.error, APITimeoutError) and result.content == "a"
    assert server.wait_for_disconnects(1), "the timeout did not close the connection"
