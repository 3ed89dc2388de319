"""HTTP transport: the only module that imports ``requests``.

It opens one streamed POST and hands back a `StreamResponse` whose
`iter_bytes` yields the body as it arrives, and an
`AbortHandle` that closes the socket from any thread, at once:

* reads return whatever bytes are available, so an event is seen the moment it
  arrives in both chunked and close-delimited framing (``iter_content`` holds a
  close-delimited body until the connection ends): both are read from the socket file
  in bulk (``_bulkread``; a chunked body is de-chunked by rxchat, since ``http.client``
  would return one HTTP chunk, one event, per read), anything else with urllib3's
  ``read1``;
* the connection is tracked from the moment the request is written, so aborting also
  works while the server has not yet sent headers (``_abort``: the socket is shut down,
  which wakes the blocked read in the reader thread);
* every ``requests``/``urllib3``/socket exception is translated here, once, including
  those raised while the body is read.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import time
from collections.abc import Iterator, Mapping
from typing import Any

import requests
import requests.adapters
import urllib3

from ._abort import AbortHandle, TrackedHTTPPool, TrackedHTTPSPool, tracking
from ._bulkread import iter_bulk
from ._redact import redact_headers
from .errors import APIConnectionError, APITimeoutError, StreamInterrupted

__all__ = [
    "StreamResponse",
    "close_session",
    "new_session",
    "post_stream",
    "translate",
]

log = logging.getLogger("rxchat")

READ_SIZE = 65536


class _TrackingAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": TrackedHTTPPool,
            "https": TrackedHTTPSPool,
        }


def new_session() -> requests.Session:
    """A ``requests.Session`` whose connections can be aborted before headers arrive."""
    session = requests.Session()
    adapter = _TrackingAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def close_session(session: requests.Session) -> None:
    """Close a session and every idle connection in its pools, now.

    ``Session.close()`` alone only forgets the pools with urllib3 2.x (its pool
    container has no dispose function), so kept-alive sockets stayed open until
    garbage collection; each is closed here.
    """
    for adapter in {id(a): a for a in session.adapters.values()}.values():
        pools: Any = getattr(getattr(adapter, "poolmanager", None), "pools", None)
        if pools is None:
            continue
        for key in list(pools.keys()):
            pool = pools.get(key)
            if pool is not None:
                with contextlib.suppress(Exception):  # closing must never fail
                    pool.close()
    session.close()


class StreamResponse:
    """An open streamed response: status, headers, and the body as it arrives."""

    def __init__(self, response: requests.Response, handle: AbortHandle) -> None:
        self._response = response
        self._handle = handle
        self.status_code: int = response.status_code
        self.headers: Mapping[str, str] = response.headers
        self.url = response.url

    @property
    def content_type(self) -> str:
        """The media type, lower-cased, without parameters."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def iter_bytes(self) -> Iterator[bytes]:
        """Yield the body in pieces as soon as bytes arrive, until it ends.

        Raises:
            APITimeoutError: No byte arrived within the read timeout.
            APIConnectionError: The connection broke.
        """
        raw = self._response.raw
        try:
            # Chunked or close-delimited: straight from the socket file (``_bulkread``);
            # else (a length, a Content-Encoding) urllib3's read1, which decodes.
            bulk = iter_bulk(raw, READ_SIZE)
            if bulk is not None:
                yield from bulk
                return
            while chunk := raw.read1(READ_SIZE):
                yield chunk
        except Exception as exc:
            raise translate(exc, self.url, reading=True) from None

    def read_text(self, limit: int = 65536, *, keep_partial: bool = False) -> str:
        """Read up to ``limit`` bytes of the body as text.

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
        return bytes(data[:limit]).decode("utf-8", "replace")

    def close(self) -> None:
        """Close the response; its connection is closed unless the body was read to
        the end (urllib3 has then already returned it to the pool for reuse)."""
        self._handle.release()
        with contextlib.suppress(Exception):  # closing must never fail the stream
            self._response.raw.close()
        self._response.close()


def post_stream(
    session: requests.Session,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float | tuple[float, float],
    handle: AbortHandle,
) -> StreamResponse:
    """POST ``body`` and return the response once its headers have arrived.

    Raises:
        APIConnectionError: Could not connect, or aborted.
        APITimeoutError: Connecting or waiting for headers took too long.
    """
    started = time.monotonic()
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "POST %s (%d bytes) headers=%s timeout=%s",
            url, len(body), redact_headers(headers), timeout,
        )
    try:
        with tracking(handle):
            response = session.post(
                url, data=body, headers=dict(headers), timeout=timeout, stream=True
            )
    except Exception as exc:
        handle.release()
        error = translate(exc, url, reading=False, timeout=timeout)
        log.debug("POST %s failed after %.3f s: %s", url, time.monotonic() - started, error)
        raise error from None
    handle.attach(response=response.raw)
    log.debug(
        "POST %s -> %s %s, headers in %.3f s", url, response.status_code,
        response.headers.get("content-type", "-"), time.monotonic() - started,
    )
    return StreamResponse(response, handle)


def translate(
    exc: BaseException,
    url: str,
    *,
    reading: bool,
    timeout: float | tuple[float, float] | None = None,
) -> Exception:
    """Turn a requests/urllib3/socket exception into an rxchat error.

    Args:
        exc: What requests, urllib3 or the socket raised.
        url: The request's URL, for the message.
        reading: Whether the response headers had arrived and the body was being
            read. A broken connection is then `StreamInterrupted` (the reply
            was cut off), before that `APIConnectionError`.
        timeout: The request's timeout, to name the limit that ran out.

    Returns:
        `APITimeoutError` for a connect or idle timeout, else the above.
    """
    connect, idle = _timeout_pair(timeout)
    if _is_timeout(exc):
        if not reading and _is_connect_timeout(exc):
            what, which = f"Could not connect to {url}", f"connect timeout{connect}"
        else:
            stage = "while streaming" if reading else "waiting for the response"
            what, which = f"No data arrived from {url} {stage}", f"idle timeout{idle}"
        return APITimeoutError(
            f"{what} within the {which}. The server may be overloaded or the network "
            "stalled; retry, or raise ChatClient(timeout=(connect, idle))."
        )
    reason = _short_reason(exc)
    if reading:
        return StreamInterrupted(
            f"The connection to {url} broke while the reply was being read: {reason}. "
            "The deltas received so far were emitted; the reply is incomplete, retry "
            "to get the whole reply."
        )
    return APIConnectionError(
        f"Failed to connect to {url}: {reason}. Check the base URL and your network, "
        "then retry."
    )


def _timeout_pair(timeout: float | tuple[float, float] | None) -> tuple[str, str]:
    if timeout is None:
        return "", ""
    connect, idle = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    return f" ({connect:g} s)", f" ({idle:g} s)"


def _is_connect_timeout(exc: BaseException) -> bool:
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.ConnectTimeoutError)


def _is_timeout(exc: BaseException) -> bool:
    for current in _chain(exc):
        if isinstance(current, urllib3.exceptions.NewConnectionError):
            # A subclass of ConnectTimeoutError for history's sake: it is a refusal
            # or a DNS failure, not a timeout (requests makes the same exception).
            return False
        if isinstance(
            current,
            (
                requests.Timeout,
                urllib3.exceptions.TimeoutError,
                socket.timeout,
                TimeoutError,
            ),
        ):
            return True
    return False


def _short_reason(exc: BaseException) -> str:
    if _caused_by(exc, ConnectionResetError):
        return "the connection was reset"
    if isinstance(exc, (http.client.IncompleteRead, urllib3.exceptions.ProtocolError)):
        return "the connection closed in the middle of the response"
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused (is the server running?)"
    return text[:300]


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(current, kind) for current in _chain(exc))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: requests and urllib3 nest the cause in ``args``
    (``ConnectionError(MaxRetryError(...))``), Python in ``__cause__``/``__context__``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        nested = next((a for a in current.args if isinstance(a, BaseException)), None)
        current = nested or current.__cause__ or current.__context__
