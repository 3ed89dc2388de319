"""A forward HTTP proxy on 127.0.0.1, for testing clients that go through one.

`ForwardProxy` does what corporate proxies do with API traffic: ``CONNECT``
tunnels (for https targets) and absolute-URI requests (``POST http://host/path``, for
plain http targets), optionally itself behind TLS (an "HTTPS proxy": TLS inside TLS).
It forwards only to loopback hosts, so nothing leaves the machine, and it counts the
connections and requests it saw and the tunnels still open. When either side closes,
it closes the other at once, as real proxies do, so a client that aborts is seen by
the server behind the proxy.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
from urllib.parse import urlsplit

__all__ = ["ForwardProxy", "closed_port"]

_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


class ForwardProxy:
    """A forward proxy on a free loopback port (``CONNECT`` and absolute-URI).

    Use it as a context manager, and point a client at `url`
    (``HTTPS_PROXY``/``HTTP_PROXY``, or a session's ``proxies``):

    ```python
    with ForwardProxy() as proxy:
        session.proxies = {"https": proxy.url}
    ```

    Args:
        ssl_context: Serve the proxy itself over TLS (an ``https://`` proxy URL).

    Attributes:
        connections: Client connections accepted so far.
        requests: The request lines seen, e.g. ``"CONNECT 127.0.0.1:8443"``.
        open_tunnels: Client connections still open.
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context
        self.connections = 0
        self.requests: list[str] = []
        self.open_tunnels = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with an ``ssl_context``)."""
        if self._listener is None:
            raise RuntimeError("ForwardProxy is not running; call start() or use `with`.")
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> ForwardProxy:
        """Start listening and serving in background threads."""
        self._stopping.clear()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        """Stop serving and close every connection."""
        self._stopping.set()
        for thread in list(self._threads):
            thread.join(5)
        if self._listener is not None:
            self._listener.close()

    def __enter__(self) -> ForwardProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True,  # type: ignore[arg-type]
                                  name="rxchat-forward-proxy")
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            if not select.select([listener], [], [], 0.05)[0]:
                continue
            client, _ = listener.accept()
            with self._lock:
                self.connections += 1
                self.open_tunnels += 1
            self._spawn(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            if self.ssl_context is not None:
                client.settimeout(10)
                client = self.ssl_context.wrap_socket(client, server_side=True)
            client.settimeout(10)
            head = _read_head(client)
            method, target, *_ = [*head.split(b"\r\n", 1)[0].decode("latin-1").split(), "", ""]
            with self._lock:
                self.requests.append(f"{method} {target}")
            host, port = _destination(method, target)
            if host not in _LOOPBACK:
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            try:
                upstream = socket.create_connection((host.strip("[]"), port), timeout=5)
            except OSError:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            if method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                head = head.split(b"\r\n\r\n", 1)[1]
            upstream.sendall(head)  # absolute-URI: forwarded as it came
            self._pipe(client, upstream)
        except (OSError, ValueError):
            pass  # a client that hangs up mid-handshake or mid-request
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
            with self._lock:
                self.open_tunnels -= 1

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy bytes both ways until either side closes (or the proxy stops)."""
        peers = {client: upstream, upstream: client}
        for sock in peers:
            sock.settimeout(None)
        while not self._stopping.is_set():
            pending = [s for s in peers if isinstance(s, ssl.SSLSocket) and s.pending()]
            readable = pending or select.select(list(peers), [], [], 0.05)[0]
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                peers[sock].sendall(data)


def _read_head(sock: socket.socket) -> bytes:
    """The request head and whatever followed it in the same reads."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more or len(data) > 65536:
            raise ValueError("no complete request head")
        data += more
    return data


def _destination(method: str, target: str) -> tuple[str, int]:
    if method == "CONNECT":
        host, _, port = target.rpartition(":")
        return host, int(port)
    parts = urlsplit(target)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def closed_port() -> int:
    """A loopback port with nothing listening (for "connection refused" tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
