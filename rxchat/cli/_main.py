"""``main()``: parse the arguments, run a command, turn failures into exit statuses."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

from ._args import ParserExit, parse_args
from ._backend import secrets
from ._console import Console
from ._errors import ExitCode, report_error
from ._logs import run_logs
from ._oneshot import run_ask, run_serve

__all__ = ["main", "main_entry"]

Command = Callable[[argparse.Namespace, Console], int]


def _run_chat(args: argparse.Namespace, console: Console) -> int:
    from ._chat import run_chat

    return run_chat(args, console)


COMMANDS: Mapping[str, Command] = {
    "ask": run_ask, "chat": _run_chat, "logs": run_logs, "serve": run_serve,
}


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``rxchat`` with ``argv`` and return its exit status.

    Args:
        argv: The arguments without the program name; default ``sys.argv[1:]``.
        stdout: Where replies go; default ``sys.stdout``.
        stderr: Where notices and errors go; default ``sys.stderr``.
        stdin: Where typed lines come from; default ``sys.stdin``.
        env: Environment variables; default ``os.environ``.

    Returns:
        0 on success, else an `ExitCode` chosen by the error family.
    """
    console = Console(
        stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin,
        os.environ if env is None else env,
    )
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv, console.stdout, console.stderr)
    except ParserExit as done:
        return done.status
    console.no_color = args.no_color
    console.secrets = secrets(args, console.env)
    try:
        return COMMANDS[args.command](args, console)
    except KeyboardInterrupt:
        console.err("rxchat: interrupted.")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return _reader_went_away(console)
    except Exception as exc:  # every failure becomes one line and a status
        return report_error(
            exc, console.stderr, debug=args.debug, secrets=console.secrets
        )


def _reader_went_away(console: Console) -> int:
    """stdout's reader closed the pipe (``rxchat ask ... | head``): stop quietly.

    The real stdout is pointed at /dev/null so that flushing it at exit cannot fail
    again (as the Python documentation on SIGPIPE recommends).
    """
    if console.stdout is sys.stdout:
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return ExitCode.OK


def main_entry() -> None:
    """The ``rxchat`` console script: exit with `main`'s status."""
    sys.exit(main(sys.argv[1:]))
