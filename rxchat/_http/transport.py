"""HTTP transport: with ``pools`` and ``neterrors``, the only modules that import
``requests``.

It opens one streamed POST and hands back a `StreamResponse` whose
`iter_bytes` yields the body as it arrives, and an
`AbortHandle` that closes the socket from any thread, at once:

* reads return whatever bytes are available, so an event is seen the moment it
  arrives in both chunked and close-delimited framing (``iter_content`` holds a
  close-delimited body until the connection ends): both are read from the socket file
  in bulk (``bulkread``; a chunked body is de-chunked by rxchat, since ``http.client``
  would return one HTTP chunk, one event, per read), anything else with urllib3's
  ``read1``, which decodes a ``Content-Encoding`` (gzip, deflate);
* the connection is tracked from the moment it connects, also through a proxy, so
  aborting works during the TLS handshake and while the server has not yet sent
  headers (``abort``: the socket is shut down, which wakes the blocked read);
* a stream that ended with ``[DONE]`` reads the rest of its body (`finish`), so
  the connection goes back to the pool and the next request reuses it;
* the session's ``verify``, ``cert`` and ``proxies`` are passed with every request, so
  they win over ``REQUESTS_CA_BUNDLE`` and the proxy variables, as a caller expects;
* redirects are followed only within the same origin: the API key and the
  conversation are never sent to another host;
* every ``requests``/``urllib3``/socket exception is translated (``neterrors``),
  once, including those raised while the body is read.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from email.message import Message as _HeaderValue
from typing import Any

import requests

from ..errors import APIConnectionError, APIStatusError, StreamInterrupted
from .abort import AbortHandle, tracking
from .bulkread import SocketFileReader, iter_bulk
from .internals import Takeover, take_over
from .neterrors import proxy_for, redirect_target, translate
from .pools import Draining, close_session, draining, new_session
from .redact import redact_headers

__all__ = [
    "DRAIN_LIMIT",
    "DRAIN_TIMEOUT",
    "StreamResponse",
    "close_session",
    "new_session",
    "post_stream",
    "translate",
]

log = logging.getLogger("rxchat")

READ_SIZE = 65536
DRAIN_TIMEOUT = 1.0
"""Seconds a finished stream waits for the rest of its body before closing instead."""
DRAIN_LIMIT = 65536
"""Bytes after ``[DONE]`` read (and dropped) at most to keep a connection for reuse."""
REUSE_WAIT = 0.25
"""Seconds a new request waits, at most, for a finished stream of the same session to
hand its connection back, rather than opening another (a TCP and TLS handshake)."""
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

Timeout = float | tuple[float, float]


class StreamResponse:
    """An open streamed response: status, headers, and the body as it arrives."""

    def __init__(
        self, response: requests.Response, handle: AbortHandle, timeout: Timeout | None = None
    ) -> None:
        self._response = response
        self._handle = handle
        self._timeout = timeout
        self.status_code: int = response.status_code
        self.headers: Mapping[str, str] = response.headers
        self.url = response.url
        self._body: Iterator[bytes] | None = None
        self._reader: SocketFileReader | None = None
        self._sock: Any = getattr(getattr(response.raw, "connection", None), "sock", None)
        self._ended = False
        self._draining: Draining | None = None

    @property
    def content_type(self) -> str:
        """The media type, lower-cased, without parameters."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    @property
    def charset(self) -> str:
        """The declared ``charset`` of the body if Python knows it, else utf-8."""
        header = _HeaderValue()
        header["content-type"] = self.headers.get("content-type", "")
        charset = header.get_param("charset")
        if isinstance(charset, str):
            with contextlib.suppress(LookupError):
                return codecs.lookup(charset).name
        return "utf-8"

    def iter_bytes(self) -> Iterator[bytes]:
        """The body in pieces as soon as bytes arrive, until it ends.

        Always the same iterator: a loop that stopped early can be resumed, as
        `finish` does.

        Raises:
            APITimeoutError: No byte arrived within the read timeout.
            StreamInterrupted: The connection broke.
        """
        if self._body is None:
            self._body = self._iter_body()
        return self._body

    def _iter_body(self) -> Iterator[bytes]:
        raw = self._response.raw
        try:
            # Chunked or close-delimited: straight from the socket file (``bulkread``);
            # else (a length, a Content-Encoding) urllib3's read1, decoding.
            bulk = iter_bulk(raw, READ_SIZE)
            if bulk is not None:
                body, self._reader = bulk
                yield from body
            else:
                while chunk := raw.read1(READ_SIZE, decode_content=True):
                    yield chunk
            self._ended = True
        except Exception as exc:
            raise translate(exc, self.url, reading=True, timeout=self._timeout) from None

    def read_text(self, limit: int = 65536, *, keep_partial: bool = False) -> str:
        """Read up to ``limit`` bytes of the body as text, in its declared charset.

        Args:
            limit: The most bytes to read.
            keep_partial: If the connection breaks or goes silent, return the text
                that arrived instead of raising: for an error body, whose status says
                more than the break.

        Raises:
            APITimeoutError: No byte arrived within the read timeout (unless
                ``keep_partial``).
            StreamInterrupted: The connection broke (unless ``keep_partial``).
        """
        data = bytearray()
        try:
            for chunk in self.iter_bytes():
                data += chunk
                if len(data) >= limit:
                    break
        except (APIConnectionError, StreamInterrupted) as exc:
            if not keep_partial:
                raise
            log.debug("body of %s cut off after %d bytes: %s", self.url, len(data), exc)
        return bytes(data[:limit]).decode(self.charset, "replace")

    def finish(self, wait: float) -> bool:
        """Read and drop the rest of the body, so the connection can be reused.

        Called once the stream is over (``[DONE]``): what follows is the chunked
        terminator, which urllib3 needs to see before it hands the connection back to
        the pool. Reads stop after `DRAIN_LIMIT` bytes or at any error.

        Args:
            wait: Seconds to wait for bytes in all; 0 takes only what has arrived
                (it never blocks; a no-op unless the bulk path reads the body).

        Returns:
            Whether the body ended (the connection is back in the pool).
        """
        body, reader, sock = self._body, self._reader, self._sock
        if self._ended or body is None:
            return self._ended
        if wait <= 0 and reader is None:
            return False
        deadline, dropped = time.monotonic() + max(wait, 0.0), 0
        try:
            if reader is not None:
                reader.wait = wait > 0
            while dropped <= DRAIN_LIMIT:
                left = deadline - time.monotonic()
                if wait > 0 and left <= 0:
                    return False
                # Never the idle timeout here: a torn TLS record must not hold us. Once
                # urllib3 let go of the connection (a length-framed body read to its
                # end) it may serve another request: no more reads touch it then.
                if getattr(self._response.raw, "connection", None) is not None:
                    sock.settimeout(max(left, 0.001) if wait > 0 else DRAIN_TIMEOUT)
                piece = next(body, None)
                if piece is None:
                    return self._ended
                if not piece and wait <= 0:
                    return False  # nothing more has arrived yet
                dropped += len(piece)
            return False
        except Exception as exc:  # a drain that fails only costs the connection
            log.debug("could not read the end of %s: %s", self.url, exc)
            return False
        finally:
            if reader is not None:
                reader.wait = True

    def take_over(self) -> Takeover | None:
        """Hand the body's socket to a non-blocking reader (``reactor``), or None
        when this response cannot be read that way (see ``bulkread.take_over``)."""
        if self._body is not None:
            return None
        return take_over(self._response.raw)

    def close(self) -> None:
        """Close the response; its connection is closed unless the body was read to
        the end (urllib3 has then already returned it to the pool for reuse)."""
        self._handle.release()
        with contextlib.suppress(Exception):  # closing must never fail the stream
            self._response.raw.close()
        self._response.close()
        if self._draining is not None:
            self._draining.leave()
            self._draining = None

    def finish_after(self, complete: Callable[[], None], session: requests.Session) -> None:
        """Run ``complete`` (the stream ended), then read the rest of the body so the
        connection goes back to the pool, and close.

        What has already arrived is read before ``complete`` (without waiting, so
        completion is not delayed, and the next request finds the connection free);
        the remainder after it, for at most `DRAIN_TIMEOUT` seconds, past which
        the connection is closed instead. From now on aborts no longer touch the
        connection, and meanwhile the next request of ``session`` waits for it
        (`REUSE_WAIT` at most) instead of opening another.

        Args:
            complete: Called once, on this thread; what it raises is raised after
                the connection was dealt with.
            session: The session whose pool the connection returns to.
        """
        self._handle.release()
        if not self.finish(0):  # the rest has not all arrived: make the next request wait
            self._draining = draining(session)
            self._draining.enter()
        try:
            complete()
        finally:
            if not self.finish(DRAIN_TIMEOUT):
                log.debug("closing the connection to %s: its body did not end", self.url)
            self.close()


