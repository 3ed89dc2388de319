"""The race in virtual time: routes are cold marble Observables on a TestScheduler,
so every start, hedge, win and dispose is asserted with its tick (RxPY's idiom:
whole message lists and subscription windows)."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex.disposable import Disposable
from reactivex.testing import ReactiveTest, TestScheduler

from rxchat import Message, hedge
from rxchat import operators as rxops
from rxchat.errors import AllRoutesFailed, ServerError, StreamInterrupted

on_next, on_completed = ReactiveTest.on_next, ReactiveTest.on_completed
on_error = ReactiveTest.on_error
subscribe = ReactiveTest.subscribe

PARAMS = {"messages": [{"role": "user", "content": "hi"}]}
A, B, C = Message(content="a"), Message(content="b"), Message(content="c")


def route(source: Observable[Message], calls: list[Any] | None = None) -> Any:
    """A completion route that plays ``source`` (and records its calls)."""

    def complete(params: Any, **options: Any) -> Observable[Message]:
        if calls is not None:
            calls.append((params, options))
        return source

    complete.__name__ = "scripted"
    return complete


def run(scheduler: TestScheduler, completion: Any, disposed: int = 1000) -> Any:
    return scheduler.start(lambda: completion(PARAMS, scheduler=scheduler), disposed=disposed)


def named(message: Message, position: int) -> Message:
    return Message(content=message.content, route=f"route {position} (scripted)")


def test_a_quick_first_route_is_never_hedged() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(on_next(10, A), on_next(20, B), on_completed(30))
    second = scheduler.create_cold_observable(on_next(1, C), on_completed(2))
    observer = run(scheduler, hedge(route(first), route(second), after=50.0))
    assert observer.messages == [
        on_next(210, named(A, 1)), on_next(220, B), on_completed(230)
    ]
    assert first.subscriptions == [subscribe(200, 230)]
    assert second.subscriptions == []


def test_a_slow_first_route_is_hedged_after_the_delay_and_loses() -> None:
    # route 1 stalls; route 2 starts at +50 and answers at +60: route 1 is disposed
    # at that very tick, before the first delta is passed on
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(on_next(500, A), on_completed(510))
    second = scheduler.create_cold_observable(on_next(10, B), on_next(20, C), on_completed(30))
    observer = run(scheduler, hedge(route(first), route(second), after=50.0))
    assert observer.messages == [
        on_next(260, named(B, 2)), on_next(270, C), on_completed(280)
    ]
    assert first.subscriptions == [subscribe(200, 260)]
    assert second.subscriptions == [subscribe(250, 280)]


def test_the_first_route_can_still_win_after_the_hedge() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(on_next(55, A), on_completed(60))
    second = scheduler.create_cold_observable(on_next(30, B), on_completed(40))
    observer = run(scheduler, hedge(route(first), route(second), after=50.0))
    assert observer.messages == [on_next(255, named(A, 1)), on_completed(260)]
    assert second.subscriptions == [subscribe(250, 255)]


def test_a_failure_before_the_first_delta_falls_back_at_once() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(on_error(5, ServerError(500, "", "boom")))
    second = scheduler.create_cold_observable(on_next(10, B), on_completed(20))
    observer = run(scheduler, hedge(route(first), route(second), after=50.0))
    assert observer.messages == [on_next(215, named(B, 2)), on_completed(225)]
    assert first.subscriptions == [subscribe(200, 205)]
    assert second.subscriptions == [subscribe(205, 225)]


def test_an_error_after_the_first_delta_is_not_retried_elsewhere() -> None:
    scheduler = TestScheduler()
    cut = StreamInterrupted("cut off")
    first = scheduler.create_cold_observable(on_next(10, A), on_error(20, cut))
    second = scheduler.create_cold_observable(on_next(1, B), on_completed(2))
    observer = run(scheduler, hedge(route(first), route(second), after=15.0))
    assert observer.messages == [on_next(210, named(A, 1)), on_error(220, cut)]
    assert second.subscriptions == []


def test_every_route_failing_is_one_all_routes_failed_with_each_error() -> None:
    scheduler = TestScheduler()
    one, two = ServerError(503, "", "busy"), StreamInterrupted("cut")
    first = scheduler.create_cold_observable(on_error(5, one))
    second = scheduler.create_cold_observable(on_error(7, two))
    observer = run(scheduler, hedge(route(first), route(second), after=50.0))
    [message] = observer.messages
    assert message.time == 212
    error = message.value.exception
    assert isinstance(error, AllRoutesFailed)
    assert error.errors == (one, two)
    assert error.routes == ("route 1 (scripted)", "route 2 (scripted)")
    assert "busy" in str(error) and "cut" in str(error)


def test_max_in_flight_caps_the_attempts_running_at_once() -> None:
    # three stalled-ish routes, hedge every 10 ticks, at most 2 at once: the third
    # starts only when the first fails
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(on_error(35, ServerError(500, "", "x")))
    second = scheduler.create_cold_observable(on_next(100, B), on_completed(101))
    third = scheduler.create_cold_observable(on_next(10, C), on_completed(11))
    completion = hedge(route(first), route(second), route(third), after=10.0)
    observer = run(scheduler, completion)
    assert second.subscriptions == [subscribe(210, 245)]
    assert third.subscriptions == [subscribe(235, 246)]
    assert observer.messages == [on_next(245, named(C, 3)), on_completed(246)]


def test_max_in_flight_one_is_fallback_only() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(on_next(100, A), on_completed(101))
    second = scheduler.create_cold_observable(on_next(1, B), on_completed(2))
    observer = run(scheduler, hedge(route(first), route(second), after=10.0, max_in_flight=1))
    assert observer.messages == [on_next(300, named(A, 1)), on_completed(301)]
    assert second.subscriptions == []


def test_three_routes_hedge_one_after_another() -> None:
    scheduler = TestScheduler()
    never = scheduler.create_cold_observable(on_next(900, A))
    last = scheduler.create_cold_observable(on_next(5, C), on_completed(6))
    completion = hedge(route(never), route(never), route(last), after=10.0, max_in_flight=3)
    observer = run(scheduler, completion)
    assert never.subscriptions == [subscribe(200, 225), subscribe(210, 225)]
    assert observer.messages == [on_next(225, named(C, 3)), on_completed(226)]


def test_disposing_during_the_race_disposes_every_attempt_and_the_timer() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(on_next(500, A))
    second = scheduler.create_cold_observable(on_next(500, B))
    third = scheduler.create_cold_observable(on_next(1, C))
    completion = hedge(route(first), route(second), route(third), after=20.0, max_in_flight=3)
    observer = run(scheduler, completion, disposed=230)
    assert observer.messages == []
    assert first.subscriptions == [subscribe(200, 230)]
    assert second.subscriptions == [subscribe(220, 230)]
    assert third.subscriptions == []  # its start was due at 240: the timer was disposed


def test_an_empty_reply_completing_first_wins() -> None:
    scheduler = TestScheduler()
    first = scheduler.create_cold_observable(on_completed(5))
    second = scheduler.create_cold_observable(on_next(1, B), on_completed(2))
    observer = run(scheduler, hedge(route(first), route(second), after=50.0))
    assert observer.messages == [on_completed(205)]
    assert second.subscriptions == []


def test_the_caller_params_client_and_scheduler_reach_a_completion_route() -> None:
    scheduler = TestScheduler()
    calls: list[Any] = []
    source = scheduler.create_cold_observable(on_completed(1))
    run(scheduler, hedge(route(source, calls)))
    [(params, options)] = calls
    assert params == PARAMS and options == {"client": None, "scheduler": scheduler}


def test_a_bug_in_a_completion_route_is_reported_not_fallen_back_from() -> None:
    scheduler = TestScheduler()

    def broken(params: Any, **options: Any) -> Observable[Message]:
        raise KeyError("bug")

    second = scheduler.create_cold_observable(on_next(1, B), on_completed(2))
    observer = run(scheduler, hedge(broken, route(second)))
    [message] = observer.messages
    assert isinstance(message.value.exception, KeyError)
    assert second.subscriptions == []


def test_a_nested_hedge_keeps_the_inner_route_name() -> None:
    scheduler = TestScheduler()
    inner_source = scheduler.create_cold_observable(on_next(1, A), on_completed(2))
    inner = hedge(route(inner_source))
    observer = run(scheduler, hedge(inner))
    assert observer.messages[0].value.value.route == "route 1 (scripted)"



def test_routes_that_answer_inside_subscribe_need_no_scheduler() -> None:
    # no scheduler at all: the first route answers synchronously while it is being
    # subscribed, so no timer is armed and the second route is never called
    calls: list[Any] = []
    first = reactivex.of(A, B)
    completion = hedge(route(first), route(reactivex.of(C), calls), after=0.0)
    received: list[Message] = []
    done: list[bool] = []
    completion(PARAMS).subscribe(received.append, on_completed=lambda: done.append(True))
    assert received == [named(A, 1), B] and done == [True] and calls == []


def test_all_routes_failed_survives_pickling() -> None:
    error = AllRoutesFailed(["a at x", "b at y"], [ServerError(500, "", "boom"), KeyError("k")])
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and again.routes == error.routes
    assert [type(e) for e in again.errors] == [ServerError, KeyError]


def test_await_a_hedged_reply_in_asyncio_debug_mode() -> None:
    scheduler_free = hedge(route(reactivex.of(A, B)))

    async def main() -> Message:
        return await scheduler_free(PARAMS).pipe(rxops.final_message())

    assert asyncio.run(main(), debug=True).content == "ab"


def test_a_subscriber_raising_inside_a_synchronous_win_is_not_swallowed() -> None:
    def explode(_message: Message) -> None:
        raise ValueError("the subscriber's bug")

    def at_once(observer: Any, _scheduler: Any = None) -> Disposable:
        observer.on_next(A)  # inside subscribe, not queued on a trampoline
        return Disposable()

    with pytest.raises(ValueError, match="subscriber's bug"):
        hedge(route(reactivex.create(at_once)))(PARAMS).subscribe(explode)


def test_a_route_that_raises_an_rxchat_error_when_called_falls_back() -> None:
    scheduler = TestScheduler()

    def misconfigured(params: Any, **options: Any) -> Observable[Message]:
        raise ServerError(500, "", "cannot even start")

    second = scheduler.create_cold_observable(on_next(1, B), on_completed(2))
    observer = run(scheduler, hedge(misconfigured, route(second)))
    assert observer.messages == [on_next(201, named(B, 2)), on_completed(202)]
