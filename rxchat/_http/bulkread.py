"""Bulk reads of a response body: the transport's fast path, beside its normal one.

The body is read straight from the connection's buffered socket file, whatever has
arrived in one call, for the two framings where ``http.client`` adds nothing but cost:

* **chunked**: ``http.client`` decodes the framing itself and its ``read1`` never
  returns past the end of the current HTTP chunk; an SSE server sends one chunk per
  event, so the normal path costs one ``read1`` through urllib3 and ``http.client`` per
  event (about half the time rxchat spends per delta on loopback). Here the framing is
  decoded in bulk by the pure `ChunkedDecoder`.
* **close-delimited** (no length, no chunking: the body ends when the connection
  does): the bytes are the body as they are.

Either way a read waits in the socket file's own buffer (``peek``) before taking what
arrived: ``read1(65536)`` on an empty buffer allocates its 64 KiB before blocking, 32 MB
across 500 idle streams. Only when that wait filled the buffer (bytes arrive faster
than they are read) does the next read take up to the full size at once, so that a
fast stream is not read 8 KiB at a time.

This touches private attributes of ``urllib3`` and ``http.client``, so
`iter_bulk` checks every one it relies on and returns None whenever anything is
not as expected (another framing, a ``Content-Encoding``, bytes already read or decoded,
another response class); the transport then keeps its normal path. At the end of the
body the connection is handed back to the pool exactly as urllib3 does it.
"""

from __future__ import annotations

import http.client
import io
import select
import socket
import ssl
from collections.abc import Callable, Iterator
from typing import Any

from .chunked import ChunkedDecodeError, ChunkedDecoder

__all__ = [
    "SocketFileReader",
    "Takeover",
    "bulk_reader",
    "iter_bulk",
    "iter_dechunked",
    "iter_until_closed",
    "take_over",
]


def iter_bulk(raw: Any, size: int) -> tuple[Iterator[bytes], SocketFileReader] | None:
    """The body of a fresh urllib3 response, read in bulk as it arrives, else None.

    Args:
        raw: A ``urllib3.HTTPResponse`` (``requests.Response.raw``) not read yet.
        size: The most bytes to ask for per read.

    Returns:
        `iter_dechunked` for a chunked body, `iter_until_closed` for a
        close-delimited one, with the reader they use (to stop it waiting); or None
        when the normal path must read it.
    """
    read = bulk_reader(raw)
    if read is None:
        return None
    if raw._fp.chunked:
        return iter_dechunked(raw, read, size), read
    return iter_until_closed(raw, read, size), read


def bulk_reader(raw: Any) -> SocketFileReader | None:
    """A reader of the socket file of a fresh chunked or close-delimited urllib3
    response, else None.

    Args:
        raw: A ``urllib3.HTTPResponse`` (``requests.Response.raw``) not read yet.
    """
    fp = getattr(raw, "_fp", None)
    if type(fp) is not http.client.HTTPResponse or fp.isclosed():
        return None
    if fp.chunked:
        if fp.chunk_left is not None:
            return None  # http.client already read part of the body
    elif fp.length is not None or not fp.will_close:
        return None  # length-framed: http.client keeps the count
    if getattr(raw, "_fp_bytes_read", None) != 0 or getattr(raw, "_has_decoded_content", True):
        return None  # urllib3 already read part of the body
    if getattr(raw, "_decoder", None) is not None or raw.headers.get("content-encoding"):
        return None
    buffered = getattr(raw, "_decoded_buffer", None)
    sockfile = getattr(fp, "fp", None)
    peek, read1 = getattr(sockfile, "peek", None), getattr(sockfile, "read1", None)
    if buffered is None or len(buffered) or not callable(peek) or not callable(read1):
        return None
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    return SocketFileReader(peek, read1, sock)


