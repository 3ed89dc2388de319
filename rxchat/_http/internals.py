"""Every private name of urllib3 and http.client that rxchat touches, in one place.

The transport's fast paths need what these libraries do not promise: the state of an
``http.client.HTTPResponse`` (framing, what it has read, its socket file and that
file's socket), the bookkeeping of a ``urllib3.HTTPResponse`` (bytes read, decoder,
buffer, handing the connection back), and the step where a urllib3 connection opens its
TCP socket (``_new_conn``, to abort a stalled TLS handshake). Every function here
checks what it relies on and answers None (the caller keeps its normal path) when
anything is not as expected. ``setup.cfg`` bounds urllib3 below 3, and
``tests/http/test_transport_fastpath.py`` fails if a fast path stops being taken
(``.ci/run`` runs it on the oldest urllib3 allowed too).

Used by ``bulkread`` (the blocking bulk read), ``reactor`` (through `take_over`)
and ``abort`` (`SocketHookHTTPSConnection`).
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
from collections.abc import Callable
from typing import Any

from urllib3.connection import HTTPSConnection

__all__ = [
    "SocketHookHTTPSConnection",
    "Takeover",
    "is_chunked",
    "release",
    "socket_file",
    "take_over",
]


def is_chunked(raw: Any) -> bool:
    """Whether the response `socket_file` accepted is chunked (else close-delimited)."""
    return bool(raw._fp.chunked)



def _unread(raw: Any) -> http.client.HTTPResponse | None:
    """The ``http.client`` response under a urllib3 response of which neither library
    has read or decoded a byte of the body yet, else None."""
    fp = getattr(raw, "_fp", None)
    if type(fp) is not http.client.HTTPResponse or fp.isclosed():
        return None
    if fp.chunked and fp.chunk_left is not None:
        return None  # http.client already read part of the body
    if getattr(raw, "_fp_bytes_read", None) != 0 or getattr(raw, "_has_decoded_content", True):
        return None  # urllib3 already read part of the body
    buffered = getattr(raw, "_decoded_buffer", None)
    if buffered is None or len(buffered) or getattr(raw, "_decoder", None) is not None:
        return None
    return fp

def socket_file(raw: Any) -> tuple[Callable[[int], bytes], Callable[[int], bytes], Any] | None:
    """``(peek, read1, sock)`` of the socket file of a fresh chunked or
    close-delimited urllib3 response (``sock`` may be None), else None.

    Args:
        raw: A ``urllib3.HTTPResponse`` (``requests.Response.raw``) not read yet.
    """
    fp = _unread(raw)
    if fp is None or (not fp.chunked and (fp.length is not None or not fp.will_close)):
        return None  # length-framed: http.client keeps the count
    if raw.headers.get("content-encoding"):
        return None
    sockfile = getattr(fp, "fp", None)
    peek, read1 = getattr(sockfile, "peek", None), getattr(sockfile, "read1", None)
    if not callable(peek) or not callable(read1):
        return None
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    return peek, read1, sock


def release(raw: Any) -> None:
    """Mark the body read and return the connection to the pool, as urllib3 does."""
    fp = raw._fp
    if fp.chunked:
        fp.chunk_left = None
    fp._close_conn()  # http.client's own end-of-body step: drops the socket file
    if fp.isclosed():
        raw.release_conn()


class Takeover:
    """The socket of a response whose body a non-blocking reader now owns.

    Attributes:
        sock: The connection's socket (``socket.socket`` or ``ssl.SSLSocket``), now
            non-blocking.
        initial: Body bytes ``http.client`` had already buffered (still framed).
        framing: ``"chunked"``, ``"length"`` or ``"close"``.
        length: The body's length for ``"length"``.
        encoding: The ``Content-Encoding`` (``""``, ``"gzip"`` or ``"deflate"``).
    """

    def __init__(
        self, raw: Any, sock: Any, initial: bytes, framing: str, length: int, encoding: str,
        timeout: float | None,
    ) -> None:
        self._raw = raw
        self.sock = sock
        self.initial = initial
        self.framing = framing
        self.length = length
        self.encoding = encoding
        self._timeout = timeout

    def release(self) -> None:
        """The body was read to its end: hand the connection back to the pool, as
        urllib3 does, with the socket blocking again (its timeout restored)."""
        self.sock.settimeout(self._timeout)
        fp = self._raw._fp
        if fp.chunked:
            fp.chunk_left = None
        elif fp.length is not None:
            fp.length = 0
        release(self._raw)


_ENCODINGS = {"": "", "identity": "", "gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}


def take_over(raw: Any) -> Takeover | None:
    """Hand the socket of a fresh urllib3 response to a non-blocking reader.

    Accepts a body not read yet, chunked, length- or close-delimited, plain or gzip /
    deflate encoded, on a plain TCP or TLS socket (``ssl.SSLSocket``). The socket is made
    non-blocking and the bytes ``http.client`` already buffered are taken out of its
    socket file (`Takeover.initial`), so that reading the socket itself loses
    nothing. Anything else (urllib3's ``SSLTransport``: TLS inside an https proxy's
    TLS; another response class; bytes already read) gives None, and the caller reads
    the body the blocking way.

    Args:
        raw: A ``urllib3.HTTPResponse`` (``requests.Response.raw``) not read yet.
    """
    fp = _unread(raw)
    if fp is None:
        return None
    if fp.chunked:
        framing, length = "chunked", 0
    elif fp.length is not None:
        framing, length = "length", fp.length
    elif fp.will_close:
        framing, length = "close", 0
    else:
        return None
    encoding = _ENCODINGS.get(raw.headers.get("content-encoding", "").strip().lower())
    if encoding is None:
        return None
    sockfile = getattr(fp, "fp", None)
    if not isinstance(sockfile, io.BufferedReader):
        return None
    # The socket the socket file reads (``SocketIO._sock``): urllib3 has already let
    # go of the connection of a close-delimited response.
    sock: Any = getattr(getattr(sockfile, "raw", None), "_sock", None)
    if type(sock) not in (socket.socket, ssl.SSLSocket):
        return None
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        # The buffered bytes, or (none buffered) one non-blocking read of the socket.
        ahead = sockfile.peek(1)
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        ahead = b""
    except OSError:
        ahead = b""  # the reader meets the same error on its first read
    initial = sockfile.read1(len(ahead)) if ahead else b""
    return Takeover(raw, sock, initial, framing, length, encoding, timeout)


class SocketHookHTTPSConnection(HTTPSConnection):
    """An https connection that shows its TCP socket (`new_socket`) before the TLS
    handshake (and a proxy tunnel) start, so the handshake can be aborted."""

    def new_socket(self, sock: socket.socket) -> None:
        """Called with the TCP socket as soon as it is connected."""

    def _new_conn(self) -> socket.socket:
        # urllib3's step that opens the TCP socket (private; urllib3 is bounded below 3
        # and tests/http/test_transport_fastpath.py fails if this stops being called).
        sock: socket.socket = super()._new_conn()
        self.new_socket(sock)
        return sock
