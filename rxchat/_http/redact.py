"""Headers safe to log: credentials shortened so that two keys can be told apart.

The transport logs each request's headers at DEBUG level through
`redact_headers`, so turning on debug logging never writes a usable key.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["redact_headers"]


_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie"}
)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers safe to log: credentials shortened to ``Bearer sk-…abcd`` or ``***``.

    A secret of 20 characters or more keeps its first 3 and last 4 (enough to tell
    two keys apart, far too little to use); a shorter one is replaced entirely.
    """
    return {
        name: _redact_secret(value) if name.lower() in _SECRET_HEADERS else value
        for name, value in headers.items()
    }


def _redact_secret(value: str) -> str:
    scheme, space, secret = value.rpartition(" ")
    shown = f"{secret[:3]}…{secret[-4:]}" if len(secret) >= 20 else "***"
    return f"{scheme}{space}{shown}"
