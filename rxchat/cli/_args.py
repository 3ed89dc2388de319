"""The command-line grammar: ``rxchat [options] {chat,ask,logs,serve} ...``.

Model options may come before or after the command (``rxchat --offline chat`` and
``rxchat chat --offline`` mean the same); ``serve`` and ``logs`` refuse them rather than
ignore them. ``rxchat`` with no command is ``rxchat chat``; ``rxchat logs`` is
``rxchat logs list``.
The parser writes to the injected streams and raises `ParserExit` instead of
calling ``sys.exit``, so ``main()`` stays callable in-process.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from .. import __version__

__all__ = [
    "CLIENT_OPTIONS", "DEFAULT_SERVE_PORT", "OFFLINE_PACE_S", "ParserExit", "parse_args",
]

DEFAULT_SERVE_PORT = 8765
"""Port of ``rxchat serve`` unless ``--port`` says otherwise (0 picks a free one)."""

OFFLINE_PACE_S = 0.03
"""Seconds between the offline model's words: fast, but slow enough to see it stream."""


EPILOG = """\
environment:
  SILICONFLOW_API_KEY   key for SiliconFlow (the default provider)
  RXCHAT_API_KEY        key for another provider, with RXCHAT_BASE_URL
  RXCHAT_MODEL          default model
  RXCHAT_DATA_DIR       where conversations and input history are kept
                        (default: the user data directory, e.g. ~/.local/share/rxchat)
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


def _add_output(parser: argparse.ArgumentParser, *, nested: bool) -> None:
    """Options of every command; ``nested`` copies must not reset the top level's."""
    flag: Any = argparse.SUPPRESS if nested else False
    group = parser.add_argument_group("output options")
    group.add_argument("--no-color", action="store_true", default=flag,
                       help="plain output without colours (also: NO_COLOR=1)")
    group.add_argument("--debug", action="store_true", default=flag,
                       help="show tracebacks of errors")


def _add_client(parser: argparse.ArgumentParser, *, nested: bool) -> None:
    """Options of the commands that talk to a model (``chat`` and ``ask``)."""
    keep: Any = argparse.SUPPRESS if nested else None
    flag: Any = argparse.SUPPRESS if nested else False
    group = parser.add_argument_group("model options")
    group.add_argument("--base-url", default=keep, metavar="URL",
                       help="OpenAI-compatible API root (default: $RXCHAT_BASE_URL, "
                       "else SiliconFlow)")
    group.add_argument("--api-key", default=keep, metavar="KEY",
                       help="API key (default: $RXCHAT_API_KEY, else $SILICONFLOW_API_KEY; "
                       "the variables keep it out of your shell history)")
    group.add_argument("--model", default=keep, metavar="NAME",
                       help="model id (default: $RXCHAT_MODEL; with another --base-url, "
                       "the first model the server lists; else a SiliconFlow model)")
    group.add_argument("--system", default=keep, metavar="TEXT", help="system prompt")
    group.add_argument("--temperature", type=float, default=keep, metavar="T",
                       help="sampling temperature")
    group.add_argument("--offline", action="store_true", default=flag,
                       help="use the built-in offline model even if an API key is set")
    group.add_argument("--insecure-http", action="store_true", default=flag,
                       help="allow a plain-http --base-url on another machine (the key "
                       "travels unencrypted; loopback needs no flag)")
    group.add_argument("--no-log", action="store_true", default=flag,
                       help="do not log this conversation (nor chat's input history)")
    group.add_argument("--routes", default=keep, metavar="FILE",
                       help="race several providers of one model (a TOML file of [[route]] "
                       "tables: base_url, model, api_key_env); the first to answer wins")


def _add_conversation(parser: argparse.ArgumentParser) -> None:
    """``-c`` and ``--cid``: go on with a logged conversation."""
    group = parser.add_argument_group("conversation options")
    which = group.add_mutually_exclusive_group()
    which.add_argument("-c", "--continue", dest="continue_latest", action="store_true",
                       help="continue the conversation logged last")
    which.add_argument("--cid", metavar="ID", type=conversation_id,
                       help="continue the logged conversation ID (any unique prefix of it)")


