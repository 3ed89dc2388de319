"""Cancellation, concurrency and memory scenarios of the suite (``run_all.py``).

* Cancellation: a server sends one event and goes silent, keeping the connection open;
  the subscriber disposes after the first delta. Timed: ``dispose()`` returning, the
  reader thread ending, and the server seeing the disconnect (its ``recv`` returns).
* Concurrency and memory run in a child process (``python scenarios.py concurrency
  URL N`` / ``memory URL``) so that threads and peak RSS are the client's alone; the
  server stays in the parent. Each prints one JSON line.

All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from reactivex import operators as ops
from stream_throughput import HOST, accept_forever, stop_listening

from rxchat import ChatClient, ChatCompletionParams, Message, create_stream_completion
from rxchat import operators as rxops

PARAMS: ChatCompletionParams = {
    "model": "bench-model",
    "messages": [{"role": "user", "content": "Hi"}],
}
EVENT = b'data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n'


class SilentServer:
    """Sends the head and one event, then nothing; records when each client left."""

    def __init__(self, framing: str) -> None:
        self.framing = framing
        self.disconnects: queue.Queue[float] = queue.Queue()
        self._listener = socket.create_server((HOST, 0), backlog=64)
        self.base_url = f"http://{HOST}:{self._listener.getsockname()[1]}/v1"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop accepting connections."""
        stop_listening(self._listener, self._thread)

    def _accept(self) -> None:
        accept_forever(self._listener, self._serve)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            chunked = self.framing == "chunked"
            framing = "Transfer-Encoding: chunked" if chunked else "Connection: close"
            event = b"%x\r\n%s\r\n" % (len(EVENT), EVENT) if chunked else EVENT
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                + framing.encode() + b"\r\n\r\n" + event
            )
            try:  # the request body may still be here; then wait for the client to go
                while conn.recv(65536):
                    pass
            except OSError:
                pass
            self.disconnects.put(time.perf_counter())


def measure_cancel(framing: str, rounds: int) -> dict[str, list[float]]:
    """Dispose a stream stuck on a silent server, ``rounds`` times; times in ms."""
    server = SilentServer(framing)
    out: dict[str, list[float]] = {"dispose_ms": [], "thread_ms": [], "server_ms": []}
    try:
        for _ in range(rounds):
            first = threading.Event()
            reader: list[threading.Thread] = []

            def on_next(_m: Message, reader: list[threading.Thread] = reader,
                        first: threading.Event = first) -> None:
                reader.append(threading.current_thread())
                first.set()

            with ChatClient(server.base_url, "x", max_retries=0, timeout=(5, 60)) as client:
                sub = create_stream_completion(PARAMS, client=client).subscribe(on_next)
                if not first.wait(10):
                    raise TimeoutError("no first delta from the silent server")
                started = time.perf_counter()
                sub.dispose()
                out["dispose_ms"].append((time.perf_counter() - started) * 1e3)
                if reader[0].name.startswith("rxchat-deliver"):
                    # The shared model: no thread of its own; "reading stopped" is the
                    # shared reader letting go of the body.
                    from rxchat._http.reactor import reactor

                    bodies = reactor()._bodies
                    deadline = time.perf_counter() + 10
                    while bodies and time.perf_counter() < deadline:
                        time.sleep(0.0001)
                else:
                    reader[0].join(10)
                out["thread_ms"].append((time.perf_counter() - started) * 1e3)
                seen = server.disconnects.get(timeout=10)
                out["server_ms"].append((seen - started) * 1e3)
    finally:
        server.close()
    return out


