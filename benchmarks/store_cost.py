"""What a conversation store costs: per committed turn, and to load a long conversation.

For each store (SQLite in a temporary file; PostgreSQL on a throwaway local cluster
with fsync on, started with ``.ci/pg-cluster``, or ``--postgres-dsn``) it measures:

* commit: ``save_messages`` of the whole history after each turn (a user message and
  a ~300-character reply), as ``rxchat.stores.attach`` does, from an empty conversation
  to ``--turns`` turns; and the same once the history is already ``--messages`` long;
* load: ``get`` of a ``--messages``-message conversation;
* shared: ``--sessions`` sessions (200) asking ``--session-turns`` turns (5) each, all
  at once, against the offline model (``rxchat serve`` in its own process), first with
  no store, then all writing through one shared ``SQLiteStore``: the turn time's p50
  and p90 for each, their ratio (the target: within 1.5x), and how many saves each
  group commit carried.

Medians of repeated runs, in milliseconds. Nothing here asserts a timing. Run
``python benchmarks/store_cost.py`` (about a minute); ``--only shared`` runs the
shared-store figures alone; ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rxchat import ChatClient, ChatSession, Message, Usage
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


@contextmanager
def offline_server() -> Iterator[str]:
    """``rxchat serve`` on a free port, in its own process; its base URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "rxchat", "serve", "--port", "0"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        server.terminate()
        server.wait(10)
        if server.stdout is not None:
            server.stdout.close()


def session_turns_ms(
    url: str, store: ConversationStore | None, sessions: int, turns: int
) -> list[float]:
    """Milliseconds of every turn of ``sessions`` sessions asking ``turns`` turns each,
    all started at once, every session writing through ``store`` (if any)."""
    times: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(sessions)
    with ChatClient(url, "x", max_retries=0, timeout=(30, 120)) as client:

        def run(n: int) -> None:
            session = ChatSession(client, store=store)
            mine = []
            try:
                start.wait(60)
                for t in range(turns):
                    began = time.perf_counter()
                    session.send(f"Session {n} asks question {t}: what about that?").run()
                    mine.append((time.perf_counter() - began) * 1000)
            finally:
                session.dispose()
            with lock:
                times.extend(mine)

        threads = [threading.Thread(target=run, args=(n,)) for n in range(sessions)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return times


def measure_shared(args: argparse.Namespace) -> dict[str, float]:
    """Turn times with no store and with one store shared by every session."""
    with offline_server() as url:
        session_turns_ms(url, None, 10, 1)  # warm up
        bare = session_turns_ms(url, None, args.sessions, args.session_turns)
        with tempfile.TemporaryDirectory() as directory, SQLiteStore(
            Path(directory) / "shared.db"
        ) as store:
            shared = session_turns_ms(url, store, args.sessions, args.session_turns)
            saves = args.sessions * (args.session_turns + 1)  # + one create each
            transactions = getattr(store, "write_transactions", 0)  # 0: before 0.3
    p50_bare, p50_shared = statistics.median(bare), statistics.median(shared)
    return {
        "turn_ms_p50_no_store": p50_bare,
        "turn_ms_p90_no_store": statistics.quantiles(bare, n=10)[-1],
        "turn_ms_p50_shared_sqlite": p50_shared,
        "turn_ms_p90_shared_sqlite": statistics.quantiles(shared, n=10)[-1],
        "shared_over_none_p50": p50_shared / p50_bare,
        "writes_per_transaction": saves / max(1, transactions - 1),  # - the migration
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--session-turns", type=int, default=5)
    parser.add_argument("--postgres-dsn", default=None)
    parser.add_argument("--only", choices=["sqlite", "postgres", "shared"], default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)  # pool-full notes
    runs: dict[str, Callable[[], dict[str, float]]] = {
        "sqlite": lambda: measure(sqlite_store, args),
        "postgres": lambda: measure(lambda: postgres_store(args.postgres_dsn), args),
        "shared": lambda: measure_shared(args),
    }
    results = {name: run() for name, run in runs.items() if args.only in (None, name)}
    for name, figures in results.items():
        for key, value in figures.items():
            print(f"{name:9} {key:34} {value:8.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
