"""Streaming throughput and latency on loopback: rxchat against the limit and the SDKs.

One run serves the same pre-built chat-completion stream (``--chunks`` OpenAI-shaped
``data: {...}`` events with short content deltas, then ``data: [DONE]``) from a small
raw-socket server on 127.0.0.1, in both response framings:

* ``chunked``: ``Transfer-Encoding: chunked``, one HTTP chunk per event, keep-alive;
* ``close``: no ``Content-Length`` and no chunked encoding; the body ends when the
  server closes the connection.

and measures deltas/second for each consumer::

    raw        http.client read1 loop, split on blank lines, json.loads (the limit)
    socket     a plain socket, 64 KiB recv, bulk de-chunking, split, json.loads
    urllib3    the same loop over requests' urllib3 response (rxchat's transport)
    rxchat     create_stream_completion(...).subscribe(...) until on_completed
    iter_lines requests' Response.iter_lines() + json.loads
    sseclient  sseclient-py fed the requests Response, json.loads of each event.data
    openai     openai.OpenAI(...).chat.completions.create(stream=True)

Rounds are interleaved (every consumer and framing once per round, in a rotating order)
so that noise from a shared machine hits all of them alike; the table shows medians
over the rounds, and each ratio is the median of the per-round ratios.

Latency: the server sends ``--latency-events`` events ``--gap-ms`` apart, each carrying
the ``time.perf_counter_ns()`` taken just before it was written; the subscriber's
``on_next`` subtracts it from its own clock (one process, one monotonic clock).

``--profile`` runs the rxchat case once under cProfile (reader loop on the calling
thread) and times each stage of rxchat's pipeline in isolation, per delta.

Nothing here asserts a timing; ``tests/stress/test_benchmarks.py`` runs ``--quick`` so the
script cannot rot. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import http.client
import io
import json
import os
import platform
import pstats
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

if os.environ.get(NO_ORJSON := "RXCHAT_BENCH_NO_ORJSON"):
    sys.modules["orjson"] = None  # type: ignore[assignment]  # rxchat: json.loads

import reactivex
import requests
from reactivex.scheduler import ImmediateScheduler

import rxchat
from rxchat import (
    ChatClient,
    ChatCompletionParams,
    Message,
    create_stream_completion,
)
from rxchat._wire.json import FAST

if FAST:
    import orjson

    PARSE: Callable[[bytes | str], Any] = orjson.loads
else:
    PARSE = json.loads
"""The limit's JSON parser: the one rxchat uses (orjson when installed, else json)."""
JSON_NAME = "orjson" if FAST else "json (stdlib)"

__all__ = [
    "BenchServer",
    "CONSUMERS",
    "build_events",
    "main",
    "run_latency",
    "run_throughput",
]

