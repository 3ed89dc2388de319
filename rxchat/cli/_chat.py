"""``rxchat chat``: an interactive conversation on a :class:`~rxchat.ChatSession`.

Each line typed is ``session.send(line)``; its deltas are rendered as they arrive
(:mod:`._reply`), and a stats line follows. Ctrl-C during a reply calls
``session.cancel()``: the HTTP stream is closed and the session keeps the partial
reply. Ctrl-C or Ctrl-D at an empty prompt ends the chat with status 0. A failed turn prints
one line and the conversation goes on (``/retry`` asks it again). Lines starting with
``/`` are commands (:mod:`._slash`).
"""

from __future__ import annotations

import argparse
import functools
import queue
import threading
from collections.abc import Callable
from typing import Any

from reactivex import Observable

from .. import __version__
from .._models import Message
from .._session import ChatSession
from ..errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    RxChatError,
)
from ._backend import Backend, api_keys, connect, offline_notice
from ._console import Console
from ._errors import ExitCode, report_error
from ._oneshot import extra_params
from ._render import ReplyView, format_stats, is_terminal
from ._reply import ReplyOutcome, sigint_sets, stream_reply
from ._slash import run_command
from ._tools import ToolDesk, load_tools

__all__ = ["Chat", "run_chat"]

PROMPT = "you> "


class Chat:
    """The interactive loop: the console, the backend and the current session.

    Args:
        console: Where to read and write.
        backend: The client the session talks through.
        args: The parsed options (``system``, ``model``, ``temperature``).
    """

    def __init__(self, console: Console, backend: Backend, args: argparse.Namespace) -> None:
        self.console = console
        self.backend = backend
        self.debug = bool(args.debug)
        tools = load_tools(getattr(args, "tool", None) or ())
        self.desk = ToolDesk(console, ask_first=not getattr(args, "yes", False))
        self.session = ChatSession(
            backend.client, model=args.model, system=args.system, params=extra_params(args),
            tools=tools, approve=None if getattr(args, "yes", False) else self.desk.approve,
        )
        if tools:
            self.session.subscribe(self.desk.watch)
        self.palette = console.palette(console.stdout)

    def loop(self) -> int:
        """Read lines until ``/exit``, Ctrl-D or Ctrl-C at an empty prompt.

        Returns:
            0.
        """
        while True:
            try:
                line = self.console.read_line(self.palette.bold(PROMPT)).strip()
            except KeyboardInterrupt:
                self.console.out("")
                if self.console.typed_text().strip():
                    continue  # Ctrl-C discards a half-typed line; at an empty prompt, quits
                return ExitCode.OK
            except EOFError:
                self.console.out("")
                return ExitCode.OK
            if not line:
                continue
            if line.startswith("/"):
                if run_command(self, line):
                    return ExitCode.OK
                continue
            self.turn(functools.partial(self.session.send, line))

    def turn(self, ask: Callable[[], Observable[Message]]) -> ReplyOutcome | None:
        """Ask a turn, render its reply, then its stats or its error.

        Args:
            ask: Starts the turn (``session.send``, ``session.regenerate``).

        Returns:
            How the reply went, or None if the turn could not be asked.
        """
        inbox: queue.Queue[Any] = queue.Queue()  # deltas, and the tools' prompts
        self.desk.open(inbox)
        try:
            played = self._play(ask, inbox)
        finally:
            self.desk.open(None)
        if played is None:
            return None
        outcome, view = played
        if outcome.cancelled:
            view.note("[cancelled: the partial reply is kept; /undo removes it]")
        elif outcome.error is not None:
            retryable = not isinstance(
                outcome.error, (AuthenticationError, BadRequestError, ConfigurationError)
            )
            self.error(outcome.error, hint=" (/retry asks again)" if retryable else "")
            return outcome
        usage = outcome.message.usage
        view.note(f"[{format_stats(usage, outcome.first_token_s, outcome.stream_s)}]")
        return outcome

    def _play(
        self, ask: Callable[[], Observable[Message]], inbox: queue.Queue[Any]
    ) -> tuple[ReplyOutcome, ReplyView] | None:
        try:
            deltas = ask()
        except RxChatError as exc:
            self.error(exc)
            return None
        out = self.console.stdout
        view = ReplyView(out, out, self.palette, self.palette, spinner=is_terminal(out))
        with sigint_sets(threading.Event()) as interrupted:
            outcome = stream_reply(deltas, view, cancel=self.session.cancel,
                                   interrupted=interrupted, inbox=inbox)
        return outcome, view

    def error(self, error: BaseException, *, hint: str = "") -> None:
        """Print one line about ``error`` on stderr (and its traceback with --debug)."""
        stderr = self.console.stderr
        report_error(error, stderr, debug=self.debug, secrets=api_keys(self.console.env),
                     hint=hint, paint=self.console.palette(stderr).red)

    def problem(self, text: str) -> None:
        """Print one line on stderr about something that cannot be done now."""
        self.console.err(self.console.palette(self.console.stderr).red(f"rxchat: {text}"))

    def say(self, text: str) -> None:
        """A dimmed line of information on stdout."""
        self.console.out(self.palette.dim(text))


def run_chat(args: argparse.Namespace, console: Console) -> int:
    """Run the interactive chat until the person leaves.

    Returns:
        0 when they leave.

    Raises:
        ConfigurationError: The base URL cannot be used.
    """
    notice = offline_notice(args, console.env)
    with connect(args, console.env) as backend:
        if notice:
            console.err(notice)
        chat = Chat(console, backend, args)
        model = chat.session.model or backend.client.model
        where = "the offline model" if backend.offline else f"{model} at {backend.client.base_url}"
        chat.say(f"rxchat {__version__}, talking to {where}. /help lists the commands; "
                 "Ctrl-C stops a reply, Ctrl-D quits.")
        return chat.loop()
