"""The transport's reliance on private urllib3 and http.client internals, fenced.

Every private name of urllib3 and http.client rxchat uses is in one module
(``rxchat/_http/internals.py``): the shared reader's take-over of a response's socket,
the bulk read of a stream read on its own thread, the early drain that returns a
finished stream's connection, and the abort of a stalled TLS handshake read attributes
and override methods that urllib3 does not promise. Each quietly falls back when they are
missing, so a dependency upgrade could turn them off unnoticed: these tests fail
instead. ``.ci/run`` runs them against the oldest urllib3 setup.cfg allows as well.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import urllib3
from reactivex import operators as ops
from reactivex.scheduler import TimeoutScheduler

from rxchat import ChatClient, create_stream_completion
from rxchat._http import abort as _abort
from rxchat._http import bulkread as _bulkread
from rxchat._http import internals as _internals
from rxchat._http import transport as _transport
from rxchat.testing import FakeServer, Framing, Reply, chunk, sse_event
from tests.conftest import FRAMINGS, PARAMS, collect, tls_client

FAST_PATH = {"chunked": "iter_dechunked", "close": "iter_until_closed"}


def _calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[Any]:
    """Record the reader each call of ``_bulkread.<name>`` was given."""
    readers: list[Any] = []
    original = getattr(_bulkread, name)

    def recording(raw: Any, read: Callable[[int], bytes], size: int) -> Iterator[bytes]:
        readers.append(read)
        return original(raw, read, size)  # type: ignore[no-any-return]

    monkeypatch.setattr(_bulkread, name, recording)
    return readers


def test_urllib3_is_within_the_pinned_range() -> None:
    major, minor = (int(part) for part in urllib3.__version__.split(".")[:2])
    assert (2, 3) <= (major, minor) < (3, 0)


def _takeovers(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record what each call of ``_internals.take_over`` returned."""
    results: list[Any] = []
    original = _internals.take_over

    def recording(raw: Any) -> Any:
        results.append(original(raw))
        return results[-1]

    monkeypatch.setattr(_internals, "take_over", recording)
    monkeypatch.setattr(_transport, "take_over", recording)
    return results


@pytest.mark.parametrize("encoding", ["identity", "gzip", "deflate"])
@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("framing", [*FRAMINGS, "length"])
def test_the_shared_reader_takes_the_socket_over(
    scheme: str, framing: Framing, encoding: str, server_tls: Any, ca_bundle: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    results = _takeovers(monkeypatch)
    body = b"".join(sse_event(chunk(content=word)) for word in ("fast ", "path"))
    body += sse_event(chunk(finish_reason="stop")) + b"data: [DONE]\n\n"
    headers = {"Content-Type": "text/event-stream"}
    if encoding != "identity":
        body = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
        headers["Content-Encoding"] = encoding
    with FakeServer(ssl_context=server_tls if scheme == "https" else None) as server:
        server.enqueue(Reply.raw([body], headers=headers, framing=framing))
        with tls_client(server, ca_bundle) as client:
            result = collect(create_stream_completion(PARAMS, client=client))
    assert result.completed and result.content == "fast path"
    assert len(results) == 1 and results[0] is not None, (
        f"{framing} over {scheme} ({encoding}) left the shared reader"
    )
    assert results[0].framing == framing


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("framing", FRAMINGS)
def test_the_bulk_path_is_taken(
    scheme: str, framing: Framing, server_tls: Any, ca_bundle: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readers = _calls(monkeypatch, FAST_PATH[framing])
    with FakeServer(ssl_context=server_tls if scheme == "https" else None) as server:
        server.enqueue(Reply.text("fast path", framing=framing))
        with tls_client(server, ca_bundle) as client:
            result = collect(create_stream_completion(
                PARAMS, client=client, scheduler=TimeoutScheduler()))
    assert result.content == "fast path"
    assert len(readers) == 1, f"{framing} over {scheme} left the bulk path"
    if framing == "chunked":  # the early drain needs the socket to see what arrived
        assert readers[0]._sock is not None


def test_the_early_drain_returns_the_connection_before_completion(
    server: FakeServer, client: ChatClient
) -> None:
    # [DONE] and the chunked terminator arrive together: the connection is back in the
    # pool when on_completed runs, read without waiting.
    body = b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\ndata: [DONE]\n\n'
    server.enqueue(Reply.raw([body]))
    idle_at_completion: list[int] = []
    stream = create_stream_completion(PARAMS, client=client).pipe(
        ops.do_action(on_completed=lambda: idle_at_completion.append(_idle(client)))
    )
    assert collect(stream).completed
    assert idle_at_completion == [1]


def _idle(client: ChatClient) -> int:
    """Connections waiting in the client's pools."""
    pools: Any = client.session.get_adapter(client.base_url).poolmanager.pools
    return sum(
        sum(1 for conn in list(pools[key].pool.queue) if conn is not None)
        for key in list(pools.keys())
    )


def test_the_tls_handshake_is_tracked_while_it_runs(
    tls_server: FakeServer, ca_bundle: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    original = _abort.AbortHandle.connecting

    def connecting(self: _abort.AbortHandle, sock: Any) -> None:
        seen.append(sock)
        original(self, sock)

    monkeypatch.setattr(_abort.AbortHandle, "connecting", connecting)
    tls_server.enqueue(Reply.text("tracked"))
    with tls_client(tls_server, ca_bundle) as client:
        assert collect(create_stream_completion(PARAMS, client=client)).completed
    assert len(seen) == 1, "urllib3 no longer opens the socket through _new_conn"
