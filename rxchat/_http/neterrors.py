"""Exceptions from requests, urllib3, ssl and the socket, translated into rxchat errors;
and the two refusals the transport decides itself (a redirect to another origin).

The transport calls `translate` once per failure, at its boundary, including
while the body is read. The message names what failed in the user's terms (the host
that could not be resolved, the proxy that refused, the certificate that is not
trusted, the timeout that ran out and its seconds) and what to do, never urllib3's
class names or pool internals.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

import requests
import requests.utils
import urllib3

from ..errors import APIConnectionError, APIStatusError, APITimeoutError, StreamInterrupted

__all__ = ["proxy_for", "redirect_target", "translate"]

Timeout = float | tuple[float, float] | None


def translate(
    exc: BaseException,
    url: str,
    *,
    reading: bool,
    timeout: Timeout = None,
    proxy: str | None = None,
) -> Exception:
    """Turn a requests/urllib3/ssl/socket exception into an rxchat error.

    Args:
        exc: What requests, urllib3, ssl or the socket raised.
        url: The request's URL, for the message.
        reading: Whether the response headers had arrived and the body was being
            read. A broken connection is then ``StreamInterrupted`` (the reply was cut
            off), before that ``APIConnectionError``.
        timeout: The request's timeout, to name the limit that ran out.
        proxy: The proxy the request went through, if any, to name it when it failed.

    Returns:
        ``APITimeoutError`` for a connect or idle timeout; ``APIConnectionError``
        (not retryable for an untrusted certificate) before the headers;
        ``StreamInterrupted`` while reading.
    """
    if _is_timeout(exc):
        return _timeout_error(exc, url, reading, timeout)
    if reading:
        return StreamInterrupted(
            f"The connection to {url} broke while the reply was being read: "
            f"{_short_reason(exc)}. The deltas received so far were emitted; the reply "
            "is incomplete, retry to get the whole reply."
        )
    host = urlsplit(url).hostname or url
    if proxy is not None and _caused_by(exc, requests.exceptions.ProxyError):
        return APIConnectionError(
            f"Could not reach {url} through the proxy {_without_userinfo(proxy)}: "
            f"{_short_reason(exc)}. Check the proxy address (HTTPS_PROXY / HTTP_PROXY, "
            "or the session's proxies) and that the proxy is running and allows the "
            "connection."
        )
    if _caused_by(exc, ssl.SSLCertVerificationError):
        return APIConnectionError(
            f"The TLS certificate of {host} is not trusted ({_cert_reason(exc)}), so "
            f"nothing was sent to {url}. If a private CA or a corporate TLS-inspecting "
            "proxy signs it, point rxchat at that CA bundle: set REQUESTS_CA_BUNDLE, or "
            "pass ChatClient(session=s) with s.verify = '/path/to/ca.pem'. Not retried: "
            "the same certificate would fail again.",
            retryable=False,
        )
    if _caused_by(exc, socket.gaierror) or _caused_by(
        exc, urllib3.exceptions.NameResolutionError
    ):
        return APIConnectionError(
            f"Could not resolve host {host}: DNS does not know the name. Check the host "
            f"in the base URL ({url}) and your network or DNS settings, then retry."
        )
    if _caused_by(exc, ssl.SSLError):
        return APIConnectionError(
            f"The TLS handshake with {host} failed: {_short_reason(exc)}. Check that "
            "the base URL's scheme and port serve https, then retry."
        )
    return APIConnectionError(
        f"Failed to connect to {url}: {_short_reason(exc)}. Check the base URL and "
        "your network, then retry."
    )


def _timeout_error(
    exc: BaseException, url: str, reading: bool, timeout: Timeout
) -> APITimeoutError:
    connect, idle = _timeout_pair(timeout)
    if not reading and _is_connect_timeout(exc):
        what, which = f"Could not connect to {url}", f"connect timeout{connect}"
    else:
        stage = "while streaming" if reading else "waiting for the response"
        what, which = f"No data arrived from {url} {stage}", f"idle timeout{idle}"
    return APITimeoutError(
        f"{what} within the {which}. The server may be overloaded or the network "
        "stalled; retry, or raise ChatClient(timeout=(connect, idle))."
    )


def _timeout_pair(timeout: Timeout) -> tuple[str, str]:
    if timeout is None:
        return "", ""
    connect, idle = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    return f" ({connect:g} s)", f" ({idle:g} s)"


def _is_connect_timeout(exc: BaseException) -> bool:
    return _caused_by(exc, requests.ConnectTimeout) or _caused_by(
        exc, urllib3.exceptions.ConnectTimeoutError
    )


def _is_timeout(exc: BaseException) -> bool:
    for current in _chain(exc):
        if isinstance(current, urllib3.exceptions.NewConnectionError):
            # A subclass of ConnectTimeoutError for history's sake: it is a refusal
            # or a DNS failure, not a timeout (requests makes the same exception).
            return False
        if isinstance(
            current,
            (requests.Timeout, urllib3.exceptions.TimeoutError, socket.timeout, TimeoutError),
        ):
            return True
    return False


def _short_reason(exc: BaseException) -> str:
    """The innermost cause in words, without urllib3's class names and pool details."""
    if _caused_by(exc, ConnectionResetError):
        return "the connection was reset"
    if _caused_by(exc, ConnectionRefusedError) or "refused" in str(exc).lower():
        return "connection refused (is the server running?)"
    if isinstance(exc, (http.client.IncompleteRead, urllib3.exceptions.ProtocolError)):
        return "the connection closed in the middle of the response"
    innermost = list(_chain(exc))[-1]
    # urllib3 prefixes "<urllib3.connection.HTTPConnection object at 0x...>: "
    text = re.sub(r"^<[^>]*>:\s*", "", str(innermost)) or type(innermost).__name__
    if "Tunnel connection failed" in text:
        return "it refused the tunnel (" + text.split(":", 1)[-1].strip() + ")"
    return text[:300]


