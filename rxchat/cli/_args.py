"""The command-line grammar: ``rxchat [options] {chat,ask,serve} ...``.

Common options may come before or after the command (``rxchat --offline chat`` and
``rxchat chat --offline`` mean the same). ``rxchat`` with no command is ``rxchat chat``.
The parser writes to the injected streams and raises :class:`ParserExit` instead of
calling ``sys.exit``, so ``main()`` stays callable in-process.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from .. import __version__

__all__ = ["DEFAULT_SERVE_PORT", "OFFLINE_PACE_S", "ParserExit", "parse_args"]

DEFAULT_SERVE_PORT = 8765
"""Port of ``rxchat serve`` unless ``--port`` says otherwise (0 picks a free one)."""

OFFLINE_PACE_S = 0.03
"""Seconds between the offline model's words: fast, but slow enough to see it stream."""


EPILOG = """\
environment:
  SILICONFLOW_API_KEY   key for SiliconFlow (the default provider)
  RXCHAT_API_KEY        key for another provider, with RXCHAT_BASE_URL
  RXCHAT_MODEL          default model
  NO_COLOR              plain output (like --no-color)

exit status:
  0 ok, 1 other error, 2 usage or configuration, 3 authentication,
  4 bad request, 5 rate limit, 6 server error, 7 connection or timeout,
  8 broken stream, 130 interrupted (Ctrl-C)
"""


class ParserExit(Exception):  # noqa: N818 - not an error: --help ends here too
    """The parser finished early (``--help``, ``--version`` or a usage error)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that writes to given streams and raises instead of exiting."""

    def __init__(self, *args: Any, out: TextIO, err: TextIO, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._out = out
        self._err = err

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            (self._err if file is sys.stderr else self._out).write(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self._err.write(message)
        raise ParserExit(status)

    def error(self, message: str) -> NoReturn:
        self._err.write(f"{self.prog}: {message} (see '{self.prog} --help')\n")
        raise ParserExit(2)


def _add_common(parser: argparse.ArgumentParser, *, nested: bool) -> None:
    """Options every command accepts; ``nested`` copies must not reset the top level's."""
    keep: Any = argparse.SUPPRESS if nested else None
    group = parser.add_argument_group("common options")
    group.add_argument("--base-url", default=keep, metavar="URL",
                       help="OpenAI-compatible API root (default: $RXCHAT_BASE_URL, "
                       "else SiliconFlow)")
    group.add_argument("--model", default=keep, metavar="NAME",
                       help="model id (default: $RXCHAT_MODEL, else a SiliconFlow model)")
    group.add_argument("--system", default=keep, metavar="TEXT", help="system prompt")
    group.add_argument("--temperature", type=float, default=keep, metavar="T",
                       help="sampling temperature")
    flag: Any = argparse.SUPPRESS if nested else False
    group.add_argument("--offline", action="store_true", default=flag,
                       help="use the built-in offline model even if an API key is set")
    group.add_argument("--no-color", action="store_true", default=flag,
                       help="plain output without colours (also: NO_COLOR=1)")
    group.add_argument("--debug", action="store_true", default=flag,
                       help="show tracebacks of errors")


def _add_tools(parser: argparse.ArgumentParser, *, nested: bool) -> None:
    """The chat's tool options (also accepted before the command, as chat is the default)."""
    group = parser.add_argument_group("tools (chat)")
    group.add_argument("--tool", action="append", metavar="MODULE:FUNCTION",
                       default=argparse.SUPPRESS if nested else [],
                       help="let the model call this function (repeatable)")
    group.add_argument("--yes", action="store_true",
                       default=argparse.SUPPRESS if nested else False,
                       help="run tool calls without asking first")


def build_parser(out: TextIO, err: TextIO) -> argparse.ArgumentParser:
    """The ``rxchat`` parser, writing help to ``out`` and errors to ``err``."""
    parser = _Parser(
        prog="rxchat", out=out, err=err,
        description="Streaming chat completions from any OpenAI-compatible API. "
        "With no API key, talks to a built-in offline model.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rxchat {__version__}")
    _add_common(parser, nested=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    chat = commands.add_parser("chat", help="interactive conversation (the default)",
                               out=out, err=err)
    _add_common(chat, nested=True)
    _add_tools(parser, nested=False)
    _add_tools(chat, nested=True)
    ask = commands.add_parser("ask", help="one reply to PROMPT, streamed to stdout",
                              out=out, err=err)
    ask.add_argument("prompt", nargs="+", metavar="PROMPT",
                     help="the question; '-' reads it from stdin")
    _add_common(ask, nested=True)
    serve = commands.add_parser("serve", help="run the offline model as an "
                                "OpenAI-compatible server on 127.0.0.1", out=out, err=err)
    serve.add_argument("--port", type=int, default=DEFAULT_SERVE_PORT,
                       help=f"port to listen on (default {DEFAULT_SERVE_PORT}; 0 picks one)")
    serve.add_argument("--delay", type=float, default=OFFLINE_PACE_S, metavar="SECONDS",
                       help=f"pause between streamed words (default {OFFLINE_PACE_S})")
    _add_common(serve, nested=True)
    return parser


def parse_args(argv: Sequence[str], out: TextIO, err: TextIO) -> argparse.Namespace:
    """Parse ``argv`` (without the program name).

    Args:
        argv: The arguments.
        out: Where ``--help`` and ``--version`` go.
        err: Where usage errors go.

    Returns:
        The options; ``command`` is ``"chat"`` when none was given.

    Raises:
        ParserExit: Help or version was printed, or the arguments are wrong.
    """
    args = build_parser(out, err).parse_args(list(argv))
    if args.command is None:
        args.command = "chat"
    return args