ID_HELP = "a conversation id, or any unique prefix of it"

CLIENT_OPTIONS = ("base_url", "api_key", "model", "system", "temperature", "offline",
                  "insecure_http", "no_log", "routes")
"""The destinations of the model options, which ``serve`` and ``logs`` do not take."""


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
    _add_client(parser, nested=False)
    _add_output(parser, nested=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    chat = commands.add_parser("chat", help="interactive conversation (the default)",
                               out=out, err=err)
    _add_conversation(chat)
    _add_client(chat, nested=True)
    _add_output(chat, nested=True)
    _add_tools(parser, nested=False)
    _add_tools(chat, nested=True)
    ask = commands.add_parser("ask", help="one reply to PROMPT, streamed to stdout",
                              out=out, err=err)
    ask.add_argument("prompt", nargs="+", metavar="PROMPT",
                     help="the question; '-' reads it from stdin; piped stdin is "
                     "appended to it")
    ask.add_argument("--schema", metavar="FILE.json|MODULE:MODEL",
                     help="answer as JSON fitting this JSON Schema file or pydantic "
                     "model/dataclass; shown as it grows on a terminal")
    _add_conversation(ask)
    _add_client(ask, nested=True)
    _add_output(ask, nested=True)
    _add_logs(commands, out, err)
    serve = commands.add_parser("serve", help="run the offline model as an "
                                "OpenAI-compatible server on 127.0.0.1", out=out, err=err)
    serve.add_argument("--port", type=int, default=DEFAULT_SERVE_PORT,
                       help=f"port to listen on (default {DEFAULT_SERVE_PORT}; 0 picks one)")
    serve.add_argument("--delay", type=float, default=OFFLINE_PACE_S, metavar="SECONDS",
                       help=f"pause between streamed words (default {OFFLINE_PACE_S})")
    _add_output(serve, nested=True)
    return parser


def _add_logs(commands: Any, out: TextIO, err: TextIO) -> None:
    logs = commands.add_parser("logs", help="the logged conversations: list, show, search, "
                               "export, rm", out=out, err=err)
    _add_output(logs, nested=True)
    actions = logs.add_subparsers(dest="logs_action", metavar="ACTION")
    listing = actions.add_parser("list", help="the latest conversations (the default)",
                                 out=out, err=err)
    listing.add_argument("-n", "--limit", type=int, default=20, help="how many (default 20)")
    show = actions.add_parser("show", help="one conversation's messages", out=out, err=err)
    show.add_argument("id", metavar="ID", type=conversation_id, help=ID_HELP)
    search = actions.add_parser("search", help="conversations containing every word",
                                out=out, err=err)
    search.add_argument("text", nargs="+", metavar="TEXT")
    search.add_argument("-n", "--limit", type=int, default=20, help="how many (default 20)")
    export = actions.add_parser("export", help="one conversation as JSON (a session file "
                                "that /load reads)", out=out, err=err)
    export.add_argument("id", metavar="ID", type=conversation_id, help=ID_HELP)
    remove = actions.add_parser("rm", help="delete a conversation", out=out, err=err)
    remove.add_argument("id", metavar="ID", type=conversation_id, help=ID_HELP)


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
    parser = build_parser(out, err)
    args = parser.parse_args(list(argv))
    if args.command is None:
        args = parser.parse_args([*argv, "chat"])
    if args.command in ("serve", "logs"):
        given = [name for name in CLIENT_OPTIONS if getattr(args, name)]
        if given:
            option = "--" + given[0].replace("_", "-")
            why = ("it serves the offline model; it takes --port and --delay"
                   if args.command == "serve" else "it only reads the logged conversations")
            parser.error(f"{args.command} does not take {option}: {why}")
    if args.command == "logs" and args.logs_action is None:
        args.logs_action, args.limit = "list", 20
    return args


def conversation_id(text: str) -> str:
    """An ``ID`` argument: a conversation id or a unique prefix of one, never empty.

    Raises:
        argparse.ArgumentTypeError: It is empty or blank (it would name no conversation,
            or silently start a new one).
    """
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "an empty conversation id names no conversation; see `rxchat logs list` "
            "for the ids, or leave out --cid to start a new conversation"
        )
    return text
