"""Bulk reads of a response body: the transport's fast path, beside its normal one.

The body is read straight from the connection's buffered socket file, whatever has
arrived in one call, for the two framings where ``http.client`` adds nothing but cost:

* **chunked**: ``http.client`` decodes the framing itself and its ``read1`` never
  returns past the end of the current HTTP chunk; an SSE server sends one chunk per
  event, so the normal path costs one ``read1`` through urllib3 and ``http.client`` per
  event (about half the time rxchat spends per delta on loopback). Here the framing is
  decoded in bulk by the pure :class:`~rxchat._chunked.ChunkedDecoder`.
* **close-delimited** (no length, no chunking: the body ends when the connection
  does): the bytes are the body as they are.

Either way a read waits in the socket file's own buffer (``peek``) before taking what
arrived: ``read1(65536)`` on an empty buffer allocates its 64 KiB before blocking, 32 MB
across 500 idle streams. Only when that wait filled the buffer (bytes arrive faster
than they are read) does the next read take up to the full size at once, so that a
fast stream is not read 8 KiB at a time.

This touches private attributes of ``urllib3`` and ``http.client``, so
:func:`iter_bulk` checks every one it relies on and returns None whenever anything is
not as expected (another framing, a ``Content-Encoding``, bytes already read or decoded,
another response class); the transport then keeps its normal path. At the end of the
body the connection is handed back to the pool exactly as urllib3 does it.
"""

from __future__ import annotations

import http.client
import io
from collections.abc import Callable, Iterator
from typing import Any

from ._chunked import ChunkedDecodeError, ChunkedDecoder

__all__ = ["bulk_reader", "iter_bulk", "iter_dechunked", "iter_until_closed"]


def iter_bulk(raw: Any, size: int) -> Iterator[bytes] | None:
    """The body of a fresh urllib3 response, read in bulk as it arrives, else None.

    Args:
        raw: A ``urllib3.HTTPResponse`` (``requests.Response.raw``) not read yet.
        size: The most bytes to ask for per read.

    Returns:
        :func:`iter_dechunked` for a chunked body, :func:`iter_until_closed` for a
        close-delimited one, or None when the normal path must read it.
    """
    read = bulk_reader(raw)
    if read is None:
        return None
    if raw._fp.chunked:
        return iter_dechunked(raw, read, size)
    return iter_until_closed(raw, read, size)


def bulk_reader(raw: Any) -> Callable[[int], bytes] | None:
    """A ``read(size)`` of the socket file of a fresh chunked or close-delimited
    urllib3 response, else None.

    It returns what has arrived (at least one byte, waiting if need be), or ``b""``
    at end of file.

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

    streaming = False

    def read(size: int) -> bytes:
        # Wait in the socket file's own buffer: read1(size) on an empty buffer would
        # allocate ``size`` bytes before blocking. But when the last wait filled that
        # buffer, bytes are arriving faster than they are read: take up to ``size``.
        nonlocal streaming
        if streaming:
            data: bytes = read1(size)
            streaming = len(data) > io.DEFAULT_BUFFER_SIZE
            return data
        available = len(peek(1))
        streaming = available >= io.DEFAULT_BUFFER_SIZE
        return read1(min(available, size)) if available else b""

    return read


def iter_dechunked(raw: Any, read1: Callable[[int], bytes], size: int) -> Iterator[bytes]:
    """Yield the body of ``raw`` as it arrives, de-chunked, each read in one piece.

    Args:
        raw: The chunked urllib3 response :func:`bulk_reader` accepted.
        read1: What it returned.
        size: The most bytes to ask for per read.

    Raises:
        http.client.IncompleteRead: The framing is malformed or the connection closed
            before the last chunk (what ``http.client`` raises for both).
        OSError: From the socket, including timeouts.
    """
    decoder = ChunkedDecoder()
    try:
        while not decoder.finished:
            data: bytes = read1(size)
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


def iter_until_closed(raw: Any, read1: Callable[[int], bytes], size: int) -> Iterator[bytes]:
    """Yield the close-delimited body of ``raw`` as it arrives, until end of file.

    Args:
        raw: The close-delimited urllib3 response :func:`bulk_reader` accepted.
        read1: What it returned.
        size: The most bytes to ask for per read.

    Raises:
        OSError: From the socket, including timeouts.
    """
    yield from iter(lambda: read1(size), b"")
    _release(raw)


def _release(raw: Any) -> None:
    """Mark the body read and return the connection to the pool, as urllib3 does."""
    fp = raw._fp
    if fp.chunked:
        fp.chunk_left = None
    fp._close_conn()  # http.client's own end-of-body step: drops the socket file
    if fp.isclosed():
        raw.release_conn()
