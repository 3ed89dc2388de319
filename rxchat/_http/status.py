"""HTTP error responses as typed errors: the status picks the class, the body the message.

`status_error` maps 401/403, 429, 5xx and 400/404/413/422 to their
`APIStatusError` subclasses (any other status to the base class),
quoting the server's own message (from a JSON error body, else the text of a plain or
HTML page) and the wait it asked for (`retry_after_seconds`, from
``retry-after-ms`` or ``Retry-After``).
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from typing import Any

from .._wire.json import error_message_of
from .._wire.json import loads as json_loads
from ..errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    RateLimitError,
    ServerError,
)

__all__ = ["key_advice", "retry_after_seconds", "status_error"]


def status_error(
    status: int, body: str, headers: Mapping[str, str], url: str,
    *, key_source: str | None = "",
) -> APIStatusError:
    """The typed error for an HTTP error response, with the server's message.

    Args:
        status: The HTTP status.
        body: The response body (the key already redacted).
        headers: The response headers.
        url: Where the request went.
        key_source: Where the API key that was sent came from (``"$RXCHAT_API_KEY"``,
            ``"--api-key"``), named in a 401/403 message; None if no key was sent;
            ``""`` if unknown.
    """
    try:
        payload: Any = json_loads(body)
    except ValueError:  # not JSON, or nested too deeply to read
        payload = None
    server_message, _code = error_message_of(payload)
    if server_message is None:
        server_message = _plain_text(body)
    said = f": {server_message}" if server_message else ""
    end = "" if said.rstrip().endswith((".", "!", "?")) else "."
    what = f"The server at {url} answered HTTP {status}{said.rstrip()}{end}"
    if status in (401, 403):
        return AuthenticationError(
            status, body, f"{what} {key_advice(key_source)}",
            server_message=server_message,
        )
    retry_after = retry_after_seconds(headers)
    wait = f" The server asked to wait {retry_after:g} s." if retry_after else ""
    if status == 429:
        return RateLimitError(
            status, body, f"{what}{wait} Slow down, or retry later.",
            server_message=server_message, retry_after=retry_after,
        )
    if status >= 500:
        return ServerError(
            status, body, f"{what}{wait} The provider failed; retry later.",
            server_message=server_message, retry_after=retry_after,
        )
    if status in (400, 404, 413, 422):
        return BadRequestError(
            status, body, f"{what} Fix the request (model name, messages, "
            "parameters) before retrying.",
            server_message=server_message, retry_after=retry_after,
        )
    advice = (
        " The request conflicted with another one in progress; retry shortly."
        if status in (408, 409)
        else " The provider's documentation for this status says what to change."
    )
    return APIStatusError(
        status, body, f"{what}{wait}{advice}",
        server_message=server_message, retry_after=retry_after,
    )


def key_advice(key_source: str | None) -> str:
    """What to check after a 401/403, naming the key that was sent.

    Args:
        key_source: Where the key came from (``"$RXCHAT_API_KEY"``, ``"--api-key"``,
            ``"the api_key argument"``); None if no key was sent; ``""`` if unknown.
    """
    if key_source is None:
        return ("No API key was sent (none is configured): set RXCHAT_API_KEY (or "
                "SILICONFLOW_API_KEY), or pass one with api_key= (--api-key on the command "
                "line); if your own headers carry the credentials, check those.")
    if key_source:
        return (f"The API key sent was the one from {key_source}: check that it is this "
                "provider's key and has the permissions needed.")
    return ("Check the API key for this provider (SILICONFLOW_API_KEY or RXCHAT_API_KEY) "
            "and its permissions.")


def retry_after_seconds(
    headers: Mapping[str, str], now: float | None = None
) -> float | None:
    """Seconds the server asked to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be seconds or an HTTP-date (RFC 9110, 10.2.3); a date in the
    past asks for no wait and gives None, as does a value that cannot be parsed.

    Args:
        headers: Response headers (case-insensitive mapping).
        now: The current time as a Unix timestamp, for dates; default ``time.time()``.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = lowered.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            seconds = _seconds_until(value, now) if scale == 1.0 else -1.0
        if seconds >= 0 and seconds != float("inf"):
            return seconds
    return None


def _seconds_until(http_date: str, now: float | None) -> float:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return -1.0
    if when.tzinfo is None:  # an HTTP-date is always GMT
        return -1.0
    return when.timestamp() - (time.time() if now is None else now)


def _plain_text(body: str) -> str | None:
    """A short readable line from a text or HTML body."""
    text = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", body)
    title = re.search(r"(?is)<title>(.*?)</title>", text)
    if title:
        text = title.group(1)
    text = " ".join(re.sub(r"<[^>]+>", " ", text).split())
    return text[:300] or None