HOST = "127.0.0.1"
FRAMINGS = ("chunked", "close")
MODES = ("chunked", "close", "64k-chunked", "64k-close")
"""Throughput modes: each framing with one HTTP chunk per event, and with 64 KiB writes."""
READ_SIZE = 65536
WRITE_SIZE = 65536
SHAPES = ("event", "64k")
"""Server shapes: one HTTP chunk per event, or 64 KiB writes (see ``_writes``)."""
PARAMS: ChatCompletionParams = {
    "model": "bench-model",
    "messages": [{"role": "user", "content": "Count."}],
}
REQUEST: dict[str, Any] = dict(PARAMS)
_WORDS = ("The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".")

# --------------------------------------------------------------------------- the stream


def _chunk_json(delta: dict[str, Any], finish_reason: str | None = None) -> str:
    """One OpenAI ``chat.completion.chunk`` object, as the API serialises it."""
    return json.dumps(
        {
            "id": "chatcmpl-bench0123456789",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "bench-model",
            "system_fingerprint": "fp_bench",
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        },
        separators=(",", ":"),
    )


def build_events(chunks: int) -> tuple[list[bytes], str]:
    """Build a stream of ``chunks`` chunk events (role, contents, finish) and ``[DONE]``.

    Args:
        chunks: Number of ``chat.completion.chunk`` events; each is one delta.

    Returns:
        The encoded ``data: ...\\n\\n`` events, ``[DONE]`` last, and the full content.
    """
    if chunks < 3:
        raise ValueError("a stream needs at least 3 chunks (role, content, finish)")
    events = [_chunk_json({"role": "assistant", "content": ""})]
    parts = [_WORDS[i % len(_WORDS)] for i in range(chunks - 2)]
    events += [_chunk_json({"content": part}) for part in parts]
    events.append(_chunk_json({}, "stop"))
    encoded = [f"data: {e}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]
    return encoded, "".join(parts)


def _frame(event: bytes, framing: str) -> bytes:
    return b"%x\r\n%s\r\n" % (len(event), event) if framing == "chunked" else event


def _writes(events: Sequence[bytes], framing: str, shape: str) -> list[bytes]:
    """The server's writes of one body: one per event shape, or 64 KiB pieces.

    ``event``: one HTTP chunk per event (chunked), the whole body in one ``sendall``.
    ``64k``: the body cut into 64 KiB pieces, each one HTTP chunk (chunked) and one
    ``sendall``, as a proxy or a buffering server writes.
    """
    if shape == "event":
        writes = [b"".join(_frame(e, framing) for e in events)]
    else:
        body = b"".join(events)
        writes = [_frame(body[i : i + WRITE_SIZE], framing)
                  for i in range(0, len(body), WRITE_SIZE)]
    if framing == "chunked":
        writes.append(b"0\r\n\r\n")
    return writes


def _head(framing: str) -> bytes:
    length = "Transfer-Encoding: chunked" if framing == "chunked" else "Connection: close"
    return (
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        f"Cache-Control: no-cache\r\n{length}\r\n\r\n"
    ).encode()


# --------------------------------------------------------------------------- the server


class BenchServer:
    """A raw-socket HTTP/1.1 server on 127.0.0.1 that plays one SSE body per POST.

    The path picks the framing and the mode: ``/chunked/v1/chat/completions`` and
    ``/close/v1/chat/completions`` send the pre-built body with one HTTP chunk per
    event, in one ``sendall``; ``/64k-chunked/...`` and ``/64k-close/...`` send it in
    64 KiB writes (one HTTP chunk each); ``/latency-chunked/...`` and
    ``/latency-close/...`` send ``latency_events`` events ``gap`` seconds apart, each
    stamped with ``perf_counter_ns()``.

    Args:
        events: The pre-built throughput stream (see :func:`build_events`).
        latency_events: Events per latency stream.
        gap: Seconds between latency events.
    """

    def __init__(self, events: Sequence[bytes], latency_events: int, gap: float) -> None:
        self._bodies = {
            (shape, f): _writes(events, f, shape) for shape in SHAPES for f in FRAMINGS
        }
        self._latency_events = latency_events
        self._gap = gap
        self._listener = socket.create_server((HOST, 0), backlog=1024)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="bench-server", daemon=True)

    def base_url(self, mode: str) -> str:
        """The API root for one mode, e.g. ``base_url("chunked")``."""
        return f"http://{HOST}:{self.port}/{mode}/v1"

    def __enter__(self) -> BenchServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        stop_listening(self._listener, self._thread)

    def _accept(self) -> None:
        accept_forever(self._listener, self._serve)

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn, contextlib.suppress(OSError):
            while True:
                request, buffer = _read_request(conn, buffer)
                if request is None:
                    return
                mode = request.split(b" ", 2)[1].split(b"/")[1].decode()
                shape, _, framing = mode.rpartition("-")
                if framing not in FRAMINGS or shape not in ("", "latency", *SHAPES):
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    continue
                conn.sendall(_head(framing))
                if shape == "latency":
                    self._send_paced(conn, framing)
                else:
                    for write in self._bodies[shape or "event", framing]:
                        conn.sendall(write)
                if framing == "close":
                    conn.shutdown(socket.SHUT_WR)
                    return

    def _send_paced(self, conn: socket.socket, framing: str) -> None:
        for i in range(self._latency_events):
            time.sleep(self._gap)
            sent = time.perf_counter_ns()
            delta = {"role": "assistant", "content": str(sent)} if i == 0 else {}
            delta.setdefault("content", str(sent))
            event = f"data: {_chunk_json(delta)}\n\n".encode()
            conn.sendall(_frame(event, framing))
        tail = f"data: {_chunk_json({}, 'stop')}\n\n".encode()
        conn.sendall(_frame(tail, framing) + _frame(b"data: [DONE]\n\n", framing))
        if framing == "chunked":
            conn.sendall(b"0\r\n\r\n")


def accept_forever(listener: socket.socket, serve: Callable[[socket.socket], None]) -> None:
    """Serve each connection on its own daemon thread, until the listener is closed."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def stop_listening(listener: socket.socket, thread: threading.Thread) -> None:
    """Close a listener and end its accept thread (close alone does not wake accept)."""
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    if thread.is_alive():
        thread.join(5)


def _read_request(conn: socket.socket, buffer: bytes) -> tuple[bytes | None, bytes]:
    """Read one request (head and Content-Length body); None when the peer closed."""
    while b"\r\n\r\n" not in buffer:
        data = conn.recv(65536)
        if not data:
            return None, b""
        buffer += data
    head, _, rest = buffer.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        data = conn.recv(65536)
        if not data:
            return None, b""
        rest += data
    return head, rest[length:]


# --------------------------------------------------------------------------- consumers


@dataclass
class Consumed:
    """What one consumer got from one stream: the deltas and their joined content."""

    deltas: int = 0
    parts: list[str] = field(default_factory=list)

    @property
    def content(self) -> str:
        """The content fragments joined."""
        return "".join(self.parts)


def _content_of(chunk: dict[str, Any], out: Consumed) -> None:
    for choice in chunk["choices"]:
        out.deltas += 1
        content = choice["delta"].get("content")
        if content:
            out.parts.append(content)


def _iter_events(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Split a byte stream of ``data: ...\\n\\n`` events; yield each data payload."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *events, pending = pending.split(b"\n\n")
        for event in events:
            if event.startswith(b"data: "):
                yield event[6:]


def _consume_payloads(payloads: Iterator[bytes | str], out: Consumed) -> None:
    for payload in payloads:
        if payload == b"[DONE]" or payload == "[DONE]":
            return
        _content_of(PARSE(payload), out)


def consume_raw(base_url: str) -> Consumed:
    """The limit: ``http.client`` ``read1`` loop, split on blank lines, ``json.loads``."""
    out = Consumed()
    port = int(base_url.split(":")[2].split("/")[0])
    path = base_url.split(str(port), 1)[1] + "/chat/completions"
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("POST", path, json.dumps(REQUEST), {"Content-Type": "application/json"})
        response = conn.getresponse()
        read1 = response.read1
        _consume_payloads(_iter_events(iter(lambda: read1(READ_SIZE), b"")), out)
    finally:
        conn.close()
    return out


def _iter_socket_body(sock: socket.socket) -> Iterator[bytes]:
    """Yield a response body read with 64 KiB ``recv`` calls, de-chunked in bulk.

    Minimal on purpose (no trailers, no chunk extensions): the loopback server's
    framing only. Chunked bodies are decoded per ``recv``, not per HTTP chunk.
    """
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(READ_SIZE)
    head, _, data = data.partition(b"\r\n\r\n")
    if b"chunked" not in head.lower():
        yield data
        yield from iter(lambda: sock.recv(READ_SIZE), b"")
        return
    pieces: list[bytes] = []
    while True:
        end = data.find(b"\r\n")
        size = int(data[:end], 16) if end >= 0 else -1
        if end >= 0 and len(data) >= end + size + 4:
            if size == 0:
                yield b"".join(pieces)
                return
            pieces.append(data[end + 2 : end + 2 + size])
            data = data[end + size + 4 :]
            continue
        if pieces:
            yield b"".join(pieces)
            pieces.clear()
        more = sock.recv(READ_SIZE)
        if not more:
            return
        data += more


def consume_socket(base_url: str) -> Consumed:
    """A plain socket: 64 KiB ``recv``, bulk de-chunking, split, ``json.loads``."""
    out = Consumed()
    port = int(base_url.split(":")[2].split("/")[0])
    path = base_url.split(str(port), 1)[1] + "/chat/completions"
    body = json.dumps(REQUEST).encode()
    with socket.create_connection((HOST, port), timeout=30) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: "
            f"application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        _consume_payloads(_iter_events(_iter_socket_body(sock)), out)
    return out


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # never route loopback traffic through a proxy
    return session


def consume_urllib3(base_url: str) -> Consumed:
    """The same loop over requests' urllib3 response ``read1`` (rxchat's transport)."""
    out = Consumed()
    with _session() as session:
        response = session.post(base_url + "/chat/completions", json=REQUEST, stream=True)
        read1 = response.raw.read1
        _consume_payloads(_iter_events(iter(lambda: read1(READ_SIZE), b"")), out)
        response.close()
    return out


def consume_rxchat(base_url: str, scheduler: Any = None) -> Consumed:
    """rxchat: subscribe, collect each delta's content, wait for on_completed."""
    out = Consumed()
    done = threading.Event()
    errors: list[Exception] = []

    def on_next(message: Message) -> None:
        out.deltas += 1
        if message.content:
            out.parts.append(message.content)

    def on_error(error: Exception) -> None:
        errors.append(error)
        done.set()

    client = ChatClient(base_url, "x", max_retries=0)
    client.session.trust_env = False
    with client:
        create_stream_completion(PARAMS, client=client, scheduler=scheduler).subscribe(
            on_next, on_error, done.set
        )
        if not done.wait(120):
            raise TimeoutError("rxchat did not complete within 120 s")
    if errors:
        raise errors[0]
    return out


