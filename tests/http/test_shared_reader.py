"""Many streams, few threads: the send pool, the shared reader and the delivery pool.

rxchat's own threads are counted by name (``rxchat-*``), so the test servers' threads do
not matter. The 1,000-stream test uses a small asyncio server on one thread.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from rxchat import ChatClient, aio, create_stream_completion
from rxchat._concurrency.pool import DELIVERY_THREADS, SEND_THREADS
from rxchat._http.reactor import reactor
from rxchat.testing import STALL, FakeServer, ForwardProxy, Reply, chunk
from tests.conftest import PARAMS, collect, subscribe, tls_client, wait_until


def rxchat_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("rxchat-")]


def stream_threads() -> int:
    """Threads that read or deliver streams (not sessions' actors or tools)."""
    names = ("rxchat-send", "rxchat-deliver", "rxchat-reader", "rxchat-stream")
    return sum(name in names for name in rxchat_threads())


class HeldServer:
    """An asyncio SSE server on one thread: each stream sends one delta, then waits
    until `release` before its second delta and ``[DONE]``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.open = 0
        self.disconnects = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="held-server", daemon=True)
        self._release: asyncio.Event | None = None
        self.port = 0

    def __enter__(self) -> HeldServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def release(self) -> None:
        self.loop.call_soon_threadsafe(lambda: self._release and self._release.set())

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self._release = asyncio.Event()
        server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=2048)
        )
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()
        server.close()
        self.loop.run_until_complete(server.wait_closed())
        self.loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            writer.write(_chunk(b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'))
            await writer.drain()
            self.open += 1
            assert self._release is not None
            release = asyncio.ensure_future(self._release.wait())
            closed = asyncio.ensure_future(reader.read())
            await asyncio.wait([release, closed], return_when=asyncio.FIRST_COMPLETED)
            if closed.done():
                self.disconnects += 1
                release.cancel()
                return
            closed.cancel()
            writer.write(_chunk(b'data: {"choices":[{"index":0,"delta":{"content":"b"},'
                                b'"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'))
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            self.disconnects += 1
        finally:
            self.open -= 1
            writer.close()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.fixture
def held() -> Iterator[HeldServer]:
    with HeldServer() as server:
        yield server


def test_threads_stay_bounded_with_1000_open_streams_and_end_when_idle(
    held: HeldServer,
) -> None:
    client = ChatClient(f"http://127.0.0.1:{held.port}/v1", "sk-test-key", max_retries=0,
                        timeout=(30.0, 60.0))
    with client:
        results = [subscribe(create_stream_completion(PARAMS, client=client))
                   for _ in range(1000)]
        peak = 0

        def all_open() -> bool:
            nonlocal peak
            peak = max(peak, stream_threads())
            return all(r.first.is_set() for r, _ in results)

        assert wait_until(all_open, timeout=100), f"{held.open} streams open"
        assert peak <= SEND_THREADS + DELIVERY_THREADS + 1, rxchat_threads()
        assert "rxchat-stream" not in rxchat_threads()  # nothing read on its own thread
        held.release()
        for result, _ in results:
            assert result.done.wait(60)
            assert result.completed and result.content == "ab"
    assert wait_until(lambda: stream_threads() == 0, timeout=10), rxchat_threads()


def test_a_blocking_subscriber_delays_only_its_own_stream(server: FakeServer) -> None:
    gate = threading.Event()
    for _ in range(6):
        server.enqueue(Reply.text("one two three"))
    client = ChatClient(server.base_url, "sk-test-key", max_retries=0)
    with client:
        blocked: list[str] = []
        entered = threading.Event()

        def slow(message: Any) -> None:
            entered.set()
            assert gate.wait(30)
            blocked.append(message.content or "")

        done = threading.Event()
        sub = create_stream_completion(PARAMS, client=client).subscribe(
            slow, on_completed=done.set)
        assert entered.wait(10)
        others = [collect(create_stream_completion(PARAMS, client=client))
                  for _ in range(5)]
        assert all(r.completed and r.content == "one two three" for r in others)
        assert not done.is_set()  # still blocked in its first delta
        gate.set()
        assert done.wait(10)
        assert "".join(blocked) == "one two three"
        sub.dispose()


def test_dispose_under_load_closes_that_socket_and_leaves_the_others(
    held: HeldServer,
) -> None:
    client = ChatClient(f"http://127.0.0.1:{held.port}/v1", "sk-test-key", max_retries=0,
                        timeout=(30.0, 60.0))
    with client:
        results = [subscribe(create_stream_completion(PARAMS, client=client))
                   for _ in range(200)]
        assert wait_until(lambda: all(r.first.is_set() for r, _ in results), timeout=60)
        victim, subscription = results[17]
        subscription.dispose()
        assert wait_until(lambda: held.disconnects >= 1, timeout=5)
        held.release()
        for i, (result, _) in enumerate(results):
            if i == 17:
                continue
            assert result.done.wait(30) and result.completed and result.content == "ab"
        assert victim.terminals == 0 and victim.content == "a"


def test_a_tls_stream_is_read_by_the_shared_reader(
    tls_server: FakeServer, ca_bundle: str
) -> None:
    tls_server.enqueue(Reply.events([chunk(content="x")], done=False).then(STALL))
    with tls_client(tls_server, ca_bundle, timeout=(5.0, 30.0)) as client:
        result, subscription = subscribe(create_stream_completion(PARAMS, client=client))
        assert result.first.wait(10)
        assert reactor().running and "rxchat-stream" not in rxchat_threads()
        subscription.dispose()
        assert tls_server.wait_for_disconnects(1, timeout=2)


@pytest.mark.parametrize("proxy_tls", [False, True], ids=["http-proxy", "https-proxy"])
def test_a_proxied_tls_stream_is_read_by_the_shared_reader_unless_tls_in_tls(
    server_tls: Any, ca_bundle: str, monkeypatch: pytest.MonkeyPatch, proxy_tls: bool
) -> None:
    with FakeServer(ssl_context=server_tls) as server, \
            ForwardProxy(ssl_context=server_tls if proxy_tls else None) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        server.enqueue(Reply.events([chunk(content="x")], done=False).then(STALL))
        client = ChatClient(server.base_url, "sk-test-key", max_retries=0,
                            timeout=(5.0, 30.0))
        client.session.verify = ca_bundle
        with client:
            result, subscription = subscribe(create_stream_completion(PARAMS, client=client))
            assert result.first.wait(10)
            # TLS inside the proxy's TLS is urllib3's SSLTransport: a thread of its own
            assert ("rxchat-stream" in rxchat_threads()) == proxy_tls
            subscription.dispose()
            assert server.wait_for_disconnects(1, timeout=2)
    assert wait_until(lambda: "rxchat-stream" not in rxchat_threads())


def test_aio_streams_under_asyncio_debug_mode_warn_nothing(
    server: FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(20):
        server.enqueue(Reply.text("hello there"))
    client = ChatClient(server.base_url, "sk-test-key", max_retries=0)

    async def one() -> str:
        parts = []
        async for message in aio.stream(PARAMS, client=client):
            parts.append(message.content or "")
        return "".join(parts)

    async def main() -> list[str]:
        # Not timed (a loaded machine can hold any step 100 ms): the loop's lag is
        # measured by benchmarks/aio_loop_lag.py. Everything else debug mode checks
        # (calls from other threads, unclosed resources, never-awaited) is held here.
        asyncio.get_running_loop().slow_callback_duration = 60.0
        return await asyncio.gather(*(one() for _ in range(20)))

    with client, warnings.catch_warnings():
        warnings.simplefilter("error")
        caplog.set_level("WARNING", logger="asyncio")
        texts = asyncio.run(main(), debug=True)
    assert texts == ["hello there"] * 20
    assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text


def test_a_subscriber_that_is_behind_stops_the_reading(server: FakeServer) -> None:
    """Back-pressure: with the subscriber blocked, the values waiting stay bounded."""
    from rxchat import _stream

    server.enqueue(Reply.text(" ".join(["w"] * 5000)))
    client = ChatClient(server.base_url, "sk-test-key", max_retries=0)
    gate = threading.Event()
    seen: list[Any] = []
    with client:
        done = threading.Event()

        def on_next(message: Any) -> None:
            seen.append(message)
            assert gate.wait(30)

        sub = create_stream_completion(PARAMS, client=client).subscribe(
            on_next, on_completed=done.set)
        assert wait_until(lambda: bool(seen))
        readers = [r for r in _live_shared(_stream)]
        assert wait_until(lambda: any(r._queue.paused for r in readers), timeout=10)
        assert all(r._queue.backlog <= _stream.HIGH_WATER + 65536 for r in readers)  # + one read
        gate.set()
        assert done.wait(30)
        sub.dispose()
        # pausing and resuming does not pile up read-timeout entries
        assert len(reactor()._deadlines) <= 2 * len(reactor()._bodies) + 64
    assert "".join(m.content or "" for m in seen) == " ".join(["w"] * 5000)


def _live_shared(module: Any) -> list[Any]:
    import gc

    return [o for o in gc.get_objects() if type(o) is module._Shared and not o._stopped]

