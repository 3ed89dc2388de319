"""Back-pressure: how much memory a 5 MB reply costs when its consumer is slow.

Each scenario runs in a child process against a loopback ``FakeServer`` that serves a
5 MB reply in 100-byte deltas as fast as the socket takes it; the consumer pauses
20 ms every 100 deltas (about 10 s in all). Printed: the growth of RSS (its peak,
sampled every 5 ms) over the RSS before the scenario, in MB.

* ``stream``: ``aio.stream(params, maxsize=16)``;
* ``subscriber``: a synchronous subscriber of ``create_stream_completion``;
* ``session-aio``: a session's ``ask`` through ``aio.iterate(maxsize=16)``;
* ``session-state``: a slow state subscriber of a session (``session.send``).

Run ``python benchmarks/backpressure.py`` (about a minute). Nothing here asserts.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

from reactivex import operators as ops

from rxchat import ChatClient, ChatSession, ChatState, Message, aio, create_stream_completion
from rxchat import operators as rxops
from rxchat.testing import FakeServer, Reply

SIZE = 5_000_000
PIECE = 100
PARAMS: Any = {"messages": [{"role": "user", "content": "go"}]}


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class _Peak:
    """The highest RSS seen while the scenario runs (sampled every 5 ms)."""

    def __init__(self) -> None:
        self.peak, self._stop = _rss_mb(), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_mb())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def _slow(count: int) -> None:
    if count % 100 == 0:
        time.sleep(0.02)


def child(kind: str) -> dict[str, Any]:
    text = "x" * SIZE
    with FakeServer() as server:
        server.enqueue(Reply.text("warm up"), Reply.text("warm up"))
        client = ChatClient(server.base_url, "x", max_retries=0, timeout=(5, 120))
        create_stream_completion(PARAMS, client=client).pipe(rxops.final_message()).run()
        session = ChatSession(client)
        session.ask("warm up").pipe(rxops.final_message()).run()
        big = Reply.text(text, pieces=SIZE // PIECE)
        server.enqueue(big)
        del text, big
        before = _rss_mb()
        peak = _Peak()
        got = 0
        if kind == "stream":
            async def main() -> int:
                n = 0
                async for delta in aio.stream(PARAMS, client=client, maxsize=16):
                    n += len(delta.content or "")
                    _slow(n // PIECE)
                return n
            got = asyncio.run(main())
        elif kind == "subscriber":
            seen = [0]

            def on_next(delta: Message) -> None:
                seen[0] += len(delta.content or "")
                _slow(seen[0] // PIECE)
            create_stream_completion(PARAMS, client=client).pipe(
                ops.do_action(on_next), ops.count()).run()
            got = seen[0]
        elif kind == "session-aio":
            async def ask() -> int:
                n = 0
                async for delta in aio.iterate(session.ask("go"), maxsize=16):
                    n += len(delta.content or "")
                    _slow(n // PIECE)
                return n
            got = asyncio.run(ask())
            session.dispose()
        else:
            calls = [0]

            def on_state(state: ChatState) -> None:
                calls[0] += 1
                _slow(calls[0])
            session.subscribe(on_state)
            reply = session.send("go").pipe(rxops.final_message()).run()
            got = len(reply.content or "")
            session.dispose()
            return {"kind": kind, "grew_mb": round(peak.stop() - before, 1), "chars": got,
                    "state_calls": calls[0]}
        return {"kind": kind, "grew_mb": round(peak.stop() - before, 1), "chars": got}


def main() -> None:
    if len(sys.argv) > 1:
        print(json.dumps(child(sys.argv[1])))
        return
    for kind in ("stream", "subscriber", "session-aio", "session-state"):
        done = subprocess.run([sys.executable, os.path.abspath(__file__), kind],
                              capture_output=True, text=True, timeout=600, check=False)
        print(done.stdout.strip() or done.stderr[-1500:])


if __name__ == "__main__":
    main()