def consume_iter_lines(base_url: str) -> Consumed:
    """requests ``Response.iter_lines()`` and ``json.loads`` of each ``data:`` line."""
    out = Consumed()
    with _session() as session:
        response = session.post(base_url + "/chat/completions", json=REQUEST, stream=True)
        lines = (line[6:] for line in response.iter_lines() if line.startswith(b"data: "))
        _consume_payloads(lines, out)
        response.close()
    return out


def consume_sseclient(base_url: str) -> Consumed:
    """sseclient-py fed the requests Response directly, ``json.loads`` of each event."""
    import sseclient

    out = Consumed()
    with _session() as session:
        response = session.post(base_url + "/chat/completions", json=REQUEST, stream=True)
        events = sseclient.SSEClient(response).events()  # type: ignore[arg-type]  # iterable, not an iterator
        _consume_payloads((event.data for event in events), out)
        response.close()
    return out


def consume_openai(base_url: str) -> Consumed:
    """The official SDK: ``chat.completions.create(stream=True)``."""
    import openai

    out = Consumed()
    http_client = openai.DefaultHttpxClient(trust_env=False)
    with openai.OpenAI(
        base_url=base_url, api_key="x", max_retries=0, http_client=http_client
    ) as client:
        stream = client.chat.completions.create(
            model="bench-model",
            messages=[{"role": "user", "content": "Count."}],
            stream=True,
        )
        with stream:
            for chunk in stream:
                for choice in chunk.choices:
                    out.deltas += 1
                    if choice.delta.content:
                        out.parts.append(choice.delta.content)
    return out


