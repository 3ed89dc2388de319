"""A real OpenAI-compatible chat-completions server on 127.0.0.1, for tests and offline use.

`FakeServer` listens on a free loopback port in a background thread (one more
thread per connection), plays scripted `Reply` values in order
and, when the script is empty, asks its ``responder`` (by default the offline model).
Every request is recorded, and every client disconnect seen while a reply was being
sent is counted, so tests can assert what went over the wire and that dispose closed
the socket. `FakeServer.events` logs, in order and with the server's clock, when each
request was read, its headers sent, each body part written and each disconnect seen,
so tests wait for those moments and assert their order instead of sleeping.
"""

from __future__ import annotations

import io
import json
import select
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from .model import offline_reply
from .replies import RESET, STALL, RecordedRequest, Reply

__all__ = ["FakeServer", "ServerEvent"]

Responder = Callable[["RecordedRequest"], Reply]

EVENTS_KEPT = 100_000
"""`FakeServer.events` keeps the most recent this many (``rxchat serve`` runs for long)."""

GATE_TIMEOUT_S = 10.0
"""Longest wait of a reply for a ``threading.Event`` part, before it ends the body."""


def _model(name: str) -> dict[str, Any]:
    """One entry of ``GET /models``, as OpenAI shapes it."""
    return {"id": name, "object": "model", "created": 0, "owned_by": "rxchat"}


EventKind = Literal["request", "headers", "write", "disconnect"]