def post_stream(
    session: requests.Session,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: Timeout,
    handle: AbortHandle,
) -> StreamResponse:
    """POST ``body`` and return the response once its headers have arrived.

    Redirects are followed (the same POST) only to the same scheme, host and port.

    Raises:
        APIConnectionError: Could not connect, or aborted.
        APITimeoutError: Connecting or waiting for headers took too long.
        APIStatusError: A redirect to another origin, or too many redirects.
    """
    started = time.monotonic()
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "POST %s (%d bytes) headers=%s timeout=%s",
            url, len(body), redact_headers(headers), timeout,
        )
    draining(session).wait(REUSE_WAIT)
    target = url
    for _hop in range(MAX_REDIRECTS + 1):
        response = _post(session, target, body, headers, timeout, handle, started)
        location = response.headers.get("location")
        if response.status_code not in _REDIRECTS or not location:
            break
        response.close()
        handle.release()
        target = redirect_target(response.status_code, target, location)
    else:
        raise APIStatusError(
            response.status_code, "", f"{url} redirected more than {MAX_REDIRECTS} times; "
            "set base_url to the final address.",
        )
    handle.attach(response=response.raw)
    log.debug(
        "POST %s -> %s %s, headers in %.3f s", target, response.status_code,
        response.headers.get("content-type", "-"), time.monotonic() - started,
    )
    return StreamResponse(response, handle, timeout)


def _post(
    session: requests.Session, url: str, body: bytes, headers: Mapping[str, str],
    timeout: Timeout, handle: AbortHandle, started: float,
) -> requests.Response:
    try:
        with tracking(handle):
            # verify/cert/proxies passed explicitly: else requests lets
            # REQUESTS_CA_BUNDLE and the proxy variables override the session's own.
            return session.post(
                url, data=body, headers=dict(headers), timeout=timeout, stream=True,
                allow_redirects=False, verify=session.verify, cert=session.cert,
                proxies=dict(session.proxies),
            )
    except Exception as exc:
        handle.release()
        error = translate(
            exc, url, reading=False, timeout=timeout, proxy=proxy_for(session, url)
        )
        log.debug("POST %s failed after %.3f s: %s", url, time.monotonic() - started, error)
        raise error from None
