"""The hedge delay: a fixed default until a route has enough first-delta times, then
their percentile; in virtual time, a run of quick answers brings the hedge forward."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex import Observable
from reactivex.testing import ReactiveTest, TestScheduler

from rxchat import ChatClient, Message, hedge
from rxchat._routing.delays import DEFAULT_DELAY_S, MIN_SAMPLES, WINDOW, FirstDeltaTimes
from rxchat.errors import ConfigurationError

on_next, on_completed, subscribe = (
    ReactiveTest.on_next, ReactiveTest.on_completed, ReactiveTest.subscribe
)
PARAMS = {"messages": [{"role": "user", "content": "hi"}]}


def test_the_default_holds_until_enough_samples() -> None:
    times = FirstDeltaTimes(1)
    for _ in range(MIN_SAMPLES - 1):
        times.record(0, 0.2)
    assert times.delay(0) == DEFAULT_DELAY_S
    times.record(0, 0.2)
    assert times.delay(0) == 0.2


def test_the_delay_is_the_95th_percentile_by_nearest_rank() -> None:
    times = FirstDeltaTimes(2)
    for i in range(1, 101):  # 0.01 .. 1.00
        times.record(1, i / 100)
    assert times.delay(1) == 0.95
    assert times.delay(0) == DEFAULT_DELAY_S  # each route has its own


def test_other_percentiles_and_fixed_delays() -> None:
    times = FirstDeltaTimes(1, "p50")
    for i in range(1, 101):
        times.record(0, i / 100)
    assert times.delay(0) == 0.5
    fixed = FirstDeltaTimes(1, 0.3)
    fixed.record(0, 9.0)
    assert fixed.delay(0) == 0.3


def test_only_recent_samples_count() -> None:
    times = FirstDeltaTimes(1)
    for _ in range(WINDOW):
        times.record(0, 5.0)
    for _ in range(WINDOW):
        times.record(0, 0.1)
    assert times.delay(0) == 0.1 and times.samples(0) == WINDOW


@pytest.mark.parametrize("after", ["p0", "p100", "95", "fast", -1.0, float("nan"), True, None])
def test_a_bad_after_is_a_configuration_error(after: Any) -> None:
    with pytest.raises(ConfigurationError, match="p95"):
        hedge(ChatClient("http://127.0.0.1:9/v1"), after=after)


@pytest.mark.parametrize("max_in_flight", [0, -1, 1.5, True])
def test_a_bad_max_in_flight_is_a_configuration_error(max_in_flight: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_in_flight"):
        hedge(ChatClient("http://127.0.0.1:9/v1"), max_in_flight=max_in_flight)


@pytest.mark.parametrize("route", ["http://x", (ChatClient("http://127.0.0.1:9/v1"),), 3,
                                   (ChatClient("http://127.0.0.1:9/v1"), "")])
def test_a_bad_route_is_a_type_error_naming_it(route: Any) -> None:
    with pytest.raises(TypeError, match="route 2"):
        hedge(ChatClient("http://127.0.0.1:9/v1"), route)


def test_no_route_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="at least one route"):
        hedge()


def test_params_that_are_not_a_mapping_are_refused_at_the_call() -> None:
    with pytest.raises(TypeError, match="params"):
        hedge(ChatClient("http://127.0.0.1:9/v1"))(["hi"])  # type: ignore[arg-type]


def test_a_run_of_quick_answers_brings_the_hedge_forward() -> None:
    # Before: the default delay (1 virtual second = 1 tick). After 20 answers in 3 ticks
    # the delay is their p95 = 3 ticks, so a stalled request hedges 3 ticks in.
    scheduler = TestScheduler()
    quick = scheduler.create_cold_observable(on_next(3, Message(content="q")), on_completed(4))
    stalled = scheduler.create_cold_observable(on_next(500, Message(content="s")))
    backup = scheduler.create_cold_observable(on_next(2, Message(content="b")), on_completed(3))
    plays: list[Observable[Message]] = [*([quick] * MIN_SAMPLES), stalled]

    def first(params: Any, **options: Any) -> Observable[Message]:
        return plays.pop(0)

    def second(params: Any, **options: Any) -> Observable[Message]:
        return backup

    completion = hedge(first, second, after="p95")
    assert completion.hedge_delay(0) == DEFAULT_DELAY_S == 1.0
    for turn in range(MIN_SAMPLES):
        start = 1000 * (turn + 1)
        scheduler.schedule_absolute(
            float(start), lambda *_: completion(PARAMS, scheduler=scheduler).subscribe()
        )
    scheduler.advance_to(1000 * MIN_SAMPLES + 500)
    # with a 1-tick delay, every one of those 3-tick answers was hedged
    assert len(backup.subscriptions) == MIN_SAMPLES
    assert completion.hedge_delay(0) == 3.0
    observer = scheduler.start(lambda: completion(PARAMS, scheduler=scheduler),
                               created=30_000, subscribed=30_000, disposed=40_000)
    assert observer.messages == [
        on_next(30_005, Message(content="b", route="route 2 (second)")),
        on_completed(30_006),
    ]
    assert stalled.subscriptions == [subscribe(30_000, 30_005)]