@dataclass(frozen=True)
class ServerEvent:
    """One thing the server did, as `FakeServer.events` logs it.

    Attributes:
        kind: ``"request"`` (a request fully read, body included), ``"headers"``
            (the status line and headers sent), ``"write"`` (one body part sent) or
            ``"disconnect"`` (the client went away while a reply was being sent).
        request: Index in `FakeServer.requests` of the request the event belongs
            to (-1 for a ``GET``, which is not recorded).
        at: ``time.monotonic()`` on the server when it happened.
    """

    kind: EventKind
    request: int
    at: float


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls on reused connections
    server: _Server

    _request_index = -1

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _event(self, kind: EventKind) -> None:
        self.server.owner._log(kind, self._request_index)

    def do_GET(self) -> None:
        self._request_index = -1
        ids = self.server.owner.models
        path = self.path.split("?", 1)[0].rstrip("/")
        head, _, name = path.rpartition("/models/")
        if path.endswith("/models") and ids is not None:
            data = [_model(name) for name in ids]
            self._play(Reply.json_body({"object": "list", "data": data}))
        elif head and name and ids is not None:  # GET /models/{id}, as models.retrieve asks
            name = urllib.parse.unquote(name)
            if name in ids:
                self._play(Reply.json_body(_model(name)))
            else:
                self._play(Reply.error(404, {"error": {
                    "message": f"The model '{name}' does not exist; GET /models lists "
                    f"{', '.join(ids) or 'none'}.",
                    "type": "invalid_request_error", "param": None,
                    "code": "model_not_found"}}))
        else:
            self._play(Reply.error(404, {"error": {"message": f"No route {self.path}"}}))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        request = RecordedRequest(
            "POST", self.path, dict(self.headers.items()), body, parsed,
            client=(str(self.client_address[0]), int(self.client_address[1])),
        )
        owner = self.server.owner
        self._request_index = owner._record(request)
        if not self.path.rstrip("/").endswith("/chat/completions"):
            reply = Reply.error(404, {"error": {"message": f"No route {self.path}"}})
        else:
            reply = owner._next_reply(request)
        self._play(reply)

    def _play(self, reply: Reply) -> None:
        if reply.delay_headers is STALL:
            self._stall()
            return
        delay = reply.delay_headers
        if isinstance(delay, float | int) and delay > 0 and self.server.owner._stopping.wait(
            delay
        ):
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        body_parts = [p for p in reply.parts if isinstance(p, bytes)]
        if reply.framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        elif reply.framing == "length":
            self.send_header("Content-Length", str(sum(len(p) for p in body_parts)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        try:
            self.wfile.flush()
            self._event("headers")
            self._write_parts(reply)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.server.owner._disconnected(self._request_index)
            self.close_connection = True

    def _write_parts(self, reply: Reply) -> None:
        chunked = reply.framing == "chunked"
        last = len(reply.parts) - 1
        for number, part in enumerate(reply.parts):
            if isinstance(part, bytes):
                if not part:
                    continue
                data = b"%x\r\n%s\r\n" % (len(part), part) if chunked else part
                if chunked and number == last:  # the last chunk and the end go together,
                    data += b"0\r\n\r\n"        # in one write, as servers usually send them
                    chunked = False
                self.wfile.write(data)
                self.wfile.flush()
                self._event("write")
            elif part is STALL:
                self._stall()
                return
            elif part is RESET:
                self._reset()
                return
            elif isinstance(part, threading.Event) and not self._gate(part):
                self.close_connection = True
                return
            elif isinstance(part, float | int) and self.server.owner._stopping.wait(
                float(part)
            ):
                return
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            self._event("write")
        if reply.framing == "close":
            self.close_connection = True

    def _gate(self, event: threading.Event) -> bool:
        """Wait until a test sets ``event`` (True), or 10 s or the server stops (False)."""
        deadline = time.monotonic() + GATE_TIMEOUT_S
        while not event.wait(0.05):
            if self.server.owner._stopping.is_set() or time.monotonic() > deadline:
                return False
        return True

    def _reset(self) -> None:
        """Abort the connection: with ``SO_LINGER`` 0, close sends RST, not FIN."""
        self.close_connection = True
        self.connection.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
        )
        # The socket is closed for real only once its file objects are closed too;
        # http.server still flushes ``wfile`` afterwards, so leave it a harmless one.
        self.wfile.close()
        self.rfile.close()
        self.connection.close()
        self.wfile = io.BytesIO()

    def _stall(self) -> None:
        """Send nothing until the client closes its end, or the server stops."""
        owner = self.server.owner
        while not owner._stopping.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                try:
                    if not self.connection.recv(4096):
                        break
                except OSError:
                    break
        else:
            self.close_connection = True
            return
        owner._disconnected(self._request_index)
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
    owner: FakeServer

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        self.owner._count_connection()
        context = self.owner.ssl_context
        if context is not None:  # the handshake runs in the connection's own thread
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(10)
            try:
                request.do_handshake()
            except (OSError, ValueError):  # an untrusting client hangs up: not our bug
                return
            request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a dispose, a closed keep-alive) is not a server bug."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class FakeServer:
    """An OpenAI-compatible SSE server on 127.0.0.1 that plays scripted replies.

    Use it as a context manager:

    ```text
    with FakeServer() as server:
        server.enqueue(Reply.text("Hello there"))
        client = ChatClient(server.base_url)
    ```

    Args:
        responder: Builds the reply when the script is empty; by default the
            offline model (`rxchat.testing.offline_reply`).
        port: Port to listen on (0 picks a free one).
        ssl_context: Serve https with this server-side context (e.g. from
            ``trustme``); ``base_url`` then starts with ``https://``.

    Attributes:
        models: The model ids ``GET /models`` lists and ``GET /models/{id}`` finds (the
            offline model's by default); None makes both a 404, as on a server without
            the routes.
        connections: TCP connections accepted so far: a client that reuses its
            connection sends many requests over one.
        events: The `ServerEvent`s so far (the most recent 100 000), in the order
            they happened; appended under a lock, so a copy is a consistent history.
    """

    def __init__(
        self, responder: Responder | None = None, *, port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.responder = responder or offline_reply
        self.models: list[str] | None = ["rxchat-offline"]
        self._port = port
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self.connections = 0
        self.events: list[ServerEvent] = []
        self._event_counts: dict[str, int] = {}
        self.ssl_context = ssl_context
        self._disconnect_event = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1`` (``https://`` with an ``ssl_context``)."""
        if self._server is None:
            raise RuntimeError("FakeServer is not running; call start() or use `with`.")
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def port(self) -> int:
        """The port listened on."""
        return int(self.base_url.rsplit(":", 1)[1].split("/")[0])

    def start(self) -> FakeServer:
        """Start listening and serving in a background thread."""
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self._port), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name="rxchat-fake-server", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end stalled replies and close the listening socket."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def enqueue(self, *replies: Reply) -> None:
        """Add replies to play, one per request, in order."""
        with self._lock:
            self._script.extend(replies)

    def wait_for_disconnects(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until the server has seen ``count`` client disconnects mid-reply."""
        deadline = time.monotonic() + timeout
        with self._disconnect_event:
            while self.disconnects < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._disconnect_event.wait(left)
        return True

    def wait_for_requests(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until ``count`` requests have been received (read, body included)."""
        return self.wait_for_event("request", count, timeout)

    def wait_for_headers(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until the server has sent the headers of ``count`` replies.

        Args:
            count: How many replies' headers (over all requests, GETs included).
            timeout: Seconds to wait at most.

        Returns:
            True once they are sent; False if ``timeout`` passed first.
        """
        return self.wait_for_event("headers", count, timeout)

    def wait_for_event(self, kind: EventKind, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until `events` holds ``count`` events of ``kind``.

        Args:
            kind: ``"request"``, ``"headers"``, ``"write"`` or ``"disconnect"``.
            count: How many such events, counted from the server's start (also those
                no longer kept in `events`).
            timeout: Seconds to wait at most.

        Returns:
            True once there are that many; False if ``timeout`` passed first.
        """
        deadline = time.monotonic() + timeout
        with self._disconnect_event:
            while self._event_counts.get(kind, 0) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._disconnect_event.wait(left)
        return True

    def events_of(self, request: int) -> list[str]:
        """The kinds of the events of one request, in order.

        Args:
            request: Index in `requests` (negative counts from the end).

        Returns:
            E.g. ``["request", "headers", "write", "disconnect"]``.
        """
        with self._lock:
            index = request if request >= 0 else len(self.requests) + request
            if index < 0:
                return []
            return [event.kind for event in self.events if event.request == index]

    def _record(self, request: RecordedRequest) -> int:
        with self._disconnect_event:
            self.requests.append(request)
            index = len(self.requests) - 1
            self._append(ServerEvent("request", index, time.monotonic()))
        return index

    def _log(self, kind: EventKind, request: int) -> None:
        with self._disconnect_event:
            self._append(ServerEvent(kind, request, time.monotonic()))

    def _append(self, event: ServerEvent) -> None:
        """Log ``event`` and wake the waiters; the caller holds the lock."""
        self.events.append(event)
        if len(self.events) > EVENTS_KEPT:
            del self.events[: len(self.events) - EVENTS_KEPT // 2]
        self._event_counts[event.kind] = self._event_counts.get(event.kind, 0) + 1
        self._disconnect_event.notify_all()

    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            if self._script:
                return self._script.popleft()
        return self.responder(request)

    def _count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def _disconnected(self, request: int = -1) -> None:
        with self._disconnect_event:
            self.disconnects += 1
            self._append(ServerEvent("disconnect", request, time.monotonic()))
