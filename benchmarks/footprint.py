"""Memory of idle streams and of a long session, each in a child process (``run_all.py``).

* ``idle URL N``: ``N`` streams open at once on a server that sent one event each and
  went silent (``scenarios.SilentServer``); once every stream has its first delta, the
  process's RSS and threads are read, then all are disposed.
* ``session URL TURNS``: one ``ChatSession`` asks ``TURNS`` turns one after another
  through its public API only (``session.send(text).pipe(final_message()).run()``),
  each reply a short stream from the loopback server; peak RSS at the end, with the
  time of the first and last ten turns (each request carries the whole history).

Each prints one JSON line; peak RSS is the child's VmHWM. All traffic stays on
127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from scenarios import PARAMS, _current_rss_mb, _rss_mb

from rxchat import ChatClient, ChatSession, Message, create_stream_completion
from rxchat import operators as rxops

__all__ = ["child_idle", "child_session", "run"]


def run(kind: str, *args: str) -> dict[str, Any]:
    """Run this file as a child process for one scenario; return its JSON result."""
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), kind, *args],
        capture_output=True, text=True, timeout=900, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} scenario failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def child_idle(url: str, streams: int) -> dict[str, Any]:
    """``streams`` subscriptions held open on a silent server; RSS while they wait."""
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # "pool is full": expected
    client = ChatClient(url, "x", max_retries=0, timeout=(30, 120))
    client.session.trust_env = False
    before = _current_rss_mb()
    first = threading.Semaphore(0)
    subscriptions = []

    def on_next(_message: Message, seen: list[bool]) -> None:
        if not seen:
            seen.append(True)
            first.release()

    for _ in range(streams):
        seen: list[bool] = []
        subscriptions.append(create_stream_completion(PARAMS, client=client).subscribe(
            lambda m, seen=seen: on_next(m, seen)))
    waiting = sum(first.acquire(timeout=60) for _ in range(streams))
    time.sleep(0.2)  # let every reader settle into its blocked read
    idle_rss = _current_rss_mb()
    threads = threading.active_count()
    for subscription in subscriptions:
        subscription.dispose()
    return {"streams": streams, "waiting": waiting, "threads": threads,
            "rss_before_mb": before, "idle_rss_mb": idle_rss, "peak_rss_mb": _rss_mb()}


def child_session(url: str, turns: int) -> dict[str, Any]:
    """One session, ``turns`` turns in a row (public API only); peak RSS and turn times."""
    client = ChatClient(url, "x", max_retries=0, timeout=(30, 120))
    client.session.trust_env = False
    before = _current_rss_mb()
    session = ChatSession(client, model="bench-model", system="You count.")
    times: list[float] = []
    for i in range(turns):
        started = time.perf_counter()
        reply = session.send(f"turn {i}").pipe(rxops.final_message()).run()
        times.append(time.perf_counter() - started)
        if not reply.content:
            raise RuntimeError(f"turn {i}: an empty reply")
    committed = len(session.messages)
    session.on_completed()
    head, tail = times[:10], times[-10:]
    return {"turns": turns, "messages": committed, "rss_before_mb": before,
            "peak_rss_mb": _rss_mb(), "first_turns_ms": sum(head) / len(head) * 1e3,
            "last_turns_ms": sum(tail) / len(tail) * 1e3, "total_s": sum(times)}


def main(argv: Sequence[str]) -> int:
    """Child-process entry: ``idle URL N`` or ``session URL TURNS``."""
    kind, url, count = argv
    result = child_idle(url, int(count)) if kind == "idle" else child_session(url, int(count))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