def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


CONSUMERS: dict[str, tuple[Callable[[str], Consumed], str | None]] = {
    "raw": (consume_raw, None),
    "socket": (consume_socket, None),
    "urllib3": (consume_urllib3, None),
    "rxchat": (consume_rxchat, None),
    "iter_lines": (consume_iter_lines, None),
    "sseclient": (consume_sseclient, "sseclient"),
    "openai": (consume_openai, "openai"),
}
"""Name -> (consumer, module it needs or None)."""


# --------------------------------------------------------------------------- measuring


def run_throughput(
    server: BenchServer,
    names: Sequence[str],
    rounds: int,
    expected: tuple[int, str],
    log: TextIO,
    modes: Sequence[str] = MODES,
) -> dict[str, dict[str, list[float]]]:
    """Time every consumer on every mode (shape and framing), ``rounds`` interleaved rounds.

    Returns:
        ``{mode: {consumer: [deltas/s per round]}}``.

    Raises:
        RuntimeError: A consumer got other deltas or content than the server sent.
    """
    rates: dict[str, dict[str, list[float]]] = {m: {n: [] for n in names} for m in modes}
    jobs = [(m, n) for m in modes for n in names]
    for round_ in range(rounds):
        shift = round_ % len(jobs)
        for framing, name in jobs[shift:] + jobs[:shift]:
            consumer = CONSUMERS[name][0]
            started = time.perf_counter()
            got = consumer(server.base_url(framing))
            elapsed = time.perf_counter() - started
            if (got.deltas, got.content) != expected:
                raise RuntimeError(
                    f"{name}/{framing}: got {got.deltas} deltas and {len(got.content)} "
                    f"characters, expected {expected[0]} and {len(expected[1])}"
                )
            rates[framing][name].append(got.deltas / elapsed)
        print(f"  round {round_ + 1}/{rounds} done", file=log)
    return rates


