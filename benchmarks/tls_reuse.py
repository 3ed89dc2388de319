"""First delta of a session's second turn over TLS: reused connection vs a new one.

A ``ChatSession`` on one ``ChatClient`` talks to a loopback https ``FakeServer`` (a
throw-away CA from ``trustme``). Turn 1 opens the connection; turn 2 is timed from
``send`` to its first delta, either riding the connection turn 1 handed back (reuse),
or after the client's idle connections were closed (a new TCP connection and TLS
handshake). Rounds are interleaved; medians in milliseconds. On loopback the handshake
costs only its CPU; across a real network add two or three round trips to the new
connection's figure.

Run: ``python benchmarks/tls_reuse.py [rounds]``.
"""

from __future__ import annotations

import ssl
import statistics
import sys
import threading
import time
from typing import Any

import trustme

from rxchat import ChatClient, ChatSession
from rxchat import operators as rxops
from rxchat.testing import FakeServer, Reply


def first_delta_of_turn_two(server: FakeServer, ca_file: str, reuse: bool) -> float:
    """Seconds from ``send`` to the first delta of turn 2 on a fresh client/session."""
    with ChatClient(server.base_url, max_retries=0) as client:
        client.session.verify = ca_file
        session = ChatSession(client)
        server.enqueue(Reply.text("turn one"), Reply.text("turn two"))
        session.send("one").pipe(rxops.final_message()).run()
        if not reuse:
            client.close()  # drop the pooled connection: turn 2 opens another
        first, done = threading.Event(), threading.Event()
        started = time.perf_counter()
        arrived: list[float] = []

        def on_next(_delta: Any) -> None:
            if not arrived:
                arrived.append(time.perf_counter())
                first.set()

        session.send("two").subscribe(on_next, lambda _e: done.set(), done.set)
        if not first.wait(10) or not done.wait(10):
            raise RuntimeError("turn 2 did not finish")
        return arrived[0] - started


def run(rounds: int) -> dict[str, Any]:
    """Interleaved rounds of both cases; medians in ms and connections opened."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    times: dict[str, list[float]] = {"reuse": [], "new": []}
    connections: dict[str, int] = {}
    with FakeServer(ssl_context=context) as server, ca.cert_pem.tempfile() as ca_file:
        for case in ("reuse", "new"):  # warm-up, and count the connections of one round
            before = server.connections
            first_delta_of_turn_two(server, ca_file, case == "reuse")
            connections[case] = server.connections - before
        for _ in range(rounds):
            for case in ("reuse", "new"):
                times[case].append(first_delta_of_turn_two(server, ca_file, case == "reuse"))
    return {
        "rounds": rounds,
        **{f"{case}_ms_median": statistics.median(v) * 1e3 for case, v in times.items()},
        **{f"{case}_ms_p90": sorted(v)[int(0.9 * (len(v) - 1))] * 1e3
           for case, v in times.items()},
        "connections_per_session": connections,
    }


def describe(result: dict[str, Any]) -> str:
    """One line for the report."""
    return (
        f"TLS session, first delta of turn 2 (median / p90 of {result['rounds']}): "
        f"reused connection {result['reuse_ms_median']:.2f} / {result['reuse_ms_p90']:.2f} "
        f"ms, new connection {result['new_ms_median']:.2f} / {result['new_ms_p90']:.2f} ms "
        f"(connections per 2-turn session: {result['connections_per_session']})"
    )


if __name__ == "__main__":
    print(describe(run(int(sys.argv[1]) if len(sys.argv) > 1 else 30)))
