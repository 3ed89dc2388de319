"""Concurrency at scale: thousands of paced streams at once, server in its own process.

``run(streams, events, gap)`` starts two child processes:

* the **server** (``python scale.py server EVENTS GAP``): one asyncio event loop on
  127.0.0.1. Every connection that asks for a completion joins one global ticker; each
  tick (``GAP`` seconds, on a fixed grid) writes the next event to every open stream,
  stamped with ``time.monotonic_ns()`` taken just before its own write, and after
  ``EVENTS`` events the stream's last chunk. One timer for all streams keeps the server
  off the critical path (a timer per stream would cost it more than the client).
* the **client** (``python scale.py client URL STREAMS EVENTS KIND``), one of:

  - ``rxchat``: one ``ChatClient``, ``STREAMS`` subscriptions made at once with the
    default scheduler (the send pool, the shared reader, the delivery pool);
  - ``aio``: ``STREAMS`` tasks each iterating ``rxchat.aio.stream``, in one
    ``asyncio.run``; it also reports the loop's lag (a 5 ms ticker's lateness) and the
    time each ``aio.stream`` subscription held the loop;
  - ``raw``: the limit: one asyncio loop, ``asyncio.open_connection`` per stream, the
    chunked framing split by hand, the same JSON parser as rxchat (orjson when
    installed);
  - ``openai``: ``openai.AsyncOpenAI`` with its connection pool raised to fit.

  It reports streams completed, errors, wall time (first subscribe to last
  completion), peak threads, peak RSS (VmHWM), CPU, and the latency from the server's
  write to the value (``CLOCK_MONOTONIC`` is one clock for both processes),
  p50/p99/max.

``compare(streams)`` runs every kind, each in its own client process against its own
server process, one after another in the same run
(``python scale.py compare 200 2000 [--together] [--kinds=raw,rxchat,aio,openai]``).

The ideal wall time is ``EVENTS * GAP``: every stream open at once, each delta on time.
The client raises its soft open-file limit to the hard one when it needs more. Nothing
here asserts a timing. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import subprocess
import sys
import threading
import time
from typing import Any

HOST = "127.0.0.1"
HERE = os.path.abspath(__file__)


# --------------------------------------------------------------------------- server

_TAIL_EVENTS = (b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
                b"data: [DONE]\n\n")
TAIL = b"%x\r\n%s\r\n0\r\n\r\n" % (len(_TAIL_EVENTS), _TAIL_EVENTS)


class _Ticker:
    """All open streams, each sent its next event on every tick of one timer."""

    def __init__(self, events: int, gap: float, together: int) -> None:
        self.events = events
        self.gap = gap
        self.together = together  # wait for this many streams before the first tick
        self.streams: dict[asyncio.StreamWriter, list[Any]] = {}  # -> [sent, ended]
        self.wake = asyncio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while len(self.streams) < max(1, self.together):
                self.wake.clear()
                await self.wake.wait()
            self.together = 0
            start = loop.time()
            await asyncio.sleep(self.gap - (start % self.gap))
            self._tick()

    def _tick(self) -> None:
        ended = []
        for writer, state in self.streams.items():
            if writer.is_closing():
                ended.append(writer)
            elif state[0] < self.events:
                payload = (
                    b'data: {"choices":[{"index":0,"delta":{"content":"%d"},'
                    b'"finish_reason":null}]}\n\n' % time.monotonic_ns()
                )
                writer.write(b"%x\r\n%s\r\n" % (len(payload), payload))
                state[0] += 1
            else:
                writer.write(TAIL)
                ended.append(writer)
        for writer in ended:
            self.streams.pop(writer)[1].set()


async def _serve(events: int, gap: float, together: int) -> None:
    ticker = _Ticker(events, gap, together)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
                ended = asyncio.Event()
                ticker.streams[writer] = [0, ended]
                ticker.wake.set()
                await ended.wait()  # the ticker sends the body
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if writer in ticker.streams:
                ticker.streams.pop(writer)[1].set()
            writer.close()

    server = await asyncio.start_server(handle, HOST, 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    # The parent closes stdin to stop the server.
    loop.add_reader(sys.stdin.fileno(), lambda: done.done() or done.set_result(None))
    async with server:
        ticking = asyncio.create_task(ticker.run())
        await done
        ticking.cancel()
    print(json.dumps(_cpu()), flush=True)  # what serving cost, for the report


def serve(events: int, gap: float, together: int) -> None:
    """Run the server until stdin is closed (the server child's entry point)."""
    _raise_file_limit(4096 * 2)
    asyncio.run(_serve(events, gap, together))


# --------------------------------------------------------------------------- client


def _raise_file_limit(wanted: int) -> int:
    """Raise the soft open-file limit towards ``wanted`` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        soft = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _cpu() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_user_s": usage.ru_utime, "cpu_sys_s": usage.ru_stime}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


KINDS = ("raw", "rxchat", "aio", "openai")


class _Sampler:
    """Peak thread count, sampled every 10 ms on a thread of its own (not counted)."""

    def __init__(self) -> None:
        self.peak = threading.active_count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, threading.active_count() - 1)

    def stop(self) -> int:
        self._stop.set()
        return self.peak


def _report(
    streams: int, events: int, counts: list[int], errors: list[str], wall: float,
    subscribed: float, peak: int, latencies: list[float], extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "streams": streams, "events": events, "all_ended": len(errors) + sum(
            c == events for c in counts) >= streams,
        "completed": sum(c == events for c in counts), "errors": len(errors),
        "first_error": errors[0] if errors else None, "wall_s": wall,
        "subscribe_s": subscribed,
        "peak_threads": peak, "peak_rss_mb": _peak_rss_mb(),
        "latency_ms": {"p50": _percentile(latencies, 0.5), "p99": _percentile(latencies, 0.99),
                       "max": max(latencies, default=0.0)},
        **(extra or {}), **_cpu(),
    }


def client(url: str, streams: int, events: int, kind: str = "rxchat") -> dict[str, Any]:
    """Run ``streams`` streams at once with one consumer kind (the client child's entry
    point)."""
    _raise_file_limit(streams + 256)
    if kind == "raw":
        return asyncio.run(_raw_client(url, streams, events))
    if kind == "aio":
        return asyncio.run(_aio_client(url, streams, events))
    if kind == "openai":
        return asyncio.run(_openai_client(url, streams, events))
    return _rxchat_client(url, streams, events)


async def _gather_streams(
    streams: int, events: int, one: Any, extra: Any = None,
) -> dict[str, Any]:
    """Run ``one(i, on_value)`` for every stream as tasks on this loop; time them."""
    latencies: list[float] = []
    counts = [0] * streams
    errors: list[str] = []
    sampler = _Sampler()

    def on_value(i: int, content: str) -> None:
        latencies.append((time.monotonic_ns() - int(content)) / 1e6)
        counts[i] += 1

    async def guarded(i: int) -> None:
        try:
            await one(i, on_value)
        except Exception as exc:
            errors.append(repr(exc))

    started = time.perf_counter()
    tasks = [asyncio.create_task(guarded(i)) for i in range(streams)]
    subscribed = time.perf_counter() - started
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - started
    return _report(streams, events, counts, errors, wall, subscribed, sampler.stop(),
                   latencies, extra() if extra else None)


async def _raw_client(url: str, streams: int, events: int) -> dict[str, Any]:
    """The limit: asyncio streams, chunked framing split by hand, the same JSON parser."""
    from rxchat._wire.json import FAST

    loads: Any = json.loads
    if FAST:
        import orjson

        loads = orjson.loads
    host, port = url.split("//")[1].split("/")[0].split(":")
    body = json.dumps({"model": "m", "stream": True,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\n"
               b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
               % (host.encode(), len(body), body))

    async def one(i: int, on_value: Any) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(request)
        await reader.readuntil(b"\r\n\r\n")
        buffer, pending, done = b"", b"", False
        while not done:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("cut off")
            buffer += data
            while True:  # de-chunk what is complete
                eol = buffer.find(b"\r\n")
                if eol < 0:
                    break
                size = int(buffer[:eol], 16)
                if len(buffer) < eol + 2 + size + 2:
                    break
                pending += buffer[eol + 2 : eol + 2 + size]
                buffer = buffer[eol + 4 + size :]
                if size == 0:
                    done = True
                    break
            *events_, pending = pending.split(b"\n\n")
            for event in events_:
                data_ = event[6:]
                if data_ == b"[DONE]":
                    continue
                delta = loads(data_)["choices"][0]["delta"]
                if delta.get("content"):
                    on_value(i, delta["content"])
        writer.close()

    return await _gather_streams(streams, events, one)


async def _aio_client(url: str, streams: int, events: int) -> dict[str, Any]:
    """``rxchat.aio.stream`` per task, with the loop's lag and subscribe times."""
    from rxchat import ChatClient, aio

    logging.getLogger("urllib3").setLevel(logging.ERROR)
    chat = ChatClient(url, "x", max_retries=0, timeout=(60, 60))
    chat.session.trust_env = False
    params: Any = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    lags: list[float] = []
    holds: list[float] = []
    loop = asyncio.get_running_loop()
    ticking = True

    async def ticker() -> None:
        while ticking:
            due = loop.time() + 0.005
            await asyncio.sleep(0.005)
            lags.append((loop.time() - due) * 1e3)

    async def one(i: int, on_value: Any) -> None:
        iterator = aio.stream(params, client=chat)
        started = time.perf_counter()
        first = iterator.__anext__()  # subscribes, on the loop
        holds.append((time.perf_counter() - started) * 1e3)
        message = await first
        while True:
            if message.content:
                on_value(i, message.content)
            try:
                message = await iterator.__anext__()
            except StopAsyncIteration:
                break

    tick = asyncio.create_task(ticker())
    try:
        return await _gather_streams(streams, events, one, lambda: {
            "loop_lag_ms": {"p50": _percentile(lags, 0.5), "p99": _percentile(lags, 0.99),
                            "max": max(lags, default=0.0)},
            "subscribe_ms": {"p50": _percentile(holds, 0.5), "p99": _percentile(holds, 0.99),
                             "max": max(holds, default=0.0)},
        })
    finally:
        ticking = False
        await tick
        chat.close()


async def _openai_client(url: str, streams: int, events: int) -> dict[str, Any]:
    """``openai.AsyncOpenAI`` with its pool raised to ``streams``."""
    import openai

    limits: Any = None
    for module in ("httpx2", "httpx"):
        try:
            limits = __import__(module).Limits(
                max_connections=streams + 10, max_keepalive_connections=streams + 10)
            break
        except ImportError:
            continue
    http_client = openai.DefaultAsyncHttpxClient(trust_env=False, limits=limits)
    async with openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0,
                                  http_client=http_client, timeout=120) as sdk:

        async def one(i: int, on_value: Any) -> None:
            stream = await sdk.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
            async with stream:
                async for chunk in stream:
                    for choice in chunk.choices:
                        if choice.delta.content:
                            on_value(i, choice.delta.content)

        return await _gather_streams(streams, events, one)