def run_latency(server: BenchServer, rounds: int) -> dict[str, list[float]]:
    """Per-event latency, server write to rxchat ``on_next``, in microseconds.

    Returns:
        ``{framing: [latency of every content event of every round]}``.
    """
    samples: dict[str, list[float]] = {f: [] for f in FRAMINGS}
    for _ in range(rounds):
        for framing in FRAMINGS:
            got: list[float] = []
            done = threading.Event()

            def on_next(message: Message, got: list[float] = got) -> None:
                now = time.perf_counter_ns()
                if message.content:
                    got.append((now - int(message.content)) / 1000)

            errors: list[Exception] = []

            def on_error(
                error: Exception, errors: list[Exception] = errors, done: Any = done
            ) -> None:
                errors.append(error)
                done.set()

            client = ChatClient(server.base_url(f"latency-{framing}"), "x", max_retries=0)
            client.session.trust_env = False
            with client:
                create_stream_completion(PARAMS, client=client).subscribe(
                    on_next, on_error, done.set
                )
                if not done.wait(120):
                    raise TimeoutError("rxchat did not complete within 120 s")
            if errors:
                raise errors[0]
            samples[framing] += got
    return samples


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summarise(
    rates: dict[str, dict[str, list[float]]], latency: dict[str, list[float]]
) -> dict[str, Any]:
    """Medians, per-round ratios and latency percentiles, as a JSON-ready dict."""
    table: dict[str, Any] = {}
    for framing, by_name in rates.items():
        rows: dict[str, Any] = {}
        for name, values in by_name.items():
            row: dict[str, Any] = {"median": statistics.median(values), "runs": values}
            for base in ("raw", "openai"):
                if base in by_name and base != name:
                    ratios = [v / b for v, b in zip(values, by_name[base], strict=True)]
                    row[f"vs_{base}"] = statistics.median(ratios)
            rows[name] = row
        table[framing] = rows
    lat = {
        framing: {
            "events": len(values),
            "p50_us": _percentile(values, 0.5),
            "p99_us": _percentile(values, 0.99),
            "max_us": max(values),
        }
        for framing, values in latency.items()
        if values
    }
    return {"throughput": table, "latency": lat}


def print_report(summary: dict[str, Any], chunks: int, rounds: int, out: TextIO) -> None:
    """Print the throughput table and latency figures."""
    print(
        f"\nThroughput: {chunks} chunks per stream, median of {rounds} interleaved rounds "
        "(ratios: median of per-round ratios)",
        file=out,
    )
    header = f"{'mode':<11} {'consumer':<11} {'deltas/s':>10} {'vs raw':>7} {'vs openai':>9}"
    print(header, file=out)
    print("-" * len(header), file=out)
    for framing, rows in summary["throughput"].items():
        for name, row in rows.items():
            vs_raw = f"{row['vs_raw']:.2f}x" if "vs_raw" in row else "1.00x"
            vs_openai = f"{row['vs_openai']:.2f}x" if "vs_openai" in row else "-"
            if name == "openai":
                vs_openai = "1.00x"
            print(
                f"{framing:<11} {name:<11} {row['median']:>10,.0f} {vs_raw:>7} {vs_openai:>9}",
                file=out,
            )
    if summary["latency"]:
        print("\nLatency, server write -> rxchat on_next (µs)", file=out)
        for framing, row in summary["latency"].items():
            print(
                f"{framing:<8} events={row['events']:<5} p50={row['p50_us']:8.1f} "
                f"p99={row['p99_us']:8.1f} max={row['max_us']:8.1f}",
                file=out,
            )


# --------------------------------------------------------------------------- profiling