def run_child(kind: str, *args: str) -> dict[str, Any]:
    """Run this file as a child process for one scenario; return its JSON result."""
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), kind, *args],
        capture_output=True, text=True, timeout=600, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} scenario failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _rss_mb() -> float:
    """Peak RSS of this process (VmHWM: ``ru_maxrss`` may carry the parent's over)."""
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as file:
        return int(file.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _Streams:
    """Counts deltas per stream, streams open at once (first delta to end), threads."""

    def __init__(self, streams: int) -> None:
        self.counts = [0] * streams
        self.errors: list[str] = []
        self.finished = threading.Semaphore(0)
        self.open_now = self.peak_open = 0
        self.peak_threads = threading.active_count()
        self._lock = threading.Lock()
        self._sampling = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def subscribe(self, client: ChatClient, i: int) -> None:
        """Start stream ``i``."""
        def on_next(_m: Message) -> None:
            self.counts[i] += 1
            if self.counts[i] == 1:
                with self._lock:
                    self.open_now += 1
                    self.peak_open = max(self.peak_open, self.open_now)

        def on_end(error: Exception | None = None) -> None:
            if error is not None:
                self.errors.append(repr(error))
            if self.counts[i]:
                with self._lock:
                    self.open_now -= 1
            self.finished.release()

        create_stream_completion(PARAMS, client=client).subscribe(on_next, on_end, on_end)

    def stop_sampling(self) -> None:
        """Stop counting threads."""
        self._sampling.set()

    def _sample(self) -> None:
        while not self._sampling.wait(0.005):
            self.peak_threads = max(self.peak_threads, threading.active_count())


def child_concurrency(url: str, streams: int, expected: int) -> dict[str, Any]:
    """``streams`` simultaneous subscriptions on one client; wall time, threads, RSS."""
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # "pool is full" is expected
    client = ChatClient(url, "x", max_retries=0, timeout=(30, 60))
    client.session.trust_env = False
    tracker = _Streams(streams)
    rss_before = _current_rss_mb()
    started = time.perf_counter()
    for i in range(streams):
        tracker.subscribe(client, i)
    for _ in range(streams):
        tracker.finished.acquire(timeout=300)
    wall = time.perf_counter() - started
    tracker.stop_sampling()
    errors = tracker.errors
    return {
        "streams": streams, "completed": sum(c == expected for c in tracker.counts),
        "errors": len(errors), "first_error": errors[0] if errors else None,
        "wall_s": wall, "peak_open_streams": tracker.peak_open,
        "peak_threads": tracker.peak_threads, "rss_before_mb": rss_before,
        "peak_rss_mb": _rss_mb(),
    }


def child_memory(url: str, size: int, how: str) -> dict[str, Any]:
    """Peak RSS while one reply of ``size`` bytes is streamed.

    ``how`` is ``final_message`` (``rxchat.operators.final_message()``: every delta is
    kept until the end, then merged) or ``content`` (``rxchat.operators.content()``
    pieces kept as strings and joined at the end, as a UI would).
    """
    client = ChatClient(url, "x", max_retries=0, timeout=(30, 120))
    client.session.trust_env = False
    before = _current_rss_mb()
    result: list[str] = []
    deltas = create_stream_completion(PARAMS, client=client)
    if how == "final_message":
        text = deltas.pipe(rxops.final_message(), ops.map(lambda m: m.content or ""))
    else:
        text = deltas.pipe(rxops.content(), ops.to_list(), ops.map("".join))
    text.subscribe(result.append)
    deadline = time.monotonic() + 120
    while not result and time.monotonic() < deadline:
        time.sleep(0.01)
    if not result or len(result[0]) != size:
        raise RuntimeError(f"{how}: got {len(result[0]) if result else 0} characters")
    return {"reply_bytes": size, "how": how, "rss_before_mb": before,
            "peak_rss_mb": _rss_mb()}


def summarise_cancel(samples: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """Median and max of each cancellation timing, per framing."""
    return {
        framing: {
            f"{name}_{stat}": fn(values)
            for name, values in by_name.items()
            for stat, fn in (("median", statistics.median), ("max", max))
        }
        for framing, by_name in samples.items()
    }


def main(argv: Sequence[str]) -> int:
    """Child-process entry: ``concurrency URL N EXPECTED`` or ``memory URL SIZE HOW``."""
    kind, url, *rest = argv
    if kind == "concurrency":
        result = child_concurrency(url, int(rest[0]), int(rest[1]))
    else:
        result = child_memory(url, int(rest[0]), rest[1])
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
