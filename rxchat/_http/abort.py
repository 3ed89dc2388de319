"""Aborting one request from any thread, at once, before or after its headers arrive.

Disposing a subscription must close the socket even while the reader thread is
blocked, including before the server has sent the response headers, when ``requests``
has not yet handed back a response to close. So the urllib3 connections used by
the transport register themselves, as they connect (TCP, then the proxy tunnel and
the TLS handshake: a stalled handshake is aborted too) or as the request is written
on a kept-alive one, with the `AbortHandle` of the calling thread (set with
`tracking`); aborting shuts the socket down, which wakes the blocked read. After
the headers the handle also knows the urllib3 response, and through it the connection
of a session rxchat did not build.

The socket shut down is always the innermost TCP socket: through an HTTPS proxy the
connection's socket is urllib3's ``SSLTransport`` (TLS inside TLS), which has no
``shutdown`` of its own.

Only urllib3 is used here; ``pools`` mounts `TrackedHTTPPool` and
`TrackedHTTPSPool` in the sessions rxchat builds, for direct and proxied
requests alike.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .internals import SocketHookHTTPSConnection

__all__ = ["AbortHandle", "TrackedHTTPPool", "TrackedHTTPSPool", "tracking"]

_current = threading.local()


class AbortHandle:
    """Closes the connection of one request from any thread, before or after headers.

    Once the response is closed the handle is released: the connection may be back in
    the pool serving another request, so a late abort (the dispose that follows
    ``on_completed``) must not touch it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.aborted = False
        self._conn: HTTPConnection | None = None
        self._response: Any = None
        self._connecting: socket.socket | None = None

    def attach(self, conn: HTTPConnection | None = None, response: Any = None) -> None:
        """Record the connection (or response) now carrying the request."""
        with self._lock:
            if conn is not None:
                self._conn = conn
            if response is not None:
                self._response = response
                if self._conn is None:
                    self._conn = getattr(response, "connection", None)
            if self.aborted:
                self._shutdown()

    def connecting(self, sock: socket.socket) -> None:
        """Keep a duplicate of a socket whose TLS handshake is about to start.

        ``ssl`` moves the socket's descriptor into a new ``SSLSocket`` object during
        the handshake, so the connection's own ``sock`` cannot reach it until the
        handshake is over; shutting the duplicate down wakes the handshake.
        """
        with self._lock:
            self._connecting = sock.dup()
            if self.aborted:
                self._shutdown()

    def connected(self) -> None:
        """The handshake is over (or failed): drop the duplicate."""
        with self._lock:
            if self._connecting is not None:
                self._connecting.close()
                self._connecting = None

    def release(self) -> None:
        """Forget the connection: the request is over, later aborts do nothing."""
        with self._lock:
            self._conn = None
            self._response = None

    def abort(self) -> None:
        """Shut the socket down now; idempotent and safe from any thread."""
        with self._lock:
            if self.aborted:
                return
            self.aborted = True
            self._shutdown()

    def _shutdown(self) -> None:
        # Called with the lock held, so release() cannot hand the connection back to
        # the pool in between; shutdown() does not block.
        if self._connecting is not None:
            with contextlib.suppress(OSError):
                self._connecting.shutdown(socket.SHUT_RDWR)
        sock = _innermost(getattr(self._conn, "sock", None))
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.shutdown(socket.SHUT_RDWR)
            return
        shutdown = getattr(self._response, "shutdown", None)
        if shutdown is not None:
            # urllib3 raises ValueError/RuntimeError once the response was closed or
            # released; an abort after the end is a no-op, never an error.
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                shutdown()


def _innermost(sock: Any) -> Any:
    """The TCP socket under ``sock``: urllib3's ``SSLTransport`` keeps it in ``socket``."""
    for _ in range(4):  # TLS in TLS is two levels; never loop on a strange object
        inner = getattr(sock, "socket", None)
        if not isinstance(inner, socket.socket):
            break
        sock = inner
    return sock


class _TrackingMixin:
    """Registers the connection with the calling thread's AbortHandle."""

    def request(self, *args: Any, **kwargs: Any) -> None:
        handle: AbortHandle | None = getattr(_current, "handle", None)
        if handle is not None:
            handle.attach(conn=self)  # type: ignore[arg-type]
        super().request(*args, **kwargs)  # type: ignore[misc]

    def connect(self) -> None:
        # Registered before connecting: urllib3 sets ``self.sock`` to the TCP socket
        # before the proxy tunnel and the TLS handshake, so an abort wakes those too.
        handle: AbortHandle | None = getattr(_current, "handle", None)
        if handle is not None:
            handle.attach(conn=self)  # type: ignore[arg-type]
        try:
            super().connect()  # type: ignore[misc]
        finally:
            if handle is not None:
                handle.connected()
        if handle is not None and handle.aborted:
            self.close()  # type: ignore[attr-defined]
            raise _AbortedError("aborted")


class _TrackedHTTPConnection(_TrackingMixin, HTTPConnection):
    pass


class _TrackedHTTPSConnection(_TrackingMixin, SocketHookHTTPSConnection):
    def new_socket(self, sock: socket.socket) -> None:
        handle: AbortHandle | None = getattr(_current, "handle", None)
        if handle is not None:
            handle.connecting(sock)


class TrackedHTTPPool(HTTPConnectionPool):
    """An http pool whose connections register with the thread's AbortHandle."""

    ConnectionCls = _TrackedHTTPConnection


class TrackedHTTPSPool(HTTPSConnectionPool):
    """An https pool whose connections register with the thread's AbortHandle."""

    ConnectionCls = _TrackedHTTPSConnection


class _AbortedError(OSError):
    """Raised inside the transport when the request was aborted while connecting."""


@contextlib.contextmanager
def tracking(handle: AbortHandle) -> Iterator[None]:
    """Register with ``handle`` the connections this thread uses, until the block ends.

    Args:
        handle: The handle that aborts the request about to be sent.
    """
    _current.handle = handle
    try:
        yield
    finally:
        _current.handle = None
