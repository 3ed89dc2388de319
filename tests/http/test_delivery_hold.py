"""A stream held by its subscriber (`pool.hold_delivery`): it stops after the value,
keeps the rest in order, and resumes a paused reader when released."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rxchat._concurrency.pool import SerialQueue, hold_delivery


class _Inline:
    """A pool whose jobs run when the test says."""

    def __init__(self) -> None:
        self.jobs: list[Callable[[], Any]] = []

    def submit(self, job: Callable[[], Any]) -> None:
        self.jobs.append(job)

    def run(self) -> None:
        while self.jobs:
            self.jobs.pop(0)()


def test_a_held_stream_stops_after_the_value_and_goes_on_when_released() -> None:
    pool, seen, releases, resumed = _Inline(), [], [], []

    def on_next(value: int) -> None:
        seen.append(value)
        if value in (2, 5):
            release = hold_delivery()
            assert release is not None
            releases.append(release)

    queue = SerialQueue(pool, on_next, lambda _e: None, lambda: resumed.append(1), low=0)  # type: ignore[arg-type]
    queue.values([1, 2, 3], weight=30)
    queue.values([4, 5], weight=20)
    assert queue.pause_over(10)  # the reader was paused: 50 bytes wait
    pool.run()
    assert seen == [1, 2] and not pool.jobs  # held mid-batch: parked, no job left
    releases.pop()()
    pool.run()
    # held again at the last value of the last batch: nothing left to run, but the
    # paused reader must be resumed once released, or the stream never reads again
    assert seen == [1, 2, 3, 4, 5] and resumed == []
    releases.pop()()
    pool.run()
    assert resumed == [1]
    assert hold_delivery() is None  # not delivering: nothing to hold
