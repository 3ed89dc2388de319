"""JSON of the wire: parsing stream events (orjson when installed), and error objects.

Parsing uses orjson when installed (``pip install rxchat[fast]``).

orjson parses a chat-completion chunk about twice as fast as `json.loads`, which
is a sixth of rxchat's time per delta. It is optional, and must never change a result:
where the two differ, orjson mostly refuses the input (``NaN`` and ``Infinity``, lone
surrogates, nesting deeper than 1024), so any orjson error falls back to
`json.loads`, whose answer (value or ``ValueError``) is final. The one silent
difference, an integer beyond 64 bits read as a float, is avoided by leaving any text
with a run of 19 or more digits to `json.loads`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "FAST", "MAX_DEPTH", "NestingTooDeepError", "error_message_of", "loads", "loads_unchecked",
]


MAX_DEPTH = 512
"""Deepest nesting of arrays and objects parsed: deeper is `NestingTooDeepError`, found
before parsing, so no parser recurses to Python's recursion limit (a thread that hits it
can break finalizers that run at that moment). orjson's own limit is 1024."""

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # unrolled: linear time
_BRACKET = re.compile(r"[\[\]{}]")


class NestingTooDeepError(ValueError):
    """The JSON nests arrays and objects deeper than `MAX_DEPTH`."""

    def __init__(self) -> None:
        super().__init__(
            f"the JSON is nested too deeply (arrays or objects more than {MAX_DEPTH} "
            "levels inside each other)"
        )


def _check_depth(text: str) -> None:
    """Raise `NestingTooDeepError` for nesting beyond `MAX_DEPTH` (a scan only for
    text with that many brackets at all)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > MAX_DEPTH:
            raise NestingTooDeepError


def _checked_loads(text: str) -> Any:
    """`json.loads`, after the depth check."""
    _check_depth(text)
    return json.loads(text)


def _orjson_loads() -> tuple[Callable[[str], Any], Callable[[str], Any]] | None:
    try:
        import orjson
    except ImportError:
        return None
    fast = orjson.loads
    slow = _checked_loads
    digits_to_nines = bytes.maketrans(b"0123456789", b"9" * 10)
    long_number = b"9" * 19  # 18 digits always fit in 64 bits; 19 may not

    def loads(text: str) -> Any:
        raw = text.encode("utf-8", "surrogatepass")
        if long_number in raw.translate(digits_to_nines):
            return slow(text)
        try:
            return fast(raw)
        except Exception as exc:  # orjson refused it: json.loads decides, value or error
            if "depth" in str(exc):  # orjson's own limit: deeper than ours
                raise NestingTooDeepError from None
            return slow(text)

    return loads, fast


_fast = _orjson_loads()
FAST = _fast is not None
"""Whether orjson is in use."""

loads: Callable[[str], Any] = _fast[0] if _fast else _checked_loads
"""Parse one JSON document: the value `json.loads` gives, or its ``ValueError``
(`NestingTooDeepError` for nesting deeper than `MAX_DEPTH`)."""

loads_unchecked: Callable[[str], Any] = _fast[1] if _fast else json.loads
"""orjson itself when installed (else ``json.loads``), twice as fast as ``loads``: the
value ``json.loads`` gives, except that an integer beyond 64 bits may come back as a
float, or a ``ValueError`` where ``json.loads`` may accept the text (``NaN``, lone
surrogates, deep nesting; without orjson it is ``json.loads`` itself, which raises
``RecursionError`` for nesting near Python's recursion limit). Only for a caller that
leaves anything refused to ``loads`` and uses no number of the result but ones it checks
are ``int`` (the common delta in ``deltas.py``)."""


def error_message_of(payload: Any) -> tuple[str | None, Any]:
    """Find the human message and code in an error body of any common shape.

    Handles OpenAI's ``{"error": {"message", "code"}}``, SiliconFlow's
    ``{"code", "message", "data"}``, ``{"error": "text"}`` and ``{"detail": ...}``.

    Returns:
        ``(message, code)``, either of which may be None.
    """
    if not isinstance(payload, Mapping):
        return None, None
    error = payload.get("error")
    if isinstance(error, Mapping):
        message = error.get("message") or error.get("msg")
        return (str(message) if message else None), error.get("code")
    if isinstance(error, str) and error:
        return error, payload.get("code")
    for key in ("message", "msg", "detail"):
        value = payload.get(key)
        if isinstance(value, str) and value:
            return value, payload.get("code")
    return None, payload.get("code")
