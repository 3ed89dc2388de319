"""How much ChatSession adds per delta and per turn, with no network.

The session is driven by an in-memory ``complete`` that emits ready-made ``Message``
deltas synchronously on the subscribing thread (``ImmediateScheduler``), so what is
timed is the session itself: the scan, the state snapshots, the ``send()`` replay and
a subscriber that renders each ``state.delta`` as a UI would.

* Per delta: one reply of 10-character deltas in 1k, 10k and 100k pieces (100k is a
  1 MB reply). Flat figures mean the partial reply is not copied on every delta.
* Per turn: ten-delta turns on top of 10 and of 1,000 turns of history; the request
  (the whole history as wire dicts) is rebuilt each turn, so this grows with history.

Run ``python benchmarks/session_overhead.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import reactivex
from reactivex import Observable
from reactivex.scheduler import ImmediateScheduler

from rxchat import ChatSession, ChatState, Message
from rxchat._history import Restored

PIECE = "0123456789"


def in_memory(deltas: int) -> Any:
    """A ``complete`` that replies with ``deltas`` content deltas, then finishes."""

    def complete(params: Any, **_options: Any) -> Observable[Message]:
        pieces = [Message(content=PIECE) for _ in range(deltas)]
        return reactivex.from_iterable([*pieces, Message(finish_reason="stop")])

    return complete


def new_session(deltas: int, history_turns: int = 0) -> tuple[ChatSession, list[int]]:
    session = ChatSession(
        system="S", complete=in_memory(deltas), scheduler=ImmediateScheduler()
    )
    turns = (Message(role="user", content="q"), Message(content="a" * 40))
    session._runner.run(Restored((session.messages[0], *(turns * history_turns))))
    rendered = [0]

    def render(state: ChatState) -> None:  # what a UI does: print the new piece only
        if state.delta is not None and state.delta.content:
            rendered[0] += len(state.delta.content)

    session.subscribe(render)
    return session, rendered


def time_per_delta(deltas: int) -> float:
    """Seconds per delta for one reply of ``deltas`` deltas."""
    session, rendered = new_session(deltas)
    start = time.perf_counter()
    session.send("go")
    elapsed = time.perf_counter() - start
    assert rendered[0] == deltas * len(PIECE)
    assert len(session.messages[-1].content or "") == deltas * len(PIECE)
    return elapsed / deltas


def time_per_turn(history_turns: int, turns: int) -> float:
    """Seconds per ten-delta turn on top of ``history_turns`` turns of history."""
    session, _ = new_session(10, history_turns)
    start = time.perf_counter()
    for _ in range(turns):
        session.send("next")
    elapsed = time.perf_counter() - start
    assert len(session.messages) == 1 + 2 * (history_turns + turns)
    return elapsed / turns


def best(function: Callable[..., float], *args: Any, repeat: int) -> float:
    return min(function(*args) for _ in range(repeat))


def main(argv: Sequence[str] | None = None, *, out: TextIO = sys.stdout) -> int:
    """Run the benchmark and print a table; returns an exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat")
    args = parser.parse_args(argv)
    sizes = (100, 1_000) if args.quick else (1_000, 10_000, 100_000)
    histories = (10, 100) if args.quick else (10, 1_000)
    repeat, turns = (1, 5) if args.quick else (3, 50)

    out.write(f"{'deltas per reply':>18} {'reply size':>12} {'us per delta':>14}\n")
    for size in sizes:
        per = best(time_per_delta, size, repeat=repeat)
        out.write(f"{size:>18,} {size * len(PIECE):>11,}B {per * 1e6:>14.2f}\n")
    out.write(f"\n{'turns of history':>18} {'ms per turn':>12}\n")
    for history in histories:
        per = best(time_per_turn, history, turns, repeat=repeat)
        out.write(f"{history:>18,} {per * 1e3:>12.3f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