def _rxchat_client(url: str, streams: int, events: int) -> dict[str, Any]:
    """``streams`` subscriptions at once on one client (default scheduler)."""
    from rxchat import ChatClient, Message, create_stream_completion

    limit = _raise_file_limit(streams + 256)
    logging.getLogger("urllib3").setLevel(logging.ERROR)  # "pool is full": expected
    chat = ChatClient(url, "x", max_retries=0, timeout=(60, 60))
    chat.session.trust_env = False
    latencies: list[float] = []
    first_at: list[float] = []
    counts = [0] * streams
    errors: list[str] = []
    finished = threading.Semaphore(0)
    peak = [threading.active_count()]
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.01):
            peak[0] = max(peak[0], threading.active_count() - 1)  # not the sampler

    def subscribe(i: int) -> None:
        def on_next(message: Message) -> None:
            now = time.monotonic_ns()
            if message.content:
                latencies.append((now - int(message.content)) / 1e6)
                counts[i] += 1
                if not first_at:
                    first_at.append(time.perf_counter())

        def on_end(error: Exception | None = None) -> None:
            if error is not None:
                errors.append(repr(error))
            finished.release()

        params: Any = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        create_stream_completion(params, client=chat).subscribe(on_next, on_end, on_end)

    threading.Thread(target=sample, daemon=True).start()
    started = time.perf_counter()
    for i in range(streams):
        subscribe(i)
    subscribed = time.perf_counter() - started
    ended = all(finished.acquire(timeout=120) for _ in range(streams))
    wall = time.perf_counter() - started
    if first_at:
        first_at[0] = wall + started - first_at[0]  # first delta -> last completion
    sampling.set()
    by_thread = _cpu_by_thread()  # the pools' threads are still there (idle)
    chat.close()
    return {
        "streams": streams, "events": events, "all_ended": ended,
        "completed": sum(c == events for c in counts), "errors": len(errors),
        "first_error": errors[0] if errors else None, "wall_s": wall,
        "subscribe_s": subscribed,
        "streaming_s": first_at[0] if first_at else None,
        "peak_threads": peak[0], "peak_rss_mb": _peak_rss_mb(),
        "latency_ms": {"p50": _percentile(latencies, 0.5), "p99": _percentile(latencies, 0.99),
                       "max": max(latencies, default=0.0)},
        "open_file_limit": limit, "cpu_by_thread_s": by_thread, **_cpu(),
    }


