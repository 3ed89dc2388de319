"""First-token latency per ChatSession turn over TLS: a kept connection vs a new one.

A loopback HTTPS server (certificate from a throwaway ``trustme`` CA, trusted by the
client's session only) answers each completion request at once with a short chunked
stream. Two servers, the same in all but one header:

* ``keep-alive``: the response keeps the connection open, so a client that reuses
  connections pays the TCP and TLS handshakes once per session;
* ``close``: ``Connection: close`` on every response, so every turn needs a new TCP
  connection and a full TLS handshake, whatever the client does.

Each mode runs one ``ChatSession`` for ``--turns`` turns through the public API
(``session.send(text)``: the time from ``send`` to the first delta, then the rest with
``rxchat.operators.final_message()``), and reports the first-token latency
(p50/p90/max, ms) and the connections the server accepted per turn. The second figure
says whether the client reused its connection: about 1.0 per turn means a new
connection every turn.

Run ``python benchmarks/tls_turns.py`` (needs ``trustme``: ``pip install -e '.[bench]'``).
Nothing here asserts a timing. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from reactivex import operators as ops

from rxchat import ChatClient, ChatSession
from rxchat import operators as rxops

HOST = "127.0.0.1"
EVENT = b'data: {"choices":[{"index":0,"delta":{"content":"%d "},"finish_reason":null}]}\n\n'
TAIL = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'


class TLSServer:
    """A threaded HTTPS/1.1 server on 127.0.0.1 that streams ``deltas`` deltas per POST.

    Args:
        context: The server's TLS context.
        keep_alive: Keep the connection after a response (else ``Connection: close``).
        deltas: Content deltas per reply.
    """

    def __init__(self, context: ssl.SSLContext, keep_alive: bool, deltas: int) -> None:
        self._context = context
        self._keep_alive = keep_alive
        self._body = b"".join(_chunk(EVENT % i) for i in range(deltas)) + _chunk(TAIL)
        self._listener = socket.create_server((HOST, 0))
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop accepting connections."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._context.wrap_socket(raw, server_side=True) as conn:
                buffer = b""
                while True:
                    while b"\r\n\r\n" not in buffer:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buffer += data
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), 0)
                    while len(buffer) < length:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buffer += data
                    buffer = buffer[length:]
                    keep = b"keep-alive" if self._keep_alive else b"close"
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                 b"Transfer-Encoding: chunked\r\nConnection: " + keep
                                 + b"\r\n\r\n" + self._body + b"0\r\n\r\n")
                    if not self._keep_alive:
                        return


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def run_turns(url: str, ca_file: str, turns: int) -> list[float]:
    """One session, ``turns`` turns; the first-token latency of each, in ms."""
    client = ChatClient(url, "x", max_retries=0)
    client.session.trust_env = False
    client.session.verify = ca_file
    latencies: list[float] = []
    with client:
        session = ChatSession(client, model="bench-model")
        for i in range(turns):
            started = time.perf_counter()
            turn = session.send(f"turn {i}")
            turn.pipe(ops.first()).run()
            latencies.append((time.perf_counter() - started) * 1e3)
            turn.pipe(rxops.final_message()).run()
        session.on_completed()  # no more turns: the session winds down
    return latencies


def measure(turns: int = 30, deltas: int = 20) -> dict[str, Any]:
    """Both modes, each on its own server; figures per mode.

    Raises:
        ImportError: ``trustme`` is not installed.
    """
    import trustme

    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(server_context)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        ca_file = str(Path(tmp) / "ca.pem")
        ca.cert_pem.write_to_path(ca_file)
        for mode in ("keep-alive", "close"):
            server = TLSServer(server_context, mode == "keep-alive", deltas)
            try:
                latencies = run_turns(f"https://{HOST}:{server.port}/v1", ca_file, turns)
            finally:
                server.close()
            results[mode] = {
                "turns": turns,
                "first_token_ms_p50": statistics.median(latencies),
                "first_token_ms_p90": sorted(latencies)[int(0.9 * (len(latencies) - 1))],
                "first_token_ms_max": max(latencies),
                "first_turn_ms": latencies[0],
                "connections": server.accepted,
                "connections_per_turn": server.accepted / turns,
            }
    return results


def print_report(results: dict[str, Any], out: TextIO) -> None:
    """One line per mode."""
    print("\nFirst token per ChatSession turn over TLS (ms; connections the server accepted)",
          file=out)
    for mode, row in results.items():
        print(f"{mode:<11} p50 {row['first_token_ms_p50']:6.2f}  p90 "
              f"{row['first_token_ms_p90']:6.2f}  first turn {row['first_turn_ms']:6.2f}  "
              f"{row['connections']} connections for {row['turns']} turns "
              f"({row['connections_per_turn']:.2f} per turn)", file=out)


def main(argv: Sequence[str] | None = None, *, out: TextIO = sys.stdout) -> int:
    """Run both modes and print the figures; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    results = measure(args.turns)
    print_report(results, out)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