class SocketFileReader:
    """``read(size)``: what has arrived on a socket file (at least one byte, waiting if
    need be), or ``b""`` at end of file.

    With `wait` false it returns None instead of waiting when nothing has
    arrived: the transport reads the end of a finished stream that way, taking only
    what is already there.
    """

    def __init__(
        self, peek: Callable[[int], bytes], read1: Callable[[int], bytes], sock: Any
    ) -> None:
        self._peek, self._read1, self._sock = peek, read1, sock
        self._left = 0  # bytes still in the socket file's buffer after the last read
        self._streaming = False  # the last wait filled the buffer: bytes come fast
        self.wait = True

    def __call__(self, size: int) -> bytes | None:
        if not self.wait and not self._left and not _readable(self._sock):
            return None
        if self._streaming and self.wait:
            # The last wait filled the buffer: bytes arrive faster than they are read,
            # so take up to ``size`` at once (598 reads of 8 KiB for 4.7 MB otherwise).
            data: bytes = self._read1(size)
            self._streaming, self._left = len(data) > io.DEFAULT_BUFFER_SIZE, 0
            return data
        # Wait in the socket file's own buffer: read1(size) on an empty buffer would
        # allocate ``size`` bytes before blocking.
        available = len(self._peek(1))
        if not available:
            return b""
        self._streaming = available >= io.DEFAULT_BUFFER_SIZE
        data = self._read1(min(available, size))
        self._left = available - len(data)
        return data


def _readable(sock: Any) -> bool:
    """Whether a read of ``sock`` would return at once (False when unsure)."""
    pending = getattr(sock, "pending", None)
    try:
        if callable(pending) and pending() > 0:
            return True  # TLS bytes decrypted and not read yet
        return sock is not None and bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError, TypeError):
        return False


Read = Callable[[int], "bytes | None"]


def iter_dechunked(raw: Any, read1: Read, size: int) -> Iterator[bytes]:
    """Yield the body of ``raw`` as it arrives, de-chunked, each read in one piece.

    Args:
        raw: The chunked urllib3 response `bulk_reader` accepted.
        read1: What it returned; a None from it (nothing arrived, and it was told
            not to wait) is passed on as an empty piece.
        size: The most bytes to ask for per read.

    Raises:
        http.client.IncompleteRead: The framing is malformed or the connection closed
            before the last chunk (what ``http.client`` raises for both).
        OSError: From the socket, including timeouts.
    """
    decoder = ChunkedDecoder()
    try:
        while not decoder.finished:
            data = read1(size)
            if data is None:
                yield b""
                continue
            if not data:
                decoder.end()
                break
            body = decoder.feed(data)
            if body:
                yield body
    except ChunkedDecodeError as exc:
        raise http.client.IncompleteRead(b"") from exc
    if not decoder.leftover:
        _release(raw)


def iter_until_closed(raw: Any, read1: Read, size: int) -> Iterator[bytes]:
    """Yield the close-delimited body of ``raw`` as it arrives, until end of file.

    Args:
        raw: The close-delimited urllib3 response `bulk_reader` accepted.
        read1: What it returned (a None is passed on as an empty piece).
        size: The most bytes to ask for per read.

    Raises:
        OSError: From the socket, including timeouts.
    """
    while (data := read1(size)) != b"":
        yield data or b""
    _release(raw)


def _release(raw: Any) -> None:
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
        _release(self._raw)


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
    fp = getattr(raw, "_fp", None)
    if type(fp) is not http.client.HTTPResponse or fp.isclosed():
        return None
    if fp.chunked:
        if fp.chunk_left is not None:
            return None
        framing, length = "chunked", 0
    elif fp.length is not None:
        framing, length = "length", fp.length
    elif fp.will_close:
        framing, length = "close", 0
    else:
        return None
    if getattr(raw, "_fp_bytes_read", None) != 0 or getattr(raw, "_has_decoded_content", True):
        return None
    encoding = _ENCODINGS.get(raw.headers.get("content-encoding", "").strip().lower())
    if encoding is None or getattr(raw, "_decoder", None) is not None:
        return None
    buffered = getattr(raw, "_decoded_buffer", None)
    sockfile = getattr(fp, "fp", None)
    if buffered is None or len(buffered) or not isinstance(sockfile, io.BufferedReader):
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