_BUCKETS = (
    ("_json.py", "JSON (orjson when installed, else json.loads)"),
    ("json", "JSON (orjson when installed, else json.loads)"),
    ("_chunked.py", "rxchat chunked decoding (bulk reads)"),
    ("_bulkread.py", "rxchat chunked decoding (bulk reads)"),
    ("_sse.py", "rxchat SSEDecoder (feed, lines, dispatch)"),
    ("_deltas.py", "rxchat DeltaDecoder (dict walking, bookkeeping)"),
    ("<string>", "dataclass __init__ (Message, ServerSentEvent)"),
    ("_models.py", "rxchat models"),
    ("_stream.py", "rxchat reader loop (_emit_event, _next)"),
    ("_readloop.py", "rxchat reader loop (_emit_event, _next)"),
    ("_messages.py", "rxchat models"),
    ("reactivex", "Rx observer chain (AutoDetachObserver)"),
    ("benchmarks", "subscriber on_next (benchmark)"),
    ("_transport.py", "transport: urllib3 read1 (+ rxchat iter_bytes)"),
    ("urllib3", "transport: urllib3 read1 (+ rxchat iter_bytes)"),
    ("contextlib", "transport: urllib3 read1 (+ rxchat iter_bytes)"),  # _error_catcher
    ("http/client", "transport: http.client chunked decoding"),
    ("socket", "transport: socket recv"),
)


def _layer(code: Any) -> str | None:
    """The layer of a profiled Python function, or None for a builtin."""
    if isinstance(code, str):  # a builtin, e.g. "<method 'get' of 'dict' objects>"
        if "orjson" in code:
            return "JSON (orjson when installed, else json.loads)"
        return "transport: socket recv" if "recv" in code or "read1" in code else None
    for needle, name in _BUCKETS:
        if needle in code.co_filename:
            return name
    return "other"


def _layers(profiler: cProfile.Profile, deltas: int) -> dict[str, float]:
    """Own time per delta by layer, builtins charged to the layer that called them.

    Reads the profiler's raw entries (one per code object): ``pstats`` keys functions
    by ``(file, line, name)``, which merges every dataclass ``__init__`` into one.
    """
    layers: dict[str, float] = {}
    for entry in profiler.getstats():
        layer = _layer(entry.code)
        if layer is not None:
            layers[layer] = layers.get(layer, 0.0) + entry.inlinetime
        for call in entry.calls or ():
            if _layer(call.code) is None:
                caller = layer or "other"
                layers[caller] = layers.get(caller, 0.0) + call.inlinetime
    return {name: seconds / deltas * 1e6 for name, seconds in layers.items()}


def profile_rxchat(server: BenchServer, chunks: int, out: TextIO) -> dict[str, float]:
    """cProfile one rxchat stream in 64 KiB writes (reader on this thread), by layer.

    Returns:
        ``{layer: microseconds of own time per delta}`` (cProfile inflates small
        functions; see :func:`time_stages` for unprofiled figures).
    """
    profiler = cProfile.Profile()
    profiler.enable()
    consume_rxchat(server.base_url("64k-chunked"), scheduler=ImmediateScheduler())
    profiler.disable()
    layers = _layers(profiler, chunks)
    stats = pstats.Stats(profiler)
    total = sum(layers.values())
    print(f"\ncProfile of one rxchat stream, own time per delta (total {total:.1f} µs):", file=out)
    for layer, us in sorted(layers.items(), key=lambda kv: -kv[1]):
        print(f"  {layer:<50} {us:6.2f} µs {us / total:6.1%}", file=out)
    text = io.StringIO()
    stats.stream = text  # type: ignore[attr-defined]
    stats.strip_dirs().sort_stats("tottime").print_stats(15)
    print(text.getvalue().split("\n\n", 1)[-1].rstrip(), file=out)
    return layers


