"""The retry policy: which failures are tried again, and how long to wait first.

Pure functions, no I/O and no clock, so the reader in ``_stream.py`` only asks "retry,
and after how many seconds?" and schedules the next attempt on its scheduler.

* Retried: HTTP 408, 409, 429 and 5xx, connection failures and timeouts
  (`APIConnectionError`, unless it says it cannot succeed, as an
  untrusted TLS certificate cannot), and a body that ended before its first
  delta (`StreamInterrupted`) — but only while nothing has been
  emitted, so output is never duplicated. Malformed streams and error objects inside a
  200 stream (`StreamError`) are not retried: the same request
  would most likely fail the same way.
* The wait is the server's ``retry-after-ms`` / ``Retry-After`` when it sent one and it
  is at most `MAX_RETRY_AFTER`; a longer one ends the retries at once (the error
  keeps ``retry_after`` so the caller may wait that long itself). Otherwise it is
  exponential backoff with jitter, as in the official OpenAI SDK:
  ``min(0.5 * 2**n, 8) * (1 - 0.25 * random())`` seconds before retry ``n + 1``.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from ..errors import APIConnectionError, APIStatusError, RxChatError, StreamInterrupted

__all__ = [
    "INITIAL_BACKOFF",
    "MAX_BACKOFF",
    "MAX_RETRY_AFTER",
    "RETRY_STATUSES",
    "backoff_seconds",
    "is_retryable",
    "retry_delay",
]

INITIAL_BACKOFF = 0.5
"""Seconds before the first retry (before jitter)."""

MAX_BACKOFF = 8.0
"""Longest backoff between two attempts (before jitter)."""

MAX_RETRY_AFTER = 60.0
"""Longest ``Retry-After`` honoured, in seconds; a longer one ends the retries."""

RETRY_STATUSES = frozenset({408, 409, 429})
"""Client-error statuses worth another try (every 5xx is too)."""


def is_retryable(error: RxChatError) -> bool:
    """Whether ``error``, raised before any delta was emitted, is worth another try."""
    if isinstance(error, APIStatusError):
        return error.status_code in RETRY_STATUSES or error.status_code >= 500
    if isinstance(error, APIConnectionError):
        return error.retryable
    return isinstance(error, StreamInterrupted)


def backoff_seconds(retry: int, jitter: Callable[[], float] = random.random) -> float:
    """The wait before retry number ``retry + 1`` (0-based), with up to 25 % jitter.

    Args:
        retry: How many retries were made before this one.
        jitter: A source of numbers in ``[0, 1)``.

    Returns:
        ``min(0.5 * 2**retry, 8) * (1 - 0.25 * jitter())`` seconds.
    """
    base = min(INITIAL_BACKOFF * 2.0**retry, MAX_BACKOFF)
    return base * (1.0 - 0.25 * jitter())


def retry_delay(
    error: RxChatError,
    attempts: int,
    max_retries: int,
    jitter: Callable[[], float] = random.random,
    *,
    emitted: bool = False,
) -> tuple[float | None, str]:
    """Decide whether to try again after ``attempts`` failed attempts.

    Args:
        error: Why the last attempt failed.
        attempts: Attempts made so far (1 after the first).
        max_retries: Further attempts allowed after the first.
        jitter: A source of numbers in ``[0, 1)``.
        emitted: Whether a delta was emitted: then never retried, since the output
            would be duplicated.

    Returns:
        ``(seconds, "")`` to retry after that wait, or ``(None, why)`` to give up,
        where ``why`` completes the error message (empty when the error is final).
    """
    if emitted or not is_retryable(error):
        return None, _made(attempts)
    if attempts > max_retries:
        return None, f"gave up after {attempts} attempts" if attempts > 1 else ""
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, (int, float)):
        if retry_after > MAX_RETRY_AFTER:
            return None, (
                f"not retried: the server asked to wait {retry_after:g} s, longer than "
                f"the {MAX_RETRY_AFTER:g} s rxchat waits on its own"
                + (f"; {_made(attempts)}" if attempts > 1 else "")
            )
        return float(retry_after), ""
    return backoff_seconds(attempts - 1, jitter), ""


def _made(attempts: int) -> str:
    """The note for an error that ends a subscription after several attempts."""
    return f"{attempts} attempts made" if attempts > 1 else ""
