"""What a conversation store costs: per committed turn, and to load a long conversation.

For each store (SQLite in a temporary file; PostgreSQL on a throwaway local cluster
with fsync on, started with ``.ci/pg-cluster``, or ``--postgres-dsn``) it measures:

* commit: ``save_messages`` of the whole history after each turn (a user message and
  a ~300-character reply), as ``rxchat.stores.attach`` does, from an empty conversation
  to ``--turns`` turns; and the same once the history is already ``--messages`` long;
* load: ``get`` of a ``--messages``-message conversation.

Medians of repeated runs, in milliseconds. Nothing here asserts a timing. Run
``python benchmarks/store_cost.py`` (about 30 s); ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rxchat import Message, Usage
from rxchat.stores import ConversationStore, PostgresStore, SQLiteStore

ROOT = Path(__file__).resolve().parent.parent
REPLY = "A reply of about three hundred characters, as a chat model gives. " * 5


def turn(i: int) -> tuple[Message, Message]:
    """One turn: a question and a reply with usage."""
    return (Message(role="user", content=f"Question number {i}: what about that?"),
            Message(content=REPLY, finish_reason="stop", usage=Usage(100 + i, 80, 180 + i)))


def history(turns: int) -> tuple[Message, ...]:
    """A conversation of ``turns`` turns."""
    return tuple(m for i in range(turns) for m in turn(i))


def commit_ms(store: ConversationStore, start: tuple[Message, ...], turns: int) -> list[float]:
    """Milliseconds of each ``save_messages`` as ``turns`` turns are appended to ``start``."""
    cid = store.create(model="bench")
    store.save_messages(cid, start)
    messages, times = start, []
    for i in range(turns):
        messages += turn(len(start) // 2 + i)
        began = time.perf_counter()
        store.save_messages(cid, messages)
        times.append((time.perf_counter() - began) * 1000)
    return times


def load_ms(store: ConversationStore, size: int, repeat: int) -> list[float]:
    """Milliseconds of each ``get`` of a ``size``-message conversation."""
    cid = store.create(model="bench")
    store.save_messages(cid, history(size // 2))
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        assert len(store.get(cid).messages) == size
        times.append((time.perf_counter() - began) * 1000)
    return times


@contextmanager
def sqlite_store() -> Iterator[ConversationStore]:
    with tempfile.TemporaryDirectory() as directory, SQLiteStore(
        Path(directory) / "bench.db"
    ) as store:
        yield store


@contextmanager
def postgres_store(dsn: str | None) -> Iterator[ConversationStore]:
    if dsn:
        with PostgresStore(dsn) as store:
            yield store
        return
    directory = tempfile.mkdtemp(prefix="rxchat-bench-pg-")
    script = str(ROOT / ".ci" / "pg-cluster")
    started = subprocess.run([script, "start", directory], capture_output=True, text=True,
                             env={**os.environ, "PG_FSYNC": "on"}, check=True)
    try:
        with PostgresStore(started.stdout.strip()) as store:
            yield store
    finally:
        subprocess.run([script, "stop", directory], capture_output=True, check=False)


def measure(open_store: Callable[[], Any], args: argparse.Namespace) -> dict[str, float]:
    with open_store() as store:
        fresh = commit_ms(store, (), args.turns)
        long = commit_ms(store, history(args.messages // 2), args.turns // 4)
        load = load_ms(store, args.messages, args.repeat)
    return {
        "commit_turn_ms_median": statistics.median(fresh),
        "commit_turn_ms_p90": statistics.quantiles(fresh, n=10)[-1],
        f"commit_turn_at_{args.messages}_ms_median": statistics.median(long),
        f"load_{args.messages}_ms_median": statistics.median(load),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--postgres-dsn", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    results = {
        "sqlite": measure(sqlite_store, args),
        "postgres": measure(lambda: postgres_store(args.postgres_dsn), args),
    }
    for name, figures in results.items():
        for key, value in figures.items():
            print(f"{name:9} {key:32} {value:8.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
