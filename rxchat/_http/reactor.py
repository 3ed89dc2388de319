"""The shared reader: one thread, one selector, every open response body.

After its headers arrived, a streamed response hands its socket over (``internals.
take_over``: non-blocking, with the bytes ``http.client`` had already buffered) and
`Reactor` reads it whenever bytes arrive, together with every other open stream:

* plain TCP with ``recv``; TLS with non-blocking ``recv`` plus the records ``pending()``
  says are already decrypted (the selector cannot see those);
* chunked, length- and close-delimited framing decoded here (``chunked``), then gzip or
  deflate (``zlib``), then the bytes go to the stream's `Body` owner (its SSE and
  delta decoding, and its delivery queue);
* a stream whose subscriber is behind is *paused*: its socket leaves the selector, the
  kernel buffers fill, and TCP pushes back on the server; it is resumed when its queue
  drains;
* read silence is timed per stream with one heap of deadlines (no timer per stream);
* a stream that ended with ``[DONE]`` keeps being read (at most `DRAIN_TIMEOUT`
  seconds, `DRAIN_LIMIT` bytes) until its body ends, and its connection goes back to
  the pool;
* the thread starts with the first body and ends after `IDLE_SECONDS` with none.

Only this thread touches a handed-over socket (reads, unregistering, closing); other
threads post commands (`Reactor.add`, `Reactor.cancel`, `Reactor.resume`) and wake
it through a socket pair. Aborting is still ``AbortHandle.abort`` from the disposing
thread (the socket is shut down at once); the command only makes the reader let go.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import selectors
import socket
import ssl
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from .chunked import ChunkedDecodeError, ChunkedDecoder
from .internals import Takeover

__all__ = ["DRAIN_LIMIT", "DRAIN_TIMEOUT", "IDLE_SECONDS", "Body", "BodyOwner", "Reactor",
           "reactor"]

log = logging.getLogger("rxchat")

READ_SIZE = 65536
IDLE_SECONDS = 1.0
"""Seconds the reader thread waits with no body before it ends."""
DRAIN_TIMEOUT = 1.0
DRAIN_LIMIT = 65536


class BodyOwner(Protocol):
    """What the reader tells about one body (all called on the reader thread)."""

    def data(self, chunk: bytes) -> str:
        """Body bytes arrived (de-framed, decoded).

        Returns:
            ``"more"`` to go on, ``"pause"`` to stop reading until resumed,
            ``"done"`` once the stream is over (``[DONE]``: the rest is drained),
            ``"stop"`` to close it (an error was reported, or it was disposed).
        """
        ...

    def ended(self) -> None:
        """The body ended (end of file or its framing's end) before ``"done"``."""
        ...

    def failed(self, error: BaseException, *, timed_out: bool) -> None:
        """Reading failed (``timed_out``: silence beyond the read timeout)."""
        ...

    def released(self, reused: bool) -> None:
        """The reader let go of the body (after ``"done"``, an end, a failure or a
        cancel); ``reused`` when the connection went back to the pool."""
        ...


class Body:
    """One handed-over response body and its reading state (reader thread only).

    Args:
        takeover: The socket and what was buffered.
        owner: Where the bytes go.
        read_timeout: Longest silence allowed, seconds, or None.
        close: Closes the response (its connection) when not reused.
    """

    def __init__(
        self,
        takeover: Takeover,
        owner: BodyOwner,
        read_timeout: float | None,
        close: Callable[[], None],
    ) -> None:
        self.takeover = takeover
        self.sock = takeover.sock
        self.owner = owner
        self.timeout = read_timeout
        self.close_response = close
        self.tls = isinstance(self.sock, ssl.SSLSocket)
        self.chunked = ChunkedDecoder() if takeover.framing == "chunked" else None
        self.left = takeover.length if takeover.framing == "length" else -1
        self.inflate: Any = None
        if takeover.encoding == "gzip":
            self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif takeover.encoding == "deflate":
            self.inflate = zlib.decompressobj()
        self.last = time.monotonic()
        self.registered = False
        self.paused = False
        self.draining = False
        self.drained = 0
        self.drain_until = 0.0
        self.closed = False
        self.body_end = False  # the framing's end was read
        self.in_heap = False  # a read-timeout entry for it is in the heap


class Reactor:
    """The process's shared body reader (one thread at most, started on demand)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._commands: deque[tuple[str, Body]] = deque()
        self._thread: threading.Thread | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._woken = False
        self._bodies: set[Body] = set()
        self._deadlines: list[tuple[float, int, Body]] = []
        self._seq = itertools.count()

    @property
    def running(self) -> bool:
        """Whether the reader thread exists now."""
        return self._thread is not None

    def add(self, body: Body) -> None:
        """Start reading ``body`` (its already-buffered bytes first)."""
        self._post("add", body)

    def cancel(self, body: Body) -> None:
        """Stop reading ``body`` and close its response (unless it is draining after
        ``[DONE]``, when it keeps its chance to be reused)."""
        self._post("cancel", body)

    def resume(self, body: Body) -> None:
        """Read a paused ``body`` again."""
        self._post("resume", body)

    def _post(self, command: str, body: Body) -> None:
        start = False
        with self._lock:
            if self._thread is None:
                if command != "add":
                    return  # no reader: the body was already let go
                self._open()
                start = True
            self._commands.append((command, body))
            wake = not start and not self._woken
            if wake:
                self._woken = True
            writer = self._wake_w
        if start:
            assert self._thread is not None
            self._thread.start()
        elif wake and writer is not None:
            with contextlib.suppress(OSError):  # full (a wake is pending) or closing
                writer.send(b"\0")

    def _open(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name="rxchat-reader", daemon=True)

    def _run(self) -> None:
        selector = self._selector
        assert selector is not None
        try:
            self._loop(selector)
        except BaseException:  # never leave bodies hanging: fail them all
            log.exception("the rxchat reader failed")
            for body in list(self._bodies):
                with contextlib.suppress(Exception):
                    self._fail(body, ConnectionError("the rxchat reader failed"), False)
            with self._lock:  # the next body starts a new reader
                self._thread = self._selector = self._wake_r = self._wake_w = None
                self._woken = False
                dropped = list(self._commands)
                self._commands.clear()
            for _command, body in dropped:
                with contextlib.suppress(Exception):
                    if not body.closed:
                        self._fail(body, ConnectionError("the rxchat reader failed"), False)
            selector.close()
            raise

    def _loop(self, selector: selectors.BaseSelector) -> None:
        idle_since: float | None = None
        while True:
            self._run_commands()  # the first, and any posted while reading
            now = time.monotonic()
            timeout = IDLE_SECONDS
            if self._deadlines:
                timeout = min(timeout, max(0.0, self._deadlines[0][0] - now))
            events = selector.select(timeout)
            for key, _ in events:
                body = key.data
                if body is None:
                    self._drain_wake()
                else:
                    self._read(body)
            self._run_commands()
            now = time.monotonic()
            self._expire(now)
            if self._bodies:
                idle_since = None
                continue
            if idle_since is None:
                idle_since = now
            elif now - idle_since >= IDLE_SECONDS and self._close_if_idle():
                return

    def _close_if_idle(self) -> bool:
        with self._lock:
            if self._commands or self._bodies:
                return False
            selector, reader, writer = self._selector, self._wake_r, self._wake_w
            self._thread = self._selector = self._wake_r = self._wake_w = None
            self._woken = False
        assert selector is not None and reader is not None and writer is not None
        selector.close()
        reader.close()
        writer.close()
        return True

    def _drain_wake(self) -> None:
        reader = self._wake_r
        assert reader is not None
        with self._lock:
            self._woken = False
        try:
            while reader.recv(4096):
                pass
        except OSError:
            pass

    def _run_commands(self) -> None:
        while True:
            with self._lock:
                if not self._commands:
                    return
                command, body = self._commands.popleft()
            if command == "add":
                self._start(body)
            elif body.closed or body not in self._bodies:
                continue
            elif command == "cancel":
                if not body.draining:
                    self._let_go(body, reuse=False)
            elif body.paused:  # resume
                body.paused = False
                body.last = time.monotonic()
                self._watch(body)
                self._schedule(body)
                if body.tls and body.sock.pending():
                    self._read(body)

    def _start(self, body: Body) -> None:
        self._bodies.add(body)
        initial = body.takeover.initial
        if initial and (not self._feed(body, initial) or body.paused):
            return
        self._watch(body)
        self._schedule(body)
        if body.tls and not body.closed and body.sock.pending():
            self._read(body)

    def _watch(self, body: Body) -> None:
        if not body.registered and not body.closed:
            assert self._selector is not None
            self._selector.register(body.sock, selectors.EVENT_READ, body)
            body.registered = True

    def _unwatch(self, body: Body) -> None:
        if body.registered:
            assert self._selector is not None
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(body.sock)
            body.registered = False

    def _schedule(self, body: Body) -> None:
        # One read-timeout entry per body at most (a stream paused and resumed many
        # times must not fill the heap); the drain deadline always gets its own.
        if body.draining:
            heapq.heappush(self._deadlines, (body.drain_until, next(self._seq), body))
        elif body.timeout is not None and not body.in_heap:
            body.in_heap = True
            due = body.last + body.timeout
            heapq.heappush(self._deadlines, (due, next(self._seq), body))

    def _expire(self, now: float) -> None:
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, _, body = heapq.heappop(deadlines)
            if body.closed:
                continue
            if body.draining:
                if now >= body.drain_until:
                    log.debug("closing a connection: its body did not end after [DONE]")
                    self._let_go(body, reuse=False)
                continue
            body.in_heap = False
            if body.paused or body.timeout is None:
                continue  # resuming schedules it again
            due = body.last + body.timeout
            if due > now:
                body.in_heap = True
                heapq.heappush(deadlines, (due, next(self._seq), body))
            else:
                self._fail(body, TimeoutError("timed out"), True)

    def _read(self, body: Body) -> None:
        """Read what arrived on ``body``'s socket (the selector said it is readable)."""
        if body.closed or body.paused:
            return
        sock = body.sock
        try:
            data = sock.recv(READ_SIZE)
            if body.tls and data:
                pending = sock.pending()
                if pending:
                    parts = [data]
                    while pending:
                        parts.append(sock.recv(pending))
                        pending = sock.pending()
                    data = b"".join(parts)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except (OSError, ValueError) as exc:
            if body.draining:
                self._let_go(body, reuse=False)
            else:
                self._fail(body, exc, False)
            return
        if not data:
            self._eof(body)
            return
        body.last = time.monotonic()
        self._feed(body, data)

    def _feed(self, body: Body, data: bytes) -> bool:
        """De-frame, decode and pass on ``data``; False once the body is let go."""
        try:
            if body.chunked is not None:
                data = body.chunked.feed(data)
                if body.chunked.finished:
                    body.body_end = True
            elif body.left >= 0:
                if len(data) > body.left:
                    data = data[: body.left]
                body.left -= len(data)
                if body.left == 0:
                    body.body_end = True
            if body.inflate is not None and data:
                data = body.inflate.decompress(data)
        except (ChunkedDecodeError, zlib.error) as exc:
            if body.draining:
                self._let_go(body, reuse=False)
            else:
                self._fail(body, exc, False)
            return False
        if body.draining:
            body.drained += len(data)
            if body.body_end:
                self._let_go(body, reuse=True)
                return False
            if body.drained > DRAIN_LIMIT:
                self._let_go(body, reuse=False)
                return False
            return True
        verdict = body.owner.data(data) if data else "more"
        if verdict == "more":
            if body.body_end:
                # The connection goes back to the pool before the stream completes,
                # so that a request sent from on_completed finds it there.
                self._let_go(body, reuse=not (body.chunked and body.chunked.leftover))
                body.owner.ended()
                return False
            return True
        if verdict == "pause":
            if body.body_end:
                # The connection goes back to the pool before the stream completes,
                # so that a request sent from on_completed finds it there.
                self._let_go(body, reuse=not (body.chunked and body.chunked.leftover))
                body.owner.ended()
                return False
            body.paused = True
            self._unwatch(body)
            return True
        if verdict == "done":
            if body.body_end:
                self._let_go(body, reuse=not (body.chunked and body.chunked.leftover))
                return False
            body.draining = True
            body.drain_until = time.monotonic() + DRAIN_TIMEOUT
            self._watch(body)
            self._schedule(body)
            return True
        self._let_go(body, reuse=False)  # "stop"
        return False

    def _eof(self, body: Body) -> None:
        if body.draining:
            self._let_go(body, reuse=False)
            return
        if body.chunked is not None and not body.chunked.finished:
            self._fail(body, ChunkedDecodeError("the body ended before its last chunk"), False)
            return
        if body.left > 0:
            self._fail(body, ConnectionError("the body ended before its length"), False)
            return
        if body.inflate is not None:
            try:
                tail = body.inflate.flush()
            except zlib.error as exc:
                self._fail(body, exc, False)
                return
            if tail and body.owner.data(tail) in ("done", "stop"):
                self._let_go(body, reuse=False)
                return
        body.owner.ended()
        self._let_go(body, reuse=False)

    def _fail(self, body: Body, error: BaseException, timed_out: bool) -> None:
        try:
            body.owner.failed(error, timed_out=timed_out)
        finally:
            self._let_go(body, reuse=False)

    def _let_go(self, body: Body, *, reuse: bool) -> None:
        if body.closed:
            return
        body.closed = True
        self._unwatch(body)
        self._bodies.discard(body)
        if len(self._deadlines) > 2 * len(self._bodies) + 64:  # drop closed bodies' entries
            # In place: `_expire` may be walking this very list.
            self._deadlines[:] = [entry for entry in self._deadlines if not entry[2].closed]
            heapq.heapify(self._deadlines)
        reused = False
        if reuse:
            try:
                body.takeover.release()
                reused = True
            except Exception as exc:  # a failed hand-back only costs the connection
                log.debug("could not hand a connection back to the pool: %s", exc)
        try:
            body.close_response()
        except Exception as exc:
            log.debug("closing a response failed: %s", exc)
        body.owner.released(reused)


_reactor = Reactor()


def reactor() -> Reactor:
    """The process's shared reader."""
    return _reactor
