"""The retry policy: what is retried, the waits between attempts, and dispose.

The waits are scheduled on the scheduler given to ``create_stream_completion``, so with
a ``TestScheduler`` the requests run synchronously inside virtual time against the
loopback server, and the virtual time of every attempt is recorded by the server.
"""

from __future__ import annotations

import email.utils
import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest
from reactivex.abc import DisposableBase
from reactivex.notification import Notification, OnError, OnNext
from reactivex.scheduler import TimeoutScheduler
from reactivex.testing import TestScheduler
from reactivex.testing.mockobserver import MockObserver

from rxchat import ChatClient, Message, create_stream_completion
from rxchat._http.retry import MAX_RETRY_AFTER, backoff_seconds, is_retryable, retry_delay
from rxchat._http.status import retry_after_seconds, status_error
from rxchat.errors import (
    APIConnectionError,
    APITimeoutError,
    BadRequestError,
    RateLimitError,
    RxChatError,
    ServerError,
    StreamError,
    StreamInterrupted,
)
from rxchat.testing import RESET, FakeServer, Reply, chunk, closed_port
from tests.conftest import (
    PARAMS,
    collect,
    retry_timers,
    subscribe,
    threads_started_since,
    wait_until,
)

BUSY = {"error": {"message": "busy"}}


class Script:
    """A responder that plays replies in order and records the virtual time of each."""

    def __init__(self, scheduler: TestScheduler, *replies: Reply) -> None:
        self.scheduler = scheduler
        self.replies = list(replies)
        self.times: list[float] = []

    def __call__(self, _request: Any) -> Reply:
        self.times.append(self.scheduler.clock)
        return self.replies.pop(0) if self.replies else Reply.text("ok")

    @property
    def waits(self) -> list[float]:
        return [round(b - a, 6) for a, b in itertools.pairwise(self.times)]


@pytest.fixture
def scheduler() -> TestScheduler:
    return TestScheduler()


@pytest.fixture
def script_server(scheduler: TestScheduler) -> Iterator[tuple[FakeServer, Script]]:
    script = Script(scheduler)
    with FakeServer(script) as server:
        yield server, script


def run_virtual(
    scheduler: TestScheduler, client: ChatClient, disposed: float = 100_000.0
) -> MockObserver[Message]:
    return scheduler.start(
        lambda: create_stream_completion(PARAMS, client=client, scheduler=scheduler),
        disposed=disposed,
    )


def kinds(observer: MockObserver[Message]) -> list[str]:
    """``N``, ``E`` or ``C`` for each notification received."""
    return [cast(Notification[Message], m.value).kind for m in observer.messages]


def text_of(observer: MockObserver[Message]) -> str:
    values = [m.value for m in observer.messages if isinstance(m.value, OnNext)]
    return "".join(v.value.content or "" for v in values)


def error_of(observer: MockObserver[Message]) -> BaseException:
    last = observer.messages[-1].value
    assert isinstance(last, OnError), observer.messages
    error = last.exception
    assert isinstance(error, BaseException)
    return error


# --- The policy, as pure functions ----------------------------------------------------


def test_backoff_doubles_from_half_a_second_up_to_eight() -> None:
    assert [backoff_seconds(n, lambda: 0.0) for n in range(7)] == [
        0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0,
    ]


