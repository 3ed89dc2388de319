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

It relies on private attributes of ``urllib3`` and ``http.client``, read only in
``internals``, which checks every one and gives None whenever anything is
not as expected (another framing, a ``Content-Encoding``, bytes already read or decoded,
another response class); the transport then keeps its normal path. At the end of the
body the connection is handed back to the pool exactly as urllib3 does it.
"""

from __future__ import annotations

import http.client
import io
import select
from collections.abc import Callable, Iterator
from typing import Any

from .chunked import ChunkedDecodeError, ChunkedDecoder
from .internals import is_chunked, release, socket_file

__all__ = [
    "SocketFileReader",
    "bulk_reader",
    "iter_bulk",
    "iter_dechunked",
    "iter_until_closed",
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
    if is_chunked(raw):
        return iter_dechunked(raw, read, size), read
    return iter_until_closed(raw, read, size), read


def bulk_reader(raw: Any) -> SocketFileReader | None:
    """A reader of the socket file of a fresh chunked or close-delimited urllib3
    response, else None.

    Args:
        raw: A ``urllib3.HTTPResponse`` (``requests.Response.raw``) not read yet.
    """
    parts = socket_file(raw)
    return SocketFileReader(*parts) if parts is not None else None


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
        release(raw)


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
    release(raw)