def time_stages(events: Sequence[bytes], repeat: int, out: TextIO) -> dict[str, float]:
    """Time rxchat's pipeline stages in memory, per delta, without cProfile overhead.

    Uses rxchat's private decoders, so it follows their current shape; it is a
    diagnostic, not part of the comparison.

    Returns:
        ``{stage: microseconds per delta}`` (best of ``repeat``).
    """
    from rxchat._wire.deltas import DeltaDecoder
    from rxchat._wire.messages import message as build
    from rxchat._wire.sse import SSEDecoder

    body = b"".join(events)
    pieces = [body[i : i + READ_SIZE] for i in range(0, len(body), READ_SIZE)]
    decoder = SSEDecoder()
    sse_events = [e for p in pieces for e in decoder.feed(p)]
    datas = [e.data for e in sse_events if e.data != "[DONE]"]
    n = len(datas)

    def sse() -> None:
        decoder = SSEDecoder()
        for p in pieces:
            decoder.feed_data(p)

    def loads() -> None:
        for d in datas:
            PARSE(d)

    def deltas() -> None:
        decoder = DeltaDecoder()
        common = decoder.common_delta
        for d in datas:
            if common(d) is None:
                decoder.decode_data(d)

    parsed = [json.loads(d) for d in datas]
    deltas_only = [c["choices"][0]["delta"] for c in parsed]

    def messages() -> None:
        for d in deltas_only:
            build(d.get("role") or "assistant", d.get("content"), None, None, (), None, None, 0)

    sink: list[Any] = []

    def rx_on_next() -> None:
        def source(observer: Any, _scheduler: Any = None) -> Any:
            for d in datas:
                observer.on_next(d)
            observer.on_completed()

        reactivex.create(source).subscribe(sink.append)
        sink.clear()

    stages = {
        "SSEDecoder.feed_data (64 KiB pieces)": sse,
        "JSON parse (the limit's parser)": loads,
        "DeltaDecoder.common_delta (incl. JSON)": deltas,
        "Message(...) construction": messages,
        "Rx create -> subscribe on_next": rx_on_next,
    }
    results: dict[str, float] = {}
    print(f"\nrxchat stages in memory, µs per delta (best of {repeat}):", file=out)
    for name, stage in stages.items():
        best = min(_timed(stage) for _ in range(repeat))
        results[name] = best / n * 1e6
        print(f"  {name:<40} {results[name]:6.2f}", file=out)
    return results


def _timed(stage: Callable[[], None]) -> float:
    started = time.perf_counter()
    stage()
    return time.perf_counter() - started


# --------------------------------------------------------------------------- entry point


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--chunks", type=int, help="chunks per stream (default 20000)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5)")
    parser.add_argument("--latency-events", type=int, help="events per latency stream")
    parser.add_argument("--gap-ms", type=float, default=2.0, help="gap between them")
    parser.add_argument("--only", nargs="+", choices=list(CONSUMERS), help="consumers")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                        help="server shapes and framings")
    parser.add_argument("--json", metavar="PATH", help="write the results as JSON here")
    parser.add_argument("--profile", action="store_true", help="profile rxchat's path")
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO = sys.stdout) -> int:
    """Run the benchmark; print the table; return the exit code.

    Args:
        argv: Command-line arguments (``--help`` lists them).
        out: Where the report goes.

    Returns:
        0.
    """
    args = _parser().parse_args(argv)
    quick = args.quick
    chunks = args.chunks if args.chunks is not None else (200 if quick else 20_000)
    rounds = args.rounds if args.rounds is not None else (1 if quick else 5)
    latency_events = args.latency_events
    if latency_events is None:
        latency_events = 10 if quick else 200
    names = [
        name
        for name in args.only or list(CONSUMERS)
        if CONSUMERS[name][1] is None or _installed(CONSUMERS[name][1] or "")
    ]
    missing = sorted(set(args.only or CONSUMERS) - set(names))
    print(
        f"Python {platform.python_version()} on {platform.machine()}, rxchat "
        f"{rxchat.__version__}; JSON: {JSON_NAME}; consumers: {', '.join(names)}"
        + (f" (not installed: {', '.join(missing)})" if missing else ""),
        file=out,
    )
    events, content = build_events(chunks)
    with BenchServer(events, latency_events, args.gap_ms / 1000) as server:
        rates = run_throughput(server, names, rounds, (chunks, content), out, args.modes)
        latency = run_latency(server, rounds) if latency_events > 0 else {}
        summary = summarise(rates, latency)
        print_report(summary, chunks, rounds, out)
        if args.profile:
            summary["profile_us_per_delta"] = profile_rxchat(server, chunks, out)
            summary["stages_us_per_delta"] = time_stages(events, 3 if quick else 7, out)
    if args.json:
        summary["config"] = {
            "chunks": chunks,
            "rounds": rounds,
            "latency_events": latency_events,
            "gap_ms": args.gap_ms,
            "python": platform.python_version(),
            "consumers": names,
            "json": JSON_NAME,
        }
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(summary, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
