"""How much ChatSession adds per delta and per turn, with no network.

The session runs on its own thread, as it does for users; its ``complete`` is an
in-memory stream that emits ready-made ``Message`` deltas from a thread of its own, as
the SSE reader does. So what is timed is the session itself: the mailbox, the scan,
the state snapshots, the turn's deltas to its ``ask()`` subscriber, and a state
subscriber that does what a UI does:

* ``delta``: prints the new piece only (``state.delta.content``);
* ``partial``: reads the whole reply so far (``state.partial``) on every state, which
  must cost O(1) per delta: the figures for 1k, 10k and 100k deltas (100k is a 1 MB
  reply) must be flat.

Per turn: ten-delta turns on top of 10 and of 1,000 turns of history; the request (the
whole history as wire dicts) is rebuilt each turn, so this grows with history.

Run ``python benchmarks/session_overhead.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable

from rxchat import ChatSession, ChatState, Message

PIECE = "0123456789"


def in_memory(deltas: int) -> Any:
    """A ``complete`` that replies with ``deltas`` content deltas from its own thread."""

    def complete(params: Any, **_options: Any) -> Observable[Message]:
        pieces = [Message(content=PIECE) for _ in range(deltas)]

        def subscribe(observer: abc.ObserverBase[Message], _s: Any = None) -> Disposable:
            def read() -> None:
                for piece in pieces:
                    observer.on_next(piece)
                observer.on_next(Message(finish_reason="stop"))
                observer.on_completed()

            threading.Thread(target=read, name="bench-reader").start()
            return Disposable()

        return reactivex.create(subscribe)

    return complete


def new_session(deltas: int, history_turns: int = 0, *, read: str = "delta") -> Any:
    """A session replying ``deltas`` deltas, and the counter its subscriber keeps."""
    turns = (Message(role="user", content="q"), Message(content="a" * 40))
    session = ChatSession(system="S", complete=in_memory(deltas),
                          history=turns * history_turns)
    seen = [0]

    def render(state: ChatState) -> None:  # what a UI does: print the new piece only
        if state.delta is not None and state.delta.content:
            seen[0] += len(state.delta.content)

    def whole(state: ChatState) -> None:  # what a UI redrawing the whole reply does
        partial = state.partial
        if partial is not None and partial.content:
            seen[0] = len(partial.content)

    session.subscribe(render if read == "delta" else whole)
    return session, seen


def time_per_delta(deltas: int, read: str) -> float:
    """Seconds per delta for one reply of ``deltas`` deltas."""
    session, seen = new_session(deltas, read=read)
    start = time.perf_counter()
    session.ask("go").pipe(ops.last()).run()
    elapsed = time.perf_counter() - start
    assert len(session.messages[-1].content or "") == deltas * len(PIECE)
    assert seen[0] == deltas * len(PIECE), seen
    session.dispose()
    return elapsed / deltas


def time_per_turn(history_turns: int, turns: int) -> float:
    """Seconds per ten-delta turn on top of ``history_turns`` turns of history."""
    session, _ = new_session(10, history_turns)
    start = time.perf_counter()
    for _ in range(turns):
        session.ask("next").pipe(ops.last()).run()
    elapsed = time.perf_counter() - start
    assert len(session.messages) == 1 + 2 * (history_turns + turns)
    session.dispose()
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

    out.write(f"{'deltas per reply':>18} {'reply size':>12} {'us per delta':>14} "
              f"{'reading partial':>16}\n")
    for size in sizes:
        per = best(time_per_delta, size, "delta", repeat=repeat)
        whole = best(time_per_delta, size, "partial", repeat=repeat)
        out.write(f"{size:>18,} {size * len(PIECE):>11,}B {per * 1e6:>14.2f} "
                  f"{whole * 1e6:>16.2f}\n")
    out.write(f"\n{'turns of history':>18} {'ms per turn':>12}\n")
    for history in histories:
        per = best(time_per_turn, history, turns, repeat=repeat)
        out.write(f"{history:>18,} {per * 1e3:>12.3f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
