"""Exit statuses and the one-line error report of the command line.

Every failure ends as one line on stderr, ``rxchat: <what happened>. <what to do>``,
and an exit status chosen by the error's family, so scripts can tell a bad key from a
flaky network without parsing text. The traceback is shown only with ``--debug``, and
every known secret is replaced by ``***`` before anything is printed.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from enum import IntEnum
from typing import TextIO

from ..errors import (
    AmbiguousConversationIdError,
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConversationNotFoundError,
    RateLimitError,
    RxChatError,
    ServerError,
    StreamError,
    StreamInterrupted,
    StructuredOutputError,
)
from ._render import is_terminal
from ._safe import safe_text

__all__ = ["ExitCode", "exit_code_for", "report_error"]


class ExitCode(IntEnum):
    """The exit statuses of ``rxchat``, one per error family."""

    OK = 0
    OTHER = 1
    """Anything not covered below (a bug, an unexpected HTTP status)."""
    USAGE = 2
    """Bad options or arguments, an unusable ``--base-url``, an unreadable file, an
    unknown conversation id."""
    AUTH = 3
    """No API key, or the server refused it (401, 403)."""
    BAD_REQUEST = 4
    """The server rejected the request (400, 404, 413, 422): model name, params."""
    RATE_LIMIT = 5
    """Too many requests (429)."""
    SERVER = 6
    """The provider failed (5xx)."""
    CONNECTION = 7
    """Could not connect, the connection broke, or a timeout ran out."""
    STREAM = 8
    """The reply stream was malformed, carried an error, or was cut off; or a reply
    asked for as JSON (``--schema``) did not fit."""
    INTERRUPTED = 130
    """Ctrl-C stopped ``rxchat ask`` or ``rxchat serve`` before it was done."""


_FAMILIES: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (ConfigurationError, ExitCode.USAGE),
    (ConversationNotFoundError, ExitCode.USAGE),
    (AuthenticationError, ExitCode.AUTH),
    (BadRequestError, ExitCode.BAD_REQUEST),
    (RateLimitError, ExitCode.RATE_LIMIT),
    (ServerError, ExitCode.SERVER),
    (APIStatusError, ExitCode.OTHER),
    (APIConnectionError, ExitCode.CONNECTION),
    (StreamError, ExitCode.STREAM),
    (StreamInterrupted, ExitCode.STREAM),
    (StructuredOutputError, ExitCode.STREAM),
)


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit status for an error, by its family.

    Args:
        error: What went wrong.

    Returns:
        The matching `ExitCode`; ``OTHER`` for anything unknown.
    """
    for family, code in _FAMILIES:
        if isinstance(error, family):
            return code
    return ExitCode.OTHER


def one_line(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` on a single line, with every secret replaced by ``***``.

    Args:
        text: Any message.
        secrets: Strings that must never be printed (API keys).

    Returns:
        The message with whitespace runs collapsed and secrets redacted.
    """
    return " ".join(_redact(text, secrets).split())


def report_error(
    error: BaseException,
    stderr: TextIO,
    *,
    debug: bool = False,
    secrets: Iterable[str] = (),
    hint: str = "",
    paint: Callable[[str], str] = str,
) -> ExitCode:
    """Print the one-line report of ``error`` (and, with ``debug``, its traceback).

    Args:
        error: What went wrong.
        stderr: Where to print.
        debug: Also print the traceback.
        secrets: Strings to redact from everything printed.
        hint: Words added after the message (e.g. what to type next).
        paint: Styles the line (e.g. red on a terminal).

    Returns:
        The exit status for the error.
    """
    secrets = tuple(secrets)
    if debug:
        stderr.write(_redact("".join(traceback.format_exception(error)), secrets))
    message = str(error) or type(error).__name__
    if isinstance(error, ConversationNotFoundError) and not isinstance(
        error, AmbiguousConversationIdError  # its message lists the candidates
    ):  # the CLI's words, not the API's
        message = (f"No logged conversation {error.conversation_id!r}; list them with "
                   "`rxchat logs list`.")
    if not isinstance(error, RxChatError):
        message = f"unexpected {type(error).__name__}: {message} (rerun with --debug to see where)"
    line = safe_text(one_line(message + hint, secrets), is_terminal(stderr))  # may quote
    stderr.write(paint(f"rxchat: {line}") + "\n")  # a server: no raw escapes
    stderr.flush()
    return exit_code_for(error)


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