def test_jitter_takes_off_at_most_a_quarter() -> None:
    assert backoff_seconds(0, lambda: 0.999999) == pytest.approx(0.375, abs=1e-6)
    assert backoff_seconds(5, lambda: 0.5) == 7.0
    for n in range(8):
        wait = backoff_seconds(n)
        base = min(0.5 * 2**n, 8.0)
        assert 0.75 * base <= wait <= base


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (status_error(408, "", {}, "u"), True),
        (status_error(409, "", {}, "u"), True),
        (status_error(429, "", {}, "u"), True),
        (status_error(500, "", {}, "u"), True),
        (status_error(503, "", {}, "u"), True),
        (status_error(400, "", {}, "u"), False),
        (status_error(401, "", {}, "u"), False),
        (status_error(404, "", {}, "u"), False),
        (status_error(422, "", {}, "u"), False),
        (APIConnectionError("refused"), True),
        (APITimeoutError("slow"), True),
        (StreamInterrupted("cut"), True),
        (StreamError("bad json"), False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_what_is_retried(error: RxChatError, retried: bool) -> None:
    assert is_retryable(error) is retried
    delay, _why = retry_delay(error, 1, 2)
    assert (delay is not None) is retried


def test_nothing_is_retried_once_a_delta_was_emitted() -> None:
    error = StreamInterrupted("cut")
    assert retry_delay(error, 1, 2, emitted=True) == (None, "")
    assert retry_delay(error, 2, 2, emitted=True) == (None, "2 attempts made")


def test_retry_after_is_used_as_given_up_to_the_cap() -> None:
    error = status_error(429, "", {"Retry-After": "7"}, "u")
    assert retry_delay(error, 1, 2) == (7.0, "")
    error = status_error(503, "", {"retry-after-ms": "1500"}, "u")
    assert retry_delay(error, 1, 2) == (1.5, "")
    error = status_error(429, "", {"Retry-After": str(MAX_RETRY_AFTER)}, "u")
    assert retry_delay(error, 1, 2) == (MAX_RETRY_AFTER, "")


def test_retry_after_over_the_cap_gives_up_at_once() -> None:
    error = status_error(429, "", {"Retry-After": "3600"}, "u")
    delay, why = retry_delay(error, 1, 5)
    assert delay is None
    assert "3600 s" in why and "60 s" in why


def test_retry_after_ms_wins_over_retry_after() -> None:
    headers = {"retry-after-ms": "250", "retry-after": "9"}
    assert retry_after_seconds(headers) == 0.25


def test_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    in_30s = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after_seconds({"retry-after": in_30s}, now=now) == 30.0
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert retry_after_seconds({"retry-after": past}, now=now) is None
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({"retry-after": "-1"}) is None
    assert retry_after_seconds({}) is None


def test_every_status_error_carries_retry_after() -> None:
    error = status_error(503, "down", {"Retry-After": "3"}, "u")
    assert isinstance(error, ServerError) and error.retry_after == 3.0
    assert "wait 3 s" in str(error)


# --- Attempts in virtual time ----------------------------------------------------------


def test_attempts_follow_the_backoff_in_virtual_time(
    scheduler: TestScheduler, script_server: tuple[FakeServer, Script]
) -> None:
    server, script = script_server
    busy = Reply.error(503, BUSY)
    script.replies += [busy, busy, busy, busy]
    client = ChatClient(server.base_url, "k", max_retries=3)
    observer = run_virtual(scheduler, client)
    error = error_of(observer)
    assert isinstance(error, ServerError)
    assert "busy" in str(error) and "gave up after 4 attempts" in str(error)
    assert script.times[0] == 200.0  # the first attempt runs when subscribed
    assert len(script.times) == 4
    for wait, base in zip(script.waits, [0.5, 1.0, 2.0], strict=True):
        assert 0.75 * base <= wait <= base, script.waits
    assert observer.messages[-1].time == script.times[-1]


def test_retry_after_seconds_are_waited_exactly(
    scheduler: TestScheduler, script_server: tuple[FakeServer, Script]
) -> None:
    server, script = script_server
    script.replies += [
        Reply.error(429, BUSY, headers={"Retry-After": "30"}),
        Reply.error(503, BUSY, headers={"retry-after-ms": "2500"}),
        Reply.text("finally"),
    ]
    client = ChatClient(server.base_url, "k", max_retries=2)
    observer = run_virtual(scheduler, client)
    assert script.waits == [30.0, 2.5]
    assert kinds(observer)[-1] == "C"
    assert text_of(observer) == "finally"


def test_retry_after_over_the_cap_is_not_waited(
    scheduler: TestScheduler, script_server: tuple[FakeServer, Script]
) -> None:
    server, script = script_server
    script.replies += [Reply.error(429, BUSY, headers={"Retry-After": "120"})]
    client = ChatClient(server.base_url, "k", max_retries=2)
    observer = run_virtual(scheduler, client)
    error = error_of(observer)
    assert isinstance(error, RateLimitError) and error.retry_after == 120
    assert "not retried" in str(error) and "120 s" in str(error)
    assert script.times == [200.0]
    assert observer.messages[-1].time == 200.0


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_retried_statuses(
    scheduler: TestScheduler, script_server: tuple[FakeServer, Script], status: int
) -> None:
    server, script = script_server
    script.replies += [Reply.error(status, BUSY), Reply.text("ok")]
    observer = run_virtual(scheduler, ChatClient(server.base_url, "k", max_retries=1))
    assert kinds(observer)[-1] == "C"
    assert len(script.times) == 2


def test_a_bad_request_after_a_retry_names_the_attempts(
    scheduler: TestScheduler, script_server: tuple[FakeServer, Script]
) -> None:
    server, script = script_server
    script.replies += [Reply.error(500, BUSY), Reply.error(400, {"error": {"message": "no"}})]
    observer = run_virtual(scheduler, ChatClient(server.base_url, "k", max_retries=5))
    error = error_of(observer)
    assert isinstance(error, BadRequestError) and "2 attempts made" in str(error)
    assert len(script.times) == 2


def test_max_retries_zero_tries_once(
    scheduler: TestScheduler, script_server: tuple[FakeServer, Script]
) -> None:
    server, script = script_server
    script.replies += [Reply.error(503, BUSY)]
    observer = run_virtual(scheduler, ChatClient(server.base_url, "k", max_retries=0))
    error = error_of(observer)
    assert isinstance(error, ServerError) and "attempts" not in str(error)
    assert script.times == [200.0]


def test_a_body_cut_before_the_first_delta_is_retried(
    scheduler: TestScheduler, script_server: tuple[FakeServer, Script]
) -> None:
    server, script = script_server
    script.replies += [
        Reply.events([], done=False),  # headers, then the body ends at once
        Reply.events([b": ping\n\n"], done=False).then(RESET),
        Reply.text("third time"),
    ]
    observer = run_virtual(scheduler, ChatClient(server.base_url, "k", max_retries=2))
    assert kinds(observer)[-1] == "C"
    assert len(script.times) == 3


def test_a_body_cut_after_a_delta_is_not_retried(
    scheduler: TestScheduler, script_server: tuple[FakeServer, Script]
) -> None:
    server, script = script_server
    script.replies += [Reply.events([chunk(content="partial")], done=False).then(RESET)]
    observer = run_virtual(scheduler, ChatClient(server.base_url, "k", max_retries=2))
    assert isinstance(error_of(observer), StreamInterrupted)
    assert kinds(observer) == ["N", "E"]
    assert len(script.times) == 1


def test_a_stream_error_is_not_retried(
    scheduler: TestScheduler, script_server: tuple[FakeServer, Script]
) -> None:
    server, script = script_server
    script.replies += [Reply.raw(b"data: {oops\n\n")]
    observer = run_virtual(scheduler, ChatClient(server.base_url, "k", max_retries=2))
    assert isinstance(error_of(observer), StreamError)
    assert len(script.times) == 1


def test_dispose_cancels_the_pending_retry_in_virtual_time(
    scheduler: TestScheduler, script_server: tuple[FakeServer, Script]
) -> None:
    server, script = script_server
    script.replies += [Reply.error(429, BUSY, headers={"Retry-After": "50"})]
    observer = run_virtual(scheduler, ChatClient(server.base_url, "k"), disposed=230.0)
    assert observer.messages == []
    assert script.times == [200.0]  # the attempt due at 250 never ran


def test_connection_refused_is_retried_in_virtual_time(scheduler: TestScheduler) -> None:
    client = ChatClient(f"http://127.0.0.1:{closed_port()}/v1", "k", max_retries=2)
    observer = run_virtual(scheduler, client)
    error = error_of(observer)
    assert type(error) is APIConnectionError and "3 attempts" in str(error)
    assert 200.0 + 0.75 * 1.5 <= observer.messages[-1].time <= 201.5


# --- With the default scheduler (threads, real time) -----------------------------------


def test_dispose_during_a_long_wait_ends_the_waiting_thread_at_once(server: FakeServer) -> None:
    client = ChatClient(server.base_url, "k", max_retries=2)
    server.enqueue(Reply.error(429, "wait", headers={"Retry-After": "30"}))
    threads = set(threading.enumerate())
    result, disposable = subscribe(create_stream_completion(PARAMS, client=client))
    assert server.wait_for_requests(1)
    assert wait_until(retry_timers), "no thread is waiting to retry"
    disposable.dispose()
    client.close()
    assert wait_until(lambda: not threads_started_since(threads)), (
        "the thread waiting to retry outlived dispose"
    )
    assert len(server.requests) == 1 and result.events == []


class InlineFirstScheduler(TimeoutScheduler):
    """Runs an immediate action before ``schedule`` returns, timed ones on a timer."""

    def schedule(self, action: Any, state: Any = None) -> DisposableBase:
        return self.invoke_action(action, state)


def test_a_retry_scheduled_before_the_first_action_is_stored_still_runs() -> None:
    """A refused connection fails at once: its retry is scheduled while `schedule`
    for the first attempt has not yet returned, and storing the first action must
    not cancel that retry (it did, about one stream in a hundred, on the default
    scheduler: the stream then never ended)."""
    client = ChatClient(f"http://127.0.0.1:{closed_port()}/v1", "k", max_retries=1)
    stream = create_stream_completion(PARAMS, client=client, scheduler=InlineFirstScheduler())
    result = collect(stream, timeout=5.0)
    assert type(result.error) is APIConnectionError and "2 attempts" in str(result.error)


def test_retry_after_is_honoured_in_real_time(server: FakeServer) -> None:
    client = ChatClient(server.base_url, "k", max_retries=1)
    server.enqueue(Reply.error(503, BUSY, headers={"retry-after-ms": "200"}), Reply.text("ok"))
    started = time.monotonic()
    result = collect(create_stream_completion(PARAMS, client=client))
    assert result.completed and result.content == "ok"
    assert time.monotonic() - started >= 0.2
