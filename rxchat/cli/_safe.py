"""Text from a model or a store, made safe to write: escaped on a terminal, valid always.

A reply can carry terminal escape sequences (a prompt injection, or a model echoing
one): OSC 52 sets the clipboard, OSC 0 retitles the window, OSC 8 hides a link's
target, ``ESC [2J`` clears the screen. On a terminal every control character other than
``\\n`` and ``\\t`` is shown escaped (``ESC`` as ``\\x1b``; a ``\\r\\n`` line ending is a
``\\n``), C1 controls included; the stored text is unchanged, and output to a pipe or a
file is the text itself (``rxchat ask > a.txt`` keeps it exact), made valid Unicode so
writing it cannot fail on a lone surrogate.
"""

from __future__ import annotations

from .._wire.text import valid_text

__all__ = ["escape_controls", "safe_text"]

_ESCAPES = {
    code: f"\\x{code:02x}"
    for code in (*range(0x00, 0x20), *range(0x7F, 0xA0))
    if code not in (0x09, 0x0A)
}


def escape_controls(text: str) -> str:
    """``text`` with control characters other than ``\\n`` and ``\\t`` shown escaped.

    Args:
        text: Model output or stored text.

    Returns:
        Text that moves the cursor only by newlines and tabs; lone surrogates are
        U+FFFD.
    """
    return valid_text(text).replace("\r\n", "\n").translate(_ESCAPES)


def safe_text(text: str, terminal: bool) -> str:
    """``text`` as it may be written: escaped for a terminal (see `escape_controls`),
    else unchanged but valid Unicode."""
    return escape_controls(text) if terminal else valid_text(text)