def _cert_reason(exc: BaseException) -> str:
    for current in _chain(exc):
        if isinstance(current, ssl.SSLCertVerificationError):
            return str(current.verify_message or current.reason or "verification failed")
    return "verification failed"


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(current, kind) for current in _chain(exc))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: requests and urllib3 nest the cause in ``args``
    (``ConnectionError(MaxRetryError(...))``) or ``reason``, Python in
    ``__cause__``/``__context__``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        nested = next((a for a in current.args if isinstance(a, BaseException)), None)
        reason = getattr(current, "reason", None)
        if nested is None and isinstance(reason, BaseException):
            nested = reason
        current = nested or current.__cause__ or current.__context__


def redirect_target(
    status: int, url: str, location: str, endpoint: str = "/chat/completions"
) -> str:
    """Where a redirect leads, if it stays in the same origin.

    Args:
        status: The redirect's status.
        url: The URL that was asked.
        location: Its ``Location`` header.
        endpoint: The path after the base URL (to suggest a base URL).

    Raises:
        APIStatusError: It leads to another scheme, host or port.
    """
    target = urljoin(url, location)
    if _origin(target) != _origin(url):
        raise APIStatusError(
            status, "",
            f"The server at {url} redirected the request (HTTP {status}) to another "
            f"origin, {_origin(target)}. rxchat does not send the API key or the "
            "conversation to another host; if you trust it, set base_url to "
            f"{target.rsplit(endpoint, 1)[0]}.",
        )
    return target


def _origin(url: str) -> str:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or default}"


def proxy_for(session: requests.Session, url: str) -> str | None:
    """The proxy requests chose for ``url`` (session setting, else environment)."""
    with contextlib.suppress(Exception):  # only used to word an error message
        proxies = dict(session.proxies)
        if session.trust_env:
            no_proxy = proxies.get("no_proxy")
            for scheme, proxy in requests.utils.get_environ_proxies(url, no_proxy).items():
                proxies.setdefault(scheme, proxy)
        return requests.utils.select_proxy(url, proxies)
    return None