def _cpu_by_thread() -> dict[str, float]:
    """CPU seconds (user + system) of the living threads, summed by thread name."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            with open(f"/proc/self/task/{thread.native_id}/stat") as file:
                fields = file.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        name = thread.name.split(" ")[0].rstrip("-0123456789") or thread.name
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


# --------------------------------------------------------------------------- driver


def run(
    streams: int = 2000, events: int = 50, gap: float = 0.02, *, together: bool = False,
    kind: str = "rxchat",
) -> dict[str, Any]:
    """Start the server child, run the client child against it, stop the server.

    Args:
        streams: Subscriptions at once.
        events: Deltas per stream.
        gap: Seconds between deltas.
        together: The server holds the first delta until every stream has connected,
            so that all are open at once; ``streaming_s`` then times the streaming alone.
        kind: The consumer: one of `KINDS`.

    Returns:
        The client's figures plus ``ideal_s`` and ``vs_ideal`` (wall time / ideal).
    """
    server = subprocess.Popen(
        [sys.executable, HERE, "server", str(events), str(gap), str(streams if together else 0)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        done = subprocess.run(
            [sys.executable, HERE, "client", f"http://{HOST}:{port}/v1", str(streams),
             str(events), kind],
            capture_output=True, text=True, timeout=600, check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"scale client failed:\n{done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        try:
            rest = server.communicate(timeout=10)[0]  # closes stdin: the server stops
        except subprocess.TimeoutExpired:
            server.kill()
            rest = server.communicate()[0]
    lines = rest.strip().splitlines()
    result["server"] = json.loads(lines[-1]) if lines else None
    result["ideal_s"] = events * gap
    result["vs_ideal"] = result["wall_s"] / result["ideal_s"]
    result["together"] = together
    result["kind"] = kind
    return result


def compare(
    counts: list[int], *, together: bool = False, kinds: tuple[str, ...] = KINDS,
    events: int = 50, gap: float = 0.02,
) -> list[dict[str, Any]]:
    """Every consumer kind at every stream count, one after another in this run.

    Returns:
        One `run` result per (count, kind); a kind that is not installed (openai) is
        reported with its error instead.
    """
    results = []
    for streams in counts:
        for kind in kinds:
            try:
                results.append(run(streams, events, gap, together=together, kind=kind))
            except Exception as exc:  # e.g. openai not installed
                results.append({"kind": kind, "streams": streams, "error": repr(exc)[-300:]})
    return results


def print_comparison(results: list[dict[str, Any]], out: Any = sys.stdout) -> None:
    """The table: wall, x ideal, write->value p50/p99, peak threads, RSS, CPU."""
    print("| streams | consumer | wall | x ideal | write→value p50 / p99 | threads | RSS | CPU "
          "| completed |", file=out)
    print("|---|---|---|---|---|---|---|---|---|", file=out)
    for r in results:
        if "error" in r:
            print(f"| {r['streams']} | {r['kind']} | failed: {r['error']} |||||||", file=out)
            continue
        lat = r["latency_ms"]
        print(f"| {r['streams']} | {r['kind']} | {r['wall_s']:.2f} s | {r['vs_ideal']:.2f} "
              f"| {lat['p50']:.0f} / {lat['p99']:.0f} ms | {r['peak_threads']} "
              f"| {r['peak_rss_mb']:.0f} MB | {r['cpu_user_s'] + r['cpu_sys_s']:.1f} s "
              f"| {r['completed']}/{r['streams']} |", file=out)


def main(argv: list[str]) -> int:
    """``server EVENTS GAP TOGETHER``, ``client URL STREAMS EVENTS [KIND]``,
    ``run [STREAMS] [--together]`` or
    ``compare [COUNTS...] [--together] [--kinds=KIND,...]``."""
    kind, *rest = argv or ["run"]
    if kind == "server":
        serve(int(rest[0]), float(rest[1]), int(rest[2]))
    elif kind == "client":
        print(json.dumps(client(rest[0], int(rest[1]), int(rest[2]), *rest[3:4])))
    elif kind == "compare":
        together = "--together" in rest
        counts = [int(r) for r in rest if r.isdigit()] or [200, 2000]
        kinds = KINDS
        for r in rest:
            if r.startswith("--kinds="):
                kinds = tuple(k for k in r.split("=", 1)[1].split(",") if k in KINDS)
        results = compare(counts, together=together, kinds=kinds)
        print(json.dumps(results, indent=2))
        print_comparison(results)
    else:
        together = "--together" in rest
        counts = [int(r) for r in rest if r.isdigit()]
        print(json.dumps(run(counts[0] if counts else 2000, together=together), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
